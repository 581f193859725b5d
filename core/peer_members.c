/*
 * core/peer_members.c — the Members call: a member joining an existing
 * cluster learns the member list (its own id, the cluster id, its peers'
 * URLs) from the members already there, as etcd fetches it from remote
 * peers before it starts. Server side on the rx queue; client side a
 * blocking call on a queue of its own, made once at start-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include "core/peer_internal.h"

struct members_call {
	struct peer_tag tag;
	struct peer_transport *t;
	bool answering;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *resp;
	int cancelled;
};

static void mc_free(struct members_call *mc)
{
	struct peer_transport *t = mc->t;
	if (mc->payload)
		grpc_byte_buffer_destroy(mc->payload);
	if (mc->resp)
		grpc_byte_buffer_destroy(mc->resp);
	grpc_metadata_array_destroy(&mc->md);
	if (mc->call)
		grpc_call_unref(mc->call);
	free(mc);
	pthread_mutex_lock(&t->mu);
	peer_live_drop_locked(t, &t->live_in);
	pthread_mutex_unlock(&t->mu);
}

static void on_event(struct peer_tag *tag, bool ok)
{
	struct members_call *mc = PEER_CONTAINER(tag, struct members_call, tag);
	struct peer_transport *t = mc->t;
	if (mc->answering || !ok) { /* answered, or the server is stopping */
		mc_free(mc);
		return;
	}
	peer_members_arm(t);
	size_t len = 0;
	uint8_t *list = t->members ? t->members(t->arg, &len) : NULL;
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (list != NULL) {
		grpc_slice s = grpc_slice_from_copied_buffer((const char *)list, len);
		mc->resp = grpc_raw_byte_buffer_create(&s, 1);
		grpc_slice_unref(s);
		free(list);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = mc->resp;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n++].data.send_status_from_server.status =
		list != NULL ? GRPC_STATUS_OK : GRPC_STATUS_UNAVAILABLE;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &mc->cancelled;
	mc->answering = true;
	if (grpc_call_start_batch(mc->call, ops, n, &mc->tag, NULL) != GRPC_CALL_OK) {
		core_log("error", "peer members: start_batch failed");
		mc_free(mc);
	}
}

void peer_members_arm(struct peer_transport *t)
{
	struct members_call *mc = calloc(1, sizeof(*mc));
	if (mc == NULL)
		return;
	mc->t = t;
	mc->tag.fn = on_event;
	grpc_metadata_array_init(&mc->md);
	if (!peer_live_in_add(t)) {
		grpc_metadata_array_destroy(&mc->md);
		free(mc);
		return;
	}
	if (grpc_server_request_registered_call(t->server, t->members_method, &mc->call,
						&mc->deadline, &mc->md, &mc->payload, t->rx_cq,
						t->rx_cq, &mc->tag) != GRPC_CALL_OK) {
		core_log("error", "peer members: request_call failed");
		mc_free(mc);
	}
}

/* One call to url; 0 with *buf set, or -1 with err. */
static int fetch_one(struct peer_transport *tls, const char *url, int64_t timeout_ms, uint8_t **buf,
		     size_t *len, char *err, size_t errlen)
{
	char addr[512];
	bool https;
	if (peer_url_addr(url, addr, sizeof(addr), &https) != 0) {
		snprintf(err, errlen, "invalid peer URL %s", url);
		return -1;
	}
	grpc_channel_credentials *creds = peer_channel_creds(tls, https);
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
						   grpc_slice_from_static_string(PEER_MEMBERS_METHOD),
						   NULL, deadline, NULL);
	grpc_metadata_array initial, trailing;
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	grpc_slice empty = grpc_empty_slice();
	grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&empty, 1);
	grpc_byte_buffer *resp = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = req;
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
		grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME),
							    NULL);
		if (ev.type == GRPC_OP_COMPLETE && status == GRPC_STATUS_OK && resp != NULL) {
			grpc_byte_buffer_reader rd;
			if (grpc_byte_buffer_reader_init(&rd, resp)) {
				grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
				grpc_byte_buffer_reader_destroy(&rd);
				*len = GRPC_SLICE_LENGTH(s);
				*buf = malloc(*len ? *len : 1);
				if (*buf != NULL) {
					memcpy(*buf, GRPC_SLICE_START_PTR(s), *len);
					rv = 0;
				}
				grpc_slice_unref(s);
			}
		}
		if (rv != 0) {
			char *d = grpc_slice_to_c_string(details);
			snprintf(err, errlen, "cannot fetch the member list from %s: %s (status %d)",
				 url, d, (int)status);
			gpr_free(d);
		}
	} else {
		snprintf(err, errlen, "cannot call %s", url);
	}
	if (resp)
		grpc_byte_buffer_destroy(resp);
	grpc_byte_buffer_destroy(req);
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

int peer_fetch_members(const struct peer_tls *tls, const char *const *urls, size_t n,
		       int64_t timeout_ms, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	struct peer_transport creds;
	memset(&creds, 0, sizeof(creds));
	grpc_init();
	int rv = peer_load_tls(&creds, tls, err, errlen);
	for (size_t i = 0; rv == 0 && i < n; i++) {
		rv = fetch_one(&creds, urls[i], timeout_ms, buf, len, err, errlen);
		if (rv == 0)
			break;
		rv = i + 1 < n ? 0 : -1; /* try the next member */
	}
	if (n == 0) {
		snprintf(err, errlen, "no other member to ask for the member list");
		rv = -1;
	}
	free(creds.cert_pem);
	free(creds.key_pem);
	free(creds.ca_pem);
	grpc_shutdown();
	return rv;
}
