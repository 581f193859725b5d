/*
 * etcdapi/offload.h — a small thread pool for handlers that may run long.
 *
 * The server has one completion-queue thread (server.c says why), so a
 * handler that scans (a multi-key Range, HashKV, Defragment) would stall
 * every other call. Such handlers run here instead and reply from the
 * worker, as core callbacks already do from other threads.
 */
#ifndef METAD_ETCDAPI_OFFLOAD_H
#define METAD_ETCDAPI_OFFLOAD_H

#include "etcdapi/call.h"

int api_offload_start(void);
/* After every offloaded call has replied (api_calls_wait_idle). */
void api_offload_stop(void);
/* Run fn(call, call->req) on a worker (inline if out of memory). */
void api_offload(struct api_call *call, api_handler_fn fn);

#endif
