/*
 * tools/bench/null_server.c — `metad-bench serve-null`: a trivial gRPC
 * server that answers every unary call at once with an empty message (a
 * valid, all-default etcd response) and status OK.
 *
 * It exists to measure the tool's own ceiling: metad-bench against this
 * server shows how many requests/s the client side can drive on this
 * machine when the server does no work, to compare with what etcd and metad
 * serve. One batch per call (receive the request, send the answer and the
 * status) keeps the server's cost per request as low as gRPC core allows.
 *
 * With --reply-thread the completion-queue thread hands each call to a
 * second thread that starts that batch, as metad answers a write from the
 * thread that applied it: what the hand-off alone costs in gRPC core.
 */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmds.h"
#include "run.h"

enum { NS_REQUESTED, NS_SERVING };

struct ncall {
	int state;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_byte_buffer *recv, *send;
	int cancelled;
	struct ncall *next; /* queued for the reply thread */
};

struct nthread {
	grpc_server *server;
	grpc_completion_queue *cq;
	pthread_t tid;
	_Atomic uint64_t served;
};

static int shutdown_tag;
static _Atomic int shutdown_done;

/* --reply-thread: calls waiting for the reply thread, newest first. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ncall *head;
	int stop;
	struct nthread *t; /* whose count the replies go to */
} rq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, NULL};
static int use_reply_thread;

static int arm(struct nthread *t)
{
	struct ncall *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return 1;
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	if (grpc_server_request_call(t->server, &c->call, &c->details, &c->md, t->cq, t->cq, c) !=
	    GRPC_CALL_OK) {
		grpc_call_details_destroy(&c->details);
		grpc_metadata_array_destroy(&c->md);
		free(c);
		return 1;
	}
	return 0;
}

static void free_call(struct ncall *c)
{
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	if (c->send)
		grpc_byte_buffer_destroy(c->send);
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	free(c);
}

static void serve(struct nthread *t, struct ncall *c)
{
	grpc_slice empty = grpc_empty_slice();
	c->send = grpc_raw_byte_buffer_create(&empty, 0);
	grpc_op ops[5];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &c->recv;
	ops[2].op = GRPC_OP_SEND_MESSAGE;
	ops[2].data.send_message.send_message = c->send;
	ops[3].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[3].data.send_status_from_server.status = GRPC_STATUS_OK;
	ops[4].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[4].data.recv_close_on_server.cancelled = &c->cancelled;
	c->state = NS_SERVING;
	if (grpc_call_start_batch(c->call, ops, 5, c, NULL) != GRPC_CALL_OK) {
		fprintf(stderr, "metad-bench serve-null: grpc_call_start_batch failed\n");
		free_call(c);
		return;
	}
	atomic_fetch_add_explicit(&t->served, 1, memory_order_relaxed);
}

static void *thread_main(void *arg)
{
	struct nthread *t = arg;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
							   NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &shutdown_tag) {
			atomic_store(&shutdown_done, 1);
			continue;
		}
		struct ncall *c = ev.tag;
		if (c->state == NS_REQUESTED) {
			if (!ev.success) { /* the server is shutting down */
				free_call(c);
				continue;
			}
			arm(t); /* keep a request outstanding before serving this one */
			if (use_reply_thread) {
				pthread_mutex_lock(&rq.mu);
				c->next = rq.head;
				rq.head = c;
				pthread_cond_signal(&rq.cv);
				pthread_mutex_unlock(&rq.mu);
			} else {
				serve(t, c);
			}
		} else {
			free_call(c);
		}
	}
}

static void *reply_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&rq.mu);
	for (;;) {
		while (rq.head == NULL && !rq.stop)
			pthread_cond_wait(&rq.cv, &rq.mu);
		struct ncall *l = rq.head;
		rq.head = NULL;
		if (l == NULL)
			break; /* stopping, nothing left */
		pthread_mutex_unlock(&rq.mu);
		while (l != NULL) {
			struct ncall *c = l;
			l = c->next;
			serve(rq.t, c);
		}
		pthread_mutex_lock(&rq.mu);
	}
	pthread_mutex_unlock(&rq.mu);
	return NULL;
}

