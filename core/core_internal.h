/*
 * core/core_internal.h — state shared by the files of core/. Not for callers.
 */
#ifndef METAD_CORE_INTERNAL_H
#define METAD_CORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "internal.pb-c.h"

#include "core/arena.h"
#include "core/core.h"
#include "core/members.h"
#include "core/node.h"
#include "core/poller.h"
#include "storage/db.h"
#include "storage/mvcc.h"

/* WiredTiger's messages into the log (db_options.log). */
void core_db_log(const char *level, const char *msg);

/* A reply and everything its message points into. */
struct reply {
	struct core_reply pub;
	struct arena arena;
	struct reply_list *lists; /* kvlists to free with the reply */
};

struct reply *reply_new(void);
/* A kvlist freed together with the reply (NULL when out of memory). */
struct mvcc_kvlist *reply_kvlist(struct reply *r);
/* Header with ids, term and revision. */
Etcdserverpb__ResponseHeader *reply_header(struct core *c, struct reply *r, int64_t rev);
/* etcd KeyValue pointing at kv's bytes (kv must live as long as the reply). */
Mvccpb__KeyValue *reply_kv(struct reply *r, const struct mvcc_kv *kv);
/* Finish: err set (message dropped) or msg set; hands the reply to cb. */
void reply_done(struct reply *r, int err, ProtobufCMessage *msg, core_done_fn cb, void *arg);
/* Fail cb with err through a fresh reply (a static one if out of memory). */
void reply_fail(core_done_fn cb, void *arg, int err);
/* A core_done_fn for requests whose answer nobody waits for. */
void reply_drop(void *arg, struct core_reply *reply);

/* A queued write. */
struct proposal {
	struct proposal *next;
	struct proposal *hnext; /* pending table chain (node.c) */
	uint64_t id;            /* InternalRequest.id */
	int64_t deadline_ns;    /* etcd's request timeout, once proposed */
	uint8_t *data; /* packed Metadpb__InternalRequest */
	size_t len;
	core_done_fn cb;
	void *arg;
	int64_t compact_rev; /* set by apply when it recorded a compaction */
	bool physical;       /* ... and the client waits for the history to go */
	bool kept;           /* ir is what data holds (core_write_kept) */
	struct reply *reply;
	Metadpb__InternalRequest ir; /* when kept; its auth_user points into user */
	char user[];
};

struct core_auth;

struct session_slot {
	struct session_slot *next;
	struct db_session *s;
};

struct core {
	struct core_config cfg;
	char **strings; /* deep copies behind cfg */
	size_t n_strings;

	struct db *db;
	struct mvcc *mvcc;
	uint64_t cluster_id;
	uint64_t member_id;
	int64_t quota;

	/* writer (the Raft node's thread, writer.c): queues under mu */
	pthread_t writer;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct proposal *head, *tail;
	size_t queued;
	struct inmsg *in_head, *in_tail;      /* from peers */
	struct read_wait *rd_head, *rd_tail;  /* linearizable reads to confirm */
	struct node_op *op_head, *op_tail;    /* work for the node's thread */
	int64_t next_tick_ns, tick_ns;
	bool stopping;
	bool busy; /* the node is in a cycle (on the writer or inline) */
	struct db_session *wsession;
	_Atomic uint64_t last_index;
	_Atomic uint64_t next_req_id;

	/* Raft node (node.c): raft and node only under busy; the rest atomics */
	struct raft *raft;
	struct node *node;
	struct members members;
	struct core_poller *poller; /* the process's polling queue (poller.h) */
	struct peer_transport *peers;
	struct forward *fwd;    /* calls to the leader (forward.c) */
	int64_t req_timeout_ns; /* etcd's ReqTimeout: 5 s + 2 election timeouts */
	_Atomic uint64_t term, leader, commit_index, leader_changes;
	_Atomic bool is_leader, alone, published, is_learner, removed;
	bool joining; /* first start of a member added to an existing cluster */
	pthread_cond_t pcv; /* published (under mu) */
	_Atomic uint64_t commits;
	_Atomic uint64_t proposals_failed; /* writes answered with a consensus error */
	_Atomic uint64_t requests;
	_Atomic uint64_t db_size; /* refreshed by the writer; stat() per put is too slow */

	/* compactor: physical compaction off the write path */
	pthread_t compactor;
	pthread_mutex_t cmu;
	pthread_cond_t ccv;
	bool cpending;
	bool cstopping;
	struct proposal *cwaiters;
	struct db_session *csession;
	/* The watch hub reads no revision <= watch_floor from storage again
	 * (INT64_MAX: it reads nothing), so history up to it may go. Lowered
	 * only under cmu (compactor_floor_resume); cwaiting: the compactor
	 * waits on ccv for it to rise. */
	_Atomic int64_t watch_floor;
	_Atomic bool cwaiting;

	/* auto-compaction (autocompact.c); NULL when off */
	struct autocompact *autocompact;
	struct corrupt *corrupt; /* --experimental-corrupt-check-time's thread (corrupt.c) */

