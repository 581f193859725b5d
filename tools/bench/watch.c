/*
 * tools/bench/watch.c — watch and watch-latency.
 *
 * --streams Watch streams, spread over the connections, each create
 * --watchers-per-stream watchers on the put key range; once all are created,
 * puts run as in `put` (--clients, --total, --rate), and every event's delay
 * is measured from the moment its put was built: the first 8 bytes of each
 * value carry that send time. watch-latency is the same run paced at 100
 * puts/s (etcd's default); watch reports events/s delivered.
 *
 * A stream lives on one CQ thread with three batches of its own: status
 * (armed once), receive (always one armed) and send (the create requests,
 * one after another). It is freed when none of them is outstanding.
 */
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cmds.h"
#include "rpc.pb-c.h"
#include "run.h"
#include "tmpl.h"
#include "unary.h"
#include "wscan.h"

struct wstream;

struct wtag {
	struct bench_tag tag;
	struct wstream *s;
};

struct watch_ctx {
	const struct bench_opts *o;
	struct bench_opts put_opts;   /* o, with the key prefix/size the watchers cover */
	struct bench_conns *conns;
	struct wstream *streams;
	grpc_slice create;            /* the WatchCreateRequest every watcher sends */
	struct bench_tmpl put;
	_Atomic uint64_t created;
	_Atomic uint64_t events;
	_Atomic uint64_t last_event_ns;
	_Atomic int failed;           /* streams that ended on their own */
	_Atomic int finish;           /* main says: cancel your streams */
};

struct wstream {
	struct watch_ctx *w;
	struct bench_thread *t;
	int index;
	grpc_call *call;
	struct wtag send, recv, status;
	int send_busy, recv_busy, status_busy;
	int creates_sent;
	int cancelled;                /* by us: a CANCELLED status is then expected */
	grpc_byte_buffer *recv_buf;
	grpc_byte_buffer *send_buf;   /* one per send: gRPC empties a buffer it sends */
	grpc_metadata_array md_initial, md_trailing;
	grpc_status_code code;
	grpc_slice details;
	uint64_t now;                 /* when the response being scanned arrived */
};

static void stream_error(struct wstream *s, grpc_status_code code, const char *msg)
{
	bench_thread_error(s->t, code, msg, strlen(msg));
}

/* Frees the stream's call once no batch is outstanding. */
static void stream_maybe_done(struct wstream *s)
{
	if (s->send_busy || s->recv_busy || s->status_busy || s->call == NULL)
		return;
	grpc_call_unref(s->call);
	s->call = NULL;
	grpc_metadata_array_destroy(&s->md_initial);
	grpc_metadata_array_destroy(&s->md_trailing);
	grpc_slice_unref(s->details);
	s->t->live--;
}

static void stream_cancel(struct wstream *s)
{
	if (s->cancelled || s->call == NULL)
		return;
	s->cancelled = 1;
	grpc_call_cancel(s->call, NULL);
}

static int start(struct wstream *s, grpc_op *ops, size_t n, struct wtag *tag, int *busy)
{
	grpc_call_error e = grpc_call_start_batch(s->call, ops, n, &tag->tag, NULL);
	if (e != GRPC_CALL_OK) {
		char msg[64];
		snprintf(msg, sizeof(msg), "watch: grpc_call_start_batch failed: %d", (int)e);
		stream_error(s, GRPC_STATUS_INTERNAL, msg);
		stream_cancel(s);
		return 1;
	}
	*busy = 1;
	return 0;
}

static void send_create(struct wstream *s)
{
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (s->creates_sent == 0) {
		ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
		bench_auth_md(&ops[n++]);
	}
	s->send_buf = grpc_raw_byte_buffer_create(&s->w->create, 1);
	ops[n].op = GRPC_OP_SEND_MESSAGE;
	ops[n++].data.send_message.send_message = s->send_buf;
	s->creates_sent++;
	if (start(s, ops, n, &s->send, &s->send_busy) != 0) {
		grpc_byte_buffer_destroy(s->send_buf);
		s->send_buf = NULL;
	}
}

