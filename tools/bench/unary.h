/*
 * tools/bench/unary.h — many concurrent unary calls over a few channels.
 *
 * --clients clients each keep one call in flight: a client sends, and on
 * the completion (one batch carries every op of a unary call, so one
 * completion per request) records the latency and sends the next request
 * from the same thread. The workload only says what to send.
 */
#ifndef METAD_BENCH_UNARY_H
#define METAD_BENCH_UNARY_H

#include <grpc/slice.h>
#include <stdint.h>

#include "conn.h"
#include "opts.h"
#include "report.h"

struct bench_req {
	enum bench_method method;
	grpc_slice msg;          /* ownership moves to the engine */
	int kind;                /* BENCH_KIND_ALL / READ / WRITE */
};

struct bench_workload {
	/* The request for ticket n, with the client's random state. Called on
	 * the client's CQ thread: must be thread-safe against other clients. */
	void (*next)(void *ctx, uint64_t n, uint64_t *rng, struct bench_req *out);
	void *ctx;
};

/* Runs the workload to --total / --duration and fills res. Returns 0, or
 * non-zero if the run could not start (out of memory, thread creation). */
int bench_unary_run(const struct bench_opts *o, struct bench_conns *c,
		    const struct bench_workload *w, const char *label, int show_progress,
		    struct bench_result *res);

#endif