	/* auth store (auth*.c): users, roles, tokens */
	struct core_auth *auth;
	/* alarms (alarm.c): NOSPACE, CORRUPT */
	struct core_alarms *alarms;

	/* lessor (lease.c) and watch hub (watch*.c) */
	struct lessor *lessor;
	struct watch_hub *watch;

	/* checkpointer: makes applied state durable, trims the log */
	pthread_t checkpointer;
	pthread_mutex_t kmu;
	pthread_cond_t kcv;
	bool kstop;
	bool kforce; /* checkpointer_soon: the node wants a snapshot */
	struct db_session *ksession;
	_Atomic uint64_t durable_index; /* applied index held by the last checkpoint */
	_Atomic uint64_t kbytes;        /* log bytes applied since the last checkpoint began */

	/* responder: sends replies of applied batches */
	pthread_t responder;
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	bool rstop;
	struct proposal *rhead, *rtail;
	struct read_wait *rreads; /* confirmed linearizable reads to run */

	/* Held for writing while a snapshot replaces the store (snapshot.c),
	 * for reading by whoever reads the store outside the node's thread
	 * with no linearizable wait in front (serializable reads, the hub). */
	pthread_rwlock_t install_lock;
	struct snap_fetch *fetch; /* snap_fetch.c, node thread */
	struct snap_maker *maker; /* snap_serve.c: the leader's file under way */
	int fetch_threads;        /* under mu; pcv tells when it drops */
	_Atomic bool fetch_stop;
	_Atomic uint64_t snap_index; /* Raft's snapshot index (node.c) */

	/* reader sessions, one per thread, closed at core_close */
	pthread_mutex_t smu;
	struct session_slot *sessions;
};

/* The calling thread's read session. */
struct db_session *core_session(struct core *c);
/* Map a DB_* code to a CORE_E* code. */
int core_db_err(int rv);

/* Range (etcd's apply Range: filters, sort, limit, more, count). Runs in s's
 * open transaction if any, else in its own snapshot. */
int core_range_exec(struct core *c, struct db_session *s, struct reply *r,
		    const Etcdserverpb__RangeRequest *req, Etcdserverpb__RangeResponse **out);

/* Validation before a request enters the log (etcd's v3rpc checks). */
int validate_range(const Etcdserverpb__RangeRequest *r);
int validate_put(const Etcdserverpb__PutRequest *r);
int validate_delete(const Etcdserverpb__DeleteRangeRequest *r);
int validate_txn(const Etcdserverpb__TxnRequest *r, uint32_t max_ops);
/* True when no operation (nested included) writes. */
bool txn_is_readonly(const Etcdserverpb__TxnRequest *r);
/* True when every operation is a serializable Range (etcd's isTxnSerializable). */
bool txn_is_serializable(const Etcdserverpb__TxnRequest *r);

/* Apply one decoded request inside the writer's open transaction. Returns
 * CORE_OK with *msg set, or a CORE_E* code with no changes made. */
int apply_request(struct core *c, struct db_session *s, struct reply *r,
		  const Metadpb__InternalRequest *req, ProtobufCMessage **msg, int64_t *compact_rev);
/* Txn (also used read-only, outside the log). guard: a client's write
 * that may not delete controller-owned keys (reserved_guarded). */
int apply_txn(struct core *c, struct db_session *s, struct reply *r,
	      const Etcdserverpb__TxnRequest *req, bool write, bool guard,
	      Etcdserverpb__TxnResponse **out);
/* Apply side of core/reserved.h (reserved.c), on the apply thread: whether
 * req is a client's write bound by the reserved keys (not a controller's,
 * whose entries carry no caller, nor root's with auth on), and whether a
 * DeleteRange would, on the store as s sees it now, delete one of them:
 * CORE_OK or CORE_EPERMISSION_DENIED (or a storage error). */
bool reserved_guarded(struct core *c, const Metadpb__InternalRequest *req);
int reserved_check_delete(struct core *c, struct db_session *s,
			  const Etcdserverpb__DeleteRangeRequest *d);
/* Single operations inside an open write request (apply.c); no revision
 * bookkeeping: callers bracket them with mvcc_req_begin/mvcc_req_end. */
int check_put(struct core *c, struct db_session *s, const Etcdserverpb__PutRequest *p);
int apply_put(struct core *c, struct db_session *s, struct reply *r, const Etcdserverpb__PutRequest *p,
	      Etcdserverpb__PutResponse **out);
int apply_delete(struct core *c, struct db_session *s, struct reply *r,
		 const Etcdserverpb__DeleteRangeRequest *d, Etcdserverpb__DeleteRangeResponse **out);
/* Whether a lease exists (0, "no lease", always does); lease.c. */
bool core_lease_exists(struct core *c, int64_t id);

/* Writer thread and queue (writer.c). */
int writer_start(struct core *c);
void writer_stop(struct core *c);
/* Answer "stopped" to whatever is still queued (after writer_stop, or when
 * the writer never started). */
void writer_drain(struct core *c);
void writer_submit(struct core *c, const Metadpb__InternalRequest *req, core_done_fn cb, void *arg);
/* The same for a request whose parts stay valid until cb has run
 * (core_write_kept): apply reads them instead of the packed entry. */
