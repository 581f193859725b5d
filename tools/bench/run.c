/*
 * tools/bench/run.c — the CQ thread loop, tickets, pacing, progress bar.
 */
#include "run.h"

#include <grpc/support/time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t sigint_seen;

static void on_sigint(int sig)
{
	(void)sig;
	sigint_seen = 1;
	signal(SIGINT, SIG_DFL); /* the second one kills */
}

void bench_install_sigint(void)
{
	signal(SIGINT, on_sigint);
}

int bench_interrupted(void)
{
	return sigint_seen != 0;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_default_threads(const struct bench_opts *o)
{
	if (o->threads > 0)
		return o->threads;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int n = cpus > 0 ? (int)cpus : 1;
	if (n > o->conns)
		n = o->conns;
	if (n > o->clients)
		n = o->clients;
	return n < 1 ? 1 : n;
}

int bench_run_init(struct bench_run *r, const struct bench_opts *o, struct bench_conns *c,
		   int nthreads, int clients_per_thread)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->conns = c;
	r->total = o->total;
	r->rate = o->rate;
	r->nthreads = nthreads;
	pthread_mutex_init(&r->first_error.mu, NULL);
	r->threads = calloc((size_t)nthreads, sizeof(*r->threads));
	if (r->threads == NULL)
		return 1;
	for (int i = 0; i < nthreads; i++) {
		struct bench_thread *t = &r->threads[i];
		t->run = r;
		t->index = i;
		bench_stats_init(&t->stats);
		t->park_cap = (size_t)clients_per_thread + 1;
		t->park_tag = calloc(t->park_cap, sizeof(*t->park_tag));
		t->park_at = calloc(t->park_cap, sizeof(*t->park_at));
		t->cq = grpc_completion_queue_create_for_next(NULL);
		if (t->park_tag == NULL || t->park_at == NULL || t->cq == NULL)
			return 1;
	}
	return 0;
}

int bench_run_ticket(struct bench_run *r, uint64_t *n, uint64_t *due)
{
	if (atomic_load_explicit(&r->stop, memory_order_relaxed))
		return 1;
	uint64_t k = atomic_fetch_add_explicit(&r->tickets, 1, memory_order_relaxed);
	if (r->total != 0 && k >= r->total)
		return 1;
	*n = k;
	*due = r->rate > 0 ? r->t_start + (uint64_t)((double)k * 1e9 / r->rate) : 0;
	return 0;
}

void bench_thread_park(struct bench_thread *t, struct bench_tag *tag, uint64_t due)
{
	/* One slot per client on the thread, and a client parks at most once. */
	size_t i = (t->park_head + t->park_n) % t->park_cap;
	t->park_tag[i] = tag;
	t->park_at[i] = due;
	t->park_n++;
}

void bench_thread_error(struct bench_thread *t, grpc_status_code code, const char *msg,
			size_t msglen)
{
	bench_stats_error(&t->stats, &t->run->first_error, code, msg, msglen);
}

/* Wakes parked clients whose time has come; returns the next due time or 0. */
static uint64_t wake_parked(struct bench_thread *t)
{
	while (t->park_n > 0) {
		uint64_t now = bench_now_ns();
		if (t->park_at[t->park_head] > now)
			return t->park_at[t->park_head];
		struct bench_tag *tag = t->park_tag[t->park_head];
		t->park_head = (t->park_head + 1) % t->park_cap;
		t->park_n--;
		tag->fn(tag, 1);
	}
	return 0;
}

