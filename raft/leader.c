/*
 * raft/leader.c — the leader: replication with probe / replicate / snapshot
 * flow control, fast back-off on rejected appends, commitment of entries of
 * the current term by quorum, heartbeats, check-quorum and leader transfer.
 */
#include <string.h>

#include "raft/heap.h"
#include "raft/raft_int.h"

static void sendSnapshot(struct raft *r, struct progress *p)
{
	struct raft_message *m = msgNew(r, RAFT_MSG_SNAP, p->id);
	if (m == NULL) {
		return;
	}
	m->snapshot = r->snap;
	raft_batch_ref(m->snapshot.batch);
	progressBecomeSnapshot(p, r->snap.meta.index);
}

bool sendAppend(struct raft *r, struct progress *p, bool send_if_empty)
{
	if (p->id == r->id || progressPaused(p)) {
		return false;
	}
	uint64_t prev = p->next - 1;
	uint64_t prev_term;
	if (logTerm(&r->log, prev, &prev_term) != 0) {
		/* The entries this follower needs were compacted. */
		if (r->snap.meta.index == 0) {
			return false;
		}
		sendSnapshot(r, p);
		return true;
	}
	uint64_t last = logLastIndex(&r->log);
	uint64_t hi = prev;
	uint64_t bytes = 0;
	while (hi < last) {
		uint32_t len = logAt(&r->log, hi + 1)->len;
		if (hi > prev && bytes + len > r->cfg.max_msg_bytes) {
			break;
		}
		bytes += len;
		hi++;
	}
	if (hi == prev && !send_if_empty) {
		return false;
	}
	struct raft_message *m = msgNew(r, RAFT_MSG_APP, p->id);
	if (m == NULL) {
		return false;
	}
	m->index = prev;
	m->log_term = prev_term;
	m->commit = r->log.committed;
	if (hi > prev) {
		if (msgAttachEntries(r, m, prev + 1, hi) != 0) {
			r->n_msgs--;
			return false;
		}
		if (p->state == PR_REPLICATE) {
			/* Optimistically assume delivery: pipeline the next batch. */
			p->next = hi + 1;
			inflightsAdd(&p->ifl, hi, bytes);
		} else {
			p->probe_sent = true;
		}
	}
	return true;
}

void bcastAppend(struct raft *r)
{
	for (size_t i = 0; i < r->trk.n; i++) {
		sendAppend(r, &r->trk.prs[i], true);
	}
}

void bcastHeartbeat(struct raft *r)
{
	for (size_t i = 0; i < r->trk.n; i++) {
		struct progress *p = &r->trk.prs[i];
		if (p->id == r->id) {
			continue;
		}
		struct raft_message *m = msgNew(r, RAFT_MSG_HEARTBEAT, p->id);
		if (m == NULL) {
			return;
		}
		/* Never let a follower commit past what it is known to hold. */
		m->commit = p->match < r->log.committed ? p->match : r->log.committed;
		m->context = r->read_round;
	}
}

/* A removed leader keeps leading until its removal is committed, then
 * steps down (thesis §4.2.2). */
static void stepDownIfRemoved(struct raft *r)
{
	if (r->role == RAFT_LEADER && !raft_conf_is_voter(raftConf(r), r->id) &&
	    confHistLast(&r->confs)->index <= r->log.committed) {
		becomeFollower(r, r->term, 0);
	}
}

bool maybeCommit(struct raft *r)
{
	uint64_t v[RAFT_MAX_MEMBERS];
	size_t n = 0;
	for (size_t i = 0; i < r->trk.n; i++) {
		if (!r->trk.prs[i].learner) {
			v[n++] = r->trk.prs[i].match;
		}
	}
	if (n == 0) {
		return false;
	}
	uint64_t idx = quorumValue(v, n);
	if (idx <= r->log.committed || idx > logLastIndex(&r->log)) {
		return false;
	}
	uint64_t t = logTermOr0(&r->log, idx);
	/* Figure 8: counting replicas is only safe for entries of this term. */
	if (t != r->term && !r->cfg.test_unsafe_commit) {
		return false;
	}
	logCommitTo(&r->log, idx);
	if (t == r->term && !r->committed_in_term) {
		r->committed_in_term = true;
		readIndexOnCommitInTerm(r);
	}
	return true;
}

static void afterCommit(struct raft *r)
{
	bcastAppend(r);
	stepDownIfRemoved(r);
}

int leaderAppend(struct raft *r, struct raft_entry *e, size_t n)
{
	uint64_t li = logLastIndex(&r->log);
	for (size_t i = 0; i < n; i++) {
		e[i].term = r->term;
		e[i].index = li + 1 + i;
	}
	return raftAppendToLog(r, e, n);
}

/* A follower rejected an append at m->index: move next back, skipping a
 * whole conflicting term at a time using the follower's hint. */
static bool maybeDecr(struct raft *r, struct progress *p, const struct raft_message *m)
{
	if (p->state == PR_REPLICATE) {
		if (m->index <= p->match) {
			return false; /* stale */
		}
		p->next = p->match + 1;
		return true;
	}
	if (p->state != PR_PROBE || p->next - 1 != m->index) {
		return false; /* stale */
	}
	uint64_t next_probe = m->reject_hint;
	if (m->log_term > 0) {
		uint64_t t;
		next_probe = logFindConflictByTerm(&r->log, m->reject_hint, m->log_term, &t);
	}
	uint64_t next = m->index < next_probe + 1 ? m->index : next_probe + 1;
	if (next < p->match + 1) {
		next = p->match + 1;
	}
	if (next < 1) {
		next = 1;
	}
	p->next = next;
	p->probe_sent = false;
	return true;
}

