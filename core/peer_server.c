/*
 * core/peer_server.c — incoming peer streams: check the sender's cluster,
 * then hand each message to the recv callback, in order, on the polling
 * thread (core/poller.h).
 *
 * A struct peer_in lives from its request_call until the last of its batches
 * has completed; only the polling thread touches it (gRPC idiom 10: the call's
 * events all come to its one CQ), so it needs no lock. The one exception, a
 * SAN check that needs a reverse DNS lookup, runs on a thread of its own
 * (peer_tls.c) that writes san_ok and hands back through the queue.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include "core/peer_internal.h"

struct peer_in {
	struct peer_transport *t;
	struct core_tag new_tag;   /* request_call */
	struct core_tag recv_tag;  /* RECV_MESSAGE, re-armed after each message */
	struct core_tag close_tag; /* SEND_INITIAL_METADATA + RECV_CLOSE_ON_SERVER (+ status) */
	struct core_tag status_tag; /* SEND_STATUS_FROM_SERVER after a half-close */
	struct core_tag san_tag;   /* the SAN check's reverse lookup is done */
	bool san_ok;
	int pending;               /* batches started and not yet completed */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *buf;
	grpc_metadata accepted_md;
	grpc_slice details;
	int cancelled;
	uint64_t from;
};

static void on_new(struct core_tag *tag, bool ok);
static void on_recv(struct core_tag *tag, bool ok);
static void on_close(struct core_tag *tag, bool ok);
static void on_status(struct core_tag *tag, bool ok);
static void on_san(struct core_tag *tag, bool ok);

static void in_free(struct peer_in *in)
{
	struct peer_transport *t = in->t;
	if (in->buf)
		grpc_byte_buffer_destroy(in->buf);
	grpc_metadata_array_destroy(&in->md);
	grpc_slice_unref(in->details);
	if (in->call)
		grpc_call_unref(in->call);
	free(in);
	pthread_mutex_lock(&t->mu);
	peer_live_drop_locked(t, &t->live_in);
	pthread_mutex_unlock(&t->mu);
}

/* Called after each of in's completions. */
static void in_done(struct peer_in *in)
{
	if (--in->pending == 0)
		in_free(in);
}

static bool start(struct peer_in *in, const grpc_op *ops, size_t n, struct core_tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(in->call, ops, n, tag, NULL);
	if (e != GRPC_CALL_OK) {
		/* No completion will come (grpc.h): a bug, reported and survived. */
		core_log("error", "peer stream: start_batch failed: %d", (int)e);
		return false;
	}
	in->pending++;
	return true;
}

void peer_server_arm(struct peer_transport *t)
{
	struct peer_in *in = calloc(1, sizeof(*in));
	if (in == NULL) {
		core_log("error", "peer transport: out of memory accepting a stream");
		return;
	}
	in->t = t;
	in->new_tag.fn = on_new;
	in->recv_tag.fn = on_recv;
	in->close_tag.fn = on_close;
	in->status_tag.fn = on_status;
	in->san_tag.fn = on_san;
	in->details = grpc_empty_slice();
	grpc_metadata_array_init(&in->md);
	pthread_mutex_lock(&t->mu);
	t->live_in++;
	pthread_mutex_unlock(&t->mu);
	grpc_call_error e = grpc_server_request_registered_call(t->server, t->method, &in->call, &in->deadline,
								&in->md, NULL, t->cq, t->cq, &in->new_tag);
	if (e != GRPC_CALL_OK) {
		core_log("error", "peer transport: request_call failed: %d", (int)e);
		in_free(in);
		return;
	}
	in->pending = 1;
}

/* The metadata value of key as a hex number; false if absent or not hex. */
bool peer_md_hex(const grpc_metadata_array *md, const char *key, uint64_t *out)
{
	for (size_t i = 0; i < md->count; i++) {
		if (grpc_slice_str_cmp(md->metadata[i].key, key) != 0)
			continue;
		const grpc_slice v = md->metadata[i].value;
		size_t n = GRPC_SLICE_LENGTH(v);
		char buf[17];
		if (n == 0 || n >= sizeof(buf))
			return false;
		memcpy(buf, GRPC_SLICE_START_PTR(v), n);
		buf[n] = 0;
		char *end;
		*out = strtoull(buf, &end, 16);
		return *end == 0;
	}
	return false;
}

static void refuse(struct peer_in *in, grpc_status_code code, const char *msg)
{
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[1].data.send_status_from_server.status = code;
	in->details = grpc_slice_from_static_string(msg);
	ops[1].data.send_status_from_server.status_details = &in->details;
	ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[2].data.recv_close_on_server.cancelled = &in->cancelled;
	start(in, ops, 3, &in->close_tag);
}

static void arm_recv(struct peer_in *in)
{
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &in->buf;
	start(in, &op, 1, &in->recv_tag);
}

