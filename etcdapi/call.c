/*
 * etcdapi/call.c — the life of one call: requested, decoded, answered, freed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/support/alloc.h>

#include "etcdapi/call.h"
#include "etcdapi/handback.h"
#include "etcdapi/metrics.h"
#include "etcdapi/stream_methods.h"
#include "etcdapi/wire.h"

static void call_event(struct core_tag *tag, bool success);

/*
 * Live api_call structs. gRPC's shutdown notification comes once every
 * transport is gone, which can be before our last completion is handled; a
 * handler that then starts a batch on a shut-down CQ trips a gRPC assertion.
 * api_stop waits for this to reach zero before shutting the CQs down.
 */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static long live_calls;

static void live_add(long d)
{
	pthread_mutex_lock(&live_mu);
	live_calls += d;
	if (live_calls == 0)
		pthread_cond_broadcast(&live_cv);
	pthread_mutex_unlock(&live_mu);
}

long api_calls_wait_idle(gpr_timespec deadline)
{
	struct timespec ts;
	gpr_timespec d = gpr_convert_clock_type(deadline, GPR_CLOCK_REALTIME);
	ts.tv_sec = (time_t)d.tv_sec;
	ts.tv_nsec = d.tv_nsec;
	pthread_mutex_lock(&live_mu);
	while (live_calls > 0 && pthread_cond_timedwait(&live_cv, &live_mu, &ts) == 0)
		;
	long left = live_calls;
	pthread_mutex_unlock(&live_mu);
	return left;
}

void api_call_arm(struct api_server *srv, grpc_completion_queue *cq, struct api_method *m)
{
	struct api_call *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		core_log("error", "out of memory arming a call");
		return;
	}
	live_add(1);
	c->tag.fn = call_event;
	c->state = CALL_NEW;
	c->srv = srv;
	c->cq = cq;
	c->method = m;
	grpc_metadata_array_init(&c->md);
	grpc_call_error e;
	if (m != NULL) {
		e = grpc_server_request_registered_call(api_grpc_server(srv), m->registered, &c->call,
							&c->deadline, &c->md,
							m->client_stream ? NULL : &c->payload, cq, cq, c);
	} else {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(api_grpc_server(srv), &c->call, &c->details, &c->md, cq, cq,
					     c);
	}
	if (e != GRPC_CALL_OK) {
		/* No completion will come for this tag: clean up now. */
		grpc_metadata_array_destroy(&c->md);
		if (m == NULL)
			grpc_call_details_destroy(&c->details);
		free(c);
		live_add(-1);
	}
}

void api_call_free(struct api_call *c)
{
	if (c->req != NULL)
		protobuf_c_message_free_unpacked(c->req, NULL);
	if (c->payload != NULL)
		grpc_byte_buffer_destroy(c->payload);
	if (c->resp != NULL)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->status_slice);
	grpc_metadata_array_destroy(&c->md);
	if (c->method == NULL)
		grpc_call_details_destroy(&c->details);
	if (c->call != NULL)
		grpc_call_unref(c->call);
	free(c);
	live_add(-1);
}

/* Last batch: metadata, optional message, status, and the close. */
void api_call_send_finish(struct api_call *c)
{
	grpc_op ops[4];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	n++;
	if (c->resp != NULL) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->resp;
		n++;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = c->code;
	ops[n].data.send_status_from_server.status_details =
		GRPC_SLICE_LENGTH(c->status_slice) > 0 ? &c->status_slice : NULL;
	n++;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
	n++;
	c->state = CALL_FINISHING;
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
	if (e != GRPC_CALL_OK) {
		core_log("error", "start_batch failed: %d", (int)e);
		api_call_free(c);
	}
}

static void finish(struct api_call *c, grpc_status_code code, const char *msg)
{
	api_metrics_handled(c->method ? c->method->path : NULL, (int)code,
			    c->resp ? grpc_byte_buffer_length(c->resp) : 0, c->metrics_t0);
	c->status_slice = grpc_slice_from_copied_string(msg ? msg : "");
	c->code = code;
	if (core_answering_batch() && c->cq == api_polling_cq(c->srv))
		api_handback(c);
	else
		api_call_send_finish(c);
}

void api_finish_status(struct api_call *c, grpc_status_code code, const char *msg)
{
	finish(c, code, msg);
}

void api_finish_msg(struct api_call *c, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(len);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	c->resp = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	finish(c, GRPC_STATUS_OK, NULL);
}

void api_reply(struct api_call *c, struct core_reply *r)
{
	if (r->err == CORE_OK)
		api_finish_msg(c, r->msg);
	else
		finish(c, (grpc_status_code)core_grpc_code(r->err), core_strerror(r->err));
	core_reply_free(r);
}

void api_core_done(void *arg, struct core_reply *reply)
{
	api_reply(arg, reply);
}

/* The whole payload as one contiguous slice. */
static grpc_slice payload_slice(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return grpc_empty_slice();
	grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	return s;
}

bool api_recv_refused(const struct api_server *srv, grpc_byte_buffer *bb, grpc_status_code *code,
		      char *msg, size_t len)
{
	size_t n = grpc_byte_buffer_length(bb), max = api_recv_max(srv);
	if (n > max) {
		*code = GRPC_STATUS_RESOURCE_EXHAUSTED;
		snprintf(msg, len, "grpc: received message larger than max (%zu vs. %zu)", n, max);
		return true;
	}
	/* gRPC core names the algorithm the message was compressed with;
	 * etcd's server has no decompressor installed for any. */
	grpc_compression_algorithm alg = bb->type == GRPC_BB_RAW ? bb->data.raw.compression
								  : GRPC_COMPRESS_NONE;
	if (alg != GRPC_COMPRESS_NONE) {
		const char *name = "unknown";
		grpc_compression_algorithm_name(alg, &name);
		*code = GRPC_STATUS_UNIMPLEMENTED;
		snprintf(msg, len, "grpc: Decompressor is not installed for grpc-encoding \"%s\"", name);
		return true;
	}
	return false;
}

