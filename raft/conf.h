/*
 * raft/conf.h — membership: validation of single-server changes and the
 * history of configurations found in the log, so that truncating an
 * uncommitted conf-change entry restores the configuration before it.
 */
#ifndef METAD_RAFT_CONF_H
#define METAD_RAFT_CONF_H

#include "raft/raft.h"

/* Compute the configuration after one change. Errors: RAFT_INVALID (e.g.
 * adding a member twice, removing the last voter), RAFT_TOOBIG. */
int confApply(const struct raft_conf *cur, uint32_t type, uint64_t id, struct raft_conf *out);

static inline uint32_t confSize(const struct raft_conf *c)
{
	return c->n_voters + c->n_learners;
}

bool confEqual(const struct raft_conf *a, const struct raft_conf *b);
/* Reject duplicates, zero ids and overflowing counts (decoded input). */
bool confValid(const struct raft_conf *c);

struct confRec {
	uint64_t index; /* log index of the entry that set it (or the snapshot index) */
	struct raft_conf conf;
};

/* recs[0] is the configuration at the compaction point; later records are
 * conf-change entries still in the log, ascending. */
struct confHistory {
	struct confRec *recs;
	size_t n, cap;
};

int confHistInit(struct confHistory *h, uint64_t index, const struct raft_conf *base);
void confHistClose(struct confHistory *h);
int confHistPush(struct confHistory *h, uint64_t index, const struct raft_conf *c);
/* Forget records at or after index (their entries were truncated). */
void confHistTruncate(struct confHistory *h, uint64_t from);
/* Fold records at or before index into the base (log compacted to index). */
void confHistCompact(struct confHistory *h, uint64_t upto);
/* Reset to a single base (snapshot installed). */
void confHistReset(struct confHistory *h, uint64_t index, const struct raft_conf *base);
/* The configuration in force at index. */
const struct raft_conf *confHistAt(const struct confHistory *h, uint64_t index);

static inline const struct confRec *confHistLast(const struct confHistory *h)
{
	return &h->recs[h->n - 1];
}

#endif
