/*
 * tools/bench/auth.c — log in once (Auth.Authenticate), then send the token
 * with every call.
 */
#include "auth.h"

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "rpc.pb-c.h"

static grpc_metadata token_md;
static int have_token;

void bench_auth_md(grpc_op *op)
{
	if (!have_token)
		return;
	op->data.send_initial_metadata.count = 1;
	op->data.send_initial_metadata.metadata = &token_md;
}

void bench_auth_set_token(const char *token)
{
	bench_auth_free();
	token_md.key = grpc_slice_from_static_string("token");
	token_md.value = grpc_slice_from_copied_string(token);
	have_token = 1;
}

void bench_auth_free(void)
{
	if (!have_token)
		return;
	grpc_slice_unref(token_md.key);
	grpc_slice_unref(token_md.value);
	have_token = 0;
}

int bench_auth_login(struct bench_conns *c, const char *user, double timeout_s, char *err,
		     size_t errlen)
{
	const char *colon = strchr(user, ':');
	if (colon == NULL) {
		snprintf(err, errlen, "--user takes NAME:PASSWORD");
		return 1;
	}
	char *name = strndup(user, (size_t)(colon - user));
	if (name == NULL) {
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	Etcdserverpb__AuthenticateRequest q = ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
	q.name = name;
	q.password = (char *)colon + 1;
	grpc_byte_buffer *send = bench_msg_pack(&q.base), *recv = NULL;
	free(name);

	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					     gpr_time_from_millis((int64_t)(timeout_s * 1000), GPR_TIMESPAN));
	grpc_slice method = grpc_slice_from_static_string("/etcdserverpb.Auth/Authenticate");
	grpc_call *call = grpc_channel_create_call(c->ch[0], NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
						   NULL, deadline, NULL);
	grpc_metadata_array md_initial, md_trailing;
	grpc_metadata_array_init(&md_initial);
	grpc_metadata_array_init(&md_trailing);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	bench_unary_ops(ops, send, &md_initial, &recv, &md_trailing, &status, &details);
	int rv = 1;
	if (grpc_call_start_batch(call, ops, 6, call, NULL) == GRPC_CALL_OK) {
		grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_OP_COMPLETE && status == GRPC_STATUS_OK && recv != NULL) {
			Etcdserverpb__AuthenticateResponse *r =
				(Etcdserverpb__AuthenticateResponse *)bench_msg_unpack(
					&etcdserverpb__authenticate_response__descriptor, recv);
			if (r != NULL && r->token != NULL && r->token[0] != 0) {
				token_md.key = grpc_slice_from_static_string("token");
				token_md.value = grpc_slice_from_copied_string(r->token);
				have_token = 1;
				rv = 0;
			} else {
				snprintf(err, errlen, "Authenticate: no token in the answer");
			}
			if (r != NULL)
				protobuf_c_message_free_unpacked(&r->base, NULL);
		} else {
			char *d = grpc_slice_to_c_string(details);
			snprintf(err, errlen, "Authenticate as %.*s: status %d: %s",
				 (int)(colon - user), user, (int)status, d);
			gpr_free(d);
		}
	} else {
		snprintf(err, errlen, "Authenticate: cannot start the call");
	}
	grpc_call_unref(call);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&md_initial);
	grpc_metadata_array_destroy(&md_trailing);
	grpc_byte_buffer_destroy(send);
	if (recv != NULL)
		grpc_byte_buffer_destroy(recv);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rv;
}
