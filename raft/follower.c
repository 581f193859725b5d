/*
 * raft/follower.c — followers and candidates: accepting appends (with the
 * conflict hint that lets the leader skip a term at a time), heartbeats,
 * snapshot installs, vote counting and the election timer.
 */
#include <string.h>

#include "raft/heap.h"
#include "raft/raft_int.h"

void tickElection(struct raft *r)
{
	r->election_elapsed++;
	if (raftPromotable(r) && r->election_elapsed >= r->randomized_timeout) {
		r->election_elapsed = 0;
		/* Fresh jitter for every attempt, so that repeated pre-vote
		 * rounds of two nodes do not stay in lock-step. */
		r->randomized_timeout = r->cfg.election_tick +
					(int)(raftRandom(r) % (uint64_t)r->cfg.election_tick);
		campaign(r, r->cfg.pre_vote, false);
	}
}

static void respondApp(struct raft *r, uint64_t to, uint64_t index)
{
	struct raft_message *resp = msgNew(r, RAFT_MSG_APP_RESP, to);
	if (resp != NULL) {
		resp->index = index;
	}
}

/* Append m's entries from the first one that is not already in our log. */
static int appendNew(struct raft *r, const struct raft_entry *e, size_t n)
{
	size_t i = 0;
	while (i < n && logMatchTerm(&r->log, e[i].index, e[i].term)) {
		i++;
	}
	if (i == n) {
		return 0;
	}
	if (e[i].index <= r->log.committed) {
		/* A leader never sends a different entry at a committed index. */
		return RAFT_CORRUPT;
	}
	raftTruncateLog(r, e[i].index);
	bool borrowed = false;
	for (size_t k = i; k < n; k++) {
		borrowed |= e[k].batch == NULL;
	}
	if (!borrowed) {
		return raftAppendToLog(r, e + i, n - i);
	}
	size_t bytes = 0;
	for (size_t k = i; k < n; k++) {
		bytes += e[k].len;
	}
	struct raft_entry *copy = raftMalloc((n - i) * sizeof(*copy));
	if (copy == NULL) {
		return RAFT_NOMEM;
	}
	uint8_t *d;
	struct raft_batch *b = raft_batch_new(bytes, &d);
	if (b == NULL) {
		raftFree(copy);
		return RAFT_NOMEM;
	}
	for (size_t k = i; k < n; k++) {
		copy[k - i] = e[k];
		if (e[k].len > 0) {
			memcpy(d, e[k].data, e[k].len);
		}
		copy[k - i].data = d;
		copy[k - i].batch = b;
		d += e[k].len;
	}
	int rv = raftAppendToLog(r, copy, n - i);
	raft_batch_unref(b);
	raftFree(copy);
	return rv;
}

int handleAppend(struct raft *r, const struct raft_message *m)
{
	for (size_t i = 0; i < m->n_entries; i++) {
		if (m->entries[i].index != m->index + 1 + i || m->entries[i].term > m->term ||
		    (m->entries[i].len > 0 && m->entries[i].data == NULL)) {
			return RAFT_INVALID;
		}
	}
	if (m->index < r->log.committed) {
		respondApp(r, m->from, r->log.committed);
		return 0;
	}
	if (logMatchTerm(&r->log, m->index, m->log_term)) {
		uint64_t last_new = m->index + m->n_entries;
		int rv = appendNew(r, m->entries, m->n_entries);
		if (rv != 0) {
			return rv;
		}
		/* Only what this append proved to match may be committed. */
		logCommitTo(&r->log, m->commit < last_new ? m->commit : last_new);
		respondApp(r, m->from, last_new);
		return 0;
	}
	uint64_t hint = m->index < logLastIndex(&r->log) ? m->index : logLastIndex(&r->log);
	uint64_t hint_term;
	hint = logFindConflictByTerm(&r->log, hint, m->log_term, &hint_term);
	struct raft_message *resp = msgNew(r, RAFT_MSG_APP_RESP, m->from);
	if (resp != NULL) {
		resp->index = m->index;
		resp->reject = true;
		resp->reject_hint = hint;
		resp->log_term = hint_term;
	}
	return 0;
}

int handleHeartbeat(struct raft *r, const struct raft_message *m)
{
	uint64_t c = m->commit < logLastIndex(&r->log) ? m->commit : logLastIndex(&r->log);
	logCommitTo(&r->log, c);
	struct raft_message *resp = msgNew(r, RAFT_MSG_HEARTBEAT_RESP, m->from);
	if (resp != NULL) {
		resp->context = m->context;
	}
	return 0;
}

