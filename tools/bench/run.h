/*
 * tools/bench/run.h — completion-queue threads that drive many clients.
 *
 * A run has a few threads, each polling its own completion queue; clients
 * (unary callers, streams) are assigned to a thread and live on it: every
 * batch of a client is started from its thread and completes there, so a
 * client needs no lock (gRPC wants start_batch serialised per call). The
 * tag of every batch starts with struct bench_tag; the thread calls its fn.
 *
 * Requests are handed out as tickets from one atomic counter, which bounds
 * the run by --total; --duration and SIGINT set `stop`. With --rate, ticket
 * n is due at start + n/rate: a client whose ticket is not due yet is parked
 * on its thread, which sleeps in grpc_completion_queue_next until then.
 */
#ifndef METAD_BENCH_RUN_H
#define METAD_BENCH_RUN_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conn.h"
#include "opts.h"
#include "report.h"
#include "stats.h"

struct bench_tag {
	void (*fn)(struct bench_tag *tag, int success);
};

struct bench_run;

struct bench_thread {
	struct bench_run *run;
	int index;
	pthread_t tid;
	grpc_completion_queue *cq;
	int live;                      /* clients on this thread not finished yet */
	struct bench_stats stats;
	_Atomic uint64_t done;         /* requests completed, for the progress bar */
	uint64_t t_end;                /* when its last client finished, ns */
	/* Parked clients (rate limit): a FIFO, due times non-decreasing because
	 * each thread takes tickets in increasing order. */
	struct bench_tag **park_tag;
	uint64_t *park_at;
	size_t park_cap, park_head, park_n;
};

struct bench_run {
	const struct bench_opts *o;
	struct bench_conns *conns;
	int nthreads;
	struct bench_thread *threads;
	uint64_t total;                /* 0: unbounded (then duration bounds it) */
	double rate;
	_Atomic uint64_t tickets;
	_Atomic int stop;
	_Atomic int running;           /* threads not finished */
	uint64_t t_start, t_end;       /* ns, monotonic */
	struct bench_first_error first_error;
	/* Called on each thread before it polls: start this thread's clients
	 * (those with index % nthreads == thread index) and set t->live. */
	void (*start)(struct bench_thread *t, void *ctx);
	/* Called on each thread at least every 100 ms while it runs, e.g. so a
	 * stream can cancel itself once `stop` is set. May be NULL. */
	void (*tick)(struct bench_thread *t, void *ctx);
	void *ctx;
	int show_progress;             /* draw a bar while waiting */
	const char *label;
};

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);

/* Prepares a run of nthreads threads (each with clients_per_thread park
 * slots). Returns 0 or non-zero on out-of-memory. */
int bench_run_init(struct bench_run *r, const struct bench_opts *o, struct bench_conns *c,
		   int nthreads, int clients_per_thread);

/* Starts the threads and returns at once; bench_run_wait joins them, drawing
 * the progress bar and enforcing --duration meanwhile. */
int bench_run_start(struct bench_run *r);

/* As bench_run_start, with threads of another loop: thread i runs fn on
 * (char *)args + i * stride, and must end as the CQ loop does (set its
 * bench_thread's t_end, then decrement r->running). */
int bench_run_spawn(struct bench_run *r, void *(*fn)(void *), void *args, size_t stride);
void bench_run_wait(struct bench_run *r, double duration_s);

/* Merges every thread's stats into out. */
void bench_run_stats(const struct bench_run *r, struct bench_stats *out);

/* After bench_run_wait: the merged stats, the run's length and its first
 * error, into res. */
void bench_run_result(const struct bench_run *r, struct bench_result *res);

void bench_run_close(struct bench_run *r);

/* Takes the next request ticket. 0: *n is the ticket and *due its send time
 * (ns, 0 when unpaced); 1: the run is over (total reached or stop set). */
int bench_run_ticket(struct bench_run *r, uint64_t *n, uint64_t *due);

/* Parks tag on t until due (ns); then tag->fn(tag, 1) is called on t. */
void bench_thread_park(struct bench_thread *t, struct bench_tag *tag, uint64_t due);

/* Records a failed request on t. */
void bench_thread_error(struct bench_thread *t, grpc_status_code code, const char *msg,
			size_t msglen);

/* Default number of CQ threads: min(conns, online CPUs), at least 1. */
int bench_default_threads(const struct bench_opts *o);

/* After this, SIGINT stops every run (in-flight requests still finish and
 * are reported); a second SIGINT kills the process as usual. */
void bench_install_sigint(void);
int bench_interrupted(void);

#endif
