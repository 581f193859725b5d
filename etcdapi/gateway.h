/*
 * etcdapi/gateway.h — etcd's gRPC JSON gateway: the HTTP paths of every RPC
 * (as etcd's grpc-gateway maps them), the JSON codec (gateway_json.c) and
 * calls into this server's own gRPC service over a private connection.
 */
#ifndef METAD_ETCDAPI_GATEWAY_H
#define METAD_ETCDAPI_GATEWAY_H

#include <grpc/grpc.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

/* One gateway path. */
struct gw_route {
	const char *path;   /* "/v3/kv/range" (also served under /v3beta, /v3alpha) */
	const char *method; /* "/etcdserverpb.KV/Range" */
	const ProtobufCMessageDescriptor *in, *out;
	bool client_stream, server_stream;
};

/* The route of an HTTP path, or NULL. */
const struct gw_route *gw_route_find(const char *path);
/* The i-th route of the table (0-based), NULL past its end: for tests
 * that go through every route. */
const struct gw_route *gw_route_nth(size_t i);

/* ---- JSON codec (gateway_json.c) ---- */
/* A new JSON object for m (NULL when out of memory); the caller decrefs. */
json_t *gw_pb_to_json(const ProtobufCMessage *m);
json_t *gw_pb_to_json_depth(const ProtobufCMessage *m, int depth);
/* A new message of type d from object j; free with gw_pb_free. -1 with err
 * written when j does not fit d. */
int gw_json_to_pb(const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage **out,
		  char *err, size_t errlen);
int gw_json_to_pb_depth(const ProtobufCMessageDescriptor *d, json_t *j, ProtobufCMessage **out,
			int depth, char *err, size_t errlen);
void gw_pb_free(ProtobufCMessage *m);

/* ---- calls (gateway.c) ---- */
struct gw;
/* A private connection into server (started). NULL on failure. */
struct gw *gw_open(grpc_server *server);
/* Server shutdown: refuse new calls, wait (until deadline, realtime) for the
 * open ones to end, then close the connection so the server's shutdown need
 * not wait for it. gw_close still frees. */
void gw_drain(struct gw *g, gpr_timespec deadline);
void gw_close(struct gw *g);

/* The outcome of a call: status, message text, and for unary calls the
 * response as JSON (NULL on error). */
struct gw_result {
	grpc_status_code code;
	char message[512];
	json_t *resp;
};
/* Unary call of route r with request body req (JSON text), token from the
 * Authorization header (NULL: none). Blocks until the server answers. */
void gw_unary(struct gw *g, const struct gw_route *r, const char *body, size_t len,
	      const char *token, struct gw_result *res);

/* Streams: open sends the request(s) in body; next blocks for the next
 * response (false at the end, with res holding the status); close cancels. */
struct gw_stream;
struct gw_stream *gw_stream_open(struct gw *g, const struct gw_route *r, const char *body,
				 size_t len, const char *token, struct gw_result *res);
bool gw_stream_next(struct gw_stream *s, struct gw_result *res);
void gw_stream_close(struct gw_stream *s);

/* grpc-gateway's HTTP status for a gRPC code. */
int gw_http_status(grpc_status_code code);
/* {"error":msg,"message":msg,"code":N} as etcd's gateway writes it. */
char *gw_error_body(grpc_status_code code, const char *msg);

#endif
