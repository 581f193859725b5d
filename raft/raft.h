/*
 * raft/raft.h — a Raft consensus library as a pure, deterministic state machine.
 *
 * The library does no I/O, starts no threads, reads no clock and calls no
 * random(): time arrives as raft_tick(), messages as raft_step(), client work
 * as raft_propose()/raft_read_index(), randomness from config.seed. Everything
 * the caller must do comes out of raft_ready() and is acknowledged with
 * raft_advance(), in the style of etcd-io/raft's RawNode. The driver loop is:
 *
 *     raft_tick() every tick; raft_step() for each received message;
 *     if (raft_ready(r, &rd)) {
 *         1. persist rd.snapshot (if any), then rd.entries (overwriting any
 *            stored entries at or after rd.entries[0].index), then rd.hard_state;
 *            all of it durable before step 2;
 *         2. send rd.messages;
 *         3. restore rd.snapshot into the state machine (if any), then apply
 *            rd.committed in order; answer rd.read_states once applied >= index;
 *         4. raft_advance(r);
 *     }
 *
 * Threading: a struct raft is used by one thread at a time. Between
 * raft_ready() and raft_advance() only the read-only queries (raft_status,
 * raft_log_entry, ...) may be called. Entry batches (struct raft_batch) are
 * reference counted with atomics, so another thread (an apply thread) may hold
 * and release references.
 *
 * Memory: the library keeps in memory every log entry after the last
 * compaction point (raft_snapshot_taken); entry payloads live in refcounted
 * batches, one allocation per proposal batch, never one per entry.
 *
 * Membership: one server at a time (add learner, promote, remove), taking
 * effect when the entry is appended to a log. See raft/README.md for why this
 * is safe.
 */
#ifndef METAD_RAFT_H
#define METAD_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_API __attribute__((visibility("default")))

/* Largest number of members (voters + learners) of one group. Fixed so that
 * the tracker and the wire decoder never allocate per member. */
#define RAFT_MAX_MEMBERS 32

/* Error codes: 0 is success, the rest are positive. */
#define RAFT_ERRORS(X)                                                        \
	X(RAFT_NOMEM, 1, "out of memory")                                     \
	X(RAFT_INVALID, 2, "invalid argument")                                \
	X(RAFT_NOTLEADER, 3, "not the leader")                                \
	X(RAFT_NOLEADER, 4, "no leader known")                                \
	X(RAFT_TRANSFERRING, 5, "leadership transfer in progress")            \
	X(RAFT_CONFPENDING, 6, "a membership change is still uncommitted")    \
	X(RAFT_NOTREADY, 7, "leader has not committed an entry in its term")  \
	X(RAFT_CORRUPT, 8, "malformed encoded data")                          \
	X(RAFT_TOOBIG, 9, "size limit exceeded")                              \
	X(RAFT_UNKNOWNPEER, 10, "no such member")                             \
	X(RAFT_COMPACTED, 11, "index is compacted")                           \
	X(RAFT_UNAVAILABLE, 12, "index is not in the log")                    \
	X(RAFT_REMOVED, 13, "this node is not a member")

enum raft_error {
#define RAFT_ERR_ENUM_(name, val, msg) name = val,
	RAFT_ERRORS(RAFT_ERR_ENUM_)
#undef RAFT_ERR_ENUM_
};

/* Static message for an error code ("unknown error" for anything else). */
RAFT_API const char *raft_strerror(int rv);

/*--------------------------------------------------------------------------
 * Entries and batches
 *------------------------------------------------------------------------*/

/* A refcounted block of bytes that entry payloads point into. Created by the
 * library (proposals, decoded messages). The count is atomic. */
struct raft_batch;

/* Take / drop a reference. raft_batch_unref frees at zero. NULL is allowed. */
RAFT_API void raft_batch_ref(struct raft_batch *b);
RAFT_API void raft_batch_unref(struct raft_batch *b);

/* A new batch of len bytes (uninitialised), refcount 1, *data = its bytes.
 * Returns NULL when out of memory. */
RAFT_API struct raft_batch *raft_batch_new(size_t len, uint8_t **data);

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 0,      /* opaque application data */
	RAFT_ENTRY_CONF_CHANGE = 1, /* encoded struct raft_conf_change */
};

