/*
 * raft/api.c — the calls a driver makes besides tick/step/ready: proposals
 * (data and membership), read requests, leader transfer, snapshots taken by
 * the state machine, and read-only queries.
 */
#include <string.h>

#include "raft/heap.h"
#include "raft/raft_int.h"

/* Build one batch holding the payloads of a proposal. */
static int makeEntries(const struct raft_buffer *bufs, size_t n, uint32_t type,
		       struct raft_entry *ents, struct raft_batch **batch)
{
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (bufs[i].len > UINT32_MAX) {
			return RAFT_TOOBIG;
		}
		bytes += bufs[i].len;
	}
	uint8_t *p;
	struct raft_batch *b = raft_batch_new(bytes, &p);
	if (b == NULL) {
		return RAFT_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (bufs[i].len > 0) {
			memcpy(p, bufs[i].base, bufs[i].len);
		}
		ents[i] = (struct raft_entry){.type = type,
					      .len = (uint32_t)bufs[i].len,
					      .data = p,
					      .batch = b};
		p += bufs[i].len;
	}
	*batch = b;
	return 0;
}

static int proposeEntries(struct raft *r, const struct raft_buffer *bufs, size_t n, uint32_t type,
			  uint64_t *first_index)
{
	if (first_index != NULL) {
		*first_index = 0;
	}
	if (bufs == NULL || n == 0) {
		return RAFT_INVALID;
	}
	if (r->role != RAFT_LEADER) {
		if (r->lead == 0 || r->role != RAFT_FOLLOWER) {
			return RAFT_NOLEADER;
		}
		if (r->cfg.disable_forwarding || type != RAFT_ENTRY_NORMAL) {
			return RAFT_NOTLEADER;
		}
	} else if (r->transferee != 0) {
		return RAFT_TRANSFERRING;
	} else if (trackerGet(&r->trk, r->id) == NULL) {
		return RAFT_REMOVED;
	}
	struct raft_entry stack[16];
	struct raft_entry *ents = n <= 16 ? stack : raftMalloc(n * sizeof(*ents));
	if (ents == NULL) {
		return RAFT_NOMEM;
	}
	struct raft_batch *b;
	int rv = makeEntries(bufs, n, type, ents, &b);
	if (rv != 0) {
		goto out;
	}
	if (r->role == RAFT_LEADER) {
		uint64_t first = logLastIndex(&r->log) + 1;
		rv = leaderAppend(r, ents, n);
		if (rv == 0) {
			if (first_index != NULL) {
				*first_index = first;
			}
			bcastAppend(r);
		}
	} else {
		struct raft_message *m = msgNew(r, RAFT_MSG_PROP, r->lead);
		rv = RAFT_NOMEM;
		if (m != NULL) {
			m->term = 0;
			rv = msgAttach(r, m, ents, n);
			if (rv != 0) {
				r->n_msgs--;
			}
		}
	}
	raft_batch_unref(b);
out:
	if (ents != stack) {
		raftFree(ents);
	}
	return rv;
}

int raft_propose(struct raft *r, const struct raft_buffer *bufs, size_t n, uint64_t *first_index)
{
	return proposeEntries(r, bufs, n, RAFT_ENTRY_NORMAL, first_index);
}

int raft_propose_conf_change(struct raft *r, uint32_t type, uint64_t node_id, uint64_t *index)
{
	if (index != NULL) {
		*index = 0;
	}
	if (r->role != RAFT_LEADER) {
		return RAFT_NOTLEADER;
	}
	/* One change at a time, and only after this leader committed an entry
	 * of its own term: otherwise an uncommitted change of a previous leader
	 * and ours could form two majorities that do not overlap. */
	if (confHistLast(&r->confs)->index > r->log.committed) {
		return RAFT_CONFPENDING;
	}
	if (!r->committed_in_term) {
		return RAFT_NOTREADY;
	}
	struct raft_conf_change cc = {.type = type, .node_id = node_id};
	int rv = confApply(raftConf(r), type, node_id, &cc.result);
	if (rv != 0) {
		return rv;
	}
	uint8_t buf[RAFT_CONF_CHANGE_MAX_BYTES];
	size_t len;
	rv = raft_conf_change_encode(&cc, buf, sizeof(buf), &len);
	if (rv != 0) {
		return rv;
	}
	struct raft_buffer b = {buf, len};
	return proposeEntries(r, &b, 1, RAFT_ENTRY_CONF_CHANGE, index);
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
	if (r->role == RAFT_LEADER) {
		return readIndexLeader(r, ctx, r->id);
	}
	if (r->role != RAFT_FOLLOWER || r->lead == 0) {
		return RAFT_NOLEADER;
	}
	struct raft_message *m = msgNew(r, RAFT_MSG_READ_INDEX, r->lead);
	if (m == NULL) {
		return RAFT_NOMEM;
	}
	m->term = 0;
	m->context = ctx;
	return 0;
}

