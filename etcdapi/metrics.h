/*
 * etcdapi/metrics.h — request counters of the gRPC surface and the
 * Prometheus text of /metrics (etcd's metric names).
 *
 * Counting is one relaxed atomic add into a slot found by hashing the
 * method's (static) path pointer in a table filled before serving starts:
 * no lock on the request path. With --metrics extensive a call's handling
 * time also goes into its method's histogram (two more relaxed adds and
 * two clock reads); with basic, the etcd default, nothing is timed.
 */
#ifndef METAD_ETCDAPI_METRICS_H
#define METAD_ETCDAPI_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Before serving: one slot per method path (a static string). */
void api_metrics_register(const char *path, bool client_stream, bool server_stream);
/* Before serving: --metrics extensive (etcd's grpc_server_handling_seconds). */
void api_metrics_set_extensive(bool on);
/* A call of path arrived with `bytes` of request. NULL path: unknown method.
 * Returns the time it started for api_metrics_handled (0 unless extensive). */
uint64_t api_metrics_started(const char *path, size_t bytes);
/* A call of path ended with a gRPC status code, having sent `bytes`;
 * started is what api_metrics_started returned for it. */
void api_metrics_handled(const char *path, int code, size_t bytes, uint64_t started);
/* One message of a stream of path received or sent (bytes long); a unary
 * call's are counted by api_metrics_started/handled. */
void api_metrics_msg(const char *path, bool sent, size_t bytes);

/* The whole /metrics page (malloc'd, *len bytes), NULL when out of memory. */
char *api_metrics_render(struct core *c, size_t *len);

#endif