static void unknown_method(struct api_call *c)
{
	/* grpc-go's words, which etcd clients see for an unknown path. */
	char buf[512];
	char *path = grpc_slice_to_c_string(c->details.method);
	const char *svc = path[0] == '/' ? path + 1 : path;
	const char *slash = strrchr(svc, '/');
	int known = 0;
	struct api_method *tabs[] = {api_kv_methods,    api_other_methods,   api_lease_methods,
				     api_watch_methods, api_lock_methods,    api_election_methods, api_auth_methods};
	for (size_t t = 0; t < sizeof(tabs) / sizeof(tabs[0]); t++)
		for (struct api_method *m = tabs[t]; m->path; m++)
			if (slash && strncmp(m->path + 1, svc, (size_t)(slash - svc) + 1) == 0)
				known = 1;
	if (slash && known)
		snprintf(buf, sizeof(buf), "unknown method %s for service %.*s", slash + 1,
			 (int)(slash - svc), svc);
	else if (slash)
		snprintf(buf, sizeof(buf), "unknown service %.*s", (int)(slash - svc), svc);
	else
		snprintf(buf, sizeof(buf), "malformed method name: %s", path);
	gpr_free(path);
	finish(c, GRPC_STATUS_UNIMPLEMENTED, buf);
}

bool api_call_wants_leader(const struct api_call *c)
{
	for (size_t i = 0; i < c->md.count; i++)
		if (grpc_slice_str_cmp(c->md.metadata[i].key, "hasleader") == 0)
			return grpc_slice_str_cmp(c->md.metadata[i].value, "true") == 0;
	return false;
}

static void serve(struct api_call *c)
{
	struct api_method *m = c->method;
	c->metrics_t0 = api_metrics_started(m ? m->path : NULL,
					    c->payload ? grpc_byte_buffer_length(c->payload) : 0);
	if (m == NULL) {
		unknown_method(c);
		return;
	}
	if (api_call_wants_leader(c) && !core_has_leader(api_core(c))) {
		finish(c, (grpc_status_code)core_grpc_code(CORE_ENO_LEADER),
		       core_strerror(CORE_ENO_LEADER));
		return;
	}
	if (m->fn == NULL) {
		char buf[256];
		const char *name = strrchr(m->path, '/');
		snprintf(buf, sizeof(buf), "method %s not implemented", name ? name + 1 : m->path);
		finish(c, GRPC_STATUS_UNIMPLEMENTED, buf);
		return;
	}
	if (m->client_stream) {
		/* Watch and LeaseKeepAlive: not for a learner either. */
		if (core_is_learner(api_core(c))) {
			finish(c, (grpc_status_code)core_grpc_code(CORE_ELEARNER_RPC),
			       core_strerror(CORE_ELEARNER_RPC));
			return;
		}
		m->fn(c, NULL);
		return;
	}
	if (c->payload == NULL) {
		finish(c, GRPC_STATUS_INTERNAL, "grpc: error unmarshalling request: no payload");
		return;
	}
	char refused[128];
	grpc_status_code code;
	if (api_recv_refused(c->srv, c->payload, &code, refused, sizeof(refused))) {
		finish(c, code, refused);
		return;
	}
	grpc_slice s = payload_slice(c->payload);
	/* --max-request-bytes is checked by core on what is proposed, as
	 * etcd: reads are not limited by it. */
	size_t len = GRPC_SLICE_LENGTH(s);
	c->req = protobuf_c_message_unpack(m->req, NULL, len, GRPC_SLICE_START_PTR(s));
	if (c->req == NULL) {
		char why[256], msg[320];
		wire_error(m->req, GRPC_SLICE_START_PTR(s), len, why, sizeof(why));
		snprintf(msg, sizeof(msg), "grpc: error unmarshalling request: %s", why);
		grpc_slice_unref(s);
		finish(c, GRPC_STATUS_INTERNAL, msg);
		return;
	}
	grpc_slice_unref(s);
	char why[256], msg[320];
	if (wire_refused(c->req, why, sizeof(why))) {
		snprintf(msg, sizeof(msg), "grpc: error unmarshalling request: %s", why);
		finish(c, GRPC_STATUS_INTERNAL, msg);
		return;
	}
	/* etcd's learner serves only Status and serializable Range. */
	if (core_is_learner(api_core(c)) && m->req != &etcdserverpb__status_request__descriptor &&
	    !(m->req == &etcdserverpb__range_request__descriptor &&
	      ((const Etcdserverpb__RangeRequest *)c->req)->serializable)) {
		finish(c, (grpc_status_code)core_grpc_code(CORE_ELEARNER_RPC),
		       core_strerror(CORE_ELEARNER_RPC));
		return;
	}
	m->fn(c, c->req);
}

static void call_event(struct core_tag *tag, bool success)
{
	struct api_call *c = (struct api_call *)tag;
	switch (c->state) {
	case CALL_NEW:
		if (!success) { /* server shutting down */
			api_call_free(c);
			return;
		}
		/* Re-arm first so the method is never without a waiting slot. */
		api_call_arm(c->srv, c->cq, c->method);
		serve(c);
		return;
	case CALL_FINISHING:
		api_call_free(c);
		return;
	}
}

struct core *api_core(const struct api_call *c)
{
	return api_core_of(c->srv);
}