int bench_cmd_serve_null(const struct bench_opts *o)
{
	/* One polling CQ thread by default, as metad serves unary calls: with two,
	 * a completion for the CQ whose thread is not polling costs a kick and a
	 * wake-up (status ceiling ~86k -> ~94k req/s here). */
	int nthreads = o->threads > 0 ? o->threads : 1;
	struct nthread *ts = calloc((size_t)nthreads, sizeof(*ts));
	if (ts == NULL)
		return 1;
	grpc_arg args[] = {
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_CHANNELZ, .value.integer = 0},
	};
	grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
	grpc_server *server = grpc_server_create(&cargs, NULL);
	for (int i = 0; i < nthreads; i++) {
		ts[i].server = server;
		ts[i].cq = grpc_completion_queue_create_for_next(NULL);
		grpc_server_register_completion_queue(server, ts[i].cq, NULL);
	}
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	int port = grpc_server_add_http2_port(server, o->endpoints[0], creds);
	grpc_server_credentials_release(creds);
	int rv = 1;
	if (port == 0) {
		fprintf(stderr, "metad-bench serve-null: cannot listen on %s\n", o->endpoints[0]);
	} else {
		grpc_server_start(server);
		/* Enough outstanding requests per CQ that no call waits for one. */
		for (int i = 0; i < nthreads; i++)
			for (int k = 0; k < 64; k++)
				arm(&ts[i]);
		pthread_t rt;
		use_reply_thread = o->reply_thread && pthread_create(&rt, NULL, reply_main, NULL) == 0;
		rq.t = &ts[0];
		for (int i = 0; i < nthreads; i++)
			pthread_create(&ts[i].tid, NULL, thread_main, &ts[i]);
		fprintf(stderr,
			"metad-bench serve-null: listening on %s (%d threads%s); Ctrl-C stops\n",
			o->endpoints[0], nthreads, use_reply_thread ? ", a reply thread" : "");
		uint64_t t0 = bench_now_ns();
		while (!bench_interrupted() &&
		       (o->duration == 0 || bench_now_ns() - t0 < (uint64_t)(o->duration * 1e9))) {
			struct timespec ts100 = {0, 100 * 1000000L};
			nanosleep(&ts100, NULL);
		}
		/* Shutdown must complete (its tag dequeued, on a registered CQ)
		 * before destroy; thread 0 sees the tag and sets the flag. */
		grpc_server_shutdown_and_notify(server, ts[0].cq, &shutdown_tag);
		grpc_server_cancel_all_calls(server);
		while (!atomic_load(&shutdown_done)) {
			struct timespec ts10 = {0, 10 * 1000000L};
			nanosleep(&ts10, NULL);
		}
		if (use_reply_thread) { /* it answers what is queued, before the CQs go */
			pthread_mutex_lock(&rq.mu);
			rq.stop = 1;
			pthread_cond_signal(&rq.cv);
			pthread_mutex_unlock(&rq.mu);
			pthread_join(rt, NULL);
		}
		rv = 0;
	}
	grpc_server_destroy(server);
	uint64_t served = 0;
	for (int i = 0; i < nthreads; i++)
		grpc_completion_queue_shutdown(ts[i].cq);
	for (int i = 0; i < nthreads; i++) {
		if (rv == 0) {
			pthread_join(ts[i].tid, NULL); /* it drains its CQ to SHUTDOWN */
			served += atomic_load(&ts[i].served);
		} else {
			while (grpc_completion_queue_next(ts[i].cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
							  NULL).type != GRPC_QUEUE_SHUTDOWN)
				;
		}
	}
	for (int i = 0; i < nthreads; i++)
		grpc_completion_queue_destroy(ts[i].cq);
	free(ts);
	if (rv == 0)
		fprintf(stderr, "metad-bench serve-null: served %llu calls\n", (unsigned long long)served);
	return rv;
}
