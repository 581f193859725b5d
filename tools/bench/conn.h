/*
 * tools/bench/conn.h — the --conns gRPC channels and etcd's method paths.
 *
 * Each channel gets its own TCP connection (a local subchannel pool: gRPC
 * core would otherwise share one connection among channels to the same
 * target) and its own registered method handles, so creating a call costs
 * no path lookup.
 */
#ifndef METAD_BENCH_CONN_H
#define METAD_BENCH_CONN_H

#include <grpc/grpc.h>

#include "opts.h"

enum bench_method {
	BENCH_M_RANGE, BENCH_M_PUT, BENCH_M_TXN, BENCH_M_STATUS, BENCH_M_WATCH,
	BENCH_M_LEASE_GRANT, BENCH_M_LEASE_REVOKE, BENCH_M_LEASE_KEEPALIVE, BENCH_M__N,
};

struct bench_conns {
	int n;
	grpc_channel **ch;
	void *(*handle)[BENCH_M__N];   /* per channel, per method */
};

/* Opens o->conns channels, spread over the endpoints, and waits (up to
 * timeout_s) until each is connected. Returns 0, or non-zero with a message
 * in err. On failure nothing stays open. */
int bench_conns_open(struct bench_conns *c, const struct bench_opts *o, double timeout_s,
		     char *err, size_t errlen);

void bench_conns_close(struct bench_conns *c);

/* etcd's gRPC path of method m, e.g. "/etcdserverpb.KV/Put". */
const char *bench_method_path(enum bench_method m);

/* A new call of method m on channel i (modulo n), bound to cq. Ownership of
 * the call moves to the caller (grpc_call_unref). timeout_s <= 0: no deadline. */
grpc_call *bench_conns_call(struct bench_conns *c, int i, enum bench_method m,
			    grpc_completion_queue *cq, double timeout_s);

/* Fills ops[0..5] with a whole unary exchange (send metadata, message and
 * close; receive metadata, message and status) for one batch. */
void bench_unary_ops(grpc_op ops[6], grpc_byte_buffer *send, grpc_metadata_array *md_initial,
		     grpc_byte_buffer **recv, grpc_metadata_array *md_trailing,
		     grpc_status_code *status, grpc_slice *details);

#endif
