/*
 * tools/bench/stats.h — what one CQ thread measured, and the run's errors.
 *
 * Each thread owns a struct bench_stats and writes it without locks; the
 * report merges them after the threads are joined. Only the first error's
 * text is shared (under a mutex), and only on the error path.
 */
#ifndef METAD_BENCH_STATS_H
#define METAD_BENCH_STATS_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdint.h>

#include "hist.h"

/* Request kinds reported separately (txn-mixed reads and writes). */
enum { BENCH_KIND_ALL, BENCH_KIND_READ, BENCH_KIND_WRITE, BENCH_KIND__N };

#define BENCH_STATUS_CODES 17 /* grpc_status_code 0..16 */

struct bench_stats {
	uint64_t ok;
	uint64_t errors;
	uint64_t err_by_code[BENCH_STATUS_CODES];
	uint64_t events;                       /* watch: events received */
	uint64_t kind_ok[BENCH_KIND__N];
	struct bench_hist lat[BENCH_KIND__N];  /* latency of successful requests, ns */
};

/* The first error seen by any thread, for the report. */
struct bench_first_error {
	pthread_mutex_t mu;
	int have;
	grpc_status_code code;
	char msg[256];
};

void bench_stats_init(struct bench_stats *s);
void bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src);

/* A request that succeeded after lat_ns; kind is BENCH_KIND_READ/WRITE or ALL. */
static inline void bench_stats_ok(struct bench_stats *s, int kind, uint64_t lat_ns)
{
	s->ok++;
	bench_hist_record(&s->lat[BENCH_KIND_ALL], lat_ns);
	if (kind != BENCH_KIND_ALL) {
		s->kind_ok[kind]++;
		bench_hist_record(&s->lat[kind], lat_ns);
	}
}

/* A failed request: counted, and its text kept if it is the run's first. */
void bench_stats_error(struct bench_stats *s, struct bench_first_error *fe,
		       grpc_status_code code, const char *msg, size_t msglen);

const char *bench_status_name(grpc_status_code code);

#endif
