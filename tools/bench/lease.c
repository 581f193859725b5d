/*
 * tools/bench/lease.c — lease-keepalive: keep-alive round trips per second.
 *
 * Each client grants a lease (--ttl), opens one LeaseKeepAlive stream, as a
 * real client does, and sends keep-alives on it one round trip at a time
 * (send and receive in one batch, so one completion per round); each round
 * is one request of --total and is paced by --rate. At the end the stream
 * is cancelled and the lease revoked, so leases do not outlive the run.
 */
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cmds.h"
#include "msg.h"
#include "rpc.pb-c.h"
#include "run.h"

enum lstate { L_GRANT, L_ROUND, L_REVOKE, L_DONE };

struct lclient;

struct ltag {
	struct bench_tag tag;
	struct lclient *c;
};

struct lclient {
	struct ltag main, status;
	struct bench_thread *t;
	struct lease_ctx *ctx;
	int index;
	enum lstate state;
	int parked, main_busy, status_busy, rounds, cancelled;
	int64_t id;
	grpc_call *unary, *stream;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array md_init, md_trail, smd_init, smd_trail;
	grpc_status_code code, scode;
	grpc_slice details, sdetails;
	uint64_t t0;
};

struct lease_ctx {
	const struct bench_opts *o;
	struct bench_conns *conns;
	struct lclient *clients;
};

static void client_step(struct lclient *c);

static void lerror(struct lclient *c, grpc_status_code code, const char *msg)
{
	bench_thread_error(c->t, code, msg, strlen(msg));
}

static int start_batch(struct lclient *c, grpc_call *call, grpc_op *ops, size_t n, struct ltag *tag,
		       int *busy)
{
	grpc_call_error e = grpc_call_start_batch(call, ops, n, &tag->tag, NULL);
	if (e != GRPC_CALL_OK) {
		char msg[64];
		snprintf(msg, sizeof(msg), "lease: grpc_call_start_batch failed: %d", (int)e);
		lerror(c, GRPC_STATUS_INTERNAL, msg);
		return 1;
	}
	*busy = 1;
	return 0;
}

/* A unary call (grant or revoke) with the whole exchange in one batch. */
static int unary_start(struct lclient *c, enum bench_method m, const ProtobufCMessage *req)
{
	struct lease_ctx *x = c->ctx;
	c->unary = bench_conns_call(x->conns, c->index, m, c->t->cq, x->o->timeout);
	c->send = bench_msg_pack(req);
	grpc_metadata_array_init(&c->md_init);
	grpc_metadata_array_init(&c->md_trail);
	c->details = grpc_empty_slice();
	grpc_op ops[6];
	bench_unary_ops(ops, c->send, &c->md_init, &c->recv, &c->md_trail, &c->code, &c->details);
	return start_batch(c, c->unary, ops, 6, &c->main, &c->main_busy);
}

/* Ends a unary call; 0 if it succeeded (the answer is left in c->recv). */
static int unary_finish(struct lclient *c, int success, const char *what)
{
	int rv = 0;
	if (!success) {
		lerror(c, GRPC_STATUS_UNKNOWN, "lease: unary batch failed");
		rv = 1;
	} else if (c->code != GRPC_STATUS_OK) {
		char *d = grpc_slice_to_c_string(c->details);
		char msg[256];
		snprintf(msg, sizeof(msg), "%s: %s", what, d);
		gpr_free(d);
		lerror(c, c->code, msg);
		rv = 1;
	}
	grpc_metadata_array_destroy(&c->md_init);
	grpc_metadata_array_destroy(&c->md_trail);
	grpc_slice_unref(c->details);
	grpc_byte_buffer_destroy(c->send);
	c->send = NULL;
	grpc_call_unref(c->unary);
	c->unary = NULL;
	return rv;
}

static void send_round(struct lclient *c)
{
	Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
	req.id = c->id;
	c->send = bench_msg_pack(&req.base);
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (c->rounds == 0) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		bench_auth_md(&ops[n++]);
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->smd_init;
	}
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = c->send;
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &c->recv;
	c->rounds++;
	c->t0 = bench_now_ns();
	if (start_batch(c, c->stream, ops, n, &c->main, &c->main_busy) != 0) {
		grpc_byte_buffer_destroy(c->send);
		c->send = NULL;
	}
}

