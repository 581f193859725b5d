/*
 * core/peer_members.c — the Members call: a member joining an existing
 * cluster learns the member list (its own id, the cluster id, its peers'
 * URLs) from the members already there, as etcd fetches it from remote
 * peers before it starts. Server side on the peer queue; client side a
 * blocking call on a queue of its own, made once at start-up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include "core/peer_internal.h"

struct members_call {
	struct core_tag tag;
	struct peer_transport *t;
	bool answering;
	bool judging; /* the SAN check's reverse lookup is under way */
	bool san_ok;
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

static void on_event(struct core_tag *tag, bool ok)
{
	struct members_call *mc = PEER_CONTAINER(tag, struct members_call, tag);
	struct peer_transport *t = mc->t;
	bool san_ok;
	if (mc->judging) {
		mc->judging = false; /* a cancelled call fails the answer below */
		san_ok = mc->san_ok;
	} else if (mc->answering || !ok) { /* answered, or the server is stopping */
		mc_free(mc);
		return;
	} else {
		peer_members_arm(t);
		int v = peer_call_san_ok_async(t, mc->call, &mc->san_ok, &mc->tag);
		mc->judging = v < 0; /* this comes back with the verdict */
		if (mc->judging)
			return;
		san_ok = v == 1;
	}
	size_t len = 0;
	uint8_t *list = t->members && san_ok ? t->members(t->arg, &len) : NULL;
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
						&mc->deadline, &mc->md, &mc->payload, t->cq,
						t->cq, &mc->tag) != GRPC_CALL_OK) {
		core_log("error", "peer members: request_call failed");
		mc_free(mc);
	}
}

/* One call to url; 0 with *buf set, or -1 with err. */
static int fetch_one(struct peer_transport *tls, const char *url, int64_t timeout_ms, uint8_t **buf,
		     size_t *len, char *err, size_t errlen)
{
	grpc_status_code status;
	char why[256];
	int rv = peer_unary(tls, url, PEER_MEMBERS_METHOD, (const uint8_t *)"", 0, timeout_ms, NULL, buf, len,
			    &status, why, sizeof(why));
	if (rv == 0 && *len == 0) { /* an answer is never empty: no message came */
		free(*buf);
		*buf = NULL;
		rv = -1;
		snprintf(why, sizeof(why), "no answer");
	}
	if (rv == -2) /* no call was made: why says it all */
		snprintf(err, errlen, "%s", why);
	else if (rv != 0)
		snprintf(err, errlen, "cannot fetch the member list from %s: %s (status %d)", url, why,
			 (int)status);
	return rv == 0 ? 0 : -1;
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