struct raft_entry {
	uint64_t term;
	uint64_t index;
	uint32_t type; /* enum raft_entry_type */
	uint32_t len;
	const uint8_t *data;      /* len bytes, inside batch (or borrowed if batch == NULL) */
	struct raft_batch *batch; /* owner of data; may be NULL for borrowed input */
};

/* Take references on every entry's batch. */
RAFT_API void raft_entries_ref(const struct raft_entry *e, size_t n);
RAFT_API void raft_entries_unref(const struct raft_entry *e, size_t n);

/* A plain byte range supplied by the caller (copied by the library). */
struct raft_buffer {
	const void *base;
	size_t len;
};

/*--------------------------------------------------------------------------
 * Membership
 *------------------------------------------------------------------------*/

/* Members of the group. Ids are non-zero and never reused for a new server. */
struct raft_conf {
	uint32_t n_voters;
	uint32_t n_learners;
	uint64_t voters[RAFT_MAX_MEMBERS];
	uint64_t learners[RAFT_MAX_MEMBERS];
};

enum raft_conf_change_type {
	RAFT_CC_ADD_LEARNER = 1, /* new member that receives the log but does not vote */
	RAFT_CC_PROMOTE = 2,     /* learner becomes a voter */
	RAFT_CC_ADD_VOTER = 3,   /* straight to voter (prefer learner + promote) */
	RAFT_CC_REMOVE = 4,      /* voter or learner leaves */
};

/* The payload of a RAFT_ENTRY_CONF_CHANGE entry: what changed and the whole
 * resulting configuration, so that a log replayed from any point knows the
 * membership without earlier entries. */
struct raft_conf_change {
	uint32_t type; /* enum raft_conf_change_type */
	uint64_t node_id;
	struct raft_conf result;
};

RAFT_API bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id);
RAFT_API bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id);

/*--------------------------------------------------------------------------
 * Persistent state
 *------------------------------------------------------------------------*/

struct raft_hard_state {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
};

struct raft_snapshot_meta {
	uint64_t index; /* last index covered by the snapshot (0 = none) */
	uint64_t term;  /* term of that entry */
	struct raft_conf conf; /* membership as of index */
};

/* A snapshot: metadata plus opaque state-machine bytes in a batch. */
struct raft_snapshot {
	struct raft_snapshot_meta meta;
	const uint8_t *data;
	size_t len;
	struct raft_batch *batch; /* owner of data (may be NULL when len == 0) */
};

/*--------------------------------------------------------------------------
 * Messages
 *------------------------------------------------------------------------*/

enum raft_msg_type {
	RAFT_MSG_APP = 1,          /* append entries (index/log_term = previous entry) */
	RAFT_MSG_APP_RESP = 2,     /* index = last matching index, or rejected index */
	RAFT_MSG_VOTE = 3,         /* index/log_term = candidate's last entry */
	RAFT_MSG_VOTE_RESP = 4,
	RAFT_MSG_PREVOTE = 5,      /* term = the term the candidate would use */
	RAFT_MSG_PREVOTE_RESP = 6,
	RAFT_MSG_HEARTBEAT = 7,    /* context = read-index round being confirmed */
	RAFT_MSG_HEARTBEAT_RESP = 8,
	RAFT_MSG_SNAP = 9,         /* snapshot install */
	RAFT_MSG_TIMEOUT_NOW = 10, /* leader transfer: campaign now */
	RAFT_MSG_PROP = 11,        /* proposal forwarded to the leader (term 0) */
	RAFT_MSG_READ_INDEX = 12,  /* read request forwarded to the leader (term 0) */
	RAFT_MSG_READ_INDEX_RESP = 13,
	RAFT_MSG_TYPE_MAX = 13,
};

/* context value of VOTE/PREVOTE sent because of a leader transfer: voters do
 * not apply the leader-lease rejection to it. */
#define RAFT_CAMPAIGN_TRANSFER 1

