/*
 * etcdapi/gateway.c — the JSON gateway's routes and its gRPC calls.
 *
 * Paths are etcd's (the google.api.http annotations of etcd 3.5's
 * rpc.proto, v3lock.proto and v3election.proto; HashKV at
 * /v3/maintenance/hashkv as 3.5 maps it). Calls go to this server over one
 * private HTTP/2 connection made from a socketpair: gRPC core's server takes
 * one end (grpc_server_add_channel_from_fd), a client channel the other.
 */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "etcdapi/gateway.h"
#include "rpc.pb-c.h"
#include "v3election.pb-c.h"
#include "v3lock.pb-c.h"

struct route_def {
	const char *path;
	const ProtobufCServiceDescriptor *svc;
	const char *rpc;
};

static const struct route_def defs[] = {
	{"/v3/kv/range", &etcdserverpb__kv__descriptor, "Range"},
	{"/v3/kv/put", &etcdserverpb__kv__descriptor, "Put"},
	{"/v3/kv/deleterange", &etcdserverpb__kv__descriptor, "DeleteRange"},
	{"/v3/kv/txn", &etcdserverpb__kv__descriptor, "Txn"},
	{"/v3/kv/compaction", &etcdserverpb__kv__descriptor, "Compact"},
	{"/v3/watch", &etcdserverpb__watch__descriptor, "Watch"},
	{"/v3/lease/grant", &etcdserverpb__lease__descriptor, "LeaseGrant"},
	{"/v3/lease/revoke", &etcdserverpb__lease__descriptor, "LeaseRevoke"},
	{"/v3/kv/lease/revoke", &etcdserverpb__lease__descriptor, "LeaseRevoke"},
	{"/v3/lease/keepalive", &etcdserverpb__lease__descriptor, "LeaseKeepAlive"},
	{"/v3/lease/timetolive", &etcdserverpb__lease__descriptor, "LeaseTimeToLive"},
	{"/v3/kv/lease/timetolive", &etcdserverpb__lease__descriptor, "LeaseTimeToLive"},
	{"/v3/lease/leases", &etcdserverpb__lease__descriptor, "LeaseLeases"},
	{"/v3/kv/lease/leases", &etcdserverpb__lease__descriptor, "LeaseLeases"},
	{"/v3/cluster/member/add", &etcdserverpb__cluster__descriptor, "MemberAdd"},
	{"/v3/cluster/member/remove", &etcdserverpb__cluster__descriptor, "MemberRemove"},
	{"/v3/cluster/member/update", &etcdserverpb__cluster__descriptor, "MemberUpdate"},
	{"/v3/cluster/member/list", &etcdserverpb__cluster__descriptor, "MemberList"},
	{"/v3/cluster/member/promote", &etcdserverpb__cluster__descriptor, "MemberPromote"},
	{"/v3/maintenance/alarm", &etcdserverpb__maintenance__descriptor, "Alarm"},
	{"/v3/maintenance/status", &etcdserverpb__maintenance__descriptor, "Status"},
	{"/v3/maintenance/defragment", &etcdserverpb__maintenance__descriptor, "Defragment"},
	{"/v3/maintenance/hash", &etcdserverpb__maintenance__descriptor, "Hash"},
	{"/v3/maintenance/hashkv", &etcdserverpb__maintenance__descriptor, "HashKV"},
	{"/v3/maintenance/snapshot", &etcdserverpb__maintenance__descriptor, "Snapshot"},
	{"/v3/maintenance/transfer-leadership", &etcdserverpb__maintenance__descriptor, "MoveLeader"},
	{"/v3/maintenance/downgrade", &etcdserverpb__maintenance__descriptor, "Downgrade"},
	{"/v3/auth/enable", &etcdserverpb__auth__descriptor, "AuthEnable"},
	{"/v3/auth/disable", &etcdserverpb__auth__descriptor, "AuthDisable"},
	{"/v3/auth/status", &etcdserverpb__auth__descriptor, "AuthStatus"},
	{"/v3/auth/authenticate", &etcdserverpb__auth__descriptor, "Authenticate"},
	{"/v3/auth/user/add", &etcdserverpb__auth__descriptor, "UserAdd"},
	{"/v3/auth/user/get", &etcdserverpb__auth__descriptor, "UserGet"},
	{"/v3/auth/user/getall", &etcdserverpb__auth__descriptor, "UserList"},
	{"/v3/auth/user/delete", &etcdserverpb__auth__descriptor, "UserDelete"},
	{"/v3/auth/user/changepw", &etcdserverpb__auth__descriptor, "UserChangePassword"},
	{"/v3/auth/user/grant", &etcdserverpb__auth__descriptor, "UserGrantRole"},
	{"/v3/auth/user/revoke", &etcdserverpb__auth__descriptor, "UserRevokeRole"},
	{"/v3/auth/role/add", &etcdserverpb__auth__descriptor, "RoleAdd"},
	{"/v3/auth/role/get", &etcdserverpb__auth__descriptor, "RoleGet"},
	{"/v3/auth/role/getall", &etcdserverpb__auth__descriptor, "RoleList"},
	{"/v3/auth/role/delete", &etcdserverpb__auth__descriptor, "RoleDelete"},
	{"/v3/auth/role/grant", &etcdserverpb__auth__descriptor, "RoleGrantPermission"},
	{"/v3/auth/role/revoke", &etcdserverpb__auth__descriptor, "RoleRevokePermission"},
	{"/v3/election/campaign", &v3electionpb__election__descriptor, "Campaign"},
	{"/v3/election/proclaim", &v3electionpb__election__descriptor, "Proclaim"},
	{"/v3/election/leader", &v3electionpb__election__descriptor, "Leader"},
	{"/v3/election/observe", &v3electionpb__election__descriptor, "Observe"},
	{"/v3/election/resign", &v3electionpb__election__descriptor, "Resign"},
	{"/v3/lock/lock", &v3lockpb__lock__descriptor, "Lock"},
	{"/v3/lock/unlock", &v3lockpb__lock__descriptor, "Unlock"},
};

