/*
 * tools/bench/auth.h — --user NAME:PASSWORD: one Authenticate before the
 * run, then every call carries the token in its `token` metadata, as
 * clientv3 sends it (so a run measures the server's per-request auth cost,
 * not the login).
 */
#ifndef METAD_BENCH_AUTH_H
#define METAD_BENCH_AUTH_H

#include <grpc/grpc.h>
#include <stddef.h>

#include "conn.h"

/* Authenticates user ("name:password") on channel 0 of c, waiting up to
 * timeout_s, and keeps the token for bench_auth_md. Returns 0, or non-zero
 * with a message in err. */
int bench_auth_login(struct bench_conns *c, const char *user, double timeout_s, char *err,
		     size_t errlen);

/* Sends token with every call, without logging in (--token: what a token
 * costs gRPC alone, e.g. against a server with auth off). */
void bench_auth_set_token(const char *token);

/* Puts the token (if any) into a GRPC_OP_SEND_INITIAL_METADATA op. */
void bench_auth_md(grpc_op *op);

/* Forgets the token. */
void bench_auth_free(void);

#endif