static int handleAppResp(struct raft *r, const struct raft_message *m)
{
	struct progress *p = trackerGet(&r->trk, m->from);
	if (p == NULL) {
		return 0;
	}
	p->recent_active = true;
	if (m->reject) {
		if (maybeDecr(r, p, m)) {
			if (p->state == PR_REPLICATE) {
				progressBecomeProbe(p);
			}
			sendAppend(r, p, false);
		}
		return 0;
	}
	bool was_paused = progressPaused(p);
	if (!progressMaybeUpdate(p, m->index)) {
		return 0;
	}
	if (p->state == PR_PROBE) {
		progressBecomeReplicate(p);
	} else if (p->state == PR_SNAPSHOT && p->match >= p->pending_snapshot) {
		progressBecomeProbe(p);
		progressBecomeReplicate(p);
	} else if (p->state == PR_REPLICATE) {
		inflightsFreeLE(&p->ifl, m->index);
	}
	if (maybeCommit(r)) {
		afterCommit(r);
		if (r->role != RAFT_LEADER) {
			return 0;
		}
	} else if (was_paused) {
		sendAppend(r, p, false);
	}
	while (sendAppend(r, p, false)) {
	}
	if (m->from == r->transferee && p->match == logLastIndex(&r->log)) {
		sendTimeoutNow(r, m->from);
	}
	return 0;
}

static int handleHeartbeatResp(struct raft *r, const struct raft_message *m)
{
	struct progress *p = trackerGet(&r->trk, m->from);
	if (p == NULL) {
		return 0;
	}
	p->recent_active = true;
	p->probe_sent = false;
	if (p->state == PR_REPLICATE && inflightsFull(&p->ifl)) {
		inflightsFreeFirst(&p->ifl);
	}
	if (p->match < logLastIndex(&r->log)) {
		/* Possibly empty: it re-probes a follower whose last append was lost. */
		sendAppend(r, p, true);
	}
	if (m->context > p->read_ack) {
		p->read_ack = m->context;
		readIndexOnAck(r);
	}
	return 0;
}

static int handleForwardedProp(struct raft *r, const struct raft_message *m)
{
	if (r->transferee != 0) {
		return RAFT_TRANSFERRING;
	}
	if (trackerGet(&r->trk, r->id) == NULL || m->n_entries == 0) {
		return 0;
	}
	struct raft_entry *ents = raftMalloc(m->n_entries * sizeof(*ents));
	if (ents == NULL) {
		return RAFT_NOMEM;
	}
	size_t bytes = 0;
	for (size_t i = 0; i < m->n_entries; i++) {
		if (m->entries[i].type != RAFT_ENTRY_NORMAL) {
			raftFree(ents);
			return RAFT_INVALID; /* conf changes are proposed on the leader only */
		}
		if (m->entries[i].batch == NULL) {
			bytes += m->entries[i].len;
		}
	}
	uint8_t *d = NULL;
	struct raft_batch *b = NULL;
	if (bytes > 0) {
		b = raft_batch_new(bytes, &d);
		if (b == NULL) {
			raftFree(ents);
			return RAFT_NOMEM;
		}
	}
	for (size_t i = 0; i < m->n_entries; i++) {
		ents[i] = m->entries[i];
		if (ents[i].batch == NULL) {
			if (ents[i].len > 0) {
				memcpy(d, ents[i].data, ents[i].len);
			}
			ents[i].data = d;
			ents[i].batch = b;
			d += ents[i].len;
		}
	}
	int rv = leaderAppend(r, ents, m->n_entries);
	raft_batch_unref(b);
	raftFree(ents);
	if (rv == 0) {
		bcastAppend(r);
	}
	return rv;
}

int stepLeader(struct raft *r, const struct raft_message *m)
{
	switch (m->type) {
	case RAFT_MSG_PROP:
		return handleForwardedProp(r, m);
	case RAFT_MSG_READ_INDEX:
		return readIndexLeader(r, m->context, m->from);
	case RAFT_MSG_APP_RESP:
		return handleAppResp(r, m);
	case RAFT_MSG_HEARTBEAT_RESP:
		return handleHeartbeatResp(r, m);
	default:
		return 0;
	}
}

/* Check-quorum: did a majority of voters talk to us since the last round? */
static bool quorumActive(struct raft *r)
{
	size_t active = 0, voters = 0;
	for (size_t i = 0; i < r->trk.n; i++) {
		struct progress *p = &r->trk.prs[i];
		if (p->learner) {
			continue;
		}
		voters++;
		if (p->id == r->id || p->recent_active) {
			active++;
		}
		p->recent_active = false;
	}
	return voters == 0 || active >= voters / 2 + 1;
}

void tickHeartbeat(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->cfg.election_tick) {
		r->election_elapsed = 0;
		if (r->cfg.check_quorum && !quorumActive(r)) {
			becomeFollower(r, r->term, 0);
			return;
		}
	}
	if (r->transferee != 0 && ++r->transfer_elapsed >= r->cfg.election_tick) {
		/* The target did not take over in time: accept proposals again. */
		r->transferee = 0;
	}
	for (size_t i = 0; i < r->trk.n; i++) {
		struct progress *p = &r->trk.prs[i];
		if (p->state == PR_SNAPSHOT && ++p->snap_elapsed >= 2 * r->cfg.election_tick) {
			/* No answer to the snapshot: assume it was lost and probe again. */
			progressBecomeProbe(p);
		}
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
		r->heartbeat_elapsed = 0;
		bcastHeartbeat(r);
	}
}
