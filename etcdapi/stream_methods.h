/*
 * etcdapi/stream_methods.h — method tables of the Watch, Lease, Lock and
 * Election services (server.c registers and arms them like the others).
 */
#ifndef METAD_ETCDAPI_STREAM_METHODS_H
#define METAD_ETCDAPI_STREAM_METHODS_H

#include "etcdapi/call.h"

extern struct api_method api_lease_methods[];
extern struct api_method api_watch_methods[];
extern struct api_method api_lock_methods[];
extern struct api_method api_election_methods[];
extern struct api_method api_auth_methods[];
extern struct api_method api_health_methods[]; /* grpc.health.v1 (health.c) */

/* core_done_fn adapter for Lock/Election: every error goes out as gRPC
 * Unknown with its text (etcd runs these services through clientv3, whose
 * errors grpc-go sends as plain errors). arg is the api_call. */
void api_concurrency_done(void *arg, struct core_reply *reply);

/* Lock and Campaign's check (lock.c): READ on name's prefix, WRITE on the
 * recipe's key name/<lease hex> (the whole prefix for lease 0). */
bool api_authz_recipe_lease(struct api_call *call, const ProtobufCBinaryData *name, int64_t lease);

/* A call that waits its turn (Lock, Campaign): start hands req to core
 * (answered through the callback it is given) and returns a handle valid
 * until that answer; if the client goes away first, cancel(handle) is
 * called once, under a lock that orders it before the answer. Errors are
 * answered as api_concurrency_done does. */
typedef void *(*api_start_fn)(struct core *c, const ProtobufCMessage *req, core_done_fn cb,
			      void *arg);
typedef void (*api_cancel_fn)(void *handle);
void api_longpoll(struct api_call *call, const ProtobufCMessage *req, api_start_fn start,
		  api_cancel_fn cancel);

#endif
