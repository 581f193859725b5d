/*
 * controllers/ctl_internal.h — what the runtime gives each controller, and
 * what a controller gives the runtime. Not installed; controllers/ only.
 *
 * The runtime lists /_meta/ once at leadership, replays it as PUT events
 * (listing set), tells each controller the listing is complete (synced),
 * then feeds it the watch events of /_meta/ from the listed revision + 1,
 * in revision order, all on the one controller thread. After a compaction
 * or a lost watch it stops every controller and starts over (re-list).
 * Controllers act through ctl_txn (client.c): one Txn per change, guarded
 * by mod_revision compares, so acting twice (a new leader repeating what
 * the old one did) finds the guard false and does nothing.
 */
#ifndef METAD_CONTROLLERS_CTL_INTERNAL_H
#define METAD_CONTROLLERS_CTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controllers/controllers.h"
#include "rpc.pb-c.h"

struct core;
struct ctl;

#define CTL_PREFIX "/_meta/"

/* A key-value borrowed for the length of one callback. */
struct ctl_kv {
	const char *key; /* not NUL-terminated */
	size_t key_len;
	const char *value;
	size_t value_len;
	int64_t create_rev, mod_rev, version, lease;
};

enum { CTL_PUT = 1, CTL_DELETE = 2 };
struct ctl_event {
	int type;
	bool listing;       /* replayed from the list at (re)start */
	struct ctl_kv kv;   /* on DELETE: key and mod_rev (the delete's revision) */
	bool has_prev;
	struct ctl_kv prev; /* the value before this event (prev_kv) */
};

/* A registered node (heartbeat controller, nodes.c). */
struct ctl_node {
	char kind[32];
	char id[128];
	int64_t epoch;  /* create_revision of its node key; 0 when gone */
	int64_t lease;
	bool alive;
	bool decommission; /* /_meta/decommission/<kind>/<id> exists */
	int64_t lost_ms;   /* clock time it was seen gone (0 = never) */
	int64_t load;      /* controllers' own count (placements, sessions) */
	int64_t lead_load;  /* segments / groups it leads */
};

enum ctl_node_change { CTL_NODE_UP = 1, CTL_NODE_DOWN, CTL_NODE_DECOMMISSION };

struct ctl_ops {
	const char *name;
	/* Its keys, below /_meta/ (NULL-terminated); events outside are not sent. */
	const char *prefixes[6];
	/* Leadership gained (or re-list): make fresh state. 0 or -1 (ENOMEM). */
	int (*start)(struct ctl *rt, void **state);
	void (*event)(struct ctl *rt, void *state, const struct ctl_event *ev);
	/* The listing is complete: act on what it showed (level-triggered). */
	void (*synced)(struct ctl *rt, void *state);
	/* A node came, went or is being decommissioned (after the listing). */
	void (*node)(struct ctl *rt, void *state, const struct ctl_node *n, enum ctl_node_change ch);
	/* After the events of one watch response (all of a revision's changes
	 * are in one): act on what they left dirty. */
	void (*flush)(struct ctl *rt, void *state);
	/* Timers: called every poll while leading. */
	void (*tick)(struct ctl *rt, void *state, int64_t now_ms);
	void (*stop)(struct ctl *rt, void *state);
};

extern const struct ctl_ops ctl_nodes_ops;
extern const struct ctl_ops ctl_journal_ops;
extern const struct ctl_ops ctl_mqtt_ops;

/* ---- runtime (runtime.c) ---- */
int64_t ctl_now(struct ctl *rt);
struct core *ctl_core(struct ctl *rt);
/* Whether this member still leads: long work stops when it does not (the
 * new leader's controllers redo what is left from their listing). */
bool ctl_leading(struct ctl *rt);
/* Whether the listing has been replayed (false while it is). */
bool ctl_synced(struct ctl *rt);
/* The heartbeat controller's state, for the others (nodes.c). */
void *ctl_nodes_state(struct ctl *rt);
/* Tell every controller of a node change (nodes.c calls this). */
void ctl_notify_node(struct ctl *rt, const struct ctl_node *n, enum ctl_node_change ch);
/* Counters for tests and logs. */
void ctl_count_action(struct ctl *rt);