static void arm_recv(struct wstream *s, int first)
{
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	size_t n = 0;
	if (first) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->md_initial;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &s->recv_buf;
	start(s, ops, n, &s->recv, &s->recv_busy);
}

static void on_send(struct bench_tag *tag, int success)
{
	struct wstream *s = ((struct wtag *)tag)->s;
	s->send_busy = 0;
	grpc_byte_buffer_destroy(s->send_buf);
	s->send_buf = NULL;
	if (success && !s->cancelled && s->creates_sent < s->w->o->watchers_per_stream)
		send_create(s);
	stream_maybe_done(s);
}

/* Per event: the first 8 bytes of our puts' values are their send time. */
static void on_event(void *arg, int type, const uint8_t *value, size_t len)
{
	struct wstream *s = arg;
	uint64_t stamp;
	(void)type;
	if (value == NULL || len < BENCH_STAMP_LEN)
		return; /* not one of our puts (a delete, or someone else's) */
	memcpy(&stamp, value, BENCH_STAMP_LEN);
	s->t->stats.events++;
	bench_stats_ok(&s->t->stats, BENCH_KIND_ALL, s->now > stamp ? s->now - stamp : 0);
}

static int handle_response(struct wstream *s, const uint8_t *p, size_t len)
{
	struct watch_ctx *w = s->w;
	struct bench_wscan wr;
	s->now = bench_now_ns();
	if (bench_wscan(p, len, &wr, on_event, s) != 0)
		return -1;
	if (wr.created)
		atomic_fetch_add(&w->created, 1);
	if (wr.canceled) {
		char msg[256];
		snprintf(msg, sizeof(msg), "watch canceled by the server: %.*s",
			 (int)(wr.reason_len < 200 ? wr.reason_len : 200), (const char *)wr.reason);
		stream_error(s, GRPC_STATUS_CANCELLED, msg);
	}
	if (wr.n_events == 0)
		return 0;
	atomic_fetch_add(&w->events, wr.n_events);
	atomic_store(&w->last_event_ns, s->now);
	return 0;
}

/* Scans bb in place when it is one uncompressed slice (the usual case),
 * else flattens it first. */
static int handle_buffer(struct wstream *s, grpc_byte_buffer *bb)
{
	if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
	    bb->data.raw.slice_buffer.count == 1) {
		grpc_slice sl = bb->data.raw.slice_buffer.slices[0];
		return handle_response(s, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl));
	}
	grpc_byte_buffer_reader rd;
	if (!grpc_byte_buffer_reader_init(&rd, bb))
		return -1;
	grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	int rv = handle_response(s, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all));
	grpc_slice_unref(all);
	return rv;
}

static void on_recv(struct bench_tag *tag, int success)
{
	struct wstream *s = ((struct wtag *)tag)->s;
	s->recv_busy = 0;
	if (!success || s->recv_buf == NULL) {
		/* The stream is over; the status batch says why. */
		if (!s->cancelled)
			atomic_fetch_add(&s->w->failed, 1);
		stream_maybe_done(s);
		return;
	}
	if (handle_buffer(s, s->recv_buf) != 0)
		stream_error(s, GRPC_STATUS_INTERNAL, "watch: response does not parse");
	grpc_byte_buffer_destroy(s->recv_buf);
	s->recv_buf = NULL;
	if (!s->cancelled)
		arm_recv(s, 0);
	stream_maybe_done(s);
}

static void on_status(struct bench_tag *tag, int success)
{
	struct wstream *s = ((struct wtag *)tag)->s;
	s->status_busy = 0;
	if (!success) {
		stream_error(s, GRPC_STATUS_UNKNOWN, "watch: status batch failed");
	} else if (s->code != GRPC_STATUS_OK && !(s->cancelled && s->code == GRPC_STATUS_CANCELLED)) {
		char *d = grpc_slice_to_c_string(s->details);
		char msg[256];
		snprintf(msg, sizeof(msg), "watch stream: %s", d);
		gpr_free(d);
		stream_error(s, s->code, msg);
	}
	if (!s->cancelled) {
		atomic_fetch_add(&s->w->failed, 1);
		s->cancelled = 1; /* nothing more to send or arm */
	}
	stream_maybe_done(s);
}

