/*
 * raft/progress.c — follower progress and flow control (see progress.h).
 */
#include <string.h>

#include "raft/heap.h"
#include "raft/progress.h"

void trackerInit(struct tracker *t, size_t max_inflight, uint64_t max_inflight_bytes)
{
	memset(t, 0, sizeof(*t));
	t->max_inflight = max_inflight;
	t->max_inflight_bytes = max_inflight_bytes;
}

void trackerClose(struct tracker *t)
{
	for (size_t i = 0; i < t->n; i++) {
		raftFree(t->prs[i].ifl.last);
	}
	t->n = 0;
}

struct progress *trackerGet(struct tracker *t, uint64_t id)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->prs[i].id == id) {
			return &t->prs[i];
		}
	}
	return NULL;
}

static int progressInit(struct tracker *t, struct progress *p, uint64_t id, uint64_t next)
{
	memset(p, 0, sizeof(*p));
	/* One allocation holds both rings. */
	p->ifl.last = raftMalloc(2 * t->max_inflight * sizeof(uint64_t));
	if (p->ifl.last == NULL) {
		return RAFT_NOMEM;
	}
	p->ifl.bytes = p->ifl.last + t->max_inflight;
	p->ifl.cap = t->max_inflight;
	p->ifl.max_bytes = t->max_inflight_bytes;
	p->id = id;
	p->next = next;
	p->state = PR_PROBE;
	p->recent_active = true; /* a new member gets one round of grace */
	return 0;
}

int trackerSync(struct tracker *t, const struct raft_conf *conf, uint64_t next)
{
	/* Drop members that left, keeping the order of the rest. */
	size_t w = 0;
	for (size_t i = 0; i < t->n; i++) {
		uint64_t id = t->prs[i].id;
		if (raft_conf_is_voter(conf, id) || raft_conf_is_learner(conf, id)) {
			t->prs[w++] = t->prs[i];
		} else {
			raftFree(t->prs[i].ifl.last);
		}
	}
	t->n = w;
	const uint64_t *lists[2] = {conf->voters, conf->learners};
	uint32_t counts[2] = {conf->n_voters, conf->n_learners};
	for (int k = 0; k < 2; k++) {
		for (uint32_t i = 0; i < counts[k]; i++) {
			struct progress *p = trackerGet(t, lists[k][i]);
			if (p == NULL) {
				p = &t->prs[t->n];
				int rv = progressInit(t, p, lists[k][i], next);
				if (rv != 0) {
					return rv;
				}
				t->n++;
			}
			p->learner = (k == 1);
		}
	}
	return 0;
}

void trackerReset(struct tracker *t, uint64_t next)
{
	for (size_t i = 0; i < t->n; i++) {
		struct progress *p = &t->prs[i];
		p->match = 0;
		p->next = next;
		p->state = PR_PROBE;
		p->probe_sent = false;
		p->pending_snapshot = 0;
		p->recent_active = true;
		p->read_ack = 0;
		p->vote = 0;
		inflightsClear(&p->ifl);
	}
}

void progressBecomeProbe(struct progress *p)
{
	/* After a snapshot, the follower has at least the snapshot: probe after it. */
	if (p->state == PR_SNAPSHOT) {
		uint64_t s = p->pending_snapshot;
		p->next = (p->match > s ? p->match : s) + 1;
	} else {
		p->next = p->match + 1;
	}
	p->state = PR_PROBE;
	p->probe_sent = false;
	p->pending_snapshot = 0;
	inflightsClear(&p->ifl);
}

void progressBecomeReplicate(struct progress *p)
{
	p->state = PR_REPLICATE;
	p->next = p->match + 1;
	p->probe_sent = false;
	p->pending_snapshot = 0;
	inflightsClear(&p->ifl);
}

void progressBecomeSnapshot(struct progress *p, uint64_t index)
{
	p->state = PR_SNAPSHOT;
	p->pending_snapshot = index;
	p->snap_elapsed = 0;
	p->probe_sent = false;
	inflightsClear(&p->ifl);
}

bool progressMaybeUpdate(struct progress *p, uint64_t index)
{
	bool updated = false;
	if (p->match < index) {
		p->match = index;
		updated = true;
		p->probe_sent = false;
	}
	if (p->next < index + 1) {
		p->next = index + 1;
	}
	return updated;
}

bool progressPaused(const struct progress *p)
{
	switch (p->state) {
	case PR_PROBE:
		return p->probe_sent;
	case PR_REPLICATE:
		return inflightsFull(&p->ifl);
	default:
		return true;
	}
}

void inflightsAdd(struct inflights *f, uint64_t last, uint64_t bytes)
{
	if (f->count == f->cap) {
		return; /* callers check Full first; never overwrite */
	}
	size_t at = (f->start + f->count) % f->cap;
	f->last[at] = last;
	f->bytes[at] = bytes;
	f->count++;
	f->total_bytes += bytes;
}

void inflightsFreeLE(struct inflights *f, uint64_t index)
{
	while (f->count > 0 && f->last[f->start] <= index) {
		f->total_bytes -= f->bytes[f->start];
		f->start = (f->start + 1) % f->cap;
		f->count--;
	}
	if (f->count == 0) {
		f->start = 0;
	}
}

void inflightsFreeFirst(struct inflights *f)
{
	if (f->count > 0) {
		inflightsFreeLE(f, f->last[f->start]);
	}
}

bool inflightsFull(const struct inflights *f)
{
	return f->count == f->cap || (f->max_bytes > 0 && f->total_bytes >= f->max_bytes);
}

void inflightsClear(struct inflights *f)
{
	f->start = 0;
	f->count = 0;
	f->total_bytes = 0;
}