int handleSnapshot(struct raft *r, const struct raft_message *m)
{
	const struct raft_snapshot *s = &m->snapshot;
	if (!confValid(&s->meta.conf) || (s->len > 0 && s->data == NULL) || s->meta.index == 0 ||
	    s->meta.term > m->term) {
		return RAFT_INVALID;
	}
	if (s->meta.index <= r->log.committed) {
		respondApp(r, m->from, r->log.committed);
		return 0;
	}
	if (logMatchTerm(&r->log, s->meta.index, s->meta.term)) {
		/* We already hold the entries: just learn that they are committed. */
		logCommitTo(&r->log, s->meta.index);
		respondApp(r, m->from, r->log.committed);
		return 0;
	}
	struct raft_batch *b = s->batch;
	const uint8_t *data = s->data;
	if (b == NULL) {
		uint8_t *d;
		b = raft_batch_new(s->len, &d);
		if (b == NULL) {
			return RAFT_NOMEM;
		}
		if (s->len > 0) {
			memcpy(d, s->data, s->len);
		}
		data = d;
	} else {
		raft_batch_ref(b);
	}
	raft_batch_unref(r->snap.batch);
	r->snap = *s;
	r->snap.batch = b;
	r->snap.data = data;
	r->snap_pending = true;
	logReset(&r->log, s->meta.index, s->meta.term);
	/* Not durable until the caller persists the ready that carries it. */
	r->log.stable = s->meta.index;
	confHistReset(&r->confs, s->meta.index, &s->meta.conf);
	int rv = raftConfChanged(r);
	respondApp(r, m->from, s->meta.index);
	return rv;
}

int stepFollower(struct raft *r, const struct raft_message *m)
{
	switch (m->type) {
	case RAFT_MSG_PROP: {
		if (r->lead == 0 || r->cfg.disable_forwarding || m->n_entries == 0) {
			return RAFT_NOLEADER;
		}
		struct raft_message *f = msgNew(r, RAFT_MSG_PROP, r->lead);
		if (f == NULL) {
			return RAFT_NOMEM;
		}
		f->term = 0;
		int rv = msgAttach(r, f, m->entries, m->n_entries);
		if (rv != 0) {
			r->n_msgs--;
		}
		return rv;
	}
	case RAFT_MSG_APP:
		r->election_elapsed = 0;
		r->lead = m->from;
		return handleAppend(r, m);
	case RAFT_MSG_HEARTBEAT:
		r->election_elapsed = 0;
		r->lead = m->from;
		return handleHeartbeat(r, m);
	case RAFT_MSG_SNAP:
		r->election_elapsed = 0;
		r->lead = m->from;
		return handleSnapshot(r, m);
	case RAFT_MSG_TIMEOUT_NOW:
		/* Leader transfer: skip pre-vote and the lease check. */
		return campaign(r, false, true);
	case RAFT_MSG_READ_INDEX_RESP:
		return readStatePush(r, m->context, m->index);
	default:
		return 0;
	}
}

int stepCandidate(struct raft *r, const struct raft_message *m)
{
	switch (m->type) {
	case RAFT_MSG_PROP:
		return RAFT_NOLEADER;
	case RAFT_MSG_APP:
		becomeFollower(r, m->term, m->from);
		return handleAppend(r, m);
	case RAFT_MSG_HEARTBEAT:
		becomeFollower(r, m->term, m->from);
		return handleHeartbeat(r, m);
	case RAFT_MSG_SNAP:
		becomeFollower(r, m->term, m->from);
		return handleSnapshot(r, m);
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP: {
		bool pre = r->role == RAFT_PRECANDIDATE;
		if (m->type != (pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP)) {
			return 0;
		}
		if (pre && !m->reject && m->term != r->term + 1) {
			return 0; /* an answer to an older pre-vote round */
		}
		switch (pollVote(r, m->from, !m->reject)) {
		case VOTE_WON:
			if (pre) {
				return campaign(r, false, false);
			} else {
				int rv = becomeLeader(r);
				bcastAppend(r);
				return rv;
			}
		case VOTE_LOST:
			becomeFollower(r, r->term, 0);
			return 0;
		default:
			return 0;
		}
	}
	default:
		return 0;
	}
}