static void log_refusal(struct peer_in *in, uint64_t cluster)
{
	struct peer_transport *t = in->t;
	int64_t now = peer_now_ms();
	if (t->refusal_logged_ms != 0 && now - t->refusal_logged_ms < PEER_REFUSAL_LOG_MS) {
		t->refusals_quiet++;
		return;
	}
	char *peer = grpc_call_get_peer(in->call);
	char quiet[64] = "";
	if (t->refusals_quiet > 0)
		snprintf(quiet, sizeof(quiet), "; %lu more since the last report", t->refusals_quiet);
	core_log("warn", "peer stream from %s refused: %s (remote cluster %" PRIx64 ", local %" PRIx64 "%s)",
		peer ? peer : "?", PEER_ERR_CLUSTER_MISMATCH, cluster, t->cluster_id, quiet);
	gpr_free(peer);
	t->refusal_logged_ms = now;
	t->refusals_quiet = 0;
}

/* The request_call's completion, once the sender's certificate is judged. */
static void take_or_refuse(struct peer_in *in, bool san_ok)
{
	struct peer_transport *t = in->t;
	uint64_t cluster = 0;
	bool has_cluster = peer_md_hex(&in->md, PEER_MD_CLUSTER, &cluster);
	if (!san_ok) {
		refuse(in, GRPC_STATUS_UNAUTHENTICATED, PEER_ERR_SAN);
	} else if (!has_cluster || cluster != t->cluster_id) {
		log_refusal(in, cluster);
		refuse(in, GRPC_STATUS_FAILED_PRECONDITION, PEER_ERR_CLUSTER_MISMATCH);
	} else if (!peer_md_hex(&in->md, PEER_MD_FROM, &in->from)) {
		refuse(in, GRPC_STATUS_INVALID_ARGUMENT, "missing sender member ID");
	} else {
		grpc_op ops[2];
		memset(ops, 0, sizeof(ops));
		in->accepted_md.key = grpc_slice_from_static_string(PEER_MD_ACCEPTED);
		in->accepted_md.value = grpc_slice_from_static_string("1");
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[0].data.send_initial_metadata.count = 1;
		ops[0].data.send_initial_metadata.metadata = &in->accepted_md;
		ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[1].data.recv_close_on_server.cancelled = &in->cancelled;
		if (start(in, ops, 2, &in->close_tag))
			arm_recv(in);
		peer_client_heard(t, in->from);
	}
	in_done(in); /* the request_call's completion */
}

static void on_new(struct core_tag *tag, bool ok)
{
	struct peer_in *in = PEER_CONTAINER(tag, struct peer_in, new_tag);
	struct peer_transport *t = in->t;
	if (!ok) {
		/* The server is shutting down: no call came, and none will. */
		in_done(in);
		return;
	}
	peer_server_arm(t); /* idiom 5: the next stream can arrive meanwhile */
	in->pending++; /* the lookup's batch, if it comes to that */
	int san = peer_call_san_ok_async(t, in->call, &in->san_ok, &in->san_tag);
	if (san < 0)
		return; /* on_san goes on */
	in->pending--;
	take_or_refuse(in, san == 1);
}

static void on_san(struct core_tag *tag, bool ok)
{
	(void)ok; /* a cancelled call fails the batches started next */
	struct peer_in *in = PEER_CONTAINER(tag, struct peer_in, san_tag);
	take_or_refuse(in, in->san_ok);
	in_done(in); /* the lookup's batch */
}

static void on_recv(struct core_tag *tag, bool ok)
{
	struct peer_in *in = PEER_CONTAINER(tag, struct peer_in, recv_tag);
	grpc_byte_buffer *bb = in->buf;
	in->buf = NULL;
	if (ok && bb != NULL) {
		grpc_byte_buffer_reader rd;
		grpc_slice s = grpc_empty_slice();
		if (grpc_byte_buffer_reader_init(&rd, bb)) {
			s = grpc_byte_buffer_reader_readall(&rd);
			grpc_byte_buffer_reader_destroy(&rd);
		}
		grpc_byte_buffer_destroy(bb);
		in->t->recv(in->t->arg, in->from, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s));
		grpc_slice_unref(s);
		arm_recv(in);
	} else if (ok) {
		/* The sender half-closed (it does not today): end the call. */
		grpc_op op;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		op.data.send_status_from_server.status = GRPC_STATUS_OK;
		start(in, &op, 1, &in->status_tag);
	} else if (bb != NULL) {
		grpc_byte_buffer_destroy(bb);
	}
	/* !ok: the stream is gone (cancel, reset, shutdown); close completes. */
	in_done(in);
}

static void on_close(struct core_tag *tag, bool ok)
{
	(void)ok;
	in_done(PEER_CONTAINER(tag, struct peer_in, close_tag));
}

static void on_status(struct core_tag *tag, bool ok)
{
	(void)ok;
	in_done(PEER_CONTAINER(tag, struct peer_in, status_tag));
}
