/*
 * tests/raft/harness.h — a tiny test runner and a hand-driven cluster for
 * scenario tests: the test decides which messages are delivered, when time
 * passes and which links are cut, so each paper scenario is exact.
 */
#ifndef METAD_TESTS_RAFT_HARNESS_H
#define METAD_TESTS_RAFT_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

static int failures;

#define CHECK(c)                                                                       \
	do {                                                                           \
		if (!(c)) {                                                            \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); \
			failures++;                                                    \
		}                                                                      \
	} while (0)

#define CHECK_EQ(a, b)                                                                 \
	do {                                                                           \
		unsigned long long a_ = (unsigned long long)(a);                      \
		unsigned long long b_ = (unsigned long long)(b);                      \
		if (a_ != b_) {                                                        \
			fprintf(stderr, "%s:%d: %s == %llu, expected %s == %llu\n", __FILE__, \
				__LINE__, #a, a_, #b, b_);                             \
			failures++;                                                    \
		}                                                                      \
	} while (0)

#define RUN(t)                                                                         \
	do {                                                                           \
		int f0_ = failures;                                                    \
		t();                                                                   \
		printf("%s %s\n", f0_ == failures ? "ok  " : "FAIL", #t);             \
	} while (0)

#define H_MAX 8

struct cluster {
	int n; /* nodes 1..n */
	struct raft *r[H_MAX + 1];
	bool cut[H_MAX + 1][H_MAX + 1]; /* cut[from][to]: drop */
	struct raft_message *q;
	size_t qn, qcap;
	int snapshots[H_MAX + 1];       /* snapshots installed per node */
	uint64_t applied[H_MAX + 1];
	int reads[H_MAX + 1]; /* read states seen per node, last one below */
	uint64_t read_ctx[H_MAX + 1], read_index[H_MAX + 1];
	bool send_first[H_MAX + 1];     /* of the node's last ready */
	struct raft_config cfg;         /* template (id overwritten) */
};

static inline void hConfig(struct cluster *c)
{
	raft_config_init(&c->cfg, 1);
}

/* Start node id from a persisted state (NULL: empty, members 1..n). */
static inline void hStart(struct cluster *c, uint64_t id, const struct raft_persisted *p)
{
	struct raft_persisted empty;
	if (p == NULL) {
		memset(&empty, 0, sizeof(empty));
		for (int i = 1; i <= c->n; i++) {
			empty.snapshot.meta.conf.voters[empty.snapshot.meta.conf.n_voters++] = (uint64_t)i;
		}
		p = &empty;
	}
	struct raft_config cfg = c->cfg;
	cfg.id = id;
	cfg.seed = id * 1000 + 7;
	int rv = raft_create(&cfg, p, &c->r[id]);
	if (rv != 0) {
		fprintf(stderr, "raft_create(%llu): %s\n", (unsigned long long)id, raft_strerror(rv));
		exit(1);
	}
	c->applied[id] = p->snapshot.meta.index;
}

static inline void hInit(struct cluster *c, int n)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	hConfig(c);
}

static inline void hStartAll(struct cluster *c)
{
	for (int i = 1; i <= c->n; i++) {
		hStart(c, (uint64_t)i, NULL);
	}
}

static inline void hFree(struct cluster *c)
{
	for (size_t i = 0; i < c->qn; i++) {
		raft_message_release(&c->q[i]);
	}
	free(c->q);
	for (int i = 1; i <= H_MAX; i++) {
		raft_destroy(c->r[i]);
	}
}

/* Handle one node's ready: messages are queued, the rest is "persisted". */
static inline bool hReadyOne(struct cluster *c, int id)
{
	struct raft_ready rd;
	if (c->r[id] == NULL || !raft_ready(c->r[id], &rd)) {
		return false;
	}
	c->send_first[id] = rd.send_first;
	if (rd.snapshot != NULL) {
		c->snapshots[id]++;
		c->applied[id] = rd.snapshot->meta.index;
	}
	for (size_t i = 0; i < rd.n_messages; i++) {
		if (c->qn == c->qcap) {
			c->qcap = c->qcap ? 2 * c->qcap : 64;
			c->q = realloc(c->q, c->qcap * sizeof(*c->q));
		}
		raft_message_hold(&c->q[c->qn++], &rd.messages[i]);
	}
	if (rd.n_committed > 0) {
		c->applied[id] = rd.committed[rd.n_committed - 1].index;
	}
	for (size_t i = 0; i < rd.n_read_states; i++) {
		c->reads[id]++;
		c->read_ctx[id] = rd.read_states[i].ctx;
		c->read_index[id] = rd.read_states[i].index;
	}
	raft_advance(c->r[id]);
	return true;
}

static inline bool hReady(struct cluster *c)
{
	bool any = false;
	for (int i = 1; i <= H_MAX; i++) {
		any |= hReadyOne(c, i);
	}
	return any;
}

/* Deliver what is queued now (not what it causes). Returns messages delivered. */
static inline size_t hDeliver(struct cluster *c)
{
	size_t n = c->qn, delivered = 0;
	struct raft_message *q = c->q;
	c->q = NULL;
	c->qn = c->qcap = 0;
	for (size_t i = 0; i < n; i++) {
		struct raft_message *m = &q[i];
		if (m->to <= H_MAX && c->r[m->to] != NULL && !c->cut[m->from][m->to]) {
			raft_step(c->r[m->to], m);
			delivered++;
		}
		raft_message_release(m);
	}
	free(q);
	return delivered;
}

/* Until nothing moves. */
static inline void hStabilize(struct cluster *c)
{
	for (int rounds = 0; rounds < 1000; rounds++) {
		bool any = hReady(c);
		if (hDeliver(c) == 0 && !any) {
			return;
		}
	}
}

static inline void hTick(struct cluster *c, uint64_t id, int n)
{
	for (int i = 0; i < n; i++) {
		raft_tick(c->r[id]);
	}
}

static inline void hTickAll(struct cluster *c, int n)
{
	for (int k = 0; k < n; k++) {
		for (int i = 1; i <= H_MAX; i++) {
			if (c->r[i] != NULL) {
				raft_tick(c->r[i]);
			}
		}
		hStabilize(c);
	}
}

static inline void hIsolate(struct cluster *c, int id, bool on)
{
	for (int i = 0; i <= H_MAX; i++) {
		c->cut[id][i] = on;
		c->cut[i][id] = on;
	}
}

static inline struct raft_status hStatus(struct cluster *c, int id)
{
	struct raft_status st;
	raft_status(c->r[id], &st);
	return st;
}

static inline int hPropose(struct cluster *c, int id, uint64_t value)
{
	struct raft_buffer b = {&value, sizeof(value)};
	return raft_propose(c->r[id], &b, 1, NULL);
}

/* Persisted state with a log of the given terms (1-based, data = index). */
struct hlog {
	struct raft_entry e[32];
	uint64_t data[32];
	struct raft_persisted p;
};

static inline void hLog(struct hlog *l, int members, const uint64_t *terms, size_t n,
			uint64_t hs_term, uint64_t commit)
{
	memset(l, 0, sizeof(*l));
	for (int i = 1; i <= members; i++) {
		l->p.snapshot.meta.conf.voters[l->p.snapshot.meta.conf.n_voters++] = (uint64_t)i;
	}
	for (size_t i = 0; i < n; i++) {
		l->data[i] = terms[i] * 1000 + i + 1;
		l->e[i] = (struct raft_entry){.term = terms[i],
					      .index = i + 1,
					      .type = RAFT_ENTRY_NORMAL,
					      .len = 8,
					      .data = (const uint8_t *)&l->data[i]};
	}
	l->p.entries = l->e;
	l->p.n_entries = n;
	l->p.hard_state.term = hs_term;
	l->p.hard_state.commit = commit;
}

/* True when node a and b hold the same log (terms and payloads). */
static inline bool hSameLog(struct cluster *c, int a, int b)
{
	struct raft_status sa = hStatus(c, a), sb = hStatus(c, b);
	if (sa.last_index != sb.last_index) {
		return false;
	}
	uint64_t lo = sa.first_index > sb.first_index ? sa.first_index : sb.first_index;
	for (uint64_t i = lo; i <= sa.last_index; i++) {
		const struct raft_entry *ea, *eb;
		if (raft_log_entry(c->r[a], i, &ea) != 0 || raft_log_entry(c->r[b], i, &eb) != 0) {
			return false;
		}
		if (ea->term != eb->term || ea->len != eb->len ||
		    (ea->len && memcmp(ea->data, eb->data, ea->len) != 0)) {
			return false;
		}
	}
	return true;
}

#endif
