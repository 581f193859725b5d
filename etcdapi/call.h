/*
 * etcdapi/call.h — one server call and its completion-queue tag.
 *
 * A struct api_call is the tag of every batch started on its call. Each
 * started batch yields exactly one completion, dequeued on the call's own
 * CQ thread; the struct is freed after the last one. A reply may be sent
 * from another thread (the writer's callback): that is the only batch in
 * flight on the call at that moment, so no locking is needed.
 */
#ifndef METAD_ETCDAPI_CALL_H
#define METAD_ETCDAPI_CALL_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "core/core.h"
#include "core/poller.h"

struct api_server;
struct api_call;

typedef void (*api_handler_fn)(struct api_call *call, const ProtobufCMessage *req);

/* How a method is served. */
struct api_method {
	const char *path;                       /* "/etcdserverpb.KV/Range" */
	const ProtobufCMessageDescriptor *req;   /* request type (unary / server-stream) */
	api_handler_fn fn;                       /* NULL: answered UNIMPLEMENTED */
	int client_stream;                       /* the client streams (Watch, KeepAlive) */
	int prearm;                              /* outstanding request_call per CQ */
	void *registered;                        /* grpc_server_register_method handle */
	int server_stream;                       /* only the server streams (Observe) */
};

/*
 * Every completion-queue tag is a struct core_tag (core/poller.h): the CQ
 * thread calls fn with the event's success flag. Streams (Watch,
 * LeaseKeepAlive) define their own tags; unary calls use the one embedded
 * in struct api_call.
 */

enum api_call_state { CALL_NEW, CALL_FINISHING };

/*
 * A client-streaming method's handler is called with req == NULL right after
 * the call arrives and owns the call from then on: it drives its own batches
 * (with its own tags, or by replacing call->tag.fn) and must end with
 * api_finish_status() or by freeing the call with api_call_free().
 */
struct api_call {
	struct core_tag tag; /* first: the CQ hands this back */
	enum api_call_state state;
	struct api_server *srv;
	grpc_completion_queue *cq;
	struct api_method *method; /* NULL: an unregistered method */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details; /* unregistered calls only */
	grpc_byte_buffer *payload;
	ProtobufCMessage *req;
	grpc_byte_buffer *resp;
	grpc_slice status_slice;
	int cancelled;
	grpc_status_code code; /* the status its final batch sends, with status_slice */
	uint64_t metrics_t0;   /* when it started, for --metrics extensive (metrics.h) */
	struct api_call *next; /* queued in etcdapi/handback.c */
};

/* The core this server drives. */
struct core *api_core(const struct api_call *call);

/* Send a message and OK, or the error of reply->err; frees the reply. */
void api_reply(struct api_call *call, struct core_reply *reply);
/* Finish with a status and message (no response message). */
void api_finish_status(struct api_call *call, grpc_status_code code, const char *msg);
/* The client asked (metadata hasleader: true, as etcdctl and clientv3's
 * WithRequireLeader set) to be refused while this member knows no leader. */
bool api_call_wants_leader(const struct api_call *c);
/* Finish with OK and a message packed from msg (borrowed). */
void api_finish_msg(struct api_call *call, const ProtobufCMessage *msg);

/* core_done_fn adapter: arg is the api_call. */
void api_core_done(void *arg, struct core_reply *reply);

/* Server internals used by server.c. */
void api_call_arm(struct api_server *srv, grpc_completion_queue *cq, struct api_method *m);
/* Start the final batch finish() prepared (etcdapi/handback.c). */
void api_call_send_finish(struct api_call *call);
/* Release everything the call holds (after its last completion). */
void api_call_free(struct api_call *call);
/* Wait until no call struct is alive or deadline passes; returns how many are left. */
long api_calls_wait_idle(gpr_timespec deadline);

/* Method tables (one file per service). */
extern struct api_method api_kv_methods[];
extern struct api_method api_other_methods[];
struct core *api_core_of(const struct api_server *srv);
/* Whether --client-cert-auth is on (the client certificate's CN may name the user). */
int api_client_cert_auth(const struct api_server *srv);
grpc_server *api_grpc_server(const struct api_server *srv);
/* The receive limit: --max-request-bytes + 512 KiB, as etcd gives grpc-go. */
size_t api_recv_max(const struct api_server *srv);
/* Whether a received message is refused before it is read, as grpc-go
 * refuses it for etcd: over the receive limit, or compressed. If so, the
 * status and grpc-go's message for it. */
bool api_recv_refused(const struct api_server *srv, grpc_byte_buffer *bb, grpc_status_code *code,
		      char *msg, size_t len);
/* The completion queue whose thread polls the connections (server.c). */
grpc_completion_queue *api_polling_cq(const struct api_server *srv);

#endif
