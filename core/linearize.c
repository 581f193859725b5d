/*
 * core/linearize.c — serving a read-only request linearizably.
 *
 * A lone leader's own state is linearizable: every acknowledged write was
 * applied before its answer. Anywhere else a read first learns the leader's
 * commit index through a read-index round (confirmed by a heartbeat quorum,
 * shared by every read that arrives meanwhile) and runs once this member has
 * applied up to it. The request is borrowed by the caller for the call only,
 * so a deferred read keeps a packed copy.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

struct lin_read {
	struct read_wait w;
	struct core *c;
	const ProtobufCMessageDescriptor *desc;
	core_read_fn fn;
	core_done_fn cb;
	void *arg;
	size_t len;
	uint8_t data[];
};

static void run(void *arg, int err)
{
	struct lin_read *lr = arg;
	ProtobufCMessage *req = NULL;
	if (err == CORE_OK) {
		req = protobuf_c_message_unpack(lr->desc, NULL, lr->len, lr->data);
		if (req == NULL)
			err = CORE_ENOMEM;
	}
	if (err == CORE_OK)
		lr->fn(lr->c, req, lr->cb, lr->arg);
	else
		reply_fail(lr->cb, lr->arg, err);
	if (req != NULL)
		protobuf_c_message_free_unpacked(req, NULL);
	free(lr);
}

void core_linearize(struct core *c, const ProtobufCMessage *req, core_read_fn fn, core_done_fn cb,
		    void *arg)
{
	if (node_alone(c)) {
		fn(c, req, cb, arg);
		return;
	}
	size_t len = protobuf_c_message_get_packed_size(req);
	struct lin_read *lr = malloc(sizeof(*lr) + len);
	if (lr == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	memset(&lr->w, 0, sizeof(lr->w));
	lr->w.run = run;
	lr->w.arg = lr;
	lr->c = c;
	lr->desc = req->descriptor;
	lr->fn = fn;
	lr->cb = cb;
	lr->arg = arg;
	lr->len = protobuf_c_message_pack(req, lr->data);
	writer_read(c, &lr->w);
}