void writer_submit_kept(struct core *c, const Metadpb__InternalRequest *req, core_done_fn cb,
			void *arg);
/* Queue a message from a peer for the node (any thread). */
void writer_deliver(struct core *c, struct inmsg *m);
/* Queue a linearizable read: w->run is called once it may be served. */
void writer_read(struct core *c, struct read_wait *w);
/* Queue op->fn to run on the node's thread. */
void writer_op(struct core *c, struct node_op *op);

/* Serve a read-only request once it is linearizable (at once on a lone
 * leader, else after a read-index round): fn runs with a copy of req, on the
 * responder thread when deferred. */
typedef void (*core_read_fn)(struct core *c, const ProtobufCMessage *req, core_done_fn cb,
			     void *arg);
void core_linearize(struct core *c, const ProtobufCMessage *req, core_read_fn fn, core_done_fn cb,
		    void *arg);

/* Peer payloads start with a kind byte (forward.c). */
enum { PEER_KIND_RAFT = 0, PEER_KIND_CALL = 1, PEER_KIND_REPLY = 2, PEER_KIND_REMOVED = 3 };

/* Calls to the leader (forward.c). done gets the reply (NULL when err is
 * set: CORE_ETIMEOUT, CORE_ENO_LEADER, CORE_ESTOPPED), on a transport or
 * node thread. forward_call returns an error without calling done when it
 * cannot even try (no leader known). */
typedef void (*forward_done_fn)(void *arg, const Metadpb__PeerReply *rep, int err);
int forward_open(struct core *c);
void forward_close(struct core *c);
int forward_call(struct core *c, Metadpb__PeerCall *call, forward_done_fn done, void *arg);
void forward_recv(struct core *c, uint64_t from, uint8_t kind, const uint8_t *data, size_t len);
void forward_expire(struct core *c, int64_t now);

/* Membership (membership.c). */
ProtobufCMessage *reply_unpack(struct reply *r, const ProtobufCMessageDescriptor *d,
			       const uint8_t *buf, size_t len);
int member_reply(struct core *c, struct reply *r, int kind, uint64_t added);
int apply_member_change(struct core *c, const Metadpb__InternalRequest *req);
void membership_serve(struct core *c, uint64_t from, const Metadpb__PeerCall *call,
		      void (*send)(struct core *c, uint64_t to, Metadpb__PeerReply *rep));

/* Responder (responder.c): answers an applied batch (list linked by next). */
int responder_start(struct core *c);
void responder_stop(struct core *c);
void responder_submit(struct core *c, struct proposal *batch, size_t n);
/* Runs confirmed (or timed-out) linearizable reads (list linked by next). */
void responder_reads(struct core *c, struct read_wait *list);

/* Corruption checks (corrupt.c). The initial one runs in core_open once
 * the peer transport is up and before the node starts: 0, or -1 with err
 * (a mismatch: etcd's "<id> found data inconsistency with peers"). The
 * monitor is the leader's periodic check; serve_hash is peer_config.hash. */
int corrupt_initial_check(struct core *c, char *err, size_t errlen);
int corrupt_monitor_start(struct core *c);
void corrupt_monitor_stop(struct core *c);
int corrupt_serve_hash(void *arg, const uint8_t *req, size_t len, uint8_t **resp,
		       size_t *resp_len, char *err, size_t errlen);

/* Checkpointer (checkpoint.c). */
int checkpointer_start(struct core *c);
void checkpointer_stop(struct core *c);
/* Writer, after applying bytes of log: may start a checkpoint early. */
void checkpointer_applied(struct core *c, size_t bytes);
/* Node: a snapshot is due but waits for a checkpoint: take one now. */
void checkpointer_soon(struct core *c);

/* Tell the peer transport every member's peer URLs (at start, and after a
 * snapshot replaced the member list). -1 with err for a bad URL. */
int core_peers_sync(struct core *c, char *err, size_t errlen);

/* Watch hub (watch.c): started before the writer, stopped after it. The
 * writer calls watch_notify after each committed batch (never blocks). */
int watch_start(struct core *c);
void watch_stop(struct core *c);
void watch_notify(struct core *c);
/* Wake the hub to reach the head (the compactor waits for its floor). */
void watch_poke(struct core *c);
/* A snapshot replaced the store (install lock held for writing): every
 * watcher catches up from the new store. */
void watch_store_replaced(struct core *c);

/* Compactor (compactor.c). */
int compactor_start(struct core *c);
void compactor_stop(struct core *c);
/* Ask for a physical run; p (may be NULL) is answered when it is done. */
void compactor_request(struct core *c, struct proposal *p);
/* Watch hub: it will read no revision <= floor again (never lowers it). */
void compactor_floor_raise(struct core *c, int64_t floor);
/* Watch hub, about to read again after reading nothing (floor INT64_MAX):
 * returns the revision to resume after, >= rev and beyond any history a
 * compaction already under way may remove; the floor becomes that. */
int64_t compactor_floor_resume(struct core *c, int64_t rev);

#endif
