/*
 * core/peer_snap.c — snapshot transfer: a member behind the leader's
 * compacted log fetches the leader's store as a file on a stream of its
 * own, so a transfer of gigabytes never sits in front of the Raft messages
 * of the member's ordinary stream.
 *
 * Server side: calls arrive on their own completion queue and thread,
 * which also asks for the file (the snapshot callback) and reads it, while
 * it is still being written too (the snapshot_state callback says how far
 * it has got; chunks carry the total only once it is known); one chunk is
 * in flight per call, so gRPC's flow control paces the sender to the
 * receiver. A request may name a file and an offset to go on from (the
 * server then resumes it if it still serves that file). Client side: one
 * blocking call on a queue of its own, handing each chunk to the caller's
 * sink and writing nothing to disk: the member loads the chunks as they
 * come (core/snap_fetch.c), and a part file beside the load cost as much
 * CPU as the load (1M keys: a learner's catch-up 2.3 s -> 1.4-1.6 s, its
 * CPU 1.75 s -> 1.05 s without it). A broken transfer starts again from
 * the beginning, as etcd's does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>

#include "core/peer_internal.h"
#include "internal.pb-c.h"

#define CHUNK_BYTES (1u << 20)
#define ID_MAX 128
#define GROW_IDLE_MS 60000 /* a file being made that stops growing is given up */

enum { SC_ARMED, SC_SENDING, SC_FINISHING };

struct snap_call {
	struct core_tag tag;
	struct peer_transport *t;
	int state;
	bool last_sent;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *out;
	grpc_slice details;
	int cancelled;
	int fd;
	char id[ID_MAX];
	char *path;
	uint64_t off;
	uint8_t *buf;
};

static void sc_free(struct snap_call *sc)
{
	struct peer_transport *t = sc->t;
	if (sc->payload)
		grpc_byte_buffer_destroy(sc->payload);
	if (sc->out)
		grpc_byte_buffer_destroy(sc->out);
	grpc_slice_unref(sc->details);
	grpc_metadata_array_destroy(&sc->md);
	if (sc->call)
		grpc_call_unref(sc->call);
	if (sc->fd >= 0)
		close(sc->fd);
	free(sc->buf);
	free(sc->path);
	free(sc);
	pthread_mutex_lock(&t->mu);
	peer_live_drop_locked(t, &t->live_in);
	pthread_mutex_unlock(&t->mu);
}

static void finish(struct snap_call *sc, grpc_status_code code, const char *msg, bool send_md)
{
	grpc_op ops[3];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (send_md)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	sc->details = grpc_slice_from_copied_string(msg);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = &sc->details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &sc->cancelled;
	sc->state = SC_FINISHING;
	if (grpc_call_start_batch(sc->call, ops, n, &sc->tag, NULL) != GRPC_CALL_OK)
		sc_free(sc);
}

/* How far the file has got: 1 whole, 0 growing, -1 never whole. */
static int file_state(struct snap_call *sc, uint64_t *size)
{
	struct peer_transport *t = sc->t;
	if (t->snapshot_state != NULL)
		return t->snapshot_state(t->arg, sc->path, size);
	struct stat st;
	return fstat(sc->fd, &st) == 0 ? (*size = (uint64_t)st.st_size, 1) : -1;
}

/*
 * Send the chunk at sc->off (with the initial metadata the first time).
 * Of a file still being written, whole chunks as they are there: this
 * thread waits for them (it serves snapshots only).
 */
static void send_chunk(struct snap_call *sc, bool first)
{
	uint64_t size = 0;
	int st;
	for (int waited = 0;; waited += 2) {
		st = file_state(sc, &size);
		if (st < 0) {
			finish(sc, GRPC_STATUS_UNAVAILABLE, "the snapshot file could not be made", first);
			return;
		}
		if (first && st == 1 && sc->off > size)
			sc->off = 0; /* not a part of this file: from the start */
		if (st == 1 || (size > sc->off && size - sc->off >= CHUNK_BYTES))
			break;
		if (waited >= GROW_IDLE_MS) {
			finish(sc, GRPC_STATUS_UNAVAILABLE, "the snapshot file stopped growing", first);
			return;
		}
		usleep(2000);
	}
	size_t want = size - sc->off < CHUNK_BYTES ? (size_t)(size - sc->off) : CHUNK_BYTES;
	ssize_t got = want ? pread(sc->fd, sc->buf, want, (off_t)sc->off) : 0;
	if (got < 0 || (size_t)got != want) {
		finish(sc, GRPC_STATUS_INTERNAL, "cannot read the snapshot file", first);
		return;
	}
	Metadpb__SnapshotChunk ch = METADPB__SNAPSHOT_CHUNK__INIT;
	ch.id = sc->id;
	ch.offset = sc->off;
	ch.total = st == 1 ? size : 0; /* 0: not known yet */
	ch.data.data = sc->buf;
	ch.data.len = want;
	size_t len = metadpb__snapshot_chunk__get_packed_size(&ch);
	grpc_slice s = grpc_slice_malloc(len);
	metadpb__snapshot_chunk__pack(&ch, GRPC_SLICE_START_PTR(s));
	if (sc->out)
		grpc_byte_buffer_destroy(sc->out);
	sc->out = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	sc->off += want;
	sc->last_sent = st == 1 && sc->off == size;
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (first)
		ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = sc->out;
	sc->state = SC_SENDING;
	if (grpc_call_start_batch(sc->call, ops, n, &sc->tag, NULL) != GRPC_CALL_OK)
		sc_free(sc);
}

