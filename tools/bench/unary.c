/*
 * tools/bench/unary.c — the unary client engine (see unary.h).
 */
#include "unary.h"

#include <grpc/byte_buffer.h>
#include <grpc/support/alloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2.h"
#include "run.h"

struct uclient {
	struct bench_tag tag;    /* first: the CQ hands us this pointer */
	struct bench_thread *t;
	const struct bench_workload *w;
	int index;
	int parked;              /* the pending tag->fn is a wake-up, not a completion */
	grpc_call *call;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array md_initial, md_trailing;
	grpc_status_code status;
	grpc_slice details;
	uint64_t t0;
	int kind;
	uint64_t rng;
	uint64_t ticket;
};

struct unary_ctx {
	const struct bench_opts *o;
	struct bench_conns *conns;
	struct uclient *clients;
	int nclients;
};

static void client_next(struct uclient *c);

static void finish_call(struct uclient *c)
{
	grpc_metadata_array_destroy(&c->md_initial);
	grpc_metadata_array_destroy(&c->md_trailing);
	grpc_slice_unref(c->details);
	c->details = grpc_empty_slice();
	if (c->send)
		grpc_byte_buffer_destroy(c->send);
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	c->send = c->recv = NULL;
	grpc_call_unref(c->call);
	c->call = NULL;
}

static void client_issue(struct uclient *c)
{
	struct bench_thread *t = c->t;
	struct bench_run *r = t->run;
	struct bench_req req = {.kind = BENCH_KIND_ALL};
	c->w->next(c->w->ctx, c->ticket, &c->rng, &req);
	c->kind = req.kind;
	c->send = grpc_raw_byte_buffer_create(&req.msg, 1);
	grpc_slice_unref(req.msg);
	c->call = bench_conns_call(r->conns, c->index, req.method, t->cq, r->o->timeout);
	grpc_metadata_array_init(&c->md_initial);
	grpc_metadata_array_init(&c->md_trailing);
	c->details = grpc_empty_slice();

	grpc_op ops[6];
	bench_unary_ops(ops, c->send, &c->md_initial, &c->recv, &c->md_trailing, &c->status,
			&c->details);
	c->t0 = bench_now_ns();
	grpc_call_error e = grpc_call_start_batch(c->call, ops, 6, &c->tag, NULL);
	if (e != GRPC_CALL_OK) {
		/* No completion will come: a bug in this tool, reported as an error
		 * and this client stops (looping would only repeat it). */
		char msg[64];
		int n = snprintf(msg, sizeof(msg), "grpc_call_start_batch failed: %d", (int)e);
		bench_thread_error(t, GRPC_STATUS_INTERNAL, msg, (size_t)n);
		finish_call(c);
		t->live--;
	}
}

static void client_done(struct bench_tag *tag, int success)
{
	struct uclient *c = (struct uclient *)tag;
	struct bench_thread *t = c->t;
	if (c->parked) {
		c->parked = 0;
		client_issue(c);
		return;
	}
	uint64_t lat = bench_now_ns() - c->t0;
	if (!success) {
		/* Client batches fail only when the call could not run at all. */
		static const char msg[] = "unary batch completed with success=0";
		bench_thread_error(t, GRPC_STATUS_UNKNOWN, msg, sizeof(msg) - 1);
	} else if (c->status == GRPC_STATUS_OK) {
		bench_stats_ok(&t->stats, c->kind, lat);
	} else {
		char *d = grpc_slice_to_c_string(c->details);
		bench_thread_error(t, c->status, d, strlen(d));
		gpr_free(d);
	}
	atomic_fetch_add_explicit(&t->done, 1, memory_order_relaxed);
	finish_call(c);
	client_next(c);
}

static void client_next(struct uclient *c)
{
	uint64_t due;
	if (bench_run_ticket(c->t->run, &c->ticket, &due) != 0) {
		c->t->live--;
		return;
	}
	if (due > bench_now_ns()) {
		c->parked = 1;
		bench_thread_park(c->t, &c->tag, due);
		return;
	}
	client_issue(c);
}

static void start_thread(struct bench_thread *t, void *ctx)
{
	struct unary_ctx *u = ctx;
	for (int i = t->index; i < u->nclients; i += t->run->nthreads) {
		struct uclient *c = &u->clients[i];
		c->t = t;
		t->live++;
	}
	for (int i = t->index; i < u->nclients; i += t->run->nthreads)
		client_next(&u->clients[i]);
}

int bench_unary_run(const struct bench_opts *o, struct bench_conns *c,
		    const struct bench_workload *w, const char *label, int show_progress,
		    struct bench_result *res)
{
	if (bench_h2_eligible(o))
		return bench_h2_run(o, w, label, show_progress, res);
	struct unary_ctx u = {.o = o, .conns = c, .nclients = o->clients};
	u.clients = calloc((size_t)o->clients, sizeof(*u.clients));
	if (u.clients == NULL)
		return 1;
	for (int i = 0; i < o->clients; i++) {
		u.clients[i].tag.fn = client_done;
		u.clients[i].w = w;
		u.clients[i].index = i;
		u.clients[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
	}
	int nthreads = bench_default_threads(o);
	struct bench_run r;
	int rv = bench_run_init(&r, o, c, nthreads, (o->clients + nthreads - 1) / nthreads);
	if (rv == 0) {
		r.start = start_thread;
		r.ctx = &u;
		r.label = label;
		r.show_progress = show_progress;
		rv = bench_run_start(&r);
	}
	if (rv == 0) {
		bench_run_wait(&r, o->duration);
		bench_run_result(&r, res);
	}
	bench_run_close(&r);
	free(u.clients);
	return rv;
}