static void *thread_main(void *arg)
{
	struct bench_thread *t = arg;
	struct bench_run *r = t->run;
	r->start(t, r->ctx);
	uint64_t next_tick = bench_now_ns() + 100000000ull;
	while (t->live > 0) {
		uint64_t now = bench_now_ns();
		uint64_t wake = wake_parked(t);
		if (t->live == 0)
			break;
		uint64_t until = next_tick;
		if (wake != 0 && wake < until)
			until = wake;
		int64_t wait_ns = until > now ? (int64_t)(until - now) : 0;
		gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					       gpr_time_from_nanos(wait_ns, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(t->cq, dl, NULL);
		if (ev.type == GRPC_OP_COMPLETE) {
			struct bench_tag *tag = ev.tag;
			tag->fn(tag, ev.success);
		}
		now = bench_now_ns();
		if (now >= next_tick) {
			next_tick = now + 100000000ull;
			if (r->tick)
				r->tick(t, r->ctx);
		}
	}
	t->t_end = bench_now_ns();
	atomic_fetch_sub(&r->running, 1);
	return NULL;
}

int bench_run_start(struct bench_run *r)
{
	return bench_run_spawn(r, thread_main, r->threads, sizeof(*r->threads));
}

int bench_run_spawn(struct bench_run *r, void *(*fn)(void *), void *args, size_t stride)
{
	r->t_start = bench_now_ns();
	atomic_store(&r->running, r->nthreads);
	for (int i = 0; i < r->nthreads; i++) {
		if (pthread_create(&r->threads[i].tid, NULL, fn, (char *)args + (size_t)i * stride) != 0) {
			/* Threads already started run to the end on their own. */
			atomic_store(&r->stop, 1);
			atomic_fetch_sub(&r->running, r->nthreads - i);
			for (int j = 0; j < i; j++)
				pthread_join(r->threads[j].tid, NULL);
			return 1;
		}
	}
	return 0;
}

static void draw_progress(struct bench_run *r, uint64_t now, double duration_s)
{
	uint64_t done = 0;
	for (int i = 0; i < r->nthreads; i++)
		done += atomic_load_explicit(&r->threads[i].done, memory_order_relaxed);
	double secs = (double)(now - r->t_start) / 1e9;
	double frac = 0;
	if (r->total > 0)
		frac = (double)done / (double)r->total;
	if (duration_s > 0 && secs / duration_s > frac)
		frac = secs / duration_s;
	if (frac > 1)
		frac = 1;
	char bar[41];
	int fill = (int)(frac * 40);
	for (int i = 0; i < 40; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[40] = 0;
	printf("\r%s [%s] %3.0f%% %llu req %.0f req/s ", r->label ? r->label : "", bar,
	       frac * 100, (unsigned long long)done, secs > 0 ? (double)done / secs : 0.0);
	fflush(stdout);
}

void bench_run_wait(struct bench_run *r, double duration_s)
{
	uint64_t stop_at = duration_s > 0 ? r->t_start + (uint64_t)(duration_s * 1e9) : 0;
	int drawn = 0;
	while (atomic_load(&r->running) > 0) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
		uint64_t now = bench_now_ns();
		if ((stop_at && now >= stop_at) || bench_interrupted())
			atomic_store(&r->stop, 1);
		if (r->show_progress) {
			draw_progress(r, now, duration_s);
			drawn = 1;
		}
	}
	/* The run ends when its last thread did, not when this loop noticed. */
	r->t_end = r->t_start;
	for (int i = 0; i < r->nthreads; i++) {
		pthread_join(r->threads[i].tid, NULL);
		if (r->threads[i].t_end > r->t_end)
			r->t_end = r->threads[i].t_end;
	}
	if (drawn) {
		draw_progress(r, r->t_end, duration_s);
		printf("\n");
	}
}

void bench_run_stats(const struct bench_run *r, struct bench_stats *out)
{
	bench_stats_init(out);
	for (int i = 0; i < r->nthreads; i++)
		bench_stats_merge(out, &r->threads[i].stats);
}

void bench_run_result(const struct bench_run *r, struct bench_result *res)
{
	bench_run_stats(r, &res->stats);
	res->seconds = (double)(r->t_end - r->t_start) / 1e9;
	res->have_first_error = r->first_error.have;
	res->first_code = r->first_error.code;
	memcpy(res->first_msg, r->first_error.msg, sizeof(res->first_msg));
}

void bench_run_close(struct bench_run *r)
{
	if (r->threads == NULL)
		return;
	for (int i = 0; i < r->nthreads; i++) {
		struct bench_thread *t = &r->threads[i];
		if (t->cq != NULL) {
			grpc_completion_queue_shutdown(t->cq);
			while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
							  NULL).type != GRPC_QUEUE_SHUTDOWN)
				;
			grpc_completion_queue_destroy(t->cq);
		}
		free(t->park_tag);
		free(t->park_at);
	}
	free(r->threads);
	r->threads = NULL;
	pthread_mutex_destroy(&r->first_error.mu);
}
