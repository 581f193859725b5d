/*
 * raft/conf.c — membership changes, one server at a time (see README.md for
 * the safety argument), and the configuration history of the log.
 */
#include <string.h>

#include "raft/conf.h"
#include "raft/heap.h"

static int indexOf(const uint64_t *ids, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] == id) {
			return (int)i;
		}
	}
	return -1;
}

bool raft_conf_is_voter(const struct raft_conf *c, uint64_t id)
{
	return indexOf(c->voters, c->n_voters, id) >= 0;
}

bool raft_conf_is_learner(const struct raft_conf *c, uint64_t id)
{
	return indexOf(c->learners, c->n_learners, id) >= 0;
}

static void removeAt(uint64_t *ids, uint32_t *n, int at)
{
	memmove(ids + at, ids + at + 1, (size_t)(*n - (uint32_t)at - 1) * sizeof(*ids));
	(*n)--;
}

int confApply(const struct raft_conf *cur, uint32_t type, uint64_t id, struct raft_conf *out)
{
	if (id == 0) {
		return RAFT_INVALID;
	}
	*out = *cur;
	int v = indexOf(cur->voters, cur->n_voters, id);
	int l = indexOf(cur->learners, cur->n_learners, id);
	switch (type) {
	case RAFT_CC_ADD_LEARNER:
	case RAFT_CC_ADD_VOTER:
		if (v >= 0 || l >= 0) {
			return RAFT_INVALID;
		}
		if (confSize(cur) >= RAFT_MAX_MEMBERS) {
			return RAFT_TOOBIG;
		}
		if (type == RAFT_CC_ADD_LEARNER) {
			out->learners[out->n_learners++] = id;
		} else {
			out->voters[out->n_voters++] = id;
		}
		return 0;
	case RAFT_CC_PROMOTE:
		if (l < 0) {
			return RAFT_INVALID;
		}
		removeAt(out->learners, &out->n_learners, l);
		out->voters[out->n_voters++] = id;
		return 0;
	case RAFT_CC_REMOVE:
		if (v >= 0) {
			if (cur->n_voters == 1) {
				return RAFT_INVALID; /* a group with no voter can never decide again */
			}
			removeAt(out->voters, &out->n_voters, v);
			return 0;
		}
		if (l >= 0) {
			removeAt(out->learners, &out->n_learners, l);
			return 0;
		}
		return RAFT_INVALID;
	default:
		return RAFT_INVALID;
	}
}

bool confEqual(const struct raft_conf *a, const struct raft_conf *b)
{
	return a->n_voters == b->n_voters && a->n_learners == b->n_learners &&
	       memcmp(a->voters, b->voters, a->n_voters * sizeof(uint64_t)) == 0 &&
	       memcmp(a->learners, b->learners, a->n_learners * sizeof(uint64_t)) == 0;
}

bool confValid(const struct raft_conf *c)
{
	if (c->n_voters > RAFT_MAX_MEMBERS || c->n_learners > RAFT_MAX_MEMBERS ||
	    confSize(c) > RAFT_MAX_MEMBERS) {
		return false;
	}
	for (uint32_t i = 0; i < c->n_voters; i++) {
		if (c->voters[i] == 0 || indexOf(c->voters, i, c->voters[i]) >= 0) {
			return false;
		}
	}
	for (uint32_t i = 0; i < c->n_learners; i++) {
		if (c->learners[i] == 0 || indexOf(c->learners, i, c->learners[i]) >= 0 ||
		    indexOf(c->voters, c->n_voters, c->learners[i]) >= 0) {
			return false;
		}
	}
	return true;
}

int confHistInit(struct confHistory *h, uint64_t index, const struct raft_conf *base)
{
	h->cap = 4;
	h->recs = raftMalloc(h->cap * sizeof(*h->recs));
	if (h->recs == NULL) {
		return RAFT_NOMEM;
	}
	h->n = 1;
	h->recs[0].index = index;
	h->recs[0].conf = *base;
	return 0;
}

void confHistClose(struct confHistory *h)
{
	raftFree(h->recs);
	h->recs = NULL;
	h->n = 0;
}

int confHistPush(struct confHistory *h, uint64_t index, const struct raft_conf *c)
{
	struct raft_conf copy = *c; /* c may point into recs, which may move */
	c = &copy;
	if (h->n == h->cap) {
		struct confRec *recs = raftRealloc(h->recs, 2 * h->cap * sizeof(*recs));
		if (recs == NULL) {
			return RAFT_NOMEM;
		}
		h->recs = recs;
		h->cap *= 2;
	}
	h->recs[h->n].index = index;
	h->recs[h->n].conf = *c;
	h->n++;
	return 0;
}

void confHistTruncate(struct confHistory *h, uint64_t from)
{
	/* recs[0] is at or before the compaction point, never truncated. */
	while (h->n > 1 && h->recs[h->n - 1].index >= from) {
		h->n--;
	}
}

void confHistCompact(struct confHistory *h, uint64_t upto)
{
	size_t last = 0;
	for (size_t i = 1; i < h->n && h->recs[i].index <= upto; i++) {
		last = i;
	}
	if (last > 0) {
		memmove(h->recs, h->recs + last, (h->n - last) * sizeof(*h->recs));
		h->n -= last;
	}
}

void confHistReset(struct confHistory *h, uint64_t index, const struct raft_conf *base)
{
	h->n = 1;
	h->recs[0].index = index;
	h->recs[0].conf = *base;
}

const struct raft_conf *confHistAt(const struct confHistory *h, uint64_t index)
{
	size_t i = h->n - 1;
	while (i > 0 && h->recs[i].index > index) {
		i--;
	}
	return &h->recs[i].conf;
}