static void stream_start(struct wstream *s)
{
	struct watch_ctx *w = s->w;
	s->t->live++;
	s->call = bench_conns_call(w->conns, s->index, BENCH_M_WATCH, s->t->cq, 0);
	grpc_metadata_array_init(&s->md_initial);
	grpc_metadata_array_init(&s->md_trailing);
	s->details = grpc_empty_slice();
	grpc_op op;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	op.data.recv_status_on_client.trailing_metadata = &s->md_trailing;
	op.data.recv_status_on_client.status = &s->code;
	op.data.recv_status_on_client.status_details = &s->details;
	if (start(s, &op, 1, &s->status, &s->status_busy) != 0) {
		atomic_fetch_add(&w->failed, 1);
		stream_maybe_done(s);
		return;
	}
	arm_recv(s, 1);
	send_create(s);
}

static void start_thread(struct bench_thread *t, void *ctx)
{
	struct watch_ctx *w = ctx;
	for (int i = t->index; i < w->o->streams; i += t->run->nthreads) {
		w->streams[i].t = t;
		stream_start(&w->streams[i]);
	}
}

static void tick_thread(struct bench_thread *t, void *ctx)
{
	struct watch_ctx *w = ctx;
	if (!atomic_load(&w->finish))
		return;
	for (int i = t->index; i < w->o->streams; i += t->run->nthreads)
		stream_cancel(&w->streams[i]);
}

static void next_put(void *ctx, uint64_t n, uint64_t *rng, struct bench_req *out)
{
	struct watch_ctx *w = ctx;
	const struct bench_opts *po = &w->put_opts;
	uint64_t key = po->sequential ? n % po->key_space : bench_rand(rng) % po->key_space;
	out->method = BENCH_M_PUT;
	out->kind = BENCH_KIND_ALL;
	out->msg = bench_tmpl_render(&w->put, po->key_prefix, &key, bench_now_ns());
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Builds the shared create request and the put template. */
static int prepare(struct watch_ctx *w, uint8_t *keybuf, uint8_t *value, uint8_t *end)
{
	struct bench_opts *po = &w->put_opts;
	/* Watchers cover [prefix, prefix+1): puts must carry a prefix. */
	if (po->key_prefix[0] == 0)
		po->key_prefix = "bench-watch/";
	size_t plen = strlen(po->key_prefix);
	if ((size_t)po->key_size < plen + 8)
		po->key_size = (int)plen + 8;
	if (po->val_size < BENCH_STAMP_LEN)
		po->val_size = BENCH_STAMP_LEN;

	memcpy(end, po->key_prefix, plen);
	end[plen - 1]++;
	Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	cr.key.data = (uint8_t *)po->key_prefix;
	cr.key.len = plen;
	cr.range_end.data = end;
	cr.range_end.len = plen;
	Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
	wr.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	wr.create_request = &cr;
	size_t len = protobuf_c_message_get_packed_size(&wr.base);
	w->create = grpc_slice_malloc(len);
	protobuf_c_message_pack(&wr.base, GRPC_SLICE_START_PTR(w->create));

	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	put.key.data = keybuf;
	put.key.len = (size_t)po->key_size;
	put.value.data = value;
	put.value.len = (size_t)po->val_size;
	uint8_t *keys[1] = {keybuf};
	return bench_tmpl_build(&w->put, &put.base, keys, 1, (size_t)po->key_size, value);
}

/* Waits until cond(w) holds, a stream failed, SIGINT, or timeout_s passed.
 * Returns 0 when cond held. */
static int wait_for(struct watch_ctx *w, int (*cond)(struct watch_ctx *, uint64_t), uint64_t arg,
		    double timeout_s)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
	while (!cond(w, arg)) {
		if (atomic_load(&w->failed) > 0 || bench_interrupted() || bench_now_ns() >= deadline)
			return 1;
		sleep_ms(5);
	}
	return 0;
}

static int all_created(struct watch_ctx *w, uint64_t n)
{
	return atomic_load(&w->created) >= n;
}

static int all_events(struct watch_ctx *w, uint64_t n)
{
	return atomic_load(&w->events) >= n;
}

