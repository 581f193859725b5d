/*
 * raft/readindex.c — linearizable reads without log writes (thesis §6.4).
 * A read records the commit index, then waits until a quorum of voters has
 * answered a heartbeat sent after the read arrived, which proves this node
 * was still the leader at that moment. Reads arriving between two readies
 * share one heartbeat round (batching); a new leader first waits for an
 * entry of its own term to commit, so its commit index is up to date.
 */
#include "raft/heap.h"
#include "raft/raft_int.h"

static int queuePush(struct readQueue *q, struct readReq req)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 16;
		struct readReq *reqs = raftRealloc(q->reqs, cap * sizeof(*reqs));
		if (reqs == NULL) {
			return RAFT_NOMEM;
		}
		q->reqs = reqs;
		q->cap = cap;
	}
	q->reqs[q->n++] = req;
	return 0;
}

void readQueueClose(struct readQueue *q)
{
	raftFree(q->reqs);
	q->reqs = NULL;
	q->n = q->cap = 0;
}

static int answer(struct raft *r, const struct readReq *req)
{
	if (req->from == r->id) {
		return readStatePush(r, req->ctx, req->index);
	}
	struct raft_message *m = msgNew(r, RAFT_MSG_READ_INDEX_RESP, req->from);
	if (m == NULL) {
		return RAFT_NOMEM;
	}
	m->index = req->index;
	m->context = req->ctx;
	return 0;
}

static bool singleVoter(const struct raft *r)
{
	const struct raft_conf *c = raftConf(r);
	return c->n_voters == 1 && c->voters[0] == r->id;
}

int readIndexLeader(struct raft *r, uint64_t ctx, uint64_t from)
{
	struct readReq req = {.ctx = ctx, .from = from};
	if (!r->committed_in_term) {
		return queuePush(&r->waiting, req);
	}
	req.index = r->log.committed;
	if (singleVoter(r) || r->cfg.test_unsafe_read) {
		return answer(r, &req);
	}
	req.round = r->read_round + 1;
	r->read_round_pending = true;
	return queuePush(&r->reads, req);
}

void readIndexFlush(struct raft *r)
{
	if (r->read_round_pending && r->role == RAFT_LEADER) {
		r->read_round++;
		bcastHeartbeat(r);
	}
	r->read_round_pending = false;
}

void readIndexOnAck(struct raft *r)
{
	if (r->reads.n == 0) {
		return;
	}
	uint64_t v[RAFT_MAX_MEMBERS];
	size_t n = 0;
	for (size_t i = 0; i < r->trk.n; i++) {
		const struct progress *p = &r->trk.prs[i];
		if (!p->learner) {
			v[n++] = p->id == r->id ? r->read_round : p->read_ack;
		}
	}
	uint64_t acked = quorumValue(v, n);
	size_t done = 0;
	while (done < r->reads.n && r->reads.reqs[done].round <= acked) {
		answer(r, &r->reads.reqs[done]);
		done++;
	}
	if (done > 0) {
		for (size_t i = done; i < r->reads.n; i++) {
			r->reads.reqs[i - done] = r->reads.reqs[i];
		}
		r->reads.n -= done;
	}
}

void readIndexOnCommitInTerm(struct raft *r)
{
	for (size_t i = 0; i < r->waiting.n; i++) {
		struct readReq *w = &r->waiting.reqs[i];
		readIndexLeader(r, w->ctx, w->from);
	}
	r->waiting.n = 0;
}

void readIndexClear(struct raft *r)
{
	/* Unanswered reads of a former leadership are dropped: their callers
	 * time out and retry, as after any lost message. */
	r->reads.n = 0;
	r->waiting.n = 0;
	r->read_round_pending = false;
}
