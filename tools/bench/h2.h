/*
 * tools/bench/h2.h — unary calls over HTTP/2 with nghttp2, one write per
 * connection per loop round.
 *
 * gRPC core's client starts a socket write for every call it starts (each
 * start_batch runs the transport on its own), so 1,000 clients on 100
 * connections cost one sendmsg per request, and the tool's own CPU squeezed
 * the 2-core machine's throughput ratios (~25 us of client CPU per put
 * against ~65 us for three metad members). etcd's clients (clientv3 on
 * grpc-go, which its tools/benchmark uses) queue frames and write whatever
 * is queued in one go; this engine does the same: each thread reads what
 * every ready connection brought, starts the clients those answers freed,
 * then writes each connection's frames at once.
 *
 * It speaks gRPC's wire protocol over cleartext HTTP/2 (prior knowledge, as
 * grpc-go's `http://` targets): a 5-byte length prefix per message, the
 * status in the trailers. Used for plaintext runs without --rate, --user or
 * --token; everything else (and --engine grpc) takes gRPC core's client.
 */
#ifndef METAD_BENCH_H2_H
#define METAD_BENCH_H2_H

#include "opts.h"
#include "report.h"
#include "unary.h"

/* 1 when this run can use the engine (see above). */
int bench_h2_eligible(const struct bench_opts *o);

/* As bench_unary_run, on connections of its own. */
int bench_h2_run(const struct bench_opts *o, const struct bench_workload *w, const char *label,
		 int show_progress, struct bench_result *res);

#endif