static void open_stream(struct lclient *c)
{
	struct lease_ctx *x = c->ctx;
	c->stream = bench_conns_call(x->conns, c->index, BENCH_M_LEASE_KEEPALIVE, c->t->cq, 0);
	grpc_metadata_array_init(&c->smd_init);
	grpc_metadata_array_init(&c->smd_trail);
	c->sdetails = grpc_empty_slice();
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &c->smd_trail;
	op.data.recv_status_on_client.status = &c->scode;
	op.data.recv_status_on_client.status_details = &c->sdetails;
	start_batch(c, c->stream, &op, 1, &c->status, &c->status_busy);
}

/* Cancels the stream (if open) and frees it once its batches are done. */
static void close_stream(struct lclient *c)
{
	if (c->stream == NULL)
		return;
	if (!c->cancelled) {
		c->cancelled = 1;
		grpc_call_cancel(c->stream, NULL);
	}
	if (c->main_busy || c->status_busy)
		return;
	grpc_call_unref(c->stream);
	c->stream = NULL;
	grpc_metadata_array_destroy(&c->smd_init);
	grpc_metadata_array_destroy(&c->smd_trail);
	grpc_slice_unref(c->sdetails);
}

static void go_revoke(struct lclient *c)
{
	close_stream(c);
	if (c->stream != NULL)
		return; /* on_status finishes the close and comes back here */
	if (c->id == 0) {
		c->state = L_DONE;
		c->t->live--;
		return;
	}
	c->state = L_REVOKE;
	Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	req.id = c->id;
	c->id = 0;
	if (unary_start(c, BENCH_M_LEASE_REVOKE, &req.base) != 0) {
		unary_finish(c, 1, "revoke");
		c->state = L_DONE;
		c->t->live--;
	}
}

/* Next round, or the end of this client. */
static void client_step(struct lclient *c)
{
	uint64_t n, due;
	if (c->stream == NULL || c->cancelled || bench_run_ticket(c->t->run, &n, &due) != 0) {
		go_revoke(c);
		return;
	}
	if (due > bench_now_ns()) {
		c->parked = 1;
		bench_thread_park(c->t, &c->main.tag, due);
		return;
	}
	send_round(c);
	if (!c->main_busy)
		go_revoke(c);
}

static void on_main(struct bench_tag *tag, int success)
{
	struct lclient *c = ((struct ltag *)tag)->c;
	if (c->parked) {
		c->parked = 0;
		send_round(c);
		if (!c->main_busy)
			go_revoke(c);
		return;
	}
	c->main_busy = 0;
	switch (c->state) {
	case L_GRANT: {
		int bad = unary_finish(c, success, "lease grant");
		Etcdserverpb__LeaseGrantResponse *gr = NULL;
		if (!bad && c->recv)
			gr = (Etcdserverpb__LeaseGrantResponse *)bench_msg_unpack(
				&etcdserverpb__lease_grant_response__descriptor, c->recv);
		if (!bad && (gr == NULL || gr->id == 0)) {
			lerror(c, GRPC_STATUS_INTERNAL, "lease grant: no lease id in the answer");
			bad = 1;
		}
		if (!bad)
			c->id = gr->id;
		if (gr)
			protobuf_c_message_free_unpacked(&gr->base, NULL);
		if (c->recv)
			grpc_byte_buffer_destroy(c->recv);
		c->recv = NULL;
		if (bad) {
			c->state = L_DONE;
			c->t->live--;
			return;
		}
		c->state = L_ROUND;
		open_stream(c);
		client_step(c);
		return;
	}
	case L_ROUND: {
		uint64_t lat = bench_now_ns() - c->t0;
		grpc_byte_buffer_destroy(c->send);
		c->send = NULL;
		if (!success || c->recv == NULL) {
			/* The stream ended; on_status reports why (unless we cancelled). */
			if (!c->cancelled)
				c->cancelled = 2; /* ended by the server */
			if (c->recv)
				grpc_byte_buffer_destroy(c->recv);
			c->recv = NULL;
			atomic_fetch_add_explicit(&c->t->done, 1, memory_order_relaxed);
			go_revoke(c);
			return;
		}
		Etcdserverpb__LeaseKeepAliveResponse *kr =
			(Etcdserverpb__LeaseKeepAliveResponse *)bench_msg_unpack(
				&etcdserverpb__lease_keep_alive_response__descriptor, c->recv);
		grpc_byte_buffer_destroy(c->recv);
		c->recv = NULL;
		if (kr == NULL)
			lerror(c, GRPC_STATUS_INTERNAL, "keepalive: answer does not parse");
		else if (kr->ttl <= 0)
			lerror(c, GRPC_STATUS_NOT_FOUND, "keepalive: lease not found (TTL <= 0)");
		else
			bench_stats_ok(&c->t->stats, BENCH_KIND_ALL, lat);
		if (kr)
			protobuf_c_message_free_unpacked(&kr->base, NULL);
		atomic_fetch_add_explicit(&c->t->done, 1, memory_order_relaxed);
		client_step(c);
		return;
	}
	case L_REVOKE:
		unary_finish(c, success, "lease revoke");
		if (c->recv)
			grpc_byte_buffer_destroy(c->recv);
		c->recv = NULL;
		c->state = L_DONE;
		c->t->live--;
		return;
	case L_DONE:
		return;
	}
}

