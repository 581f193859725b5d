/*
 * tools/bench/conn.c — channels, credentials, registered methods, connect.
 */
#include "conn.h"
#include "auth.h"

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_path[BENCH_M__N] = {
	[BENCH_M_RANGE] = "/etcdserverpb.KV/Range",
	[BENCH_M_PUT] = "/etcdserverpb.KV/Put",
	[BENCH_M_TXN] = "/etcdserverpb.KV/Txn",
	[BENCH_M_STATUS] = "/etcdserverpb.Maintenance/Status",
	[BENCH_M_WATCH] = "/etcdserverpb.Watch/Watch",
	[BENCH_M_LEASE_GRANT] = "/etcdserverpb.Lease/LeaseGrant",
	[BENCH_M_LEASE_REVOKE] = "/etcdserverpb.Lease/LeaseRevoke",
	[BENCH_M_LEASE_KEEPALIVE] = "/etcdserverpb.Lease/LeaseKeepAlive",
};

const char *bench_method_path(enum bench_method m)
{
	return method_path[m];
}

static char *read_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "cannot open %s", path);
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf != NULL) {
		n += fread(buf + n, 1, cap - n - 1, f);
		if (n < cap - 1)
			break;
		cap *= 2;
		char *nb = realloc(buf, cap);
		if (nb == NULL) {
			free(buf);
			buf = NULL;
		} else
			buf = nb;
	}
	fclose(f);
	if (buf == NULL)
		snprintf(err, errlen, "out of memory reading %s", path);
	else
		buf[n] = 0;
	return buf;
}

static grpc_channel_credentials *make_creds(const struct bench_opts *o, int tls, char *err,
					    size_t errlen)
{
	if (!tls)
		return grpc_insecure_credentials_create();
	char *ca = NULL, *cert = NULL, *key = NULL;
	grpc_channel_credentials *creds = NULL;
	if (o->cacert && (ca = read_file(o->cacert, err, errlen)) == NULL)
		goto out;
	if (o->cert && (cert = read_file(o->cert, err, errlen)) == NULL)
		goto out;
	if (o->key && (key = read_file(o->key, err, errlen)) == NULL)
		goto out;
	grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
	creds = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
	if (creds == NULL)
		snprintf(err, errlen, "cannot make TLS credentials");
out:
	free(ca);
	free(cert);
	free(key);
	return creds;
}

/* Waits until ch is READY or the deadline passes. 0 when ready. */
static int wait_ready(grpc_channel *ch, grpc_completion_queue *cq, gpr_timespec deadline)
{
	for (;;) {
		grpc_connectivity_state s = grpc_channel_check_connectivity_state(ch, 1);
		if (s == GRPC_CHANNEL_READY)
			return 0;
		grpc_channel_watch_connectivity_state(ch, s, deadline, cq, NULL);
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			return 1; /* the watch timed out */
	}
}

int bench_conns_open(struct bench_conns *c, const struct bench_opts *o, double timeout_s,
		     char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->ch = calloc((size_t)o->conns, sizeof(*c->ch));
	c->handle = calloc((size_t)o->conns, sizeof(*c->handle));
	if (c->ch == NULL || c->handle == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	grpc_arg args[] = {
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
		/* Ranges of --limit keys can be large. */
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = -1},
		/* Unary benchmark calls must not be silently retried. */
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
		/* Fewer filters per call: the tool's CPU per request is its ceiling.
		 * Deadlines stay enforced (deadline checks are kept on explicitly). */
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MINIMAL_STACK, .value.integer = 1},
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_DEADLINE_CHECKS, .value.integer = 1},
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_CHANNELZ, .value.integer = 0},
		/* A server that is still starting is retried every 50-100 ms, not
		 * after gRPC's default 1 s and more: run.sh times restarts with this. */
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, .value.integer = 50},
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 50},
		{.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 100},
	};
	grpc_channel_args cargs = {.num_args = sizeof(args) / sizeof(args[0]), .args = args};
	for (int i = 0; i < o->conns; i++) {
		int e = i % o->n_endpoints;
		int tls = o->tls[e] || o->cacert != NULL;
		grpc_channel_credentials *creds = make_creds(o, tls, err, errlen);
		if (creds == NULL)
			goto fail;
		c->ch[i] = grpc_channel_create(o->endpoints[e], creds, &cargs);
		grpc_channel_credentials_release(creds);
		c->n = i + 1;
		for (int m = 0; m < BENCH_M__N; m++)
			c->handle[i][m] = grpc_channel_register_call(c->ch[i], method_path[m], NULL, NULL);
	}
	/* Connect before the clock starts, so set-up is not measured. */
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					     gpr_time_from_millis((int64_t)(timeout_s * 1000), GPR_TIMESPAN));
	int bad = -1;
	for (int i = 0; i < c->n && bad < 0; i++)
		if (wait_ready(c->ch[i], cq, deadline) != 0)
			bad = i;
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	if (bad >= 0) {
		snprintf(err, errlen, "cannot connect to %s within %.0f s",
			 o->endpoints[bad % o->n_endpoints], timeout_s);
		goto fail;
	}
	return 0;
fail:
	bench_conns_close(c);
	return 1;
}

void bench_conns_close(struct bench_conns *c)
{
	for (int i = 0; i < c->n; i++)
		grpc_channel_destroy(c->ch[i]);
	free(c->ch);
	free(c->handle);
	memset(c, 0, sizeof(*c));
}

grpc_call *bench_conns_call(struct bench_conns *c, int i, enum bench_method m,
			    grpc_completion_queue *cq, double timeout_s)
{
	int k = i % c->n;
	gpr_timespec deadline = timeout_s > 0
		? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			       gpr_time_from_micros((int64_t)(timeout_s * 1e6), GPR_TIMESPAN))
		: gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return grpc_channel_create_registered_call(c->ch[k], NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						   c->handle[k][m], deadline, NULL);
}

void bench_unary_ops(grpc_op ops[6], grpc_byte_buffer *send, grpc_metadata_array *md_initial,
		     grpc_byte_buffer **recv, grpc_metadata_array *md_trailing,
		     grpc_status_code *status, grpc_slice *details)
{
	memset(ops, 0, 6 * sizeof(*ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	bench_auth_md(&ops[0]);
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = md_initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = md_trailing;
	ops[5].data.recv_status_on_client.status = status;
	ops[5].data.recv_status_on_client.status_details = details;
}