#define N_ROUTES (sizeof(defs) / sizeof(defs[0]))

static struct gw_route routes[N_ROUTES];
static char method_paths[N_ROUTES][96];
static pthread_once_t routes_once = PTHREAD_ONCE_INIT;

static void routes_init(void)
{
	for (size_t i = 0; i < N_ROUTES; i++) {
		const ProtobufCMethodDescriptor *m =
			protobuf_c_service_descriptor_get_method_by_name(defs[i].svc, defs[i].rpc);
		snprintf(method_paths[i], sizeof(method_paths[i]), "/%s/%s", defs[i].svc->name,
			 defs[i].rpc);
		bool watch = strcmp(defs[i].rpc, "Watch") == 0,
		     keepalive = strcmp(defs[i].rpc, "LeaseKeepAlive") == 0;
		routes[i] = (struct gw_route){
			.path = defs[i].path,
			.method = method_paths[i],
			.in = m ? m->input : NULL,
			.out = m ? m->output : NULL,
			.client_stream = watch || keepalive,
			.server_stream = watch || keepalive || strcmp(defs[i].rpc, "Observe") == 0 ||
					 strcmp(defs[i].rpc, "Snapshot") == 0,
		};
	}
}

const struct gw_route *gw_route_nth(size_t i)
{
	pthread_once(&routes_once, routes_init);
	return i < N_ROUTES ? &routes[i] : NULL;
}

const struct gw_route *gw_route_find(const char *path)
{
	pthread_once(&routes_once, routes_init);
	/* etcd serves the same gateway under /v3beta and /v3alpha (3.4). */
	char norm[128];
	if (strncmp(path, "/v3beta/", 8) == 0)
		snprintf(norm, sizeof(norm), "/v3/%s", path + 8);
	else if (strncmp(path, "/v3alpha/", 9) == 0)
		snprintf(norm, sizeof(norm), "/v3/%s", path + 9);
	else
		snprintf(norm, sizeof(norm), "%s", path);
	for (size_t i = 0; i < N_ROUTES; i++)
		if (strcmp(routes[i].path, norm) == 0)
			return routes[i].in ? &routes[i] : NULL;
	return NULL;
}

