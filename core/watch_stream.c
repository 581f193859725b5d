/*
 * core/watch_stream.c — one Watch call's watchers: create / cancel /
 * progress requests, and building the responses each watcher is owed.
 *
 * Everything here runs on the hub thread. A watcher owes the client every
 * matching event from next_rev on. Near the head (synced) it gets one
 * response per revision, as etcd's synced watchers do; once it is more than
 * WATCH_LAG_REVS behind (a slow client, or a start_revision in the past) it
 * gets up to WATCH_BATCH_MAX_REVS revisions per response, from the ring or,
 * when the ring no longer covers next_rev, from storage in bounded chunks —
 * etcd's unsynced watchers. The stream's byte budget bounds what is waiting
 * in the transport; past it the hub simply stops building for that stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/core_internal.h"
#include "core/watch_internal.h"

static const char ERR_EMPTY_RANGE[] = "mvcc: watcher range is empty";
static const char ERR_DUP_ID[] = "mvcc: duplicate watch ID provided on the WatchStream";

/* ---- delivering ---- */

static void deliver_msg(struct watch_hub *h, struct core_watch_stream *ws,
			const Etcdserverpb__WatchResponse *resp)
{
	size_t len = etcdserverpb__watch_response__get_packed_size(resp);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL) {
		core_log("error", "watch: out of memory packing a response");
		return;
	}
	etcdserverpb__watch_response__pack(resp, buf);
	/* Count it before handing it over: the sink may report it at once. */
	atomic_fetch_add(&ws->queued, len + CORE_WATCH_MSG_OVERHEAD);
	ws->sink->send(ws->arg, buf, len);
	free(buf);
	(void)h;
}

/* A header revision of rev, the current one for 0, none for NO_REV. */
#define NO_REV (-1)

static void deliver_ctrl(struct watch_hub *h, struct core_watch_stream *ws, int64_t id,
			 bool created, bool canceled, const char *reason, int64_t compact_rev,
			 int64_t rev)
{
	Etcdserverpb__ResponseHeader hd = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	core_fill_header(h->c, &hd, rev);
	if (rev < 0)
		hd.revision = 0; /* NO_REV */
	Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	r.header = &hd;
	r.watch_id = id;
	r.created = created;
	r.canceled = canceled;
	r.cancel_reason = (char *)(reason ? reason : "");
	r.compact_revision = compact_rev;
	deliver_msg(h, ws, &r);
}

/* Events assembled for one watcher's response. */
struct wbuild {
	struct arena arena;
	Mvccpb__Event **evs;
	size_t n, cap;
	bool oom;
};

static Mvccpb__KeyValue *kv_msg(struct wbuild *b, const struct mvcc_kv *kv, bool tombstone,
				bool copy)
{
	Mvccpb__KeyValue *m = arena_alloc(&b->arena, sizeof(*m));
	if (m == NULL)
		return NULL;
	mvccpb__key_value__init(m);
	m->key.len = kv->key_len;
	m->key.data = copy ? arena_dup(&b->arena, kv->key, kv->key_len) : (uint8_t *)kv->key;
	m->mod_revision = kv->mod_revision;
	if (!tombstone) {
		/* A DELETE event's kv carries only key and mod_revision (etcd). */
		m->value.len = kv->value_len;
		m->value.data =
			copy ? arena_dup(&b->arena, kv->value, kv->value_len) : (uint8_t *)kv->value;
		m->create_revision = kv->create_revision;
		m->version = kv->version;
		m->lease = kv->lease;
	}
	if ((kv->key_len && m->key.data == NULL) || (m->value.len && m->value.data == NULL))
		return NULL;
	return m;
}

static Mvccpb__Event *add_event(struct wbuild *b, const struct mvcc_kv *kv, bool tombstone,
				bool copy)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		Mvccpb__Event **v = realloc(b->evs, cap * sizeof(*v));
		if (v == NULL) {
			b->oom = true;
			return NULL;
		}
		b->evs = v;
		b->cap = cap;
	}
	Mvccpb__Event *e = arena_alloc(&b->arena, sizeof(*e));
	if (e == NULL || (mvccpb__event__init(e), e->kv = kv_msg(b, kv, tombstone, copy)) == NULL) {
		b->oom = true;
		return NULL;
	}
	e->type = tombstone ? MVCCPB__EVENT__EVENT_TYPE__DELETE : MVCCPB__EVENT__EVENT_TYPE__PUT;
	b->evs[b->n++] = e;
	return e;
}