static void on_status(struct bench_tag *tag, int success)
{
	struct lclient *c = ((struct ltag *)tag)->c;
	c->status_busy = 0;
	int ours = c->cancelled == 1 && c->scode == GRPC_STATUS_CANCELLED;
	if (!success) {
		lerror(c, GRPC_STATUS_UNKNOWN, "keepalive: status batch failed");
	} else if (c->scode != GRPC_STATUS_OK && !ours) {
		char *d = grpc_slice_to_c_string(c->sdetails);
		char msg[256];
		snprintf(msg, sizeof(msg), "keepalive stream: %s", d);
		gpr_free(d);
		lerror(c, c->scode, msg);
	}
	if (!c->cancelled)
		c->cancelled = 2;
	/* If a round is still outstanding, its completion moves on. */
	if (!c->main_busy && !c->parked && c->state == L_ROUND)
		go_revoke(c);
}

static void start_thread(struct bench_thread *t, void *ctx)
{
	struct lease_ctx *x = ctx;
	for (int i = t->index; i < x->o->clients; i += t->run->nthreads) {
		struct lclient *c = &x->clients[i];
		c->t = t;
		t->live++;
		Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
		req.ttl = x->o->lease_ttl;
		c->state = L_GRANT;
		if (unary_start(c, BENCH_M_LEASE_GRANT, &req.base) != 0) {
			unary_finish(c, 1, "grant");
			c->state = L_DONE;
			t->live--;
		}
	}
}

int bench_cmd_lease(const struct bench_opts *o, struct bench_conns *conns, struct bench_result *res)
{
	struct lease_ctx x = {.o = o, .conns = conns};
	x.clients = calloc((size_t)o->clients, sizeof(*x.clients));
	if (x.clients == NULL)
		return 1;
	for (int i = 0; i < o->clients; i++) {
		struct lclient *c = &x.clients[i];
		c->ctx = &x;
		c->index = i;
		c->main = (struct ltag){{on_main}, c};
		c->status = (struct ltag){{on_status}, c};
	}
	int nthreads = bench_default_threads(o);
	struct bench_run r;
	int rv = bench_run_init(&r, o, conns, nthreads, (o->clients + nthreads - 1) / nthreads);
	if (rv == 0) {
		r.start = start_thread;
		r.ctx = &x;
		r.label = o->cmd;
		r.show_progress = bench_show_progress(o);
		rv = bench_run_start(&r);
	}
	if (rv == 0) {
		bench_run_wait(&r, o->duration);
		bench_run_result(&r, res);
	} else {
		fprintf(stderr, "metad-bench: cannot start the run\n");
	}
	bench_run_close(&r);
	free(x.clients);
	return rv;
}