struct raft_message {
	uint32_t type; /* enum raft_msg_type */
	uint64_t from, to;
	uint64_t term;
	uint64_t log_term;
	uint64_t index;
	uint64_t commit;
	bool reject;
	uint64_t reject_hint;
	uint64_t context;
	struct raft_entry *entries;
	size_t n_entries;
	struct raft_snapshot snapshot; /* RAFT_MSG_SNAP only */
};

/* Copy a message so that it outlives raft_advance(): allocates dst's entry
 * array and takes references on entry and snapshot batches. Free with
 * raft_message_release(). Returns 0 or RAFT_NOMEM. */
RAFT_API int raft_message_hold(struct raft_message *dst, const struct raft_message *src);
RAFT_API void raft_message_release(struct raft_message *m);

RAFT_API const char *raft_msg_type_name(uint32_t type);

/*--------------------------------------------------------------------------
 * The node
 *------------------------------------------------------------------------*/

struct raft_config {
	uint64_t id;           /* this node, non-zero */
	int election_tick;     /* follower timeout base in ticks (randomised in [e, 2e)) */
	int heartbeat_tick;    /* leader heartbeat interval in ticks, < election_tick */
	uint64_t seed;         /* seeds the node's private RNG (election jitter) */
	bool pre_vote;         /* run a pre-vote round before bumping the term */
	bool check_quorum;     /* leader steps down without an active quorum; leases */
	bool disable_forwarding; /* followers refuse proposals instead of forwarding */
	size_t max_msg_bytes;      /* payload bytes per append (>= 1 entry); 0 = 1 MiB */
	size_t max_inflight_msgs;  /* appends in flight per follower; 0 = 256 */
	size_t max_inflight_bytes; /* payload bytes in flight per follower; 0 = unlimited */
	/* TEST ONLY: commit an entry of an older term once a majority stores it,
	 * ignoring Raft's current-term rule (paper figure 8). Exists so that the
	 * simulator can prove it catches the resulting safety violations. */
	bool test_unsafe_commit;
	/* TEST ONLY: answer ReadIndex at once, without the heartbeat round that
	 * proves this node still leads. A paused old leader then serves stale
	 * reads; exists so that the simulator can prove it catches them. */
	bool test_unsafe_read;
};

/* Fill defaults (election 10, heartbeat 1, pre-vote and check-quorum on). */
RAFT_API void raft_config_init(struct raft_config *c, uint64_t id);

/* Everything the caller persisted. For a brand-new cluster, pass a zeroed
 * struct with snapshot.meta.conf = the initial members (index 0). */
struct raft_persisted {
	struct raft_hard_state hard_state;
	struct raft_snapshot snapshot; /* latest snapshot (meta.index may be 0); data copied */
	const struct raft_entry *entries; /* stored entries, consecutive after snapshot.meta.index; copied */
	size_t n_entries;
	uint64_t applied; /* index the state machine already reflects (>= snapshot index) */
};

struct raft;

/* Create a node. Copies everything it keeps from cfg and p; *out is owned by
 * the caller and freed with raft_destroy. Errors: RAFT_INVALID, RAFT_NOMEM. */
RAFT_API int raft_create(const struct raft_config *cfg, const struct raft_persisted *p,
			 struct raft **out);
RAFT_API void raft_destroy(struct raft *r);

/* One unit of logical time. */
RAFT_API void raft_tick(struct raft *r);

/* Feed a received message. The message and its entries are borrowed for the
 * call (payloads are referenced if they have a batch, else copied).
 * Errors: RAFT_INVALID (malformed), RAFT_NOMEM; messages from a stale term
 * or unknown sender are ignored with 0. */
RAFT_API int raft_step(struct raft *r, const struct raft_message *m);

/* Propose n entries of opaque data (copied into one batch). On the leader,
 * *first_index (if not NULL) receives the index of the first entry; on a
 * follower the proposal is forwarded to the leader and *first_index is 0.
 * Errors: RAFT_NOLEADER, RAFT_NOTLEADER (forwarding disabled),
 * RAFT_TRANSFERRING, RAFT_REMOVED, RAFT_INVALID (n == 0), RAFT_NOMEM. */
RAFT_API int raft_propose(struct raft *r, const struct raft_buffer *bufs, size_t n,
			  uint64_t *first_index);

