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
	struct core_tag tag;
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

/* A HashKV call arrived (or the server is stopping): answer it. */
static void on_event(struct core_tag *tag, bool ok)
{
	struct hash_call *hc = PEER_CONTAINER(tag, struct hash_call, tag);
	struct peer_transport *t = hc->t;
	if (hc->answering || !ok) { /* answered, or the server is stopping */
		hc_free(hc);
		return;
	}
	peer_hash_arm(t);
	size_t len = 0, rlen = 0;
	uint8_t *req = peer_buffer_bytes(hc->payload, &len), *resp = NULL;
	char why[256] = "refused";
	int rv = req != NULL && t->hash != NULL && peer_call_san_ok(t, hc->call)
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
	grpc_status_code status;
	return peer_unary(t, url, PEER_HASH_METHOD, req, len, timeout_ms, stop, buf, buf_len, &status,
			  err, errlen) == 0 ? 0 : -1;
}