int bench_cmd_watch(const struct bench_opts *o, struct bench_conns *c, struct bench_result *res)
{
	struct watch_ctx w;
	memset(&w, 0, sizeof(w));
	w.o = o;
	w.put_opts = *o;
	w.conns = c;
	int rv = 1, run_started = 0;
	size_t kmax = strlen(o->key_prefix) + 32 + (size_t)o->key_size;
	uint8_t *keybuf = malloc(kmax), *end = malloc(kmax);
	uint8_t *value = malloc((size_t)o->val_size + BENCH_STAMP_LEN);
	w.streams = calloc((size_t)o->streams, sizeof(*w.streams));
	struct bench_run r;
	memset(&r, 0, sizeof(r));
	if (keybuf == NULL || end == NULL || value == NULL || w.streams == NULL)
		goto out;
	bench_fill_random(value, (size_t)o->val_size + BENCH_STAMP_LEN, 7);
	if (prepare(&w, keybuf, value, end) != 0) {
		fprintf(stderr, "metad-bench: cannot build the watch requests\n");
		goto out;
	}
	for (int i = 0; i < o->streams; i++) {
		struct wstream *s = &w.streams[i];
		s->w = &w;
		s->index = i;
		s->send = (struct wtag){{on_send}, s};
		s->recv = (struct wtag){{on_recv}, s};
		s->status = (struct wtag){{on_status}, s};
	}
	int nthreads = bench_default_threads(o);
	if (nthreads > o->streams)
		nthreads = o->streams;
	if (bench_run_init(&r, o, c, nthreads, 1) != 0)
		goto out;
	r.start = start_thread;
	r.tick = tick_thread;
	r.ctx = &w;
	if (bench_run_start(&r) != 0)
		goto out;
	run_started = 1;
	rv = 0;

	uint64_t watchers = (uint64_t)o->streams * (uint64_t)o->watchers_per_stream;
	res->is_watch = 1;
	res->watchers = watchers;
	struct bench_result puts;
	memset(&puts, 0, sizeof(puts));
	if (wait_for(&w, all_created, watchers, o->timeout) != 0) {
		if (atomic_load(&w.failed) == 0)
			bench_thread_error(&r.threads[0], GRPC_STATUS_DEADLINE_EXCEEDED,
					   "watchers not all created in time", 32);
	} else {
		uint64_t t0 = bench_now_ns();
		struct bench_workload wl = {.next = next_put, .ctx = &w};
		if (bench_unary_run(&w.put_opts, c, &wl, "put", bench_show_progress(o), &puts) != 0) {
			fprintf(stderr, "metad-bench: cannot start the puts\n");
			rv = 1;
		}
		res->seconds = puts.seconds;
		res->puts = puts.stats.ok;
		res->events_expected = puts.stats.ok * watchers;
		wait_for(&w, all_events, res->events_expected, o->watch_wait);
		uint64_t last = atomic_load(&w.last_event_ns);
		res->event_seconds = last > t0 ? (double)(last - t0) / 1e9 : 0;
	}
	atomic_store(&w.finish, 1);
	bench_run_wait(&r, 0);
	bench_run_stats(&r, &res->stats);
	/* Put failures count as the run's errors, and the first one is shown
	 * if no stream failed before it. */
	res->stats.errors += puts.stats.errors;
	for (int i = 0; i < BENCH_STATUS_CODES; i++)
		res->stats.err_by_code[i] += puts.stats.err_by_code[i];
	res->have_first_error = r.first_error.have;
	res->first_code = r.first_error.code;
	memcpy(res->first_msg, r.first_error.msg, sizeof(res->first_msg));
	if (!res->have_first_error && puts.have_first_error) {
		res->have_first_error = 1;
		res->first_code = puts.first_code;
		snprintf(res->first_msg, sizeof(res->first_msg), "put: %.240s", puts.first_msg);
	}
out:
	/* A run that never started has no thread to wait for. */
	(void)run_started;
	bench_run_close(&r);
	grpc_slice_unref(w.create);
	bench_tmpl_free(&w.put);
	free(w.streams);
	free(keybuf);
	free(end);
	free(value);
	return rv;
}
