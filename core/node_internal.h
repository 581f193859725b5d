/*
 * core/node_internal.h — the node driver's state, shared by node.c (the
 * cycle) and node_start.c (loading, start-up, recovery, close). Not for
 * the rest of core.
 */
#ifndef METAD_CORE_NODE_INTERNAL_H
#define METAD_CORE_NODE_INTERNAL_H

#include "core/arena.h"
#include "core/core_internal.h"
#include "storage/raftlog.h"

#define PENDING_BUCKETS 4096
#define SNAP_BLOB "snapshot" /* raft_state blob: the latest snapshot's metadata */

struct node {
	uint64_t self;
	struct rlog_hardstate hs; /* as last written */
	int64_t req_timeout_ns;
	uint64_t snapshot_count;
	uint64_t catchup_entries; /* kept behind a snapshot (etcd's 5000) */
	uint64_t ckpt_asked; /* applied index when a checkpoint was asked for */
	struct proposal *pending[PENDING_BUCKETS];
	size_t n_pending;
	struct read_wait *reads; /* asked, waiting for their index or for apply */
	uint64_t read_ctx;
	struct rlog_entry *ents;
	size_t ents_cap;
	struct raft_buffer *bufs;
	size_t bufs_cap;
	/* Kept proposals (core_write_kept) this leader appended, in order:
	 * the entry at index in term is the one with InternalRequest.id id. */
	struct node_local {
		uint64_t index, term, id;
	} *local;
	size_t local_cap, local_head, local_len;
	/* The requests apply unpacked (entries this member did not propose
	 * itself), freed together when the batch has committed, or sooner in a
	 * long one. */
	struct arena unpacked;
	ProtobufCAllocator unpack_alloc;
	uint8_t *sendbuf;
	size_t sendcap;
	/* answered in this cycle, handed to the responder at its end */
	struct proposal *done_head, *done_tail;
	size_t n_done;
	struct read_wait *reads_ready;
	struct node_transfer *transfers;
	struct node_wait *waits;
	struct raft_conf conf; /* as last given to members */
	bool applied_any;
	bool publishing;
	bool member_added; /* a member was added in this cycle's apply */
	uint64_t leader;
	enum raft_role role;
};

/* Storage failed under an acknowledged log: stop rather than diverge. */
void node_fatal(const char *what, const char *why) __attribute__((noreturn));
int node_save_snapshot_meta(struct db_session *s, const struct raft_snapshot_meta *m);
/* Raft's configuration in force changed: tell the member list. */
void node_conf_sync(struct core *c, struct node *n);
/* A snapshot was installed: propose this member's attributes again if it
 * has not published yet (node thread). */
void node_republish(struct core *c, struct node *n);

#endif
