/*
 * core/metrics.h — the node's figures that /metrics reports under etcd's
 * names. Read from atomics: taking them never slows the write path.
 */
#ifndef METAD_CORE_METRICS_H
#define METAD_CORE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

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
};
void core_metrics(struct core *c, struct core_metrics *m);

#endif
