/*
 * etcdapi/watch.c — the Watch service: a bidi stream whose requests go to
 * core's watch hub and whose responses come back, packed, through the sink.
 *
 * References on the api_stream: the owner's (dropped when core says the
 * stream is closed) plus gRPC's per batch. core_watch_sent is reported for
 * every delivered byte so the hub can keep each stream within its budget.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "etcdapi/authz.h"
#include "etcdapi/stream.h"
#include "etcdapi/stream_methods.h"

#include "rpc.pb-c.h"

struct watch_call {
	struct api_stream *st;
	struct core_watch_stream *ws;
	_Atomic bool closing; /* core_watch_close was called: no more core_watch_sent */
	/* Cost (bytes + CORE_WATCH_MSG_OVERHEAD each) of messages this file
	 * sent itself (denied creates): core never charged them to the
	 * stream's budget, so they are kept out of what core_watch_sent frees. */
	_Atomic size_t local;
};

static void sink_send(void *arg, const uint8_t *data, size_t len)
{
	struct watch_call *wc = arg;
	api_stream_send(wc->st, data, len);
}

static void sink_closed(void *arg)
{
	struct watch_call *wc = arg;
	api_stream_unref(wc->st); /* the owner's reference */
}

static const struct core_watch_sink sink = {sink_send, sink_closed};

static bool w_recv(struct api_stream *st, const uint8_t *data, size_t len)
{
	struct watch_call *wc = st->owner;
	if (wc->ws == NULL)
		return false;
	Etcdserverpb__WatchRequest *q = etcdserverpb__watch_request__unpack(NULL, len, data);
	if (q == NULL) {
		api_stream_finish(st, GRPC_STATUS_INTERNAL, "grpc: error unmarshalling request");
		return false;
	}
	int denied = q->request_union_case == ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST
			     ? api_authz_watch(st->call, q->create_request->key.data,
					       q->create_request->key.len,
					       q->create_request->range_end.data,
					       q->create_request->range_end.len)
			     : CORE_OK;
	if (denied != CORE_OK) {
		/* etcd answers a denied create with a cancelled watcher, not an
		 * error that would end the stream's other watchers. */
		Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		core_fill_header(api_core(st->call), &h, 0);
		Etcdserverpb__WatchResponse resp = ETCDSERVERPB__WATCH_RESPONSE__INIT;
		resp.header = &h;
		resp.watch_id = -1;
		resp.created = 1;
		resp.canceled = 1;
		resp.cancel_reason = (char *)api_watch_cancel_reason(denied);
		atomic_fetch_add(&wc->local, etcdserverpb__watch_response__get_packed_size(&resp) +
						     CORE_WATCH_MSG_OVERHEAD);
		api_stream_send_msg(st, &resp.base);
	} else {
		core_watch_request(wc->ws, q);
	}
	etcdserverpb__watch_request__free_unpacked(q, NULL);
	return true;
}

static void w_recv_end(struct api_stream *st, bool eof)
{
	(void)eof;
	struct watch_call *wc = st->owner;
	/* The call is over (the client cancelled or left, or the server
	 * stops). A half-close alone does not end it: etcd's recvLoop returns
	 * nil at EOF and its Watch keeps sending until the stream's context
	 * ends (ops.outlives_half_close). */
	api_stream_finish(st, GRPC_STATUS_OK, NULL);
	if (wc->ws != NULL && !atomic_exchange(&wc->closing, true))
		core_watch_close(wc->ws);
}

static void w_sent(struct api_stream *st, size_t len, size_t msgs)
{
	struct watch_call *wc = st->owner;
	/* recv_end and this run on the call's CQ thread, or on the hub thread
	 * inside sink_send, while the hub still holds the stream. */
	size_t cost = len + msgs * CORE_WATCH_MSG_OVERHEAD;
	size_t local = atomic_load(&wc->local), take;
	do /* credit core only with what it was charged */
		take = local < cost ? local : cost;
	while (take > 0 && !atomic_compare_exchange_weak(&wc->local, &local, local - take));
	if (!atomic_load(&wc->closing) && cost > take)
		core_watch_sent(wc->ws, cost - take);
}

static void w_release(struct api_stream *st)
{
	free(st->owner);
}

static const struct api_stream_ops ops = {w_recv, w_recv_end, w_sent, w_release, true};

static void watch(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	struct watch_call *wc = calloc(1, sizeof(*wc));
	if (wc == NULL) {
		api_finish_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		return;
	}
	struct core *core = api_core(call);
	/* Completions of this call run on this CQ thread, after we return: the
	 * first RECV cannot complete before wc is filled in. */
	wc->st = api_stream_open(call, &ops, wc, true);
	if (wc->st == NULL) {
		free(wc);
		return;
	}
	wc->ws = core_watch_open(core, &sink, wc);
	if (wc->ws == NULL) {
		atomic_store(&wc->closing, true);
		api_stream_finish(wc->st, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		api_stream_unref(wc->st);
	}
}

struct api_method api_watch_methods[] = {
	{"/etcdserverpb.Watch/Watch", NULL, watch, 1, 8, NULL, 0},
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};
