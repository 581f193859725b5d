/*
 * raft/raft.c — node life cycle, roles, elections and the message entry
 * point: term rules common to every role live here, the role-specific
 * handling in leader.c and follower.c.
 */
#include <string.h>

#include "raft/heap.h"
#include "raft/raft_int.h"

const char *raft_strerror(int rv)
{
	switch (rv) {
	case 0:
		return "ok";
#define RAFT_ERR_STR_(name, val, msg)                                                      \
	case name:                                                                         \
		return msg;
		RAFT_ERRORS(RAFT_ERR_STR_)
#undef RAFT_ERR_STR_
	default:
		return "unknown error";
	}
}

void raft_config_init(struct raft_config *c, uint64_t id)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->election_tick = 10;
	c->heartbeat_tick = 1;
	c->seed = id;
	c->pre_vote = true;
	c->check_quorum = true;
	c->max_msg_bytes = 1u << 20;
	c->max_inflight_msgs = 256;
}

/* splitmix64: small, fast, and good enough for election jitter. */
uint64_t raftRandom(struct raft *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

const struct raft_conf *raftConf(const struct raft *r)
{
	return &confHistLast(&r->confs)->conf;
}

bool raftPromotable(const struct raft *r)
{
	return raft_conf_is_voter(raftConf(r), r->id);
}

/* Copy borrowed entries (batch == NULL) into one new batch. *out is a new
 * array the caller frees; entries that already have a batch are shared. */
static int ownEntries(const struct raft_entry *e, size_t n, struct raft_entry **out,
		      struct raft_batch **batch)
{
	size_t bytes = 0;
	*batch = NULL;
	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (e[i].batch == NULL) {
			bytes += e[i].len;
		}
	}
	struct raft_entry *copy = raftMalloc((n ? n : 1) * sizeof(*copy));
	if (copy == NULL) {
		return RAFT_NOMEM;
	}
	uint8_t *p = NULL;
	struct raft_batch *b = raft_batch_new(bytes, &p);
	if (b == NULL) {
		raftFree(copy);
		return RAFT_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		copy[i] = e[i];
		if (e[i].batch == NULL) {
			if (e[i].len > 0) {
				memcpy(p, e[i].data, e[i].len);
			}
			copy[i].data = p;
			copy[i].batch = b;
			p += e[i].len;
		}
	}
	*out = copy;
	*batch = b;
	return 0;
}

int raftConfChanged(struct raft *r)
{
	int rv = trackerSync(&r->trk, raftConf(r), logLastIndex(&r->log) + 1);
	if (rv != 0) {
		return rv;
	}
	if (r->role == RAFT_LEADER) {
		struct progress *self = trackerGet(&r->trk, r->id);
		if (self != NULL && self->state != PR_REPLICATE) {
			self->match = r->log.stable;
			progressBecomeReplicate(self);
		}
		if (r->transferee != 0 && !raft_conf_is_voter(raftConf(r), r->transferee)) {
			r->transferee = 0;
		}
		/* The quorum changed: commit may move. */
		if (maybeCommit(r)) {
			bcastAppend(r);
		}
	}
	return 0;
}

int raftAppendToLog(struct raft *r, const struct raft_entry *e, size_t n)
{
	/* Decode conf changes first so that a corrupt one changes nothing. */
	size_t n_cc = 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].type == RAFT_ENTRY_CONF_CHANGE) {
			struct raft_conf_change cc;
			if (raft_conf_change_decode(e[i].data, e[i].len, &cc) != 0) {
				return RAFT_CORRUPT;
			}
			n_cc++;
		} else if (e[i].type != RAFT_ENTRY_NORMAL) {
			return RAFT_CORRUPT;
		}
	}
	if (n_cc > 0 && r->confs.n + n_cc > r->confs.cap) {
		/* Grow now so that pushing below cannot fail after the append. */
		for (size_t k = 0; k < n_cc; k++) {
			int rv = confHistPush(&r->confs, 0, raftConf(r));
			if (rv != 0) {
				r->confs.n -= k;
				return rv;
			}
		}
		r->confs.n -= n_cc;
	}
	int rv = logAppend(&r->log, e, n);
	if (rv != 0) {
		return rv;
	}
	if (n_cc == 0) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i].type == RAFT_ENTRY_CONF_CHANGE) {
			struct raft_conf_change cc;
			raft_conf_change_decode(e[i].data, e[i].len, &cc);
			confHistPush(&r->confs, e[i].index, &cc.result);
		}
	}
	return raftConfChanged(r);
}

