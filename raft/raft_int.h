/*
 * raft/raft_int.h — the node's internal state, shared by the library's files
 * and never installed. Each role's message handling is one function, picked
 * by becomeFollower/becomeCandidate/becomeLeader (etcd-io/raft's pattern).
 */
#ifndef METAD_RAFT_INT_H
#define METAD_RAFT_INT_H

#include "raft/conf.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/raft.h"

struct readReq {
	uint64_t ctx;
	uint64_t from;  /* who asked (self or a follower) */
	uint64_t index; /* commit index when the request arrived */
	uint64_t round; /* heartbeat round that must be acknowledged by a quorum */
};

struct readQueue {
	struct readReq *reqs;
	size_t n, cap;
};

struct raft {
	uint64_t id;
	struct raft_config cfg;
	uint64_t rng;

	/* Persistent state (mirrored to the caller through ready). */
	uint64_t term;
	uint64_t vote;
	struct raftLog log;
	struct confHistory confs; /* last record = configuration in force */

	/* Volatile state. */
	enum raft_role role;
	uint64_t lead;
	int election_elapsed;
	int heartbeat_elapsed;
	int randomized_timeout;
	struct tracker trk;
	uint64_t transferee;
	int transfer_elapsed;
	bool committed_in_term; /* leader: an entry of its own term is committed */
	void (*tickFn)(struct raft *r);
	int (*stepFn)(struct raft *r, const struct raft_message *m);

	/* Snapshot to send to lagging followers (from raft_snapshot_taken or an
	 * install), and one received but not yet handed out in a ready. */
	struct raft_snapshot snap;
	bool snap_pending;

	/* Read index. */
	uint64_t read_round;      /* last heartbeat round started */
	bool read_round_pending;  /* reads wait for a round not yet started */
	struct readQueue reads;   /* waiting for quorum confirmation */
	struct readQueue waiting; /* waiting for committed_in_term */

	/* Outputs collected until the next ready. */
	struct raft_message *msgs;
	size_t n_msgs, cap_msgs;
	struct raft_entry *pool; /* entries of msgs, by offset until ready() fixes pointers */
	size_t n_pool, cap_pool;
	size_t *msg_pool_off;
	struct raft_read_state *read_states;
	size_t n_read_states, cap_read_states;

	/* What the last ready handed out, for advance. */
	struct raft_hard_state prev_hs;
	enum raft_role prev_role;
	uint64_t prev_lead;
	bool in_ready;
	uint64_t rd_last_entry;
	uint64_t rd_committed_to;
	bool rd_snapshot;
};

/* raft.c */
uint64_t raftRandom(struct raft *r);
void becomeFollower(struct raft *r, uint64_t term, uint64_t lead);
void becomePreCandidate(struct raft *r);
void becomeCandidate(struct raft *r);
int becomeLeader(struct raft *r);
int campaign(struct raft *r, bool pre, bool transfer);
int pollVote(struct raft *r, uint64_t id, bool granted);
void sendTimeoutNow(struct raft *r, uint64_t to);
const struct raft_conf *raftConf(const struct raft *r);
bool raftPromotable(const struct raft *r);
/* Append entries to the log noting conf changes. Errors: RAFT_NOMEM, RAFT_CORRUPT. */
int raftAppendToLog(struct raft *r, const struct raft_entry *e, size_t n);
/* Truncate the log at from, rolling back conf changes. */
void raftTruncateLog(struct raft *r, uint64_t from);
/* The configuration in force changed: resync the tracker. */
int raftConfChanged(struct raft *r);

/* msgs.c */
struct raft_message *msgNew(struct raft *r, uint32_t type, uint64_t to);
/* Attach copies of log entries [lo, hi] to the last message made. */
int msgAttachEntries(struct raft *r, struct raft_message *m, uint64_t lo, uint64_t hi);
/* Attach referenced copies of src[0..n) to m. */
int msgAttach(struct raft *r, struct raft_message *m, const struct raft_entry *src, size_t n);
void msgsReset(struct raft *r);
int readStatePush(struct raft *r, uint64_t ctx, uint64_t index);

/* leader.c */
int stepLeader(struct raft *r, const struct raft_message *m);
void tickHeartbeat(struct raft *r);
bool sendAppend(struct raft *r, struct progress *p, bool send_if_empty);
void bcastAppend(struct raft *r);
void bcastHeartbeat(struct raft *r);
bool maybeCommit(struct raft *r);
int leaderAppend(struct raft *r, struct raft_entry *e, size_t n);

/* follower.c */
int stepFollower(struct raft *r, const struct raft_message *m);
int stepCandidate(struct raft *r, const struct raft_message *m);
void tickElection(struct raft *r);
int handleAppend(struct raft *r, const struct raft_message *m);
int handleHeartbeat(struct raft *r, const struct raft_message *m);
int handleSnapshot(struct raft *r, const struct raft_message *m);

/* readindex.c */
int readIndexLeader(struct raft *r, uint64_t ctx, uint64_t from);
void readIndexOnAck(struct raft *r);
void readIndexOnCommitInTerm(struct raft *r);
void readIndexClear(struct raft *r);
/* Start the heartbeat round that pending reads wait for. */
void readIndexFlush(struct raft *r);
void readQueueClose(struct readQueue *q);

#endif