/* grpc-gateway v1's runtime.HTTPStatusFromCode. */
int gw_http_status(grpc_status_code code)
{
	switch (code) {
	case GRPC_STATUS_OK:
		return 200;
	case GRPC_STATUS_CANCELLED:
		return 408;
	case GRPC_STATUS_INVALID_ARGUMENT:
	case GRPC_STATUS_FAILED_PRECONDITION:
	case GRPC_STATUS_OUT_OF_RANGE:
		return 400;
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return 504;
	case GRPC_STATUS_NOT_FOUND:
		return 404;
	case GRPC_STATUS_ALREADY_EXISTS:
	case GRPC_STATUS_ABORTED:
		return 409;
	case GRPC_STATUS_PERMISSION_DENIED:
		return 403;
	case GRPC_STATUS_UNAUTHENTICATED:
		return 401;
	case GRPC_STATUS_RESOURCE_EXHAUSTED:
		return 429;
	case GRPC_STATUS_UNIMPLEMENTED:
		return 501;
	case GRPC_STATUS_UNAVAILABLE:
		return 503;
	default:
		return 500;
	}
}

char *gw_error_body(grpc_status_code code, const char *msg)
{
	json_t *o = json_object();
	json_object_set_new(o, "error", json_string(msg));
	json_object_set_new(o, "message", json_string(msg));
	json_object_set_new(o, "code", json_integer(code));
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

/* ---- the private connection ---- */

struct gw {
	grpc_channel *ch;
	pthread_mutex_t mu;
	pthread_cond_t idle;
	int open_calls; /* streams opened and not closed */
	bool closing;
};

struct gw *gw_open(grpc_server *server)
{
	int sv[2];
	/* Non-blocking, as gRPC core expects of any fd it is given: on a
	 * blocking one its poller thread hangs in recvmsg and stops serving. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
		return NULL;
	struct gw *g = calloc(1, sizeof(*g));
	if (g == NULL) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	grpc_server_credentials *sc = grpc_insecure_server_credentials_create();
	grpc_server_add_channel_from_fd(server, sv[0], sc);
	grpc_server_credentials_release(sc);
	grpc_arg args[] = {
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = -1}},
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = -1}},
	};
	grpc_channel_args cargs = {sizeof(args) / sizeof(args[0]), args};
	grpc_channel_credentials *cc = grpc_insecure_credentials_create();
	g->ch = grpc_channel_create_from_fd("metad-gateway", sv[1], cc, &cargs);
	grpc_channel_credentials_release(cc);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->idle, NULL);
	return g;
}

/* Why close before the server's shutdown completes: the server waits for
 * every connection to go, and this one's client end is read only while a
 * gateway call is open (under gRPC's poll engine nothing else polls it), so
 * it would hold the shutdown for its whole grace period. */
void gw_drain(struct gw *g, gpr_timespec deadline)
{
	if (g == NULL)
		return;
	struct timespec until = {deadline.tv_sec, deadline.tv_nsec};
	pthread_mutex_lock(&g->mu);
	g->closing = true;
	while (g->open_calls > 0)
		if (pthread_cond_timedwait(&g->idle, &g->mu, &until) == ETIMEDOUT)
			break; /* calls left are cancelled by the close */
	pthread_mutex_unlock(&g->mu);
	if (g->ch != NULL)
		grpc_channel_destroy(g->ch);
	g->ch = NULL;
}

void gw_close(struct gw *g)
{
	if (g == NULL)
		return;
	if (g->ch != NULL)
		grpc_channel_destroy(g->ch);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->idle);
	free(g);
}

/* ---- calls ---- */

struct gw_stream {
	struct gw *g;
	grpc_completion_queue *cq;
	grpc_call *call;
	const struct gw_route *r;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	bool status_armed, done, got_initial;
};

static void set_result(struct gw_result *res, grpc_status_code code, const char *msg, size_t len)
{
	res->code = code;
	if (len >= sizeof(res->message))
		len = sizeof(res->message) - 1;
	memcpy(res->message, msg, len);
	res->message[len] = 0;
	res->resp = NULL;
}

static bool run(struct gw_stream *s, const grpc_op *ops, size_t n)
{
	static int tag;
	if (grpc_call_start_batch(s->call, ops, n, &tag, NULL) != GRPC_CALL_OK)
		return false;
	grpc_event ev = grpc_completion_queue_pluck(s->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME),
						    NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

static grpc_byte_buffer *pack(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	grpc_slice sl = grpc_slice_malloc(len);
	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(sl));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
	grpc_slice_unref(sl);
	return bb;
}

static json_t *unpack_json(const struct gw_route *r, grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return NULL;
	grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	ProtobufCMessage *m = protobuf_c_message_unpack(r->out, NULL, GRPC_SLICE_LENGTH(all),
							GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	if (m == NULL)
		return NULL;
	json_t *j = gw_pb_to_json(m);
	protobuf_c_message_free_unpacked(m, NULL);
	return j;
}

/* The request messages of a body: one JSON object, or (streams) several
 * one after another. Returns how many were packed into out (max), or -1. */
static int parse_body(const struct gw_route *r, const char *body, size_t len,
		      grpc_byte_buffer **out, int max, struct gw_result *res)
{
	int n = 0;
	size_t off = 0;
	while (n < max) {
		while (off < len && (body[off] == ' ' || body[off] == '\n' || body[off] == '\r' ||
				     body[off] == '\t'))
			off++;
		if (off == len)
			break;
		json_error_t je;
		json_t *j = json_loadb(body + off, len - off, JSON_DISABLE_EOF_CHECK, &je);
		if (j == NULL) {
			set_result(res, GRPC_STATUS_INVALID_ARGUMENT, je.text, strlen(je.text));
			goto fail;
		}
		off += je.position;
		ProtobufCMessage *m = NULL;
		char err[256];
		if (gw_json_to_pb(r->in, j, &m, err, sizeof(err)) != 0) {
			json_decref(j);
			set_result(res, GRPC_STATUS_INVALID_ARGUMENT, err, strlen(err));
			goto fail;
		}
		json_decref(j);
		out[n++] = pack(m);
		gw_pb_free(m);
		if (!r->client_stream)
			break;
	}
	if (n == 0) { /* an empty body is an empty request, as grpc-gateway reads it */
		ProtobufCMessage *m = calloc(1, r->in->sizeof_message);
		if (m == NULL) {
			set_result(res, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", 13);
			return -1;
		}
		protobuf_c_message_init(r->in, m);
		out[n++] = pack(m);
		gw_pb_free(m);
	}
	return n;
fail:
	for (int i = 0; i < n; i++)
		grpc_byte_buffer_destroy(out[i]);
	return -1;
}

#define MAX_STREAM_REQS 64

struct gw_stream *gw_stream_open(struct gw *g, const struct gw_route *r, const char *body,
				 size_t len, const char *token, struct gw_result *res)
{
	grpc_byte_buffer *reqs[MAX_STREAM_REQS];
	int n = parse_body(r, body, len, reqs, MAX_STREAM_REQS, res);
	if (n < 0)
		return NULL;
	struct gw_stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		for (int i = 0; i < n; i++)
			grpc_byte_buffer_destroy(reqs[i]);
		set_result(res, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", 13);
		return NULL;
	}
	pthread_mutex_lock(&g->mu);
	bool closing = g->closing;
	if (!closing)
		g->open_calls++;
	pthread_mutex_unlock(&g->mu);
	if (closing) {
		for (int i = 0; i < n; i++)
			grpc_byte_buffer_destroy(reqs[i]);
		free(s);
		set_result(res, GRPC_STATUS_UNAVAILABLE, "etcdserver: server stopped", 26);
		return NULL;
	}
	s->g = g;
	s->r = r;
	s->cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_slice method = grpc_slice_from_static_string(r->method);
	s->call = grpc_channel_create_call(g->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, method, NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&s->initial);
	grpc_metadata_array_init(&s->trailing);
	grpc_metadata md = {0};
	if (token != NULL) {
		md.key = grpc_slice_from_static_string("authorization");
		md.value = grpc_slice_from_copied_string(token);
	}
	/* Initial metadata is received with the first message (next): the
	 * server sends its own only when it answers. */
	grpc_op op0 = {.op = GRPC_OP_SEND_INITIAL_METADATA};
	op0.data.send_initial_metadata.count = token ? 1 : 0;
	op0.data.send_initial_metadata.metadata = token ? &md : NULL;
	bool ok = run(s, &op0, 1);
	if (token != NULL)
		grpc_slice_unref(md.value);
	for (int i = 0; i < n; i++) {
		if (ok) {
			grpc_op op = {.op = GRPC_OP_SEND_MESSAGE};
			op.data.send_message.send_message = reqs[i];
			ok = run(s, &op, 1);
		}
		grpc_byte_buffer_destroy(reqs[i]);
	}
	if (ok && !r->client_stream) {
		grpc_op op = {.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT};
		ok = run(s, &op, 1);
	}
	(void)ok; /* a failed send shows as the call's status below */
	res->code = GRPC_STATUS_OK;
	res->resp = NULL;
	return s;
}

static void finish_status(struct gw_stream *s, struct gw_result *res)
{
	if (!s->status_armed) {
		grpc_op op = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
		op.data.recv_status_on_client.trailing_metadata = &s->trailing;
		op.data.recv_status_on_client.status = &s->status;
		op.data.recv_status_on_client.status_details = &s->details;
		s->status_armed = true;
		if (!run(s, &op, 1)) {
			s->status = GRPC_STATUS_UNAVAILABLE;
			s->details = grpc_slice_from_static_string("gateway call failed");
		}
	}
	set_result(res, s->status, (const char *)GRPC_SLICE_START_PTR(s->details),
		   GRPC_SLICE_LENGTH(s->details));
}

bool gw_stream_next(struct gw_stream *s, struct gw_result *res)
{
	if (s->done) {
		finish_status(s, res);
		return false;
	}
	grpc_byte_buffer *bb = NULL;
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (!s->got_initial) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
		s->got_initial = true;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &bb;
	if (!run(s, ops, n) || bb == NULL) {
		s->done = true;
		finish_status(s, res);
		return false;
	}
	res->code = GRPC_STATUS_OK;
	res->message[0] = 0;
	res->resp = unpack_json(s->r, bb);
	grpc_byte_buffer_destroy(bb);
	if (res->resp == NULL) {
		set_result(res, GRPC_STATUS_INTERNAL, "gateway: undecodable response", 29);
		s->done = true;
		return false;
	}
	return true;
}

void gw_stream_close(struct gw_stream *s)
{
	if (s == NULL)
		return;
	struct gw_result res;
	if (!s->status_armed) {
		grpc_call_cancel(s->call, NULL);
		finish_status(s, &res);
	}
	grpc_metadata_array_destroy(&s->initial);
	grpc_metadata_array_destroy(&s->trailing);
	if (s->status_armed)
		grpc_slice_unref(s->details);
	grpc_call_unref(s->call);
	grpc_completion_queue_shutdown(s->cq);
	grpc_completion_queue_destroy(s->cq);
	pthread_mutex_lock(&s->g->mu);
	if (--s->g->open_calls == 0)
		pthread_cond_broadcast(&s->g->idle);
	pthread_mutex_unlock(&s->g->mu);
	free(s);
}

void gw_unary(struct gw *g, const struct gw_route *r, const char *body, size_t len,
	      const char *token, struct gw_result *res)
{
	struct gw_stream *s = gw_stream_open(g, r, body, len, token, res);
	if (s == NULL)
		return;
	struct gw_result first;
	if (gw_stream_next(s, &first)) {
		struct gw_result end;
		finish_status(s, &end);
		if (end.code == GRPC_STATUS_OK) {
			*res = first;
		} else {
			json_decref(first.resp);
			*res = end;
		}
	} else {
		*res = first;
	}
	gw_stream_close(s);
}