/* A new call: check who asks, get the file, start sending. */
static void start(struct snap_call *sc)
{
	struct peer_transport *t = sc->t;
	uint64_t cluster = 0;
	if (!peer_call_san_ok(t, sc->call)) {
		finish(sc, GRPC_STATUS_UNAUTHENTICATED, PEER_ERR_SAN, true);
		return;
	}
	if (!peer_md_hex(&sc->md, PEER_MD_CLUSTER, &cluster) || cluster != t->cluster_id) {
		finish(sc, GRPC_STATUS_FAILED_PRECONDITION, PEER_ERR_CLUSTER_MISMATCH, true);
		return;
	}
	Metadpb__SnapshotFetch *req = NULL;
	if (sc->payload != NULL) {
		grpc_byte_buffer_reader rd;
		if (grpc_byte_buffer_reader_init(&rd, sc->payload)) {
			grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
			grpc_byte_buffer_reader_destroy(&rd);
			req = metadpb__snapshot_fetch__unpack(NULL, GRPC_SLICE_LENGTH(s),
							      GRPC_SLICE_START_PTR(s));
			grpc_slice_unref(s);
		}
	}
	if (req == NULL) {
		finish(sc, GRPC_STATUS_INVALID_ARGUMENT, "malformed snapshot request", true);
		return;
	}
	if (t->snapshot == NULL || t->snapshot(t->arg, req->id ? req->id : "", &sc->path) != 0 ||
	    (sc->fd = open(sc->path, O_RDONLY)) < 0) {
		metadpb__snapshot_fetch__free_unpacked(req, NULL);
		finish(sc, GRPC_STATUS_UNAVAILABLE, "no snapshot to send", true);
		return;
	}
	/* The file's name, without directory or extension, is its id (the
	 * same while it is made and once whole). */
	const char *base = strrchr(sc->path, '/');
	base = base ? base + 1 : sc->path;
	snprintf(sc->id, sizeof(sc->id), "%.*s", (int)strcspn(base, "."), base);
	if (req->id != NULL && strcmp(req->id, sc->id) == 0)
		sc->off = req->offset; /* checked against the size at the first chunk */
	metadpb__snapshot_fetch__free_unpacked(req, NULL);
	sc->buf = malloc(CHUNK_BYTES);
	if (sc->buf == NULL) {
		finish(sc, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", true);
		return;
	}
	send_chunk(sc, true);
}

static void on_event(struct core_tag *tag, bool ok)
{
	struct snap_call *sc = PEER_CONTAINER(tag, struct snap_call, tag);
	switch (sc->state) {
	case SC_ARMED:
		if (!ok) { /* the server is stopping */
			sc_free(sc);
			return;
		}
		peer_snap_arm(sc->t);
		start(sc);
		return;
	case SC_SENDING:
		if (!ok) /* the fetcher went away */
			sc_free(sc);
		else if (sc->last_sent)
			finish(sc, GRPC_STATUS_OK, "", false);
		else
			send_chunk(sc, false);
		return;
	default:
		sc_free(sc);
	}
}

void peer_snap_arm(struct peer_transport *t)
{
	struct snap_call *sc = calloc(1, sizeof(*sc));
	if (sc == NULL)
		return;
	sc->t = t;
	sc->fd = -1;
	sc->tag.fn = on_event;
	sc->details = grpc_empty_slice();
	grpc_metadata_array_init(&sc->md);
	if (!peer_live_in_add(t)) {
		grpc_metadata_array_destroy(&sc->md);
		free(sc);
		return;
	}
	if (grpc_server_request_registered_call(t->server, t->snap_method, &sc->call, &sc->deadline,
						&sc->md, &sc->payload, t->snap_cq, t->snap_cq,
						&sc->tag) != GRPC_CALL_OK) {
		core_log("error", "peer snapshot: request_call failed");
		sc_free(sc);
	}
}

void *peer_snap_main(void *arg)
{
	struct peer_transport *t = arg;
	pthread_setname_np(pthread_self(), "metad-peer-snap");
	core_poller_run(t->snap_cq);
	return NULL;
}

/* ---- fetching ---- */

struct fetch {
	char id[ID_MAX]; /* the file the chunks so far belong to */
	uint64_t have;   /* bytes of it handed to the sink */
	peer_snap_sink sink;
	void *sink_arg;
	/* A chunk's message in one piece, reused from chunk to chunk: a fresh
	 * 1 MiB slice per chunk (grpc_byte_buffer_reader_readall) took 13% of
	 * a learner's CPU loading 1M keys, most of it touching new pages. */
	uint8_t *buf;
	size_t cap;
};

/* The message bb holds, contiguous in f->buf; NULL when out of memory. */
static const uint8_t *chunk_bytes(struct fetch *f, grpc_byte_buffer *bb, size_t *len)
{
	size_t n = grpc_byte_buffer_length(bb);
	if (n > f->cap) {
		uint8_t *b = realloc(f->buf, n);
		if (b == NULL)
			return NULL;
		f->buf = b;
		f->cap = n;
	}
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return NULL;
	size_t at = 0;
	grpc_slice s;
	while (grpc_byte_buffer_reader_next(&rd, &s)) {
		size_t sl = GRPC_SLICE_LENGTH(s);
		if (sl > f->cap - at) { /* longer than it said: refuse it */
			grpc_slice_unref(s);
			grpc_byte_buffer_reader_destroy(&rd);
			return NULL;
		}
		memcpy(f->buf + at, GRPC_SLICE_START_PTR(s), sl);
		at += sl;
		grpc_slice_unref(s);
	}
	grpc_byte_buffer_reader_destroy(&rd);
	*len = at;
	return f->buf;
}

/* One chunk to the sink; 1 when the file is whole, 0 for more, -1 for a
 * bad chunk, -2 when the sink refused it. */
static int fetch_chunk(struct fetch *f, grpc_byte_buffer *bb)
{
	size_t len = 0;
	const uint8_t *msg = chunk_bytes(f, bb, &len);
	if (msg == NULL)
		return -1;
	Metadpb__SnapshotChunk *ch = metadpb__snapshot_chunk__unpack(NULL, len, msg);
	/* total is 0 until the sender knows it (the file is still made). */
	if (ch == NULL || ch->id == NULL || strlen(ch->id) >= ID_MAX ||
	    (ch->total != 0 && ch->offset + ch->data.len > ch->total)) {
		if (ch)
			metadpb__snapshot_chunk__free_unpacked(ch, NULL);
		return -1;
	}
	int rv = 0;
	if (ch->offset == 0 && f->have == 0)
		snprintf(f->id, sizeof(f->id), "%s", ch->id);
	else if (strcmp(ch->id, f->id) != 0 || ch->offset != f->have)
		rv = -1; /* one file, in order from the start */
	if (rv == 0 && f->sink(f->sink_arg, ch->offset, ch->data.data, ch->data.len) != 0)
		rv = -2;
	if (rv == 0) {
		f->have += ch->data.len;
		rv = ch->total != 0 && f->have == ch->total ? 1 : 0;
	}
	metadpb__snapshot_chunk__free_unpacked(ch, NULL);
	return rv;
}

/* Wait for tag, giving up after idle_ms or when *stop is set; *pending
 * stays true when it did not complete (the caller cancels, then plucks). */
static bool wait_tag(grpc_completion_queue *cq, void *tag, int64_t idle_ms, const _Atomic bool *stop,
		     bool *pending)
{
	int64_t waited = 0;
	*pending = true;
	for (;;) {
		gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					       gpr_time_from_millis(200, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_pluck(cq, tag, dl, NULL);
		if (ev.type == GRPC_OP_COMPLETE) {
			*pending = false;
			return ev.success != 0;
		}
		waited += 200;
		if (atomic_load(stop) || waited >= idle_ms)
			return false;
	}
}

static int fetch_one(struct peer_transport *t, const char *url, struct fetch *f, int64_t idle_ms,
		     const _Atomic bool *stop, char *err, size_t errlen)
{
	grpc_arg args[] = {
		{GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 2 * CHUNK_BYTES}},
	};
	grpc_channel_args cargs = {1, args};
	grpc_channel *ch = peer_dial(t, url, &cargs, err, errlen);
	if (ch == NULL)
		return -1;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
						   grpc_slice_from_static_string(PEER_SNAPSHOT_METHOD),
						   NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	char cluster_hex[17], from_hex[17];
	snprintf(cluster_hex, sizeof(cluster_hex), "%" PRIx64, t->cluster_id);
	snprintf(from_hex, sizeof(from_hex), "%" PRIx64, t->self_id);
	grpc_metadata md[2];
	memset(md, 0, sizeof(md));
	md[0].key = grpc_slice_from_static_string(PEER_MD_CLUSTER);
	md[0].value = grpc_slice_from_static_string(cluster_hex);
	md[1].key = grpc_slice_from_static_string(PEER_MD_FROM);
	md[1].value = grpc_slice_from_static_string(from_hex);
	Metadpb__SnapshotFetch req = METADPB__SNAPSHOT_FETCH__INIT; /* the file from its start */
	f->id[0] = 0;
	f->have = 0;
	uint8_t reqbuf[ID_MAX + 32];
	size_t reqlen = metadpb__snapshot_fetch__pack(&req, reqbuf);
	grpc_slice rs = grpc_slice_from_copied_buffer((const char *)reqbuf, reqlen);
	grpc_byte_buffer *reqbb = grpc_raw_byte_buffer_create(&rs, 1);
	grpc_slice_unref(rs);
	grpc_metadata_array initial, trailing;
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[4];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = 2;
	ops[0].data.send_initial_metadata.metadata = md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = reqbb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	int tag_send, tag_msg, tag_status;
	int rv = -1;
	bool send_pending = false, msg_pending = false, ended = false;
	bool started = call && grpc_call_start_batch(call, ops, 4, &tag_send, NULL) == GRPC_CALL_OK;
	bool ok = started && wait_tag(cq, &tag_send, idle_ms, stop, &send_pending);
	while (ok && rv != 0) {
		grpc_byte_buffer *bb = NULL;
		grpc_op r;
		memset(&r, 0, sizeof(r));
		r.op = GRPC_OP_RECV_MESSAGE;
		r.data.recv_message.recv_message = &bb;
		if (grpc_call_start_batch(call, &r, 1, &tag_msg, NULL) != GRPC_CALL_OK ||
		    !wait_tag(cq, &tag_msg, idle_ms, stop, &msg_pending) || bb == NULL) {
			if (msg_pending) {
				grpc_call_cancel(call, NULL);
				grpc_completion_queue_pluck(cq, &tag_msg, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
				msg_pending = false;
			}
			ended = bb == NULL; /* the server ended it: its status says why */
			if (bb)
				grpc_byte_buffer_destroy(bb);
			break;
		}
		int c = fetch_chunk(f, bb);
		grpc_byte_buffer_destroy(bb);
		if (c < 0) {
			snprintf(err, errlen,
				 c == -2 ? "the snapshot from %s does not load (another cluster's, or damaged)"
					 : "bad snapshot chunk from %s",
				 url);
			break;
		}
		if (c == 1)
			rv = 0;
	}
	if (started) {
		if (rv != 0 && !ended)
			grpc_call_cancel(call, NULL);
		grpc_op s;
		memset(&s, 0, sizeof(s));
		s.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
		s.data.recv_status_on_client.trailing_metadata = &trailing;
		s.data.recv_status_on_client.status = &status;
		s.data.recv_status_on_client.status_details = &details;
		if (grpc_call_start_batch(call, &s, 1, &tag_status, NULL) == GRPC_CALL_OK)
			grpc_completion_queue_pluck(cq, &tag_status, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		/* A batch still out (cancelled above) completes now. */
		if (send_pending)
			grpc_completion_queue_pluck(cq, &tag_send, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (rv != 0 && err[0] == 0) {
			char *d = grpc_slice_to_c_string(details);
			snprintf(err, errlen, "snapshot from %s: %s (status %d)", url, d, (int)status);
			gpr_free(d);
		}
	} else {
		snprintf(err, errlen, "cannot call %s", url);
	}
	grpc_byte_buffer_destroy(reqbb);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	peer_hang_up(call, cq, ch); /* every batch's event was plucked above */
	return rv;
}

int peer_fetch_snapshot(struct peer_transport *t, const char *const *urls, size_t n,
			int64_t idle_ms, const _Atomic bool *stop, peer_snap_sink sink, void *sink_arg,
			char *err, size_t errlen)
{
	struct fetch f;
	memset(&f, 0, sizeof(f));
	f.sink = sink;
	f.sink_arg = sink_arg;
	err[0] = 0;
	int rv = -1;
	for (size_t i = 0; rv != 0 && i < n && !atomic_load(stop); i++) {
		err[0] = 0;
		rv = fetch_one(t, urls[i], &f, idle_ms, stop, err, errlen);
	}
	free(f.buf);
	return rv;
}
