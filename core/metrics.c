/*
 * core/metrics.c — a consistent-enough copy of the node's counters for
 * /metrics: each figure is one atomic load, none waits for the writer.
 */
#include "core/core_internal.h"
#include "core/metrics.h"

_Static_assert(CORE_HIST_BUCKETS == DB_HIST_BUCKETS, "etcd's buckets on both sides");

static void hist_copy(struct core_hist *to, const struct db_hist *from)
{
	for (size_t i = 0; i <= CORE_HIST_BUCKETS; i++)
		to->bucket[i] = atomic_load_explicit(&from->bucket[i], memory_order_relaxed);
	to->count = atomic_load_explicit(&from->count, memory_order_relaxed);
	to->sum_s = (double)atomic_load_explicit(&from->sum_ns, memory_order_relaxed) / 1e9;
}

void core_metrics(struct core *c, struct core_metrics *m)
{
	struct core_status st;
	core_status(c, &st);
	m->has_leader = st.leader != 0;
	m->is_leader = atomic_load(&c->is_leader);
	m->is_learner = atomic_load(&c->is_learner);
	m->member_id = st.member_id;
	m->cluster_id = st.cluster_id;
	m->leader_changes = atomic_load(&c->leader_changes);
	m->committed_index = atomic_load(&c->commit_index);
	m->applied_index = st.applied_index;
	m->last_index = st.raft_index;
	m->term = st.raft_term;
	m->log_commits = atomic_load(&c->commits);
	m->requests = atomic_load(&c->requests);
	m->revision = st.revision;
	m->compact_revision = st.compact_revision;
	m->db_size = st.db_size;
	m->quota = c->quota;
	m->keys = mvcc_keys(c->mvcc);
	m->proposals_failed = atomic_load(&c->proposals_failed);
	hist_copy(&m->wal_fsync, db_sync_commit_hist(c->db));
	hist_copy(&m->backend_commit, mvcc_commit_hist(c->mvcc));
}
