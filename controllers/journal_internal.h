/*
 * controllers/journal_internal.h — the journal controller's state, shared
 * by journal.c (events, node changes, timers) and journal_actions.c (the
 * Txns it makes).
 */
#ifndef METAD_CONTROLLERS_JOURNAL_INTERNAL_H
#define METAD_CONTROLLERS_JOURNAL_INTERNAL_H

#include "controllers/ctl_internal.h"
#include "controllers/journal_model.h"
#include "controllers/strmap.h"
#include "core/core.h"

#define J_SEGS CTL_PREFIX "journal/segments/"
#define J_SHARDS CTL_PREFIX "journal/shards/"
#define J_REQ CTL_PREFIX "journal/requests/"
#define J_OFFSETS CTL_PREFIX "journal/offsets/"
#define J_DELETED CTL_PREFIX "journal/deleted/"
#define J_KIND "storage"
#define J_BATCH 64          /* segments changed per Txn */
#define J_REBALANCE_PER_MIN 50
#define J_REBALANCE_MS 1000

struct jentry {
	int64_t mod_rev;
	struct jseg s;
};

struct jshard {
	int64_t mod_rev;
	bool active;
	int64_t active_seg;
	int replicas;
	char reason[96];
};

struct jctl {
	struct strmap segs;   /* segment key -> struct jentry* */
	struct strmap shards; /* shard key -> struct jshard* */
	struct jbucket bucket;
	int64_t next_rebalance;
};

/* journal.c: the mirror, kept in step with what we write and what we see. */
void j_seg_set(struct ctl *rt, struct jctl *j, const char *key, size_t klen, const struct jseg *s,
	       int64_t mod_rev);
void j_seg_del(struct ctl *rt, struct jctl *j, const char *key, size_t klen);
void j_shard_set(struct jctl *j, const char *key, size_t klen, const struct jshard *sh);
/* jalive_fn over the node registry (epoch 0: any epoch). */
bool j_alive(void *rt, const char *id, int64_t epoch);

/* journal_actions.c */
/* A change to one segment: recomputed from the fresh value if the batch's
 * guard fails (redo returns false: nothing to do any more). */
typedef bool (*j_redo_fn)(struct ctl *rt, const char *key, size_t klen, struct jseg *s,
			  void *arg);
struct jchange {
	char key[256];
	size_t klen;
	int64_t expect;
	struct jseg s;
};
void j_commit(struct ctl *rt, struct jctl *j, struct jchange *v, size_t n, j_redo_fn redo,
	      void *arg);
void j_create(struct ctl *rt, struct jctl *j, const char *ns, const char *shard, int replicas);
void j_request(struct ctl *rt, struct jctl *j, const struct ctl_kv *kv);
void j_gc(struct ctl *rt, struct jctl *j, const char *seg_key, size_t klen);
/* Fresh placement of n replicas (0 if too few nodes); leader index in *lead. */
size_t j_place(struct ctl *rt, int n, struct jseg *s);

#endif
