/*
 * etcdapi/lock.c — the Lock service (v3lockpb): decode, hand to core, reply.
 * etcd serves Lock and Election through its own client library, so every
 * error reaches grpc-go as a plain Go error: gRPC Unknown with the text.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcdapi/authz.h"
#include "etcdapi/stream_methods.h"

#include "v3lock.pb-c.h"

void api_concurrency_done(void *arg, struct core_reply *reply)
{
	const char *msg = core_concurrency_strerror(reply->err);
	if (msg == NULL && reply->err != CORE_OK)
		msg = core_strerror(reply->err);
	if (msg != NULL) {
		api_finish_status(arg, GRPC_STATUS_UNKNOWN, msg);
		core_reply_free(reply);
		return;
	}
	api_reply(arg, reply);
}

/* ---- Lock and Campaign: the call is watched for cancellation while it
 * waits its turn, so a client that gives up also gives its place in the
 * queue up. The call is finished here (not by api_finish_*, whose batch
 * carries the close op this one started first). ---- */

struct lock_call {
	struct core_tag close_tag, done_tag;
	struct api_call *call;
	pthread_mutex_t mu;
	int refs; /* close batch, final batch, core's answer */
	int cancelled;
	bool gone;      /* RECV_CLOSE completed */
	bool core_done; /* core answered: op is no longer valid */
	void *op;
	api_cancel_fn cancel;
};

static void lc_unref(struct lock_call *lc)
{
	pthread_mutex_lock(&lc->mu);
	bool last = --lc->refs == 0;
	pthread_mutex_unlock(&lc->mu);
	if (last) {
		api_call_free(lc->call);
		pthread_mutex_destroy(&lc->mu);
		free(lc);
	}
}

static void lc_closed(struct core_tag *t, bool success)
{
	(void)success;
	struct lock_call *lc = (struct lock_call *)((char *)t - offsetof(struct lock_call, close_tag));
	pthread_mutex_lock(&lc->mu);
	lc->gone = true;
	if (lc->cancelled && !lc->core_done && lc->op != NULL)
		lc->cancel(lc->op);
	pthread_mutex_unlock(&lc->mu);
	lc_unref(lc);
}

static void lc_done_batch(struct core_tag *t, bool success)
{
	(void)success;
	lc_unref((struct lock_call *)((char *)t - offsetof(struct lock_call, done_tag)));
}

static void lc_answer(void *arg, struct core_reply *reply)
{
	struct lock_call *lc = arg;
	struct api_call *c = lc->call;
	pthread_mutex_lock(&lc->mu);
	lc->core_done = true;
	pthread_mutex_unlock(&lc->mu);
	grpc_status_code code = GRPC_STATUS_OK;
	const char *msg = NULL;
	if (reply->err == CORE_OK) {
		size_t len = protobuf_c_message_get_packed_size(reply->msg);
		grpc_slice s = grpc_slice_malloc(len);
		protobuf_c_message_pack(reply->msg, GRPC_SLICE_START_PTR(s));
		c->resp = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
	} else {
		code = GRPC_STATUS_UNKNOWN; /* see api_concurrency_done */
		msg = core_concurrency_strerror(reply->err);
		if (msg == NULL)
			msg = core_strerror(reply->err);
	}
	grpc_op ops[3];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->resp != NULL) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->resp;
	}
	c->status_slice = grpc_slice_from_copied_string(msg ? msg : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = msg ? &c->status_slice : NULL;
	core_reply_free(reply);
	pthread_mutex_lock(&lc->mu);
	lc->refs++;
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &lc->done_tag, NULL);
	if (e != GRPC_CALL_OK) {
		lc->refs--;
		core_log("error", "lock: start_batch failed: %d", (int)e);
	}
	pthread_mutex_unlock(&lc->mu);
	lc_unref(lc); /* core's */
}

void api_longpoll(struct api_call *call, const ProtobufCMessage *req, api_start_fn start,
		  api_cancel_fn cancel)
{
	struct lock_call *lc = calloc(1, sizeof(*lc));
	if (lc == NULL) {
		api_finish_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		return;
	}
	lc->close_tag.fn = lc_closed;
	lc->done_tag.fn = lc_done_batch;
	lc->call = call;
	lc->cancel = cancel;
	lc->refs = 2; /* the close batch and core's answer */
	pthread_mutex_init(&lc->mu, NULL);
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &lc->cancelled;
	if (grpc_call_start_batch(call->call, &op, 1, &lc->close_tag, NULL) != GRPC_CALL_OK) {
		pthread_mutex_destroy(&lc->mu);
		free(lc);
		api_finish_status(call, GRPC_STATUS_INTERNAL, "etcdserver: internal error");
		return;
	}
	/* core may answer before start returns: op is only kept while core
	 * has not answered, and a cancel seen meanwhile is applied now. */
	void *o = start(api_core(call), req, lc_answer, lc);
	pthread_mutex_lock(&lc->mu);
	if (!lc->core_done) {
		lc->op = o;
		if (lc->gone && lc->cancelled)
			cancel(o);
	}
	pthread_mutex_unlock(&lc->mu);
}

static void *lock_start(struct core *c, const ProtobufCMessage *req, core_done_fn cb, void *arg)
{
	return core_lock(c, (const V3lockpb__LockRequest *)req, cb, arg);
}

static void lock_cancel(void *op)
{
	core_lock_cancel(op);
}

/* The recipe's own key, name/<lease hex>, when the lease is given. */
static bool recipe_allowed(struct api_call *call, const ProtobufCBinaryData *name, int64_t lease)
{
	if (lease == 0)
		return api_authz_recipe(call, name->data, name->len, true, NULL, 0, true);
	char hex[20];
	int n = snprintf(hex, sizeof(hex), "%llx", (unsigned long long)lease);
	uint8_t *key = malloc(name->len + 1 + (size_t)n);
	if (key == NULL)
		return api_authz_recipe(call, name->data, name->len, true, NULL, 0, true);
	if (name->len > 0)
		memcpy(key, name->data, name->len);
	key[name->len] = '/';
	memcpy(key + name->len + 1, hex, (size_t)n);
	bool ok = api_authz_recipe(call, name->data, name->len, true, key, name->len + 1 + (size_t)n,
				   true);
	free(key);
	return ok;
}

bool api_authz_recipe_lease(struct api_call *call, const ProtobufCBinaryData *name, int64_t lease)
{
	return recipe_allowed(call, name, lease);
}

static void lock(struct api_call *call, const ProtobufCMessage *req)
{
	const V3lockpb__LockRequest *q = (const V3lockpb__LockRequest *)req;
	if (!recipe_allowed(call, &q->name, q->lease))
		return;
	api_longpoll(call, req, lock_start, lock_cancel); /* core_lock keeps the caller */
	api_authz_end();
}

static void unlock(struct api_call *call, const ProtobufCMessage *req)
{
	const V3lockpb__UnlockRequest *q = (const V3lockpb__UnlockRequest *)req;
	if (!api_authz_recipe(call, NULL, 0, false, q->key.data, q->key.len, true))
		return;
	core_unlock(api_core(call), (const V3lockpb__UnlockRequest *)req, api_concurrency_done, call);
	api_authz_end();
}

struct api_method api_lock_methods[] = {
	{"/v3lockpb.Lock/Lock", &v3lockpb__lock_request__descriptor, lock, 0, 4, NULL, 0},
	{"/v3lockpb.Lock/Unlock", &v3lockpb__unlock_request__descriptor, unlock, 0, 2, NULL, 0},
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};
