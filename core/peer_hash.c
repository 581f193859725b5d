/*
 * core/peer_hash.c — the HashKV call between members, for the corruption
 * checks (core/corrupt.c), as etcd's peer handler /members/hashkv.
 *
 * Unary, payloads opaque here (the caller packs etcd's HashKVRequest and
 * HashKVResponse). Served on the snapshot thread, never the receive thread:
 * hashing a large store takes a while, and Raft's messages must not wait.
 * A refusal carries the server's message as the status details, so the
 * caller can tell "compacted" from "future revision" as etcd does.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include "core/peer_internal.h"

struct hash_call {
	struct peer_tag tag;
	struct peer_transport *t;
	bool answering;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *resp;
	grpc_slice details;
	int cancelled;
};

static void hc_free(struct hash_call *hc)
{
	struct peer_transport *t = hc->t;
	if (hc->payload)
		grpc_byte_buffer_destroy(hc->payload);
	if (hc->resp)
		grpc_byte_buffer_destroy(hc->resp);
	grpc_slice_unref(hc->details);
	grpc_metadata_array_destroy(&hc->md);
	if (hc->call)
		grpc_call_unref(hc->call);
	free(hc);
	pthread_mutex_lock(&t->mu);
	peer_live_drop_locked(t, &t->live_in);
	pthread_mutex_unlock(&t->mu);
}

/* The whole of a byte buffer into a malloc'ed copy (NULL: out of memory). */
static uint8_t *buffer_bytes(grpc_byte_buffer *bb, size_t *len)
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

static void on_event(struct peer_tag *tag, bool ok)
{
	struct hash_call *hc = PEER_CONTAINER(tag, struct hash_call, tag);
	struct peer_transport *t = hc->t;
	if (hc->answering || !ok) { /* answered, or the server is stopping */
		hc_free(hc);
		return;
	}
	peer_hash_arm(t);
	size_t len = 0, rlen = 0;
	uint8_t *req = buffer_bytes(hc->payload, &len), *resp = NULL;
	char why[256] = "refused";
	int rv = req != NULL && t->hash != NULL
			 ? t->hash(t->arg, req, len, &resp, &rlen, why, sizeof(why))
			 : -1;
	free(req);
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (rv == 0) {
		grpc_slice s = grpc_slice_from_copied_buffer((const char *)resp, rlen);
		hc->resp = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = hc->resp;
	}
	free(resp);
	hc->details = grpc_slice_from_copied_string(why);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status =
		rv == 0 ? GRPC_STATUS_OK : GRPC_STATUS_FAILED_PRECONDITION;
	ops[n++].data.send_status_from_server.status_details = rv == 0 ? NULL : &hc->details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &hc->cancelled;
	hc->answering = true;
	if (grpc_call_start_batch(hc->call, ops, n, &hc->tag, NULL) != GRPC_CALL_OK) {
		core_log("error", "peer hash: start_batch failed");
		hc_free(hc);
	}
}

void peer_hash_arm(struct peer_transport *t)
{
	struct hash_call *hc = calloc(1, sizeof(*hc));
	if (hc == NULL)
		return;
	hc->t = t;
	hc->tag.fn = on_event;
	hc->details = grpc_empty_slice();
	grpc_metadata_array_init(&hc->md);
	if (!peer_live_in_add(t)) {
		grpc_metadata_array_destroy(&hc->md);
		free(hc);
		return;
	}
	if (grpc_server_request_registered_call(t->server, t->hash_method, &hc->call, &hc->deadline,
						&hc->md, &hc->payload, t->snap_cq, t->snap_cq,
						&hc->tag) != GRPC_CALL_OK) {
		core_log("error", "peer hash: request_call failed");
		hc_free(hc);
	}
}

int peer_fetch_hash(struct peer_transport *t, const char *url, const uint8_t *req, size_t len,
		    int64_t timeout_ms, const _Atomic bool *stop, uint8_t **buf, size_t *buf_len,
		    char *err, size_t errlen)
{
	char addr[512];
	bool https;
	if (peer_url_addr(url, addr, sizeof(addr), &https) != 0) {
		snprintf(err, errlen, "invalid peer URL %s", url);
		return -1;
	}
	grpc_channel_credentials *creds = peer_channel_creds(t, https);
	grpc_channel *ch = creds ? grpc_channel_create(addr, creds, NULL) : NULL;
	if (creds)
		grpc_channel_credentials_release(creds);
	if (ch == NULL) {
		snprintf(err, errlen, "cannot reach %s", url);
		return -1;
	}
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
	grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						   grpc_slice_from_static_string(PEER_HASH_METHOD),
						   NULL, deadline, NULL);
	grpc_metadata_array initial, trailing;
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len);
	grpc_byte_buffer *sent = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	grpc_byte_buffer *resp = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
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
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	int rv = -1;
	static int tag;
	if (call != NULL && grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
		grpc_event ev;
		/* Woken every 100 ms to see *stop: a stopping server cancels the
		 * call rather than wait out a dead member's deadline. */
		for (;;) {
			gpr_timespec step = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
							 gpr_time_from_millis(100, GPR_TIMESPAN));
			ev = grpc_completion_queue_pluck(cq, &tag, step, NULL);
			if (ev.type == GRPC_OP_COMPLETE)
				break;
			if (stop != NULL && atomic_load(stop)) {
				grpc_call_cancel(call, NULL);
				stop = NULL;
			}
		}
		if (status == GRPC_STATUS_OK) {
			*buf = buffer_bytes(resp, buf_len);
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
	if (call)
		grpc_call_unref(call);
	/* Its one event, if the batch started, was plucked above. */
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_destroy(cq);
	grpc_channel_destroy(ch);
	return rv;
}