/* ---- nodes registry (nodes.c) ---- */
/* A live node of kind with the least load (ties: smallest id), not
 * decommissioning and not in skip[0..n_skip); NULL if none. */
struct ctl_node *ctl_nodes_pick(void *nodes, const char *kind, const char *const *skip,
				size_t n_skip, bool by_lead_load);
struct ctl_node *ctl_nodes_find(void *nodes, const char *kind, const char *id);
size_t ctl_nodes_alive(void *nodes, const char *kind);

/* ---- client calls (client.c): synchronous, from the controller thread ---- */
/* A Txn under construction; keys and values are copied in. */
struct ctl_txn {
	Etcdserverpb__TxnRequest req;
	Etcdserverpb__Compare **cmp;
	Etcdserverpb__RequestOp **ops;
	size_t n_cmp, n_ops, cap_cmp, cap_ops;
	bool oom;
};
void ctl_txn_init(struct ctl_txn *t);
/* Compare mod_revision (0: the key must not exist) or create_revision. */
void ctl_txn_cmp_mod(struct ctl_txn *t, const char *key, size_t key_len, int64_t mod_rev);
void ctl_txn_cmp_create(struct ctl_txn *t, const char *key, size_t key_len, int64_t create_rev);
void ctl_txn_put(struct ctl_txn *t, const char *key, size_t key_len, const char *val,
		 size_t val_len, int64_t lease);
/* Keep key's value, bind it to lease (Put with ignore_value). */
void ctl_txn_put_lease(struct ctl_txn *t, const char *key, size_t key_len, int64_t lease);
void ctl_txn_del(struct ctl_txn *t, const char *key, size_t key_len);
/* Delete [key, end) (a prefix with end = ctl_prefix_end of it). */
void ctl_txn_del_range(struct ctl_txn *t, const char *key, size_t key_len, const char *end,
		       size_t end_len);
/* Run it: 0 with *ok = whether the compares held (and *rev the revision
 * after it), or a CORE_E* code. Leaves t reusable after ctl_txn_free. */
int ctl_txn_commit(struct ctl *rt, struct ctl_txn *t, bool *ok, int64_t *rev);
void ctl_txn_free(struct ctl_txn *t);
/* Run n Txns with several in flight at once (group commit takes them
 * together); ok[i] and rev[i] as ctl_txn_commit's. Returns the first error
 * (the others still ran). Each one's success is independent. */
int ctl_txn_many(struct ctl *rt, struct ctl_txn *txns, size_t n, bool *ok, int64_t *rev);
size_t ctl_txn_ops(const struct ctl_txn *t);

/* Linearizable range of [key, end) (end NULL: one key; "\0"-style prefix
 * ends are made by ctl_prefix_end). The reply is the caller's
 * (core_reply_free); *resp points into it. */
struct core_reply;
int ctl_range(struct ctl *rt, const char *key, size_t key_len, const char *end, size_t end_len,
	      int64_t rev, struct core_reply **reply, const Etcdserverpb__RangeResponse **resp);
/* Grant a lease (0 on success, *id set). */
int ctl_lease_grant(struct ctl *rt, int64_t ttl, int64_t *id);
int ctl_lease_revoke(struct ctl *rt, int64_t id);
/* end = prefix with its last byte + 1; returns its length (into buf of len+1). */
size_t ctl_prefix_end(const char *pfx, size_t len, char *buf);

/* Split key[skip..] into exactly n '/'-separated, non-empty segments of
 * fewer than CTL_PART_MAX bytes; returns n, or -1 if it has another shape. */
#define CTL_PART_MAX 128
int ctl_key_split(const char *key, size_t key_len, size_t skip, char (*parts)[CTL_PART_MAX],
		  size_t n);

/* Keys: snprintf into buf; returns the length or 0 if it did not fit. */
size_t ctl_key(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
