/*
 * core/peer_unary.c — calls to a member on a channel of their own: one
 * blocking unary call (the Members call of a joining member, the HashKV
 * call of a corruption check), and the dialling and hanging up that the
 * snapshot fetch (peer_snap.c) shares.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include "core/peer_internal.h"

uint8_t *peer_buffer_bytes(grpc_byte_buffer *bb, size_t *len)
{
	grpc_byte_buffer_reader rd;
	if (bb == NULL || !grpc_byte_buffer_reader_init(&rd, bb)) {
		*len = 0;
		return calloc(1, 1);
	}
	grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	*len = GRPC_SLICE_LENGTH(s);
	uint8_t *p = malloc(*len ? *len : 1);
	if (p != NULL)
		memcpy(p, GRPC_SLICE_START_PTR(s), *len);
	grpc_slice_unref(s);
	return p;
}

grpc_channel *peer_dial(struct peer_transport *t, const char *url, const grpc_channel_args *args,
			char *err, size_t errlen)
{
	char addr[512];
	bool https;
	if (peer_url_addr(url, addr, sizeof(addr), &https) != 0) {
		snprintf(err, errlen, "invalid peer URL %s", url);
		return NULL;
	}
	grpc_channel_credentials *creds = peer_channel_creds(t, https);
	grpc_channel *ch = creds ? grpc_channel_create(addr, creds, args) : NULL;
	if (creds)
		grpc_channel_credentials_release(creds);
	if (ch == NULL)
		snprintf(err, errlen, "cannot reach %s", url);
	return ch;
}

void peer_hang_up(grpc_call *call, grpc_completion_queue *cq, grpc_channel *ch)
{
	if (call)
		grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_destroy(cq);
	grpc_channel_destroy(ch);
}

int peer_unary(struct peer_transport *t, const char *url, const char *method, const uint8_t *req,
	       size_t len, int64_t timeout_ms, const _Atomic bool *stop, uint8_t **buf,
	       size_t *buf_len, grpc_status_code *status, char *err, size_t errlen)
{
	grpc_channel *ch = peer_dial(t, url, NULL, err, errlen);
	if (ch == NULL)
		return -2;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						   grpc_slice_from_static_string(method), NULL,
						   deadline, NULL);
	grpc_metadata_array initial, trailing;
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len);
	grpc_byte_buffer *sent = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	grpc_byte_buffer *resp = NULL;
	grpc_slice details = grpc_empty_slice();
	*status = GRPC_STATUS_UNKNOWN;
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = sent;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[5].data.recv_status_on_client.status = status;
	ops[5].data.recv_status_on_client.status_details = &details;
	int rv = -2;
	static int tag;
	if (call != NULL && grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
		/* Woken every 100 ms to see *stop: a stopping server cancels the
		 * call rather than wait out a dead member's deadline. */
		for (;;) {
			gpr_timespec step = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
							 gpr_time_from_millis(100, GPR_TIMESPAN));
			grpc_event ev = grpc_completion_queue_pluck(cq, &tag, step, NULL);
			if (ev.type == GRPC_OP_COMPLETE)
				break;
			if (stop != NULL && atomic_load(stop)) {
				grpc_call_cancel(call, NULL);
				stop = NULL;
			}
		}
		rv = -1;
		if (*status == GRPC_STATUS_OK) {
			*buf = peer_buffer_bytes(resp, buf_len);
			rv = *buf != NULL ? 0 : -1;
			if (rv != 0)
				snprintf(err, errlen, "out of memory");
		} else {
			char *d = grpc_slice_to_c_string(details);
			snprintf(err, errlen, "%s", d[0] ? d : "no answer");
			gpr_free(d);
		}
	} else {
		snprintf(err, errlen, "cannot call %s", url);
	}
	if (resp)
		grpc_byte_buffer_destroy(resp);
	grpc_byte_buffer_destroy(sent);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	peer_hang_up(call, cq, ch); /* its one event, if the batch started, was plucked above */
	return rv;
}