void raftTruncateLog(struct raft *r, uint64_t from)
{
	size_t before = r->confs.n;
	logTruncate(&r->log, from);
	confHistTruncate(&r->confs, from);
	if (r->confs.n != before) {
		raftConfChanged(r);
	}
}

static void resetRandomizedTimeout(struct raft *r)
{
	int e = r->cfg.election_tick;
	r->randomized_timeout = e + (int)(raftRandom(r) % (uint64_t)e);
}

static void reset(struct raft *r, uint64_t term)
{
	if (r->term != term) {
		r->term = term;
		r->vote = 0;
	}
	r->lead = 0;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	resetRandomizedTimeout(r);
	r->transferee = 0;
	r->transfer_elapsed = 0;
	r->committed_in_term = false;
	trackerReset(&r->trk, logLastIndex(&r->log) + 1);
	readIndexClear(r);
}

void becomeFollower(struct raft *r, uint64_t term, uint64_t lead)
{
	reset(r, term);
	r->stepFn = stepFollower;
	r->tickFn = tickElection;
	r->lead = lead;
	r->role = RAFT_FOLLOWER;
}

void becomePreCandidate(struct raft *r)
{
	/* No term bump and no vote: a pre-vote round must leave no trace. */
	for (size_t i = 0; i < r->trk.n; i++) {
		r->trk.prs[i].vote = 0;
	}
	r->stepFn = stepCandidate;
	r->tickFn = tickElection;
	r->lead = 0;
	r->role = RAFT_PRECANDIDATE;
}

void becomeCandidate(struct raft *r)
{
	reset(r, r->term + 1);
	r->stepFn = stepCandidate;
	r->tickFn = tickElection;
	r->vote = r->id;
	r->role = RAFT_CANDIDATE;
}

int becomeLeader(struct raft *r)
{
	reset(r, r->term);
	r->stepFn = stepLeader;
	r->tickFn = tickHeartbeat;
	r->lead = r->id;
	r->role = RAFT_LEADER;
	struct progress *self = trackerGet(&r->trk, r->id);
	if (self != NULL) {
		self->match = r->log.stable;
		progressBecomeReplicate(self);
	}
	/* An empty entry of the new term: committing it commits everything
	 * before it (paper §5.4.2) and unblocks reads and conf changes. */
	struct raft_entry e = {.type = RAFT_ENTRY_NORMAL};
	return leaderAppend(r, &e, 1);
}

static size_t countVotes(struct raft *r, size_t *rejected, size_t *voters)
{
	size_t g = 0;
	*rejected = 0;
	*voters = 0;
	for (size_t i = 0; i < r->trk.n; i++) {
		struct progress *p = &r->trk.prs[i];
		if (p->learner) {
			continue;
		}
		(*voters)++;
		if (p->vote > 0) {
			g++;
		} else if (p->vote < 0) {
			(*rejected)++;
		}
	}
	return g;
}

/* Record a vote and return the election outcome. */
int pollVote(struct raft *r, uint64_t id, bool granted)
{
	struct progress *p = trackerGet(&r->trk, id);
	if (p != NULL && p->vote == 0) {
		p->vote = granted ? 1 : -1;
	}
	size_t rejected, voters;
	size_t g = countVotes(r, &rejected, &voters);
	return quorumVoteResult(g, rejected, voters);
}

