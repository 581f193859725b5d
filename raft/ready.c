/*
 * raft/ready.c — the hand-off to the caller: what to persist, send, apply
 * and answer, and the acknowledgement that it was done. The leader counts
 * its own log as replicated only here, once the caller made it durable.
 */
#include <string.h>

#include "raft/raft_int.h"

static bool hardStateChanged(const struct raft *r)
{
	return r->term != r->prev_hs.term || r->vote != r->prev_hs.vote ||
	       r->log.committed != r->prev_hs.commit;
}

bool raft_has_ready(const struct raft *r)
{
	if (r->in_ready) {
		return false;
	}
	return hardStateChanged(r) || r->snap_pending || r->log.stable < logLastIndex(&r->log) ||
	       r->n_msgs > 0 || r->log.committed > r->log.applied || r->n_read_states > 0 ||
	       r->read_round_pending || r->role != r->prev_role || r->lead != r->prev_lead;
}

bool raft_ready(struct raft *r, struct raft_ready *rd)
{
	if (r->in_ready) {
		return false;
	}
	readIndexFlush(r);
	if (!raft_has_ready(r)) {
		return false;
	}
	memset(rd, 0, sizeof(*rd));
	rd->has_hard_state = hardStateChanged(r);
	rd->hard_state = (struct raft_hard_state){r->term, r->vote, r->log.committed};
	if (r->snap_pending) {
		rd->snapshot = &r->snap;
	}
	uint64_t last = logLastIndex(&r->log);
	if (r->log.stable < last) {
		rd->entries = logAt(&r->log, r->log.stable + 1);
		rd->n_entries = (size_t)(last - r->log.stable);
	}
	for (size_t i = 0; i < r->n_msgs; i++) {
		struct raft_message *m = &r->msgs[i];
		m->entries = m->n_entries > 0 ? r->pool + r->msg_pool_off[i] : NULL;
	}
	rd->messages = r->msgs;
	rd->n_messages = r->n_msgs;
	/* A leader elected with a term or vote not yet persisted (a lone voter
	 * wins its campaign at once) must not be heard before they are: after
	 * a crash it could lead that term again with another log. */
	rd->send_first = r->role == RAFT_LEADER && r->term == r->prev_hs.term &&
			 r->vote == r->prev_hs.vote;
	if (r->log.committed > r->log.applied) {
		rd->committed = logAt(&r->log, r->log.applied + 1);
		rd->n_committed = (size_t)(r->log.committed - r->log.applied);
	}
	rd->read_states = r->read_states;
	rd->n_read_states = r->n_read_states;
	rd->soft_changed = r->role != r->prev_role || r->lead != r->prev_lead;
	rd->leader = r->lead;
	rd->role = r->role;
	r->in_ready = true;
	r->rd_last_entry = last;
	r->rd_committed_to = r->log.committed;
	r->rd_snapshot = r->snap_pending;
	return true;
}

void raft_advance(struct raft *r)
{
	if (!r->in_ready) {
		return;
	}
	r->in_ready = false;
	r->prev_hs = (struct raft_hard_state){r->term, r->vote, r->log.committed};
	r->prev_role = r->role;
	r->prev_lead = r->lead;
	if (r->rd_snapshot) {
		r->snap_pending = false;
	}
	r->log.stable = r->rd_last_entry;
	r->log.applied = r->rd_committed_to;
	msgsReset(r);
	if (r->role == RAFT_LEADER) {
		struct progress *self = trackerGet(&r->trk, r->id);
		if (self != NULL && progressMaybeUpdate(self, r->log.stable) && maybeCommit(r)) {
			bcastAppend(r);
			if (!raft_conf_is_voter(raftConf(r), r->id) &&
			    confHistLast(&r->confs)->index <= r->log.committed) {
				becomeFollower(r, r->term, 0);
			}
		}
	}
}
