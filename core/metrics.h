/*
 * core/metrics.h — the node's figures that /metrics reports under etcd's
 * names. Read from atomics: taking them never slows the write path.
 */
#ifndef METAD_CORE_METRICS_H
#define METAD_CORE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

/* Histogram buckets' upper bounds in seconds (etcd's: 1 ms doubling to
 * 8.192 s). */
#define CORE_HIST_BUCKETS 14
#define CORE_HIST_LE(i) (0.001 * (double)(1u << (i)))

struct core_metrics {
	bool has_leader, is_leader, is_learner;
	uint64_t member_id, cluster_id;
	uint64_t leader_changes;  /* etcd_server_leader_changes_seen_total */
	uint64_t committed_index; /* etcd_server_proposals_committed_total */
	uint64_t applied_index;   /* etcd_server_proposals_applied_total */
	uint64_t last_index;
	uint64_t term;
	uint64_t log_commits;   /* synced log commits (etcd_disk_wal_fsync count) */
	uint64_t requests;      /* requests written through the log */
	int64_t revision, compact_revision;
	uint64_t db_size;
	int64_t quota;
	int64_t keys;              /* live keys: etcd_debugging_mvcc_keys_total */
	uint64_t proposals_failed; /* etcd_server_proposals_failed_total */
	/* etcd_disk_wal_fsync_duration_seconds (the Raft log's synced commits)
	 * and etcd_disk_backend_commit_duration_seconds (applied batches):
	 * counts per bucket of CORE_HIST_LE, the last above them all. */
	struct core_hist {
		uint64_t bucket[CORE_HIST_BUCKETS + 1];
		uint64_t count;
		double sum_s;
	} wal_fsync, backend_commit;
};

void core_metrics(struct core *c, struct core_metrics *m);

#endif
