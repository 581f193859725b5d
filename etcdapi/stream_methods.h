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

/* core_done_fn adapter for Lock/Election: every error goes out as gRPC
 * Unknown with its text (etcd runs these services through clientv3, whose
 * errors grpc-go sends as plain errors). arg is the api_call. */
void api_concurrency_done(void *arg, struct core_reply *reply);

#endif