/* Leader only: propose one membership change. Errors: RAFT_NOTLEADER,
 * RAFT_CONFPENDING (an earlier change is not committed yet), RAFT_NOTREADY
 * (no entry of this term committed yet), RAFT_INVALID (change makes no
 * sense), RAFT_TOOBIG (more than RAFT_MAX_MEMBERS), RAFT_TRANSFERRING. */
RAFT_API int raft_propose_conf_change(struct raft *r, uint32_t type, uint64_t node_id,
				      uint64_t *index);

/* Ask for a linearizable read point. When confirmed (leader still leads a
 * quorum), a struct raft_read_state with the same ctx appears in a later
 * ready; the read may be served once applied >= its index. Requests that are
 * lost (leader change, dropped messages) never answer: the caller times out.
 * Errors: RAFT_NOLEADER, RAFT_NOMEM. */
RAFT_API int raft_read_index(struct raft *r, uint64_t ctx);

/* Leader only: hand leadership to a voter. Errors: RAFT_NOTLEADER,
 * RAFT_UNKNOWNPEER (not a voter), RAFT_INVALID (self). */
RAFT_API int raft_transfer_leader(struct raft *r, uint64_t target);

/* Start an election now (tests, operator action). */
RAFT_API int raft_campaign(struct raft *r);

/* The state machine captured a snapshot at index (<= applied) whose bytes
 * are data. The library copies data (to send to followers that are too far
 * behind), then drops log entries before index - trailing. The caller must
 * already have persisted the snapshot. Errors: RAFT_INVALID, RAFT_NOMEM. */
RAFT_API int raft_snapshot_taken(struct raft *r, uint64_t index, const void *data, size_t len,
				 uint64_t trailing);

/* Metadata of the latest snapshot (taken or installed), for the caller to
 * persist next to its snapshot data. */
RAFT_API void raft_snapshot_get(const struct raft *r, struct raft_snapshot_meta *meta);

/* The driver could not deliver a snapshot to id: retry sooner. */
RAFT_API void raft_report_snapshot_failed(struct raft *r, uint64_t id);

struct raft_read_state {
	uint64_t ctx;
	uint64_t index;
};

