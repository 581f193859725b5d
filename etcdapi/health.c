/*
 * etcdapi/health.c — grpc.health.v1.Health on the client port, as etcd
 * registers it (gRPC health probes, grpc_health_probe, Kubernetes' gRPC
 * probes). etcd uses grpc-go's health server: the overall service "" is
 * SERVING; any other name is unknown (Check: NotFound "unknown service";
 * Watch: SERVICE_UNKNOWN). metad serves clients only once ready, so ""
 * is SERVING whenever it answers at all.
 */
#include "etcdapi/stream.h"
#include "etcdapi/stream_methods.h"
#include "health.pb-c.h"

#define SERVING GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define SERVICE_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

static bool known(const ProtobufCMessage *req)
{
	const char *name = ((const Grpc__Health__V1__HealthCheckRequest *)req)->service;
	return name == NULL || name[0] == 0;
}

static void check(struct api_call *call, const ProtobufCMessage *req)
{
	if (!known(req)) {
		api_finish_status(call, GRPC_STATUS_NOT_FOUND, "unknown service");
		return;
	}
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	resp.status = SERVING;
	api_finish_msg(call, &resp.base);
}

/* ---- Watch: the status once, then open until the client leaves ---- */

static const struct api_stream_ops w_ops = {NULL, api_stream_end_ok, NULL, NULL, false};

static void watch(struct api_call *call, const ProtobufCMessage *req)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	resp.status = known(req) ? SERVING : SERVICE_UNKNOWN;
	struct api_stream *st = api_stream_open(call, &w_ops, NULL, false);
	if (st != NULL)
		api_stream_send_msg(st, &resp.base);
}

struct api_method api_health_methods[] = {
	{"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor, check,
	 0, 1, NULL, 0},
	{"/grpc.health.v1.Health/Watch", &grpc__health__v1__health_check_request__descriptor, watch,
	 0, 1, NULL, 1},
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};
