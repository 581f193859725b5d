/*
 * etcdapi/stream.c — streaming calls: RECV loop, send FIFO, status, refs.
 *
 * STYLE.md gRPC idioms 6, 7 and 10: one RECV armed, one SEND in flight with
 * the rest in a FIFO (the next send starts from the previous completion),
 * the first batch is SEND_INITIAL_METADATA + RECV_CLOSE_ON_SERVER, and every
 * start_batch is made under the stream's lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>

#include "etcdapi/metrics.h"
#include "etcdapi/stream.h"

struct api_stream_msg {
	struct api_stream_msg *next;
	grpc_byte_buffer *bb;
	size_t len;
};

/* Every live stream, so server shutdown can end them (they never end on
 * their own, and gRPC's shutdown waits for every call). */
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static struct api_stream *all_head;
static bool all_stopping;

static void on_recv(struct core_tag *t, bool success);
static void on_send(struct core_tag *t, bool success);
static void on_close(struct core_tag *t, bool success);
static void on_status(struct core_tag *t, bool success);

static void drop_ref_locked(struct api_stream *st, bool *last)
{
	*last = --st->refs == 0;
}

/* Drop every queued (not in-flight) message; returns their bytes, and their
 * number in *count. Caller holds mu, or is the last owner. */
static size_t drop_queued_locked(struct api_stream *st, size_t *count)
{
	size_t bytes = 0, n = 0;
	while (st->head) {
		struct api_stream_msg *d = st->head;
		st->head = d->next;
		bytes += d->len;
		n++;
		grpc_byte_buffer_destroy(d->bb);
		free(d);
	}
	st->tail = NULL;
	st->queued_bytes -= bytes;
	if (count)
		*count = n;
	return bytes;
}

static const char *path_of(const struct api_stream *st)
{
	return st->call->method ? st->call->method->path : NULL;
}

static void destroy(struct api_stream *st)
{
	/* As grpc-go-prometheus: handled once, with the status the client got,
	 * or Canceled when the client went away first (etcd's handler then
	 * returns the context's error). */
	bool got = st->status_out && !st->cancelled;
	api_metrics_handled(path_of(st), got ? (int)st->status : GRPC_STATUS_CANCELLED, 0,
			    st->call->metrics_t0);
	pthread_mutex_lock(&all_mu);
	if (st->all_prev)
		st->all_prev->all_next = st->all_next;
	else
		all_head = st->all_next;
	if (st->all_next)
		st->all_next->all_prev = st->all_prev;
	pthread_mutex_unlock(&all_mu);
	if (st->ops->release)
		st->ops->release(st);
	drop_queued_locked(st, NULL);
	if (st->recv_buf)
		grpc_byte_buffer_destroy(st->recv_buf);
	grpc_slice_unref(st->status_slice);
	free(st->status_msg);
	pthread_mutex_destroy(&st->mu);
	api_call_free(st->call);
	free(st);
}

void api_stream_ref(struct api_stream *st)
{
	pthread_mutex_lock(&st->mu);
	st->refs++;
	pthread_mutex_unlock(&st->mu);
}

void api_stream_unref(struct api_stream *st)
{
	bool last;
	pthread_mutex_lock(&st->mu);
	drop_ref_locked(st, &last);
	pthread_mutex_unlock(&st->mu);
	if (last)
		destroy(st);
}

/* Start a one-op batch for tag; takes a reference. Caller holds mu. */
static bool start_locked(struct api_stream *st, grpc_op *ops, size_t n, struct api_stream_tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(st->call->call, ops, n, tag, NULL);
	if (e != GRPC_CALL_OK) {
		/* No completion will come (grpc.h): a bug, reported and survived. */
		core_log("error", "stream start_batch failed: %d", (int)e);
		return false;
	}
	st->refs++;
	return true;
}

static void arm_recv_locked(struct api_stream *st)
{
	/* Once finishing, nothing new is started: at server shutdown the CQ may
	 * be shut down as soon as the status is out, and a batch started then
	 * is a gRPC assertion. recv_end still comes from the close batch. */
	if (st->recv_armed || st->recv_done || st->closed || st->finishing)
		return;
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &st->recv_buf;
	st->recv_armed = start_locked(st, &op, 1, &st->recv_tag);
}

static void send_status_locked(struct api_stream *st)
{
	if (st->status_sent || st->inflight != NULL)
		return;
	st->status_sent = true;
	if (st->closed)
		return; /* the call is over: nobody to tell */
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op.data.send_status_from_server.status = st->status;
	st->status_slice = grpc_slice_from_copied_string(st->status_msg ? st->status_msg : "");
	op.data.send_status_from_server.status_details =
		st->status_msg && *st->status_msg ? &st->status_slice : NULL;
	st->status_out = start_locked(st, &op, 1, &st->status_tag);
}

