/*
 * raft/progress.h — what the leader knows about each member's log: match
 * and next index, the replication state (probe / replicate / snapshot), and
 * the in-flight window that bounds unacknowledged appends by count and bytes.
 */
#ifndef METAD_RAFT_PROGRESS_H
#define METAD_RAFT_PROGRESS_H

#include "raft/raft.h"

enum { PR_PROBE = 0, PR_REPLICATE, PR_SNAPSHOT };

/* Ring of the last index (and payload size) of each append in flight. */
struct inflights {
	uint64_t *last;
	uint64_t *bytes;
	size_t start, count, cap;
	uint64_t total_bytes;
	uint64_t max_bytes; /* 0 = unlimited */
};

struct progress {
	uint64_t id;
	bool learner;
	uint64_t match, next;
	int state;
	bool probe_sent;          /* probe state: one append out, wait for an answer */
	uint64_t pending_snapshot; /* snapshot state: index of the snapshot sent */
	int snap_elapsed;          /* ticks in snapshot state, to retry a lost one */
	bool recent_active;        /* heard from since the last check-quorum round */
	uint64_t read_ack;         /* highest read-index round this member confirmed */
	int vote;                  /* election tally: 0 none, 1 granted, -1 rejected */
	struct inflights ifl;
};

struct tracker {
	struct progress prs[RAFT_MAX_MEMBERS];
	size_t n;
	size_t max_inflight;
	uint64_t max_inflight_bytes;
};

void trackerInit(struct tracker *t, size_t max_inflight, uint64_t max_inflight_bytes);
void trackerClose(struct tracker *t);
struct progress *trackerGet(struct tracker *t, uint64_t id);
/* Make the tracked members exactly conf's; new ones start probing at next.
 * Errors: RAFT_NOMEM. */
int trackerSync(struct tracker *t, const struct raft_conf *conf, uint64_t next);
/* Reset every member to probe at next, match 0 (new leader). */
void trackerReset(struct tracker *t, uint64_t next);

void progressBecomeProbe(struct progress *p);
void progressBecomeReplicate(struct progress *p);
void progressBecomeSnapshot(struct progress *p, uint64_t index);
/* An append up to index succeeded; false if it was stale. */
bool progressMaybeUpdate(struct progress *p, uint64_t index);
bool progressPaused(const struct progress *p);

void inflightsAdd(struct inflights *f, uint64_t last, uint64_t bytes);
void inflightsFreeLE(struct inflights *f, uint64_t index);
void inflightsFreeFirst(struct inflights *f);
bool inflightsFull(const struct inflights *f);
void inflightsClear(struct inflights *f);

#endif