int campaign(struct raft *r, bool pre, bool transfer)
{
	if (!raftPromotable(r)) {
		return 0;
	}
	uint32_t type;
	uint64_t term;
	if (pre) {
		becomePreCandidate(r);
		type = RAFT_MSG_PREVOTE;
		term = r->term + 1;
	} else {
		becomeCandidate(r);
		type = RAFT_MSG_VOTE;
		term = r->term;
	}
	if (pollVote(r, r->id, true) == VOTE_WON) {
		/* A single voter wins at once. */
		if (pre) {
			return campaign(r, false, transfer);
		}
		int rv = becomeLeader(r);
		bcastAppend(r);
		return rv;
	}
	const struct raft_conf *c = raftConf(r);
	for (uint32_t i = 0; i < c->n_voters; i++) {
		if (c->voters[i] == r->id) {
			continue;
		}
		struct raft_message *m = msgNew(r, type, c->voters[i]);
		if (m == NULL) {
			return RAFT_NOMEM;
		}
		m->term = term;
		m->index = logLastIndex(&r->log);
		m->log_term = logLastTerm(&r->log);
		m->context = transfer ? RAFT_CAMPAIGN_TRANSFER : 0;
	}
	return 0;
}

int raft_campaign(struct raft *r)
{
	if (r->role == RAFT_LEADER) {
		return 0;
	}
	return campaign(r, r->cfg.pre_vote, false);
}

int raft_create(const struct raft_config *cfg, const struct raft_persisted *p, struct raft **out)
{
	if (cfg == NULL || p == NULL || out == NULL || cfg->id == 0 || cfg->heartbeat_tick <= 0 ||
	    cfg->election_tick <= cfg->heartbeat_tick || !confValid(&p->snapshot.meta.conf)) {
		return RAFT_INVALID;
	}
	const struct raft_snapshot_meta *sm = &p->snapshot.meta;
	for (size_t i = 0; i < p->n_entries; i++) {
		if (p->entries[i].index != sm->index + 1 + i) {
			return RAFT_INVALID;
		}
	}
	struct raft *r = raftMalloc(sizeof(*r));
	if (r == NULL) {
		return RAFT_NOMEM;
	}
	memset(r, 0, sizeof(*r));
	r->id = cfg->id;
	r->cfg = *cfg;
	if (r->cfg.max_msg_bytes == 0) {
		r->cfg.max_msg_bytes = 1u << 20;
	}
	if (r->cfg.max_inflight_msgs == 0) {
		r->cfg.max_inflight_msgs = 256;
	}
	r->rng = cfg->seed ^ (cfg->id * 0x2545f4914f6cdd1dull);
	int rv = RAFT_NOMEM;
	logInit(&r->log, sm->index, sm->term);
	trackerInit(&r->trk, r->cfg.max_inflight_msgs, r->cfg.max_inflight_bytes);
	if (confHistInit(&r->confs, sm->index, &sm->conf) != 0) {
		goto err_after_alloc;
	}
	r->snap.meta = *sm;
	if (sm->index > 0) {
		uint8_t *d;
		r->snap.batch = raft_batch_new(p->snapshot.len, &d);
		if (r->snap.batch == NULL) {
			goto err_after_confs;
		}
		if (p->snapshot.len > 0) {
			memcpy(d, p->snapshot.data, p->snapshot.len);
		}
		r->snap.data = d;
		r->snap.len = p->snapshot.len;
	}
	if (p->n_entries > 0) {
		struct raft_entry *own;
		struct raft_batch *b;
		rv = ownEntries(p->entries, p->n_entries, &own, &b);
		if (rv != 0) {
			goto err_after_snap;
		}
		rv = raftAppendToLog(r, own, p->n_entries);
		raft_batch_unref(b);
		raftFree(own);
		if (rv != 0) {
			goto err_after_log;
		}
	}
	rv = trackerSync(&r->trk, raftConf(r), logLastIndex(&r->log) + 1);
	if (rv != 0) {
		goto err_after_log;
	}
	r->log.stable = logLastIndex(&r->log);
	uint64_t commit = p->hard_state.commit;
	if (commit > logLastIndex(&r->log)) {
		commit = logLastIndex(&r->log);
	}
	if (commit < sm->index) {
		commit = sm->index;
	}
	r->log.committed = commit;
	uint64_t applied = p->applied < sm->index ? sm->index : p->applied;
	r->log.applied = applied > commit ? commit : applied;
	r->term = p->hard_state.term;
	r->vote = p->hard_state.vote;
	becomeFollower(r, p->hard_state.term, 0);
	r->prev_hs = (struct raft_hard_state){r->term, r->vote, r->log.committed};
	r->prev_role = r->role;
	*out = r;
	return 0;

err_after_log:
	logClose(&r->log);
	trackerClose(&r->trk);
err_after_snap:
	raft_batch_unref(r->snap.batch);
err_after_confs:
	confHistClose(&r->confs);
err_after_alloc:
	raftFree(r);
	return rv;
}