enum raft_role { RAFT_FOLLOWER = 0, RAFT_PRECANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

/* Everything in a ready is owned by the library and valid until
 * raft_advance(); take references (raft_message_hold, raft_entries_ref) to
 * keep anything longer. */
struct raft_ready {
	bool has_hard_state; /* hard_state changed: persist it */
	struct raft_hard_state hard_state;
	const struct raft_snapshot *snapshot; /* received snapshot to persist and restore */
	const struct raft_entry *entries;     /* to persist, consecutive indexes */
	size_t n_entries;
	struct raft_message *messages; /* to send after persisting... */
	size_t n_messages;
	/* ...or before, when this is set: the node leads in a term and with a
	 * vote already durable, so its messages (appends, heartbeats) depend on
	 * nothing this ready persists and the leader may write its log in
	 * parallel with its followers (Raft thesis 10.2.1). It counts its own
	 * entries only at raft_advance, so nothing commits on an unwritten log. */
	bool send_first;
	const struct raft_entry *committed; /* to apply, in order */
	size_t n_committed;
	const struct raft_read_state *read_states;
	size_t n_read_states;
	bool soft_changed; /* role or leader changed (informational) */
	uint64_t leader;
	enum raft_role role;
};

/* Anything to do? Returns false (and leaves rd untouched) when not. */
RAFT_API bool raft_has_ready(const struct raft *r);
RAFT_API bool raft_ready(struct raft *r, struct raft_ready *rd);

/* The last ready was fully handled (persisted, sent, applied). */
RAFT_API void raft_advance(struct raft *r);

/*--------------------------------------------------------------------------
 * Read-only queries
 *------------------------------------------------------------------------*/

struct raft_status {
	uint64_t id;
	enum raft_role role;
	uint64_t term, vote, leader;
	uint64_t commit, applied;
	uint64_t first_index, last_index; /* entries held in memory */
	uint64_t snapshot_index;
	uint64_t transferee;
};

RAFT_API void raft_status(const struct raft *r, struct raft_status *st);

/* Leader only: the highest index known to be stored on member id (its
 * replication progress). Errors: RAFT_NOTLEADER, RAFT_UNKNOWNPEER. */
RAFT_API int raft_match(const struct raft *r, uint64_t id, uint64_t *match);

/* The configuration in force (the latest in the log, committed or not),
 * borrowed until the next mutating call. */
RAFT_API const struct raft_conf *raft_conf(const struct raft *r);

/* Entry at index, borrowed until the next mutating call.
 * Errors: RAFT_COMPACTED, RAFT_UNAVAILABLE. */
RAFT_API int raft_log_entry(const struct raft *r, uint64_t index, const struct raft_entry **e);

/* Term of entry at index (snapshot index included). Errors as above. */
RAFT_API int raft_log_term(const struct raft *r, uint64_t index, uint64_t *term);

/* What a snapshot at index would carry: its term and the configuration in
 * force there. The caller may hold a state-machine image at a later index
 * than the library's snapshot and offer that instead (a member fetching the
 * leader's store). Errors as above. */
RAFT_API int raft_snapshot_meta_at(const struct raft *r, uint64_t index,
				   struct raft_snapshot_meta *meta);

/*--------------------------------------------------------------------------
 * Wire format (nanopb, raft/raft.proto). Decoders never trust input: sizes
 * are bounded and every malformed input yields RAFT_CORRUPT or RAFT_TOOBIG.
 *------------------------------------------------------------------------*/

/* Largest encoded message the decoder accepts. */
#define RAFT_WIRE_MAX_MSG (64u << 20)
/* Largest number of entries in one decoded message. */
#define RAFT_WIRE_MAX_ENTRIES (1u << 20)

/* Exact encoded size of m. */
RAFT_API int raft_msg_encoded_size(const struct raft_message *m, size_t *size);
/* Encode into buf[cap]; *len = bytes written. Errors: RAFT_TOOBIG. */
RAFT_API int raft_msg_encode(const struct raft_message *m, uint8_t *buf, size_t cap, size_t *len);
/* Decode; m's entries/snapshot point into one new batch (a copy of buf) and
 * its entry array is allocated: free with raft_message_release(m). */
RAFT_API int raft_msg_decode(const uint8_t *buf, size_t len, struct raft_message *m);

/* Log records for storage: one entry (term, index, type, data). */
RAFT_API int raft_entry_encode(const struct raft_entry *e, uint8_t *buf, size_t cap, size_t *len);
/* Decoded e->data points into buf (borrowed; e->batch = NULL). */
RAFT_API int raft_entry_decode(const uint8_t *buf, size_t len, struct raft_entry *e);

RAFT_API int raft_hard_state_encode(const struct raft_hard_state *hs, uint8_t *buf, size_t cap,
				    size_t *len);
RAFT_API int raft_hard_state_decode(const uint8_t *buf, size_t len, struct raft_hard_state *hs);
RAFT_API int raft_snapshot_meta_encode(const struct raft_snapshot_meta *m, uint8_t *buf, size_t cap,
				       size_t *len);
RAFT_API int raft_snapshot_meta_decode(const uint8_t *buf, size_t len,
				       struct raft_snapshot_meta *m);
RAFT_API int raft_conf_change_encode(const struct raft_conf_change *cc, uint8_t *buf, size_t cap,
				     size_t *len);
RAFT_API int raft_conf_change_decode(const uint8_t *buf, size_t len, struct raft_conf_change *cc);

/* Upper bound of an encoded conf change, for buffers on the stack. */
#define RAFT_CONF_CHANGE_MAX_BYTES (16 + 2 * RAFT_MAX_MEMBERS * 11 + 16)

/*--------------------------------------------------------------------------
 * Memory hooks (tests inject allocation failures)
 *------------------------------------------------------------------------*/

struct raft_heap {
	void *(*malloc)(void *data, size_t size);
	void *(*realloc)(void *data, void *ptr, size_t size);
	void (*free)(void *data, void *ptr);
	void *data;
};

/* Replace the allocator (NULL restores libc). Not thread-safe: call before use. */
RAFT_API void raft_set_heap(const struct raft_heap *heap);

#endif