void sendTimeoutNow(struct raft *r, uint64_t to)
{
	msgNew(r, RAFT_MSG_TIMEOUT_NOW, to);
}

int raft_transfer_leader(struct raft *r, uint64_t target)
{
	if (r->role != RAFT_LEADER) {
		return RAFT_NOTLEADER;
	}
	if (target == r->id) {
		return RAFT_INVALID;
	}
	struct progress *p = trackerGet(&r->trk, target);
	if (p == NULL || p->learner) {
		return RAFT_UNKNOWNPEER;
	}
	if (r->transferee == target) {
		return 0;
	}
	r->transferee = target;
	r->transfer_elapsed = 0;
	if (p->match == logLastIndex(&r->log)) {
		sendTimeoutNow(r, target);
	} else {
		sendAppend(r, p, false);
	}
	return 0;
}

int raft_snapshot_taken(struct raft *r, uint64_t index, const void *data, size_t len,
			uint64_t trailing)
{
	if (index > r->log.applied || index <= r->snap.meta.index || index < r->log.offset ||
	    (len > 0 && data == NULL)) {
		return RAFT_INVALID;
	}
	uint8_t *d;
	struct raft_batch *b = raft_batch_new(len, &d);
	if (b == NULL) {
		return RAFT_NOMEM;
	}
	if (len > 0) {
		memcpy(d, data, len);
	}
	raft_batch_unref(r->snap.batch);
	r->snap.batch = b;
	r->snap.data = d;
	r->snap.len = len;
	r->snap.meta.index = index;
	r->snap.meta.term = logTermOr0(&r->log, index);
	r->snap.meta.conf = *confHistAt(&r->confs, index);
	uint64_t upto = index > trailing ? index - trailing : 0;
	if (upto > r->log.offset) {
		logCompact(&r->log, upto);
		confHistCompact(&r->confs, upto);
	}
	return 0;
}

void raft_snapshot_get(const struct raft *r, struct raft_snapshot_meta *meta)
{
	*meta = r->snap.meta;
}

void raft_report_snapshot_failed(struct raft *r, uint64_t id)
{
	if (r->role != RAFT_LEADER) {
		return;
	}
	struct progress *p = trackerGet(&r->trk, id);
	if (p != NULL && p->state == PR_SNAPSHOT) {
		progressBecomeProbe(p);
	}
}

void raft_status(const struct raft *r, struct raft_status *st)
{
	st->id = r->id;
	st->role = r->role;
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->lead;
	st->commit = r->log.committed;
	st->applied = r->log.applied;
	st->first_index = logFirstIndex(&r->log);
	st->last_index = logLastIndex(&r->log);
	st->snapshot_index = r->snap.meta.index;
	st->transferee = r->transferee;
}

int raft_match(const struct raft *r, uint64_t id, uint64_t *match)
{
	if (r->role != RAFT_LEADER) {
		return RAFT_NOTLEADER;
	}
	/* The tracker's lookup does not modify it; it only lacks a const. */
	struct progress *p = trackerGet((struct tracker *)&r->trk, id);
	if (p == NULL) {
		return RAFT_UNKNOWNPEER;
	}
	*match = id == r->id ? logLastIndex(&r->log) : p->match;
	return 0;
}

const struct raft_conf *raft_conf(const struct raft *r)
{
	return raftConf(r);
}

int raft_log_entry(const struct raft *r, uint64_t index, const struct raft_entry **e)
{
	if (index <= r->log.offset) {
		return RAFT_COMPACTED;
	}
	if (index > logLastIndex(&r->log)) {
		return RAFT_UNAVAILABLE;
	}
	*e = logAt(&r->log, index);
	return 0;
}

int raft_log_term(const struct raft *r, uint64_t index, uint64_t *term)
{
	return logTerm(&r->log, index, term);
}

int raft_snapshot_meta_at(const struct raft *r, uint64_t index, struct raft_snapshot_meta *meta)
{
	uint64_t term;
	int rv = logTerm(&r->log, index, &term);
	if (rv != 0) {
		return rv;
	}
	/* The history's base is at or before the log's offset, so every index
	 * logTerm knows has its configuration there. */
	meta->index = index;
	meta->term = term;
	meta->conf = *confHistAt(&r->confs, index);
	return 0;
}
