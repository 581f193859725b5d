/*
 * raft/msgs.c — the outbox: messages and read states collected between two
 * readies. Entries of all messages share one pool so that a steady stream of
 * appends allocates nothing once the arrays have grown; ready() turns pool
 * offsets into pointers when nothing can move any more.
 */
#include <string.h>

#include "raft/heap.h"
#include "raft/raft_int.h"

struct raft_message *msgNew(struct raft *r, uint32_t type, uint64_t to)
{
	if (r->n_msgs == r->cap_msgs) {
		size_t cap = r->cap_msgs ? 2 * r->cap_msgs : 16;
		struct raft_message *msgs = raftRealloc(r->msgs, cap * sizeof(*msgs));
		if (msgs == NULL) {
			return NULL;
		}
		r->msgs = msgs;
		size_t *off = raftRealloc(r->msg_pool_off, cap * sizeof(*off));
		if (off == NULL) {
			return NULL;
		}
		r->msg_pool_off = off;
		r->cap_msgs = cap;
	}
	struct raft_message *m = &r->msgs[r->n_msgs];
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = r->id;
	m->to = to;
	m->term = r->term;
	r->msg_pool_off[r->n_msgs] = 0;
	r->n_msgs++;
	return m;
}

int msgAttachEntries(struct raft *r, struct raft_message *m, uint64_t lo, uint64_t hi)
{
	return msgAttach(r, m, logAt(&r->log, lo), (size_t)(hi - lo + 1));
}

int msgAttach(struct raft *r, struct raft_message *m, const struct raft_entry *src, size_t n)
{
	if (r->n_pool + n > r->cap_pool) {
		size_t cap = r->cap_pool ? r->cap_pool : 256;
		while (cap < r->n_pool + n) {
			cap *= 2;
		}
		struct raft_entry *pool = raftRealloc(r->pool, cap * sizeof(*pool));
		if (pool == NULL) {
			return RAFT_NOMEM;
		}
		r->pool = pool;
		r->cap_pool = cap;
	}
	memcpy(r->pool + r->n_pool, src, n * sizeof(*src));
	raft_entries_ref(src, n);
	r->msg_pool_off[m - r->msgs] = r->n_pool;
	m->n_entries = n;
	r->n_pool += n;
	return 0;
}

void msgsReset(struct raft *r)
{
	raft_entries_unref(r->pool, r->n_pool);
	for (size_t i = 0; i < r->n_msgs; i++) {
		raft_batch_unref(r->msgs[i].snapshot.batch);
	}
	r->n_pool = 0;
	r->n_msgs = 0;
	r->n_read_states = 0;
}

int readStatePush(struct raft *r, uint64_t ctx, uint64_t index)
{
	if (r->n_read_states == r->cap_read_states) {
		size_t cap = r->cap_read_states ? 2 * r->cap_read_states : 16;
		struct raft_read_state *rs = raftRealloc(r->read_states, cap * sizeof(*rs));
		if (rs == NULL) {
			return RAFT_NOMEM;
		}
		r->read_states = rs;
		r->cap_read_states = cap;
	}
	r->read_states[r->n_read_states].ctx = ctx;
	r->read_states[r->n_read_states].index = index;
	r->n_read_states++;
	return 0;
}

int raft_message_hold(struct raft_message *dst, const struct raft_message *src)
{
	*dst = *src;
	dst->entries = NULL;
	if (src->n_entries > 0) {
		dst->entries = raftMalloc(src->n_entries * sizeof(*dst->entries));
		if (dst->entries == NULL) {
			/* Leave dst empty so that releasing it is harmless. */
			dst->n_entries = 0;
			dst->snapshot.batch = NULL;
			return RAFT_NOMEM;
		}
		memcpy(dst->entries, src->entries, src->n_entries * sizeof(*dst->entries));
		raft_entries_ref(dst->entries, dst->n_entries);
	}
	raft_batch_ref(dst->snapshot.batch);
	return 0;
}

void raft_message_release(struct raft_message *m)
{
	raft_entries_unref(m->entries, m->n_entries);
	raftFree(m->entries);
	raft_batch_unref(m->snapshot.batch);
	m->entries = NULL;
	m->n_entries = 0;
	m->snapshot.batch = NULL;
}

const char *raft_msg_type_name(uint32_t type)
{
	static const char *names[] = {"?",
				      "MsgApp",
				      "MsgAppResp",
				      "MsgVote",
				      "MsgVoteResp",
				      "MsgPreVote",
				      "MsgPreVoteResp",
				      "MsgHeartbeat",
				      "MsgHeartbeatResp",
				      "MsgSnap",
				      "MsgTimeoutNow",
				      "MsgProp",
				      "MsgReadIndex",
				      "MsgReadIndexResp"};
	if (type > RAFT_MSG_TYPE_MAX) {
		return "?";
	}
	return names[type];
}