/* Start the next queued send, or the status if finishing. Caller holds mu. */
static void pump_locked(struct api_stream *st)
{
	if (st->inflight != NULL || st->status_sent)
		return;
	if (st->head != NULL && !st->closed) {
		struct api_stream_msg *m = st->head;
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_MESSAGE;
		op.data.send_message.send_message = m->bb;
		/* More queued behind it (a watch event for each of a stream's
		 * watchers): gRPC may hold this one for the same socket write and
		 * completes it without waiting; the last one, unhinted, flushes. */
		if (m->next != NULL)
			op.flags = GRPC_WRITE_BUFFER_HINT;
		if (start_locked(st, &op, 1, &st->send_tag)) {
			st->head = m->next;
			if (st->head == NULL)
				st->tail = NULL;
			st->inflight = m;
			return;
		}
	}
	if (st->finishing)
		send_status_locked(st);
}

struct api_stream *api_stream_open(struct api_call *call, const struct api_stream_ops *ops,
				   void *owner, bool recv)
{
	struct api_stream *st = calloc(1, sizeof(*st));
	if (st == NULL) {
		api_finish_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		return NULL;
	}
	st->call = call;
	st->ops = ops;
	st->owner = owner;
	st->refs = 1;
	st->leader_required = api_call_wants_leader(call);
	st->status_slice = grpc_empty_slice();
	pthread_mutex_init(&st->mu, NULL);
	st->recv_tag = (struct api_stream_tag){{on_recv}, st};
	st->send_tag = (struct api_stream_tag){{on_send}, st};
	st->close_tag = (struct api_stream_tag){{on_close}, st};
	st->status_tag = (struct api_stream_tag){{on_status}, st};
	grpc_op ops2[2];
	memset(ops2, 0, sizeof(ops2));
	ops2[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops2[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops2[1].data.recv_close_on_server.cancelled = &st->cancelled;
	pthread_mutex_lock(&all_mu);
	bool stopping = all_stopping;
	st->all_next = all_head;
	if (all_head)
		all_head->all_prev = st;
	all_head = st;
	pthread_mutex_unlock(&all_mu);
	pthread_mutex_lock(&st->mu);
	if (!start_locked(st, ops2, 2, &st->close_tag))
		st->closed = true;
	if (stopping) {
		st->finishing = true;
		st->status = GRPC_STATUS_UNAVAILABLE;
		st->status_msg = strdup("etcdserver: server stopped");
		pump_locked(st);
	}
	if (recv)
		arm_recv_locked(st);
	else
		st->recv_done = true;
	pthread_mutex_unlock(&st->mu);
	return st;
}

void api_stream_send(struct api_stream *st, const uint8_t *data, size_t len)
{
	pthread_mutex_lock(&st->mu);
	if (st->closed || st->finishing) {
		pthread_mutex_unlock(&st->mu);
		if (st->ops->sent)
			st->ops->sent(st, len, 1);
		return;
	}
	struct api_stream_msg *m = malloc(sizeof(*m));
	grpc_slice s = grpc_slice_malloc(len);
	memcpy(GRPC_SLICE_START_PTR(s), data, len);
	if (m != NULL) {
		m->bb = grpc_raw_byte_buffer_create(&s, 1);
		m->len = len;
		m->next = NULL;
		if (st->tail)
			st->tail->next = m;
		else
			st->head = m;
		st->tail = m;
		st->queued_bytes += len;
	}
	grpc_slice_unref(s);
	pump_locked(st);
	pthread_mutex_unlock(&st->mu);
	if (m == NULL && st->ops->sent)
		st->ops->sent(st, len, 1);
}

void api_stream_send_msg(struct api_stream *st, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t stackbuf[512];
	uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
	if (buf == NULL)
		return;
	protobuf_c_message_pack(msg, buf);
	api_stream_send(st, buf, len);
	if (buf != stackbuf)
		free(buf);
}

void api_stream_finish(struct api_stream *st, grpc_status_code code, const char *msg)
{
	pthread_mutex_lock(&st->mu);
	if (!st->finishing) {
		st->finishing = true;
		st->status = code;
		st->status_msg = msg ? strdup(msg) : NULL;
		pump_locked(st);
	}
	pthread_mutex_unlock(&st->mu);
}

void api_stream_end_ok(struct api_stream *st, bool eof)
{
	(void)eof;
	api_stream_finish(st, GRPC_STATUS_OK, NULL);
	api_stream_unref(st);
}

void api_stream_recv_resume(struct api_stream *st)
{
	pthread_mutex_lock(&st->mu);
	arm_recv_locked(st);
	pthread_mutex_unlock(&st->mu);
}

size_t api_stream_queued(struct api_stream *st)
{
	pthread_mutex_lock(&st->mu);
	size_t n = st->queued_bytes;
	pthread_mutex_unlock(&st->mu);
	return n;
}

/* ---- completions (the call's CQ thread) ---- */

static void end_recv(struct api_stream *st, bool eof)
{
	pthread_mutex_lock(&st->mu);
	bool tell = !st->recv_ended && !(eof && st->ops->outlives_half_close);
	if (tell)
		st->recv_ended = true;
	st->recv_done = true;
	pthread_mutex_unlock(&st->mu);
	if (tell)
		st->ops->recv_end(st, eof);
}

static void on_recv(struct core_tag *t, bool success)
{
	struct api_stream *st = ((struct api_stream_tag *)t)->st;
	pthread_mutex_lock(&st->mu);
	st->recv_armed = false;
	grpc_byte_buffer *bb = st->recv_buf;
	st->recv_buf = NULL;
	pthread_mutex_unlock(&st->mu);
	char refused[128];
	grpc_status_code code;
	if (!success || bb == NULL) {
		/* NULL message: the client half-closed. */
		if (bb)
			grpc_byte_buffer_destroy(bb);
		end_recv(st, success && bb == NULL);
	} else if (api_recv_refused(st->call->srv, bb, &code, refused, sizeof(refused))) {
		/* grpc-go fails the stream's receive; etcd's handler returns it. */
		grpc_byte_buffer_destroy(bb);
		api_stream_finish(st, code, refused);
		end_recv(st, false);
	} else {
		grpc_byte_buffer_reader rd;
		grpc_slice s = grpc_empty_slice();
		if (grpc_byte_buffer_reader_init(&rd, bb)) {
			s = grpc_byte_buffer_reader_readall(&rd);
			grpc_byte_buffer_reader_destroy(&rd);
		}
		grpc_byte_buffer_destroy(bb);
		api_metrics_msg(path_of(st), false, GRPC_SLICE_LENGTH(s));
		bool more = st->ops->recv(st, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
		grpc_slice_unref(s);
		if (more)
			api_stream_recv_resume(st);
	}
	api_stream_unref(st);
}

static void on_send(struct core_tag *t, bool success)
{
	struct api_stream *st = ((struct api_stream_tag *)t)->st;
	pthread_mutex_lock(&st->mu);
	struct api_stream_msg *m = st->inflight;
	st->inflight = NULL;
	size_t len = m ? m->len : 0;
	st->queued_bytes -= len;
	if (!success)
		st->closed = true; /* the transport is gone: drop the rest */
	size_t dropped = 0, ndropped = 0;
	if (st->closed)
		dropped = drop_queued_locked(st, &ndropped);
	pump_locked(st);
	pthread_mutex_unlock(&st->mu);
	if (m) {
		if (success)
			api_metrics_msg(path_of(st), true, m->len);
		grpc_byte_buffer_destroy(m->bb);
		free(m);
	}
	if (st->ops->sent && (m != NULL || ndropped > 0))
		st->ops->sent(st, len + dropped, (m != NULL) + ndropped);
	api_stream_unref(st);
}

static void on_close(struct core_tag *t, bool success)
{
	(void)success;
	struct api_stream *st = ((struct api_stream_tag *)t)->st;
	size_t ndropped;
	pthread_mutex_lock(&st->mu);
	st->closed = true;
	/* Nothing queued will go out now (an in-flight send fails on its own). */
	size_t dropped = drop_queued_locked(st, &ndropped);
	pthread_mutex_unlock(&st->mu);
	if (st->ops->sent && ndropped > 0)
		st->ops->sent(st, dropped, ndropped);
	end_recv(st, false);
	api_stream_unref(st);
}

static void on_status(struct core_tag *t, bool success)
{
	(void)success;
	api_stream_unref(((struct api_stream_tag *)t)->st);
}

void api_stream_end_leaderless(void)
{
	pthread_mutex_lock(&all_mu);
	for (struct api_stream *st = all_head; st; st = st->all_next)
		if (st->leader_required)
			api_stream_finish(st, GRPC_STATUS_UNAVAILABLE, "etcdserver: no leader");
	pthread_mutex_unlock(&all_mu);
}

void api_stream_shutdown_all(void)
{
	pthread_mutex_lock(&all_mu);
	all_stopping = true;
	for (struct api_stream *st = all_head; st; st = st->all_next)
		api_stream_finish(st, GRPC_STATUS_UNAVAILABLE, "etcdserver: server stopped");
	pthread_mutex_unlock(&all_mu);
}
