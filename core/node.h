/*
 * core/node.h — the Raft node driver (core-private).
 *
 * The driver is the only caller of raft/. Its state is used by one thread at
 * a time: the thread that holds the write path's `busy` flag (the writer
 * thread, or a gRPC thread committing a lone write inline; see writer.c).
 * One cycle steps received messages, ticks, proposes the queued writes in
 * one batch, then handles every ready: persist entries and hard state (one
 * synced WiredTiger commit), send messages, apply committed entries (one
 * transaction that also stores the consistent index), answer, advance.
 */
#ifndef METAD_CORE_NODE_H
#define METAD_CORE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.pb-c.h"
#include "raft/raft.h"

struct core;
struct proposal;

/* A message received from a peer, queued for the node (writer.c's inbox). */
struct inmsg {
	struct inmsg *next;
	struct raft_message m; /* decoded; released by the node */
};

/* A linearizable read waiting for its read index to be applied. */
struct read_wait {
	struct read_wait *next;
	void (*run)(void *arg, int err); /* on the responder thread; err CORE_OK or why not */
	void *arg;
	uint64_t ctx;   /* read-index round it belongs to (0: not asked yet) */
	uint64_t index; /* index to reach (0: unknown yet) */
	int64_t asked_ns, deadline_ns;
};

/* Work that must run on the node's thread (leader transfer, ...). */
struct node_op {
	struct node_op *next;
	void (*fn)(struct core *c, struct node_op *op); /* under busy; owns op from then on */
};

/* What one cycle takes from the queues. */
struct node_in {
	struct inmsg *msgs;     /* from peers, consumed */
	int ticks;
	struct proposal *props; /* linked by next, n of them */
	size_t n;
	struct read_wait *reads;
	struct node_op *ops;
};

/* Load the persisted Raft state and create the node; replay committed
 * entries up to the commit index before returning. Errors: -1, err set. */
int node_open(struct core *c, char *err, size_t errlen);
void node_close(struct core *c);

/* One cycle (caller holds busy): messages, ticks, ops, proposals, reads. */
void node_cycle(struct core *c, struct node_in *in);

/* Leader transfer (MoveLeader): done(arg, err) once target leads (CORE_OK),
 * or with why not; on the node's thread. */
struct node_transfer {
	struct node_op op;
	struct node_transfer *next;
	uint64_t target;
	int64_t deadline_ns;
	void (*done)(void *arg, int err);
	void *arg;
};
void node_transfer_start(struct core *c, struct node_op *op);

/* Node thread only: call w->done once this member has applied w->index
 * (CORE_OK), or with stored set, once its log holds w->index durably; or
 * with CORE_ETIMEOUT after etcd's request timeout, or CORE_ESTOPPED at
 * close. */
struct node_wait {
	struct node_wait *next;
	uint64_t index;
	bool stored;
	int64_t deadline_ns;
	void (*done)(struct core *c, struct node_wait *w, int err);
};
void node_wait_applied(struct core *c, struct node_wait *w);

/* Node thread only: propose one packed InternalRequest from this member
 * (its id and origin set); *index gets its log index. Errors as
 * raft_propose (RAFT_*). */
int node_propose_internal(struct core *c, Metadpb__InternalRequest *req, uint64_t *index);

/* Whether this member alone decides (a single voter that leads): its local
 * reads are linearizable without a read-index round. */
bool node_alone(struct core *c);

/* Peer transport receive callback (any thread). */
void node_recv(void *arg, uint64_t from, const uint8_t *data, size_t len);

/* Milliseconds until the next tick is due (for the writer's wait). */
int64_t node_now_ns(void);

#endif