void raft_destroy(struct raft *r)
{
	if (r == NULL) {
		return;
	}
	msgsReset(r);
	raftFree(r->msgs);
	raftFree(r->msg_pool_off);
	raftFree(r->pool);
	raftFree(r->read_states);
	readQueueClose(&r->reads);
	readQueueClose(&r->waiting);
	logClose(&r->log);
	trackerClose(&r->trk);
	confHistClose(&r->confs);
	raft_batch_unref(r->snap.batch);
	raftFree(r);
}

void raft_tick(struct raft *r)
{
	r->tickFn(r);
}

static void respondVote(struct raft *r, const struct raft_message *m, bool grant)
{
	uint32_t type = m->type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP : RAFT_MSG_PREVOTE_RESP;
	struct raft_message *resp = msgNew(r, type, m->from);
	if (resp == NULL) {
		return; /* lost response: the candidate retries */
	}
	/* A granted pre-vote answers in the future term the candidate asked
	 * about; a rejection carries ours so that a stale candidate catches up. */
	resp->term = grant ? m->term : r->term;
	resp->reject = !grant;
}

static int handleVoteRequest(struct raft *r, const struct raft_message *m)
{
	bool can_vote = r->vote == m->from || (r->vote == 0 && r->lead == 0) ||
			(m->type == RAFT_MSG_PREVOTE && m->term > r->term);
	if (can_vote && logIsUpToDate(&r->log, m->index, m->log_term)) {
		respondVote(r, m, true);
		if (m->type == RAFT_MSG_VOTE) {
			r->election_elapsed = 0;
			r->vote = m->from;
		}
	} else {
		respondVote(r, m, false);
	}
	return 0;
}

int raft_step(struct raft *r, const struct raft_message *m)
{
	if (m == NULL || m->type == 0 || m->type > RAFT_MSG_TYPE_MAX || m->from == 0 ||
	    (m->n_entries > 0 && m->entries == NULL)) {
		return RAFT_INVALID;
	}
	if (m->to != r->id) {
		return 0;
	}
	bool local = m->type == RAFT_MSG_PROP || m->type == RAFT_MSG_READ_INDEX;
	if (local) {
		/* Forwarded requests carry no term: they are not Raft RPCs. */
	} else if (m->term > r->term) {
		if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
			bool force = m->context == RAFT_CAMPAIGN_TRANSFER;
			bool in_lease = r->cfg.check_quorum && r->lead != 0 &&
					r->election_elapsed < r->cfg.election_tick;
			if (!force && in_lease) {
				/* We heard from a live leader within the minimum
				 * election timeout: a disruptive (e.g. removed or
				 * partitioned) server must not depose it. */
				return 0;
			}
		}
		if (m->type == RAFT_MSG_PREVOTE ||
		    (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)) {
			/* Pre-vote traffic never changes our term. */
		} else if (m->type == RAFT_MSG_APP || m->type == RAFT_MSG_HEARTBEAT ||
			   m->type == RAFT_MSG_SNAP) {
			becomeFollower(r, m->term, m->from);
		} else {
			becomeFollower(r, m->term, 0);
		}
	} else if (m->term < r->term) {
		if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
		    (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APP)) {
			/* A stale leader, cut off while we moved on: tell it our
			 * term so it steps down (pre-vote keeps us from raising
			 * its term ourselves). */
			msgNew(r, RAFT_MSG_APP_RESP, m->from);
		} else if (m->type == RAFT_MSG_PREVOTE) {
			struct raft_message *resp = msgNew(r, RAFT_MSG_PREVOTE_RESP, m->from);
			if (resp != NULL) {
				resp->reject = true;
			}
		}
		return 0;
	}
	if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
		return handleVoteRequest(r, m);
	}
	return r->stepFn(r, m);
}
