/*
 * etcdapi/lease.c — the Lease service: unary calls go to core; the
 * LeaseKeepAlive stream answers each request with one response.
 */
#include <stdlib.h>

#include "etcdapi/authz.h"
#include "etcdapi/call.h"
#include "etcdapi/stream.h"

#include "rpc.pb-c.h"

/* Stop reading keep-alives while this much is waiting to be sent: a client
 * that does not read its responses cannot make the server buffer more. */
#define KEEPALIVE_QUEUE_MAX (256 * 1024)

static void lease_grant(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_token(call)) /* no rights needed, but a bad token is refused */
		return;
	core_lease_grant(api_core(call), (const Etcdserverpb__LeaseGrantRequest *)req, api_core_done,
			 call);
}

static void lease_revoke(struct api_call *call, const ProtobufCMessage *req)
{
	/* Revoking deletes the lease's keys: the caller must be able to. */
	if (!api_authz_lease(call, ((const Etcdserverpb__LeaseRevokeRequest *)req)->id,
			     CORE_PERM_WRITE))
		return;
	core_lease_revoke(api_core(call), (const Etcdserverpb__LeaseRevokeRequest *)req,
			  api_core_done, call);
	api_authz_end();
}

static void lease_ttl(struct api_call *call, const ProtobufCMessage *req)
{
	const Etcdserverpb__LeaseTimeToLiveRequest *q =
		(const Etcdserverpb__LeaseTimeToLiveRequest *)req;
	if (q->keys && !api_authz_lease(call, q->id, CORE_PERM_READ)) /* keys are read */
		return;
	core_lease_time_to_live(api_core(call), (const Etcdserverpb__LeaseTimeToLiveRequest *)req,
				api_core_done, call);
}

static void lease_leases(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	core_lease_leases(api_core(call), api_core_done, call);
}

/* ---- LeaseKeepAlive: recv and send completions share the call's CQ
 * thread, so `paused` needs no lock. ---- */

struct keepalive {
	bool paused;
};

struct ka_op {
	struct api_stream *st;
	int64_t id;
	Etcdserverpb__ResponseHeader h;
};

static void ka_renewed(void *arg, int64_t ttl, int err)
{
	struct ka_op *op = arg;
	if (err != CORE_OK) {
		/* No leader to renew with: end the stream as etcd does, so the
		 * client re-opens it (unknown leases are TTL 0, not errors). */
		api_stream_finish(op->st, (grpc_status_code)core_grpc_code(err), core_strerror(err));
	} else {
		Etcdserverpb__LeaseKeepAliveResponse resp = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
		resp.header = &op->h;
		resp.id = op->id;
		resp.ttl = ttl;
		api_stream_send_msg(op->st, &resp.base);
	}
	api_stream_unref(op->st);
	free(op);
}

static bool ka_recv(struct api_stream *st, const uint8_t *data, size_t len)
{
	struct keepalive *ka = st->owner;
	struct core *core = api_core(st->call);
	Etcdserverpb__LeaseKeepAliveRequest *q =
		etcdserverpb__lease_keep_alive_request__unpack(NULL, len, data);
	if (q == NULL) {
		api_stream_finish(st, GRPC_STATUS_INTERNAL, "grpc: error unmarshalling request");
		return false;
	}
	struct ka_op *op = malloc(sizeof(*op));
	if (op == NULL) {
		etcdserverpb__lease_keep_alive_request__free_unpacked(q, NULL);
		api_stream_finish(st, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		return false;
	}
	/* etcd fills the header before renewing. */
	etcdserverpb__response_header__init(&op->h);
	core_fill_header(core, &op->h, 0);
	op->st = st;
	op->id = q->id;
	etcdserverpb__lease_keep_alive_request__free_unpacked(q, NULL);
	api_stream_ref(st); /* until the renewal answers (on a follower: the leader) */
	core_lease_keepalive(core, op->id, ka_renewed, op);
	if (api_stream_queued(st) > KEEPALIVE_QUEUE_MAX) {
		ka->paused = true;
		return false;
	}
	return true;
}

static void ka_sent(struct api_stream *st, size_t len, size_t msgs)
{
	(void)len, (void)msgs;
	struct keepalive *ka = st->owner;
	if (ka->paused && api_stream_queued(st) <= KEEPALIVE_QUEUE_MAX / 2) {
		ka->paused = false;
		api_stream_recv_resume(st);
	}
}

static void ka_release(struct api_stream *st)
{
	free(st->owner);
}

/* Half-close or failure ends the call (etcd's returns nil at EOF). */
static const struct api_stream_ops ka_ops = {ka_recv, api_stream_end_ok, ka_sent, ka_release, false};

static void lease_keepalive(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	struct keepalive *ka = calloc(1, sizeof(*ka));
	if (ka == NULL) {
		api_finish_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		return;
	}
	if (api_stream_open(call, &ka_ops, ka, true) == NULL)
		free(ka);
}

struct api_method api_lease_methods[] = {
	{"/etcdserverpb.Lease/LeaseGrant", &etcdserverpb__lease_grant_request__descriptor, lease_grant,
	 0, 8, NULL, 0},
	{"/etcdserverpb.Lease/LeaseRevoke", &etcdserverpb__lease_revoke_request__descriptor,
	 lease_revoke, 0, 4, NULL, 0},
	{"/etcdserverpb.Lease/LeaseKeepAlive", NULL, lease_keepalive, 1, 4, NULL, 0},
	{"/etcdserverpb.Lease/LeaseTimeToLive", &etcdserverpb__lease_time_to_live_request__descriptor,
	 lease_ttl, 0, 4, NULL, 0},
	{"/etcdserverpb.Lease/LeaseLeases", &etcdserverpb__lease_leases_request__descriptor,
	 lease_leases, 0, 2, NULL, 0},
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};
