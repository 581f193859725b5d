/*
 * raft/sim/bench.c — raft-bench: how many entries per CPU-second the library
 * alone commits in a simulated 3-node cluster with no faults. Proposals are
 * batches of 64-byte entries; "persisting" is free and messages are handed
 * over in memory (held, not encoded), so the figure measures the library.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/raft.h"

#define NODES 3
#define ENTRY_BYTES 64
#define BATCH 256

struct queue {
	struct raft_message *m;
	size_t n, cap;
};

static double cpuSeconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void enqueue(struct queue *q, const struct raft_message *m)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 64;
		q->m = realloc(q->m, q->cap * sizeof(*q->m));
		if (q->m == NULL) {
			abort();
		}
	}
	if (raft_message_hold(&q->m[q->n++], m) != 0) {
		abort();
	}
}

int main(int argc, char **argv)
{
	uint64_t target = argc > 1 ? strtoull(argv[1], NULL, 10) : 5000000;
	struct raft *r[NODES];
	struct raft_persisted p;
	memset(&p, 0, sizeof(p));
	for (int i = 0; i < NODES; i++) {
		p.snapshot.meta.conf.voters[p.snapshot.meta.conf.n_voters++] = (uint64_t)i + 1;
	}
	for (int i = 0; i < NODES; i++) {
		struct raft_config c;
		raft_config_init(&c, (uint64_t)i + 1);
		if (raft_create(&c, &p, &r[i]) != 0) {
			return 1;
		}
	}
	static uint8_t payload[BATCH][ENTRY_BYTES];
	struct raft_buffer bufs[BATCH];
	for (int i = 0; i < BATCH; i++) {
		memset(payload[i], i, ENTRY_BYTES);
		bufs[i] = (struct raft_buffer){payload[i], ENTRY_BYTES};
	}
	struct queue q[2] = {{0}, {0}};
	int cur = 0;
	uint64_t applied[NODES] = {0};
	uint64_t checksum = 0;
	raft_campaign(r[0]);
	double t0 = cpuSeconds();
	uint64_t proposed = 0;
	for (;;) {
		struct raft_status st;
		raft_status(r[0], &st);
		if (st.role == RAFT_LEADER && st.commit >= target) {
			break;
		}
		/* Keep a bounded amount in flight, as a real server's queue would. */
		if (st.role == RAFT_LEADER && st.last_index - st.commit < 8 * BATCH) {
			for (int b = 0; b < 4; b++) {
				if (raft_propose(r[0], bufs, BATCH, NULL) == 0) {
					proposed += BATCH;
				}
			}
		}
		for (int i = 0; i < NODES; i++) {
			struct raft_ready rd;
			if (!raft_ready(r[i], &rd)) {
				continue;
			}
			for (size_t k = 0; k < rd.n_messages; k++) {
				enqueue(&q[cur], &rd.messages[k]);
			}
			for (size_t k = 0; k < rd.n_committed; k++) {
				checksum += rd.committed[k].len; /* "apply" */
			}
			if (rd.n_committed > 0) {
				applied[i] = rd.committed[rd.n_committed - 1].index;
			}
			raft_advance(r[i]);
			/* Compact now and then, as a server taking snapshots would. */
			struct raft_status s2;
			raft_status(r[i], &s2);
			if (applied[i] > s2.snapshot_index + 100000) {
				raft_snapshot_taken(r[i], applied[i], "s", 1, 1000);
			}
		}
		struct queue *d = &q[cur];
		cur ^= 1;
		for (size_t k = 0; k < d->n; k++) {
			raft_step(r[d->m[k].to - 1], &d->m[k]);
			raft_message_release(&d->m[k]);
		}
		d->n = 0;
		for (int i = 0; i < NODES; i++) {
			raft_tick(r[i]);
		}
	}
	double cpu = cpuSeconds() - t0;
	struct raft_status st;
	raft_status(r[0], &st);
	printf("raft-bench: nodes=%d entry_bytes=%d batch=%d committed=%llu cpu=%.3fs "
	       "entries_per_cpu_second=%.0f\n",
	       NODES, ENTRY_BYTES, BATCH, (unsigned long long)st.commit, cpu,
	       (double)st.commit / cpu);
	for (int i = 0; i < NODES; i++) {
		raft_destroy(r[i]);
	}
	for (int k = 0; k < 2; k++) {
		for (size_t j = 0; j < q[k].n; j++) {
			raft_message_release(&q[k].m[j]);
		}
		free(q[k].m);
	}
	(void)checksum;
	(void)proposed;
	return 0;
}
