/*
 * etcdapi/lock.c — the Lock service (v3lockpb): decode, hand to core, reply.
 * etcd serves Lock and Election through its own client library, so every
 * error reaches grpc-go as a plain Go error: gRPC Unknown with the text.
 */
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

static void lock(struct api_call *call, const ProtobufCMessage *req)
{
	core_lock(api_core(call), (const V3lockpb__LockRequest *)req, api_concurrency_done, call);
}

static void unlock(struct api_call *call, const ProtobufCMessage *req)
{
	core_unlock(api_core(call), (const V3lockpb__UnlockRequest *)req, api_concurrency_done, call);
}

struct api_method api_lock_methods[] = {
	{"/v3lockpb.Lock/Lock", &v3lockpb__lock_request__descriptor, lock, 0, 4, NULL},
	{"/v3lockpb.Lock/Unlock", &v3lockpb__unlock_request__descriptor, unlock, 0, 2, NULL},
	{NULL, NULL, NULL, 0, 0, NULL},
};