static void wbuild_free(struct wbuild *b)
{
	free(b->evs);
	arena_free(&b->arena);
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Send b's events for w: one response, or fragments when asked for and the
 * response is over the limit (every piece but the last has fragment set). */
static void deliver_events(struct watch_hub *h, struct core_watch_stream *ws, struct watcher *w,
			   struct wbuild *b, int64_t rev)
{
	Etcdserverpb__ResponseHeader hd = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	core_fill_header(h->c, &hd, rev);
	Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
	r.header = &hd;
	r.watch_id = w->id;
	r.events = b->evs;
	r.n_events = b->n;
	w->progress_due = false; /* events are progress too */
	if (!w->fragment || b->n < 2 ||
	    etcdserverpb__watch_response__get_packed_size(&r) < h->frag_limit) {
		deliver_msg(h, ws, &r);
		return;
	}
	/* etcd's sendFragments: a piece takes events while the whole piece,
	 * sized with fragment set, stays below the limit (at least one). */
	r.fragment = true;
	r.n_events = 0;
	size_t base = etcdserverpb__watch_response__get_packed_size(&r);
	size_t at = 0;
	while (at < b->n) {
		size_t n = 0, size = base;
		while (at + n < b->n) {
			size_t es = mvccpb__event__get_packed_size(b->evs[at + n]);
			es += 1 + varint_len(es); /* field 11's tag and length */
			if (n > 0 && size + es >= h->frag_limit)
				break;
			size += es;
			n++;
		}
		r.events = b->evs + at;
		r.n_events = n;
		at += n;
		r.fragment = at < b->n;
		deliver_msg(h, ws, &r);
	}
}

/* ---- the fast path: responses assembled from pre-packed events ----
 * With neither prev_kv nor fragment, a response is header + watch_id + the
 * events' packed bytes, so fan-out to many watchers costs a copy per event
 * instead of a protobuf pack. Field numbers are WatchResponse's. */

#define PREFIX_ROOM 96 /* header (<= 2 + 64) + watch_id (<= 11) */

struct obuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

static size_t put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

static void ob_reserve(struct obuf *b, size_t more)
{
	if (b->oom || b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap * 2 : 4096;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true; /* b->p stays valid (and owned by the hub) */
		return;
	}
	b->p = p;
	b->cap = cap;
}

static void ob_event(struct obuf *b, const uint8_t *enc, size_t len)
{
	if (b->len == 0)
		b->len = PREFIX_ROOM;
	ob_reserve(b, len + 11);
	if (b->oom)
		return;
	b->p[b->len++] = 0x5a; /* field 11 (events), length-delimited */
	b->len += put_varint(b->p + b->len, len);
	memcpy(b->p + b->len, enc, len);
	b->len += len;
}

static void deliver_raw(struct watch_hub *h, struct core_watch_stream *ws, struct watcher *w,
			struct obuf *b, int64_t rev)
{
	if (h->hdr_rev != rev || h->hdr_len == 0) {
		Etcdserverpb__ResponseHeader hd = ETCDSERVERPB__RESPONSE_HEADER__INIT;
		core_fill_header(h->c, &hd, rev);
		h->hdr_len = etcdserverpb__response_header__pack(&hd, h->hdr_enc);
		h->hdr_rev = rev;
	}
	uint8_t pre[PREFIX_ROOM];
	size_t n = 0;
	pre[n++] = 0x0a; /* field 1 (header) */
	n += put_varint(pre + n, h->hdr_len);
	memcpy(pre + n, h->hdr_enc, h->hdr_len);
	n += h->hdr_len;
	if (w->id != 0) {
		pre[n++] = 0x10; /* field 2 (watch_id), varint */
		n += put_varint(pre + n, (uint64_t)w->id);
	}
	uint8_t *start = b->p + PREFIX_ROOM - n;
	memcpy(start, pre, n);
	size_t len = b->len - PREFIX_ROOM + n;
	w->progress_due = false;
	atomic_fetch_add(&ws->queued, len + CORE_WATCH_MSG_OVERHEAD);
	ws->sink->send(ws->arg, start, len);
}

/* ---- building from the ring ---- */

static bool wants(const struct watcher *w, const struct mvcc_kv *kv, int tombstone)
{
	if (tombstone ? w->nodelete : w->noput)
		return false;
	return watch_key_in(kv->key, kv->key_len, w->key, w->key_len, w->end, w->end_len);
}

static void build_ring(struct watch_hub *h, struct core_watch_stream *ws, struct watcher *w)
{
	bool multi = h->rev - w->next_rev >= WATCH_LAG_REVS;
	int64_t limit = multi ? w->next_rev + WATCH_BATCH_MAX_REVS - 1 : INT64_MAX;
	int64_t first = 0, next = h->rev + 1, prev_r = 0;
	size_t bytes = 0;
	struct wbuild b = {0};
	/* The hub's buffer, reused: fresh megabyte buffers per response cost
	 * more in page faults than the copy itself. */
	struct obuf ob = {h->obuf, 0, h->obuf_cap, false};
	bool fast = !w->prev_kv && !w->fragment;
	arena_init(&b.arena);
	for (size_t i = ring_find(h, w->next_rev); i < h->ring_n; i++) {
		struct wev *e = ring_at(h, i);
		int64_t r = e->kv.mod_revision;
		if ((first && !multi && r != first) || r > limit ||
		    (r != prev_r && bytes > WATCH_BATCH_MAX_BYTES)) {
			next = r;
			break;
		}
		prev_r = r;
		if (!wants(w, &e->kv, e->tombstone))
			continue;
		first = first ? first : r;
		bytes += e->size;
		if (fast) {
			size_t elen;
			const uint8_t *enc = wev_enc(h, e, &elen);
			if (enc == NULL)
				ob.oom = true;
			else
				ob_event(&ob, enc, elen);
			if (ob.oom)
				break;
			continue;
		}
		Mvccpb__Event *ev = add_event(&b, &e->kv, e->tombstone, false);
		if (ev != NULL && w->prev_kv) {
			const struct mvcc_kv *p = wev_prev(h, e);
			if (p != NULL && (ev->prev_kv = kv_msg(&b, p, false, false)) == NULL)
				b.oom = true;
		}
		if (b.oom)
			break;
	}
	h->obuf = ob.p;
	h->obuf_cap = ob.cap;
	if (b.oom || ob.oom) {
		core_log("error", "watch: out of memory building a response");
		wbuild_free(&b);
		return; /* retried on the next wake */
	}
	if (b.n > 0)
		deliver_events(h, ws, w, &b, multi ? next - 1 : first);
	if (ob.len > 0)
		deliver_raw(h, ws, w, &ob, multi ? next - 1 : first);
	w->next_rev = next;
	wbuild_free(&b);
}

/* ---- building from storage (a watcher behind the ring) ---- */

struct collect {
	struct wbuild *b;
	struct watcher *w;
	int64_t *links; /* per event, its key's entry before it (main, sub): prev_kv */
	size_t cap;     /* events links has room for */
};

static int collect_change(void *arg, const struct mvcc_change *ch)
{
	struct collect *cl = arg;
	if (!wants(cl->w, &ch->kv, ch->tombstone))
		return 0;
	if (add_event(cl->b, &ch->kv, ch->tombstone, true) == NULL)
		return DB_NOMEM;
	if (!cl->w->prev_kv)
		return 0;
	size_t i = cl->b->n - 1;
	if (i >= cl->cap) {
		size_t cap = cl->cap ? 2 * cl->cap : 64;
		int64_t *l = realloc(cl->links, cap * 2 * sizeof(*l));
		if (l == NULL)
			return DB_NOMEM;
		cl->links = l;
		cl->cap = cap;
	}
	cl->links[2 * i] = ch->prev_main;
	cl->links[2 * i + 1] = ch->prev_sub;
	return 0;
}

/* prev_kv of a collected event, from its key's entry before it. */
static void add_prev(struct watch_hub *h, struct wbuild *b, Mvccpb__Event *ev, const int64_t *link)
{
	struct mvcc_kvlist prev;
	mvcc_kvlist_init(&prev);
	if (watch_prev_kv(h, ev->kv->mod_revision, link[0], link[1], &prev) == DB_OK)
		ev->prev_kv = kv_msg(b, &prev.kvs[0], false, true);
	mvcc_kvlist_free(&prev);
}

/* The server's cancel of w, whose start is below crev (etcd's ErrCompacted):
 * it gets nothing more and holds no revision in the ring. */
static void cancel_compacted(struct watch_hub *h, struct core_watch_stream *ws, struct watcher *w,
			     int64_t crev)
{
	deliver_ctrl(h, ws, w->id, false, true, NULL, crev, NO_REV);
	w->compacted = true;
	w->next_rev = INT64_MAX;
}

/* Returns false when w was cancelled (compacted). */
static bool build_storage(struct watch_hub *h, struct core_watch_stream *ws, struct watcher *w)
{
	int64_t to = w->next_rev + WATCH_BATCH_MAX_REVS - 1;
	if (to > h->rev)
		to = h->rev;
	struct wbuild b = {0};
	arena_init(&b.arena);
	struct collect cl = {&b, w, NULL, 0};
	int64_t last = w->next_rev - 1;
	int rv = mvcc_changes(h->c->mvcc, h->s, w->next_rev, to, w->key, w->key_len, w->end,
			      w->end_len, WATCH_CHUNK_CHANGES, collect_change, &cl, &last);
	if (rv == DB_COMPACTED) {
		/* etcd: a compacted start revision cancels the watcher with
		 * compact_revision set (clients report ErrCompacted).
		 * ETCD-COMPAT: that response's header has no revision (etcd
		 * fills it from the mvcc response, which has none), in 3.4 and
		 * 3.5 alike. */
		wbuild_free(&b);
		free(cl.links);
		cancel_compacted(h, ws, w, mvcc_compact_rev(h->c->mvcc));
		return false;
	}
	if (rv != DB_OK || b.oom) {
		core_log("error", "watch: catch-up read failed: %s", db_strerror(rv));
		wbuild_free(&b);
		free(cl.links);
		return true; /* retried on the next wake */
	}
	for (size_t i = 0; w->prev_kv && i < b.n; i++)
		add_prev(h, &b, b.evs[i], &cl.links[2 * i]);
	free(cl.links);
	if (b.n > 0)
		deliver_events(h, ws, w, &b, last);
	w->next_rev = last + 1;
	wbuild_free(&b);
	return true;
}

/* ---- pumping ---- */

static void remove_at(struct watch_hub *h, struct core_watch_stream *ws, size_t i)
{
	free(ws->w[i]->key);
	free(ws->w[i]);
	ws->w[i] = ws->w[--ws->n];
	h->n_watchers--;
}

/* Over budget: stop building until core_watch_sent frees room. */
static bool over_budget(struct watch_hub *h, struct core_watch_stream *ws)
{
	if (atomic_load(&ws->queued) < h->queue_limit)
		return false;
	atomic_store(&ws->blocked, true);
	/* The transport may have caught up meanwhile (it saw blocked unset). */
	if (atomic_load(&ws->queued) < h->queue_limit) {
		atomic_store(&ws->blocked, false);
		return false;
	}
	return true;
}

void wstream_pump(struct watch_hub *h, struct core_watch_stream *ws)
{
	bool synced = true, blocked = false;
	size_t n = ws->n;
	for (size_t k = 0; k < n && !blocked; k++) {
		size_t idx = (ws->cursor + k) % n;
		struct watcher *w = ws->w[idx];
		while (!w->dead && !w->compacted && (w->next_rev <= h->rev || w->progress_due)) {
			if (over_budget(h, ws)) {
				ws->cursor = idx;
				blocked = true;
				break;
			}
			if (w->next_rev > h->rev) {
				/* Synced with progress due: an empty response whose
				 * header revision is the promise. */
				w->progress_due = false;
				deliver_ctrl(h, ws, w->id, false, false, NULL, 0, h->rev);
				break;
			}
			int64_t before = w->next_rev;
			if (w->next_rev >= h->ring_lo)
				build_ring(h, ws, w);
			else if (!build_storage(h, ws, w))
				break;
			if (w->next_rev == before)
				break; /* failed: retry on the next wake */
		}
		if (!w->dead && !w->compacted && w->next_rev <= h->rev)
			synced = false;
	}
	for (size_t i = ws->n; i-- > 0;)
		if (ws->w[i]->dead)
			remove_at(h, ws, i);
	if (ws->cursor >= ws->n)
		ws->cursor = 0;
	if (synced && ws->progress_at > 0 && h->rev >= ws->progress_at && !over_budget(h, ws)) {
		/* etcd 3.5: answered once every watcher is synced; watch_id -1.
		 * The hub must also have read up to the store's revision at the
		 * request: a write acknowledged before it may not have reached the
		 * hub yet, and the header promises that nothing older is to come. */
		ws->progress_at = 0;
		deliver_ctrl(h, ws, -1, false, false, NULL, 0, h->rev);
	}
}

/* ---- requests ---- */

static struct watcher *find(struct core_watch_stream *ws, int64_t id, size_t *at)
{
	for (size_t i = 0; i < ws->n; i++)
		if (ws->w[i]->id == id && !ws->w[i]->dead) {
			if (at)
				*at = i;
			return ws->w[i];
		}
	return NULL;
}

static void create(struct watch_hub *h, struct core_watch_stream *ws,
		   const Etcdserverpb__WatchCreateRequest *q)
{
	int64_t wsrev = mvcc_rev(h->c->mvcc);
	static const uint8_t zero = 0;
	/* etcd: an empty key means "\0", the smallest key. */
	const uint8_t *key = q->key.len ? q->key.data : &zero;
	size_t key_len = q->key.len ? q->key.len : 1;
	const uint8_t *end = q->range_end.data;
	size_t end_len = q->range_end.len;
	const char *err = NULL;
	if (end_len > 0 && !(end_len == 1 && end[0] == 0)) {
		size_t n = key_len < end_len ? key_len : end_len;
		int c = memcmp(key, end, n);
		if (c > 0 || (c == 0 && key_len >= end_len))
			err = ERR_EMPTY_RANGE;
	}
	int64_t id = q->watch_id;
	if (err == NULL && id != 0 && find(ws, id, NULL) != NULL)
		err = ERR_DUP_ID;
	if (err != NULL) {
		deliver_ctrl(h, ws, -1, true, true, err, 0, wsrev);
		return;
	}
	if (id == 0) {
		/* etcd picks the lowest free id from a per-stream counter. */
		while (find(ws, ws->next_auto_id, NULL) != NULL)
			ws->next_auto_id++;
		id = ws->next_auto_id++;
	}
	struct watcher *w = calloc(1, sizeof(*w));
	uint8_t *k = malloc(key_len + end_len + 1);
	if (ws->n == ws->cap) {
		size_t cap = ws->cap ? ws->cap * 2 : 4;
		struct watcher **v = realloc(ws->w, cap * sizeof(*v));
		if (v != NULL) {
			ws->w = v;
			ws->cap = cap;
		}
	}
	if (w == NULL || k == NULL || ws->n == ws->cap) {
		free(w);
		free(k);
		deliver_ctrl(h, ws, -1, true, true, "etcdserver: out of memory", 0, wsrev);
		return;
	}
	memcpy(k, key, key_len);
	if (end_len)
		memcpy(k + key_len, end, end_len);
	w->id = id;
	w->key = k;
	w->key_len = key_len;
	w->end = k + key_len;
	w->end_len = end_len;
	w->next_rev = q->start_revision > 0 ? q->start_revision : wsrev + 1;
	for (size_t i = 0; i < q->n_filters; i++) {
		if (q->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
			w->noput = true;
		else if (q->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
			w->nodelete = true;
	}
	w->prev_kv = q->prev_kv;
	w->progress_notify = q->progress_notify;
	w->fragment = q->fragment;
	/* The created response goes out before any of this watcher's events:
	 * both go through the stream's one FIFO, in this order. */
	deliver_ctrl(h, ws, id, true, false, NULL, 0, wsrev);
	watch_want(h, w->key, w->key_len, w->end, w->end_len);
	ws->w[ws->n++] = w;
	h->n_watchers++;
	/* A start below the compacted revision is cancelled even when the hub's
	 * ring still holds it (etcd checks every unsynced watcher against the
	 * compacted revision); build_storage answers the same way. */
	int64_t crev = mvcc_compact_rev(h->c->mvcc);
	if (w->next_rev < crev)
		cancel_compacted(h, ws, w, crev);
}

void wstream_request(struct watch_hub *h, struct core_watch_stream *ws,
		     const Etcdserverpb__WatchRequest *req)
{
	switch (req->request_union_case) {
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
		create(h, ws, req->create_request);
		break;
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST: {
		size_t at;
		int64_t id = req->cancel_request->watch_id;
		/* etcd answers only when the id existed, also when the server
		 * had cancelled it (compacted), which frees the id. */
		if (find(ws, id, &at) != NULL) {
			remove_at(h, ws, at);
			if (ws->cursor >= ws->n)
				ws->cursor = 0;
			deliver_ctrl(h, ws, id, false, true, NULL, 0, mvcc_rev(h->c->mvcc));
		}
		break;
	}
	case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
		ws->progress_at = mvcc_rev(h->c->mvcc);
		break;
	default:
		break;
	}
}

void wstream_close(struct watch_hub *h, struct core_watch_stream *ws)
{
	while (ws->n > 0)
		remove_at(h, ws, ws->n - 1);
	free(ws->w);
	if (ws->prev)
		ws->prev->next = ws->next;
	else if (h->streams == ws)
		h->streams = ws->next;
	if (ws->next)
		ws->next->prev = ws->prev;
	ws->sink->closed(ws->arg);
	free(ws);
}
