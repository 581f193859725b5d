/*
 * core/watch.c — the watch hub: its thread, the ring of recent events read
 * from storage after each commit, inter-thread commands, and the waits used
 * by Lock and Election. Streams and watchers are in watch_stream.c.
 *
 * The writer never blocks on watchers: watch_notify stores a revision and
 * signals. Everything else happens on the hub thread, which is the only
 * thread touching watchers, the ring or the streams' watcher lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_internal.h"
#include "core/watch_internal.h"

#define DEFAULT_QUEUE_BYTES (1u << 20)
#define DEFAULT_PROGRESS_MS (10 * 60 * 1000) /* etcd: 10 minutes */
#define GRPC_OVERHEAD_BYTES (512 * 1024)    /* etcd's fragment limit = max request + 512 KiB */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

bool watch_key_in(const uint8_t *key, size_t key_len, const uint8_t *k, size_t kl,
		  const uint8_t *end, size_t end_len)
{
	if (end_len == 0)
		return key_len == kl && memcmp(key, k, kl) == 0;
	size_t n = key_len < kl ? key_len : kl;
	int c = memcmp(key, k, n);
	if (c < 0 || (c == 0 && key_len < kl))
		return false;
	if (end_len == 1 && end[0] == 0)
		return true;
	n = key_len < end_len ? key_len : end_len;
	c = memcmp(key, end, n);
	return c < 0 || (c == 0 && key_len < end_len);
}

/* ---- ring ---- */

size_t ring_find(const struct watch_hub *h, int64_t rev)
{
	size_t lo = 0, hi = h->ring_n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ring_at(h, mid)->kv.mod_revision < rev)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void wev_free(struct wev *e)
{
	mvcc_kvlist_free(&e->prev);
	free(e->enc);
	free(e);
}

const uint8_t *wev_enc(struct watch_hub *h, struct wev *e, size_t *len)
{
	if (e->enc == NULL) {
		Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
		kv.key.data = (uint8_t *)e->kv.key;
		kv.key.len = e->kv.key_len;
		kv.mod_revision = e->kv.mod_revision;
		if (!e->tombstone) {
			kv.value.data = (uint8_t *)e->kv.value;
			kv.value.len = e->kv.value_len;
			kv.create_revision = e->kv.create_revision;
			kv.version = e->kv.version;
			kv.lease = e->kv.lease;
		}
		Mvccpb__Event ev = MVCCPB__EVENT__INIT;
		ev.type = e->tombstone ? MVCCPB__EVENT__EVENT_TYPE__DELETE
				       : MVCCPB__EVENT__EVENT_TYPE__PUT;
		ev.kv = &kv;
		size_t n = mvccpb__event__get_packed_size(&ev);
		if ((e->enc = malloc(n ? n : 1)) == NULL)
			return NULL;
		e->enc_len = mvccpb__event__pack(&ev, e->enc);
		/* Counted in the ring's bytes, so its bound holds. */
		e->size += n;
		h->ring_bytes += n;
	}
	*len = e->enc_len;
	return e->enc;
}

int watch_prev_kv(struct watch_hub *h, int64_t rev, int64_t main, int64_t sub,
		  struct mvcc_kvlist *out)
{
	/* etcd reads the key at rev - 1: nothing once that is compacted. */
	if (rev - 1 < mvcc_compact_rev(h->c->mvcc))
		return DB_COMPACTED;
	/* The chain link: no search, however far behind the watcher is. */
	return mvcc_history_kv(h->c->mvcc, h->s, main, sub, out);
}

const struct mvcc_kv *wev_prev(struct watch_hub *h, struct wev *e)
{
	if (e->prev_state == 0) {
		e->prev_state = 1;
		/* Absent, a tombstone or compacted: no prev_kv, as etcd. */
		if (watch_prev_kv(h, e->kv.mod_revision, e->prev_main, e->prev_sub, &e->prev) ==
		    DB_OK) {
			e->prev_state = 2;
			return &e->prev.kvs[0];
		}
		mvcc_kvlist_free(&e->prev);
	}
	return e->prev_state == 2 ? &e->prev.kvs[0] : NULL;
}

static int ring_push(struct watch_hub *h, struct wev *e)
{
	if (h->ring_n == h->ring_cap) {
		size_t cap = h->ring_cap ? h->ring_cap * 2 : 1024;
		struct wev **r = malloc(cap * sizeof(*r));
		if (r == NULL)
			return DB_NOMEM;
		for (size_t i = 0; i < h->ring_n; i++)
			r[i] = ring_at(h, i);
		free(h->ring);
		h->ring = r;
		h->ring_cap = cap;
		h->ring_head = 0;
	}
	h->ring[(h->ring_head + h->ring_n) % h->ring_cap] = e;
	h->ring_n++;
	h->ring_bytes += e->size;
	return DB_OK;
}

static void ring_pop(struct watch_hub *h)
{
	struct wev *e = h->ring[h->ring_head];
	h->ring_head = (h->ring_head + 1) % h->ring_cap;
	h->ring_n--;
	h->ring_bytes -= e->size;
	wev_free(e);
}

/* Empty the ring and resume after rev: whoever needs older revisions
 * reads them from storage. */
static void ring_restart(struct watch_hub *h, int64_t rev)
{
	while (h->ring_n > 0)
		ring_pop(h);
	h->rev = rev;
	h->ring_lo = rev + 1;
}

/* Drop revisions nobody needs any more, and whole revisions beyond the
 * bounds (their watchers then catch up from storage). */
static void ring_evict(struct watch_hub *h)
{
	int64_t need = h->rev + 1;
	bool big = h->ring_bytes > WATCH_RING_SOFT_BYTES;
	for (struct core_watch_stream *ws = h->streams; ws; ws = ws->next)
		for (size_t i = 0; i < ws->n && !(big && atomic_load(&ws->blocked)); i++)
			if (ws->w[i]->next_rev < need)
				need = ws->w[i]->next_rev;
	while (h->ring_n > 0) {
		int64_t r = ring_at(h, 0)->kv.mod_revision;
		bool over = h->ring_n > WATCH_RING_MAX_EVENTS || h->ring_bytes > WATCH_RING_MAX_BYTES;
		if (r >= need && !over)
			break;
		while (h->ring_n > 0 && ring_at(h, 0)->kv.mod_revision == r)
			ring_pop(h);
		h->ring_lo = r + 1;
	}
	if (h->ring_n == 0)
		h->ring_lo = h->rev + 1;
}

/* ---- waits (Lock, Election) ---- */

static void wait_free(struct watch_wait *w)
{
	free(w->key);
	free(w);
}

/* Fire the waits an event satisfies (cb runs after the wait is unlinked). */
static void waits_check(struct watch_hub *h, const struct mvcc_kv *kv)
{
	for (struct watch_wait **pp = &h->waits; *pp;) {
		struct watch_wait *w = *pp;
		if (kv->mod_revision > w->after_rev &&
		    watch_key_in(kv->key, kv->key_len, w->key, w->key_len, w->end, w->end_len)) {
			*pp = w->next;
			w->cb(w->arg, false);
			wait_free(w);
			continue;
		}
		pp = &w->next;
	}
}

static void wait_add(struct watch_hub *h, struct watch_wait *w)
{
	bool fire = false;
	if (w->after_rev < h->rev) {
		/* Changes it may have missed: in the ring, or unknown (then wake
		 * it at once; the caller re-checks). */
		if (w->after_rev + 1 < h->ring_lo)
			fire = true;
		for (size_t i = ring_find(h, w->after_rev + 1); !fire && i < h->ring_n; i++) {
			const struct mvcc_kv *kv = &ring_at(h, i)->kv;
			fire = watch_key_in(kv->key, kv->key_len, w->key, w->key_len, w->end, w->end_len);
		}
	}
	if (fire || h->waits_aborted) {
		w->cb(w->arg, h->waits_aborted);
		wait_free(w);
		return;
	}
	watch_want(h, w->key, w->key_len, w->end, w->end_len);
	w->next = h->waits;
	h->waits = w;
}

/* Run every wait's callback with stopping set; later waits too. */
static void abort_waits(struct watch_hub *h)
{
	h->waits_aborted = true;
	while (h->waits) {
		struct watch_wait *w = h->waits;
		h->waits = w->next;
		w->cb(w->arg, true);
		wait_free(w);
	}
}

/* ---- ingest ---- */

static int ingest_one(void *arg, const struct mvcc_change *ch)
{
	struct watch_hub *h = arg;
	size_t size = sizeof(struct wev) + ch->kv.key_len + ch->kv.value_len;
	struct wev *e = malloc(size);
	if (e == NULL)
		return DB_NOMEM;
	memset(e, 0, sizeof(*e));
	e->kv = ch->kv;
	e->tombstone = ch->tombstone;
	e->prev_main = ch->prev_main;
	e->prev_sub = ch->prev_sub;
	e->size = size;
	memcpy(e->data, ch->kv.key, ch->kv.key_len);
	e->kv.key = e->data;
	if (ch->kv.value_len)
		memcpy(e->data + ch->kv.key_len, ch->kv.value, ch->kv.value_len);
	e->kv.value = e->data + ch->kv.key_len;
	if (ring_push(h, e) != DB_OK) {
		free(e);
		return DB_NOMEM;
	}
	if (h->waits)
		waits_check(h, &e->kv);
	return 0;
}

/* Read revisions (h->rev, target] into the ring, in bounded chunks. */
static void ingest(struct watch_hub *h, int64_t target)
{
	if (h->n_watchers == 0 && h->waits == NULL) {
		/* Nobody to tell: skip the read. */
		h->rev = target;
		ring_evict(h);
		return;
	}
	while (h->rev < target) {
		int64_t last = h->rev;
		/* Even below a recorded Compact: the compactor leaves what is
		 * above our floor (h->rev) in place, and etcd never cancels a
		 * synced watcher for a compaction. */
		int rv = mvcc_changes_any(h->c->mvcc, h->s, h->rev + 1, target, WATCH_CHUNK_CHANGES,
					  ingest_one, h, &last);
		if (rv != DB_OK && last <= h->rev) {
			/* Cannot read it (out of memory): the watchers that need
			 * it catch up from storage later. */
			core_log("error", "watch: reading revisions %lld..%lld: %s",
				(long long)h->rev + 1, (long long)target, db_strerror(rv));
			ring_restart(h, target);
			break;
		}
		/* A partial chunk (error mid-way) keeps what was read whole. */
		while (rv != DB_OK && h->ring_n > 0 && ring_at(h, h->ring_n - 1)->kv.mod_revision > last) {
			struct wev *e = ring_at(h, h->ring_n - 1);
			h->ring_n--;
			h->ring_bytes -= e->size;
			wev_free(e);
		}
		h->rev = last;
		ring_evict(h);
	}
}

/* ---- skipping what nobody watches ---- */

/* Fold a range into want (mu held). A new range may want revisions the
 * writer already judged against the old want: those are read, not skipped. */
static void want_fold(struct watch_hub *h, const uint8_t *key, size_t key_len, const uint8_t *end,
		      size_t end_len)
{
	h->want_n++;
	h->pend_clean = false;
	(void)mvcc_span_add(&h->want, 0, key, key_len); /* failing: want.all */
	if (end_len == 1 && end[0] == 0) {
		h->want_open = true;
	} else if (end_len > 0) {
		(void)mvcc_span_add(&h->want, 0, end, end_len);
	} else {
		/* One key: the range ends just after it, at key + "\0". */
		uint8_t *next = malloc(key_len + 1);
		if (next == NULL) {
			h->want.all = 1;
			return;
		}
		memcpy(next, key, key_len);
		next[key_len] = 0;
		(void)mvcc_span_add(&h->want, 0, next, key_len + 1);
		free(next);
	}
}

void watch_want(struct watch_hub *h, const uint8_t *key, size_t key_len, const uint8_t *end,
		size_t end_len)
{
	pthread_mutex_lock(&h->mu);
	want_fold(h, key, key_len, end, end_len);
	pthread_mutex_unlock(&h->mu);
}

/* Rebuild want from the live ranges once most of those folded in are gone
 * (a wider want is only slower, never wrong). */
static void want_trim(struct watch_hub *h)
{
	size_t live = h->n_watchers;
	for (struct watch_wait *w = h->waits; w; w = w->next)
		live++;
	pthread_mutex_lock(&h->mu);
	if (live * 2 >= h->want_n) {
		pthread_mutex_unlock(&h->mu);
		return;
	}
	bool clean = h->pend_clean;
	h->want.any = h->want.all = 0;
	h->want_open = false;
	h->want_n = 0;
	for (struct core_watch_stream *ws = h->streams; ws; ws = ws->next)
		for (size_t i = 0; i < ws->n; i++)
			if (!ws->w[i]->dead && !ws->w[i]->compacted)
				want_fold(h, ws->w[i]->key, ws->w[i]->key_len, ws->w[i]->end,
					  ws->w[i]->end_len);
	for (struct watch_wait *w = h->waits; w; w = w->next)
		want_fold(h, w->key, w->key_len, w->end, w->end_len);
	h->pend_clean = clean; /* narrower: what was clean still is */
	pthread_mutex_unlock(&h->mu);
}

/* Whether the writer reported every revision in (h->rev, target] and none
 * wrote a key anybody wants (mu held). */
static bool pend_clean_to(const struct watch_hub *h, int64_t target)
{
	return h->pend && h->pend_clean && h->pend_first <= h->rev + 1 && h->pend_upto >= target;
}

/* Whether the hub must run for the revisions up to notified (mu held): not
 * when every one is reported clean, nobody waits for the head, and the
 * compactor is not waiting for the hub to pass a revision. */
static bool due(struct watch_hub *h)
{
	int64_t notified = atomic_load(&h->notified);
	if (notified <= h->rev)
		return false;
	return !pend_clean_to(h, notified) || h->eager || atomic_load(&h->c->cwaiting);
}

/* Pass revisions (h->rev, target] unread: no watcher wants any of them.
 * Watchers synced to the head move past them; the ring empties, so anyone
 * still behind (or a watcher created later with an older start revision)
 * reads them from storage. */
static void skip_to(struct watch_hub *h, int64_t target)
{
	for (struct core_watch_stream *ws = h->streams; ws; ws = ws->next)
		for (size_t i = 0; i < ws->n; i++) {
			struct watcher *w = ws->w[i];
			if (w->next_rev > h->rev && w->next_rev <= target)
				w->next_rev = target + 1;
		}
	ring_restart(h, target);
}

/* ---- the hub thread ---- */

static void run_cmds(struct watch_hub *h, struct watch_cmd *cmd)
{
	while (cmd) {
		struct watch_cmd *next = cmd->next;
		bool owned = cmd->type != WCMD_CLOSE; /* a close is part of its stream */
		switch (cmd->type) {
		case WCMD_OPEN:
			cmd->ws->next = h->streams;
			if (h->streams)
				h->streams->prev = cmd->ws;
			h->streams = cmd->ws;
			break;
		case WCMD_REQUEST:
			wstream_request(h, cmd->ws, cmd->req);
			etcdserverpb__watch_request__free_unpacked(cmd->req, NULL);
			break;
		case WCMD_CLOSE:
			wstream_close(h, cmd->ws); /* frees ws and its close_cmd */
			break;
		case WCMD_WAIT:
			wait_add(h, cmd->wait);
			break;
		case WCMD_ABORT_WAITS:
			abort_waits(h);
			pthread_mutex_lock(&h->mu);
			h->aborted_done = true;
			pthread_cond_broadcast(&h->abort_cv);
			pthread_mutex_unlock(&h->mu);
			break;
		}
		if (owned)
			free(cmd);
		cmd = next;
	}
}

static void *hub_main(void *arg)
{
	struct watch_hub *h = arg;
	pthread_setname_np(pthread_self(), "metad-watch");
	h->s = core_session(h->c);
	h->next_progress = now_ns() + h->progress_ns;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->stopping && h->cmd_head == NULL && !due(h) && h->ready == NULL) {
			int64_t left = h->next_progress - now_ns();
			if (left <= 0)
				break;
			struct timespec dl;
			clock_gettime(CLOCK_MONOTONIC, &dl);
			int64_t ns = dl.tv_nsec + left % 1000000000LL;
			dl.tv_sec += left / 1000000000LL + ns / 1000000000LL;
			dl.tv_nsec = ns % 1000000000LL;
			pthread_cond_timedwait(&h->cv, &h->mu, &dl);
		}
		struct watch_cmd *cmds = h->cmd_head;
		h->cmd_head = h->cmd_tail = NULL;
		for (struct core_watch_stream *ws = h->ready; ws; ws = ws->ready_next)
			ws->in_ready = false;
		h->ready = NULL;
		bool stopping = h->stopping;
		pthread_mutex_unlock(&h->mu);
		/* Never reads a store that a snapshot is replacing. */
		pthread_rwlock_rdlock(&h->c->install_lock);
		if (atomic_exchange(&h->replaced, false)) {
			/* Revisions up to the new head were never committed here:
			 * every watcher catches up from the new store, where a
			 * compaction may have removed what it needs (etcd moves
			 * all watchers to unsynced after a snapshot, with the
			 * same outcome). */
			ring_restart(h, mvcc_rev(h->c->mvcc));
			pthread_mutex_lock(&h->mu);
			h->pend = false;
			pthread_mutex_unlock(&h->mu);
		}

		if (h->n_watchers == 0 && h->waits == NULL && h->s != NULL) {
			/* Idle commits did not wake us: skip them before new
			 * watchers (which start at the current revision) or
			 * waits (which re-check what the ring cannot show) arrive,
			 * past anything a compaction under way may remove. */
			int64_t seen = atomic_load(&h->notified);
			ingest(h, compactor_floor_resume(h->c, seen > h->rev ? seen : h->rev));
		}
		run_cmds(h, cmds);
		bool listening = h->n_watchers > 0 || h->waits != NULL;
		atomic_store(&h->listening, listening);
		pthread_mutex_lock(&h->mu);
		int64_t target = atomic_load(&h->notified);
		bool skip = target > h->rev && pend_clean_to(h, target);
		if (target > h->rev) {
			h->pend = false; /* consumed, read or skipped */
			if (target > h->pend_upto)
				h->pend_upto = target;
		}
		pthread_mutex_unlock(&h->mu);
		if (h->s != NULL && target > h->rev) {
			if (skip)
				skip_to(h, target);
			else
				ingest(h, target);
		}
		compactor_floor_raise(h->c, listening && h->s != NULL ? h->rev : INT64_MAX);
		if (now_ns() >= h->next_progress) {
			for (struct core_watch_stream *ws = h->streams; ws; ws = ws->next)
				for (size_t i = 0; i < ws->n; i++)
					if (ws->w[i]->progress_notify)
						ws->w[i]->progress_due = true;
			h->next_progress = now_ns() + h->progress_ns;
		}
		bool eager = false;
		for (struct core_watch_stream *ws = h->streams; ws; ws = ws->next) {
			wstream_pump(h, ws);
			eager = eager || ws->progress_at > 0;
		}
		ring_evict(h);
		want_trim(h);
		pthread_rwlock_unlock(&h->c->install_lock);

		pthread_mutex_lock(&h->mu);
		h->eager = eager;
		if (stopping && h->cmd_head == NULL)
			break;
	}
	pthread_mutex_unlock(&h->mu);
	compactor_floor_raise(h->c, INT64_MAX); /* we read nothing more */
	/* Streams still open at stop: let their owners go. */
	while (h->streams)
		wstream_close(h, h->streams);
	abort_waits(h);
	while (h->ring_n > 0)
		ring_pop(h);
	return NULL;
}

static void push_cmd(struct watch_hub *h, struct watch_cmd *cmd)
{
	pthread_mutex_lock(&h->mu);
	if (h->cmd_tail)
		h->cmd_tail->next = cmd;
	else
		h->cmd_head = cmd;
	h->cmd_tail = cmd;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

int watch_start(struct core *c)
{
	struct watch_hub *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return DB_NOMEM;
	h->c = c;
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&h->abort_cv, NULL);
	h->rev = mvcc_rev(c->mvcc);
	atomic_init(&h->notified, h->rev);
	atomic_init(&h->listening, false);
	h->ring_lo = h->rev + 1;
	h->queue_limit = c->cfg.watch_queue_bytes ? c->cfg.watch_queue_bytes : DEFAULT_QUEUE_BYTES;
	h->progress_ns = (c->cfg.watch_progress_ms > 0 ? c->cfg.watch_progress_ms : DEFAULT_PROGRESS_MS) *
			 1000000LL;
	h->frag_limit = c->cfg.max_request_bytes + GRPC_OVERHEAD_BYTES;
	if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
		pthread_mutex_destroy(&h->mu);
		pthread_cond_destroy(&h->cv);
		pthread_cond_destroy(&h->abort_cv);
		free(h);
		return DB_NOMEM;
	}
	h->started = true;
	c->watch = h;
	return DB_OK;
}

void watch_stop(struct core *c)
{
	struct watch_hub *h = c->watch;
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	free(h->ring);
	free(h->obuf);
	mvcc_span_free(&h->want);
	mvcc_span_free(&h->taken);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	pthread_cond_destroy(&h->abort_cv);
	free(h);
	c->watch = NULL;
}

/* Publish rev; wake the hub if it is listening and wake says so. */
static void notify(struct watch_hub *h, int64_t rev, bool (*wake)(struct watch_hub *, int64_t))
{
	int64_t seen = atomic_load(&h->notified);
	while (seen < rev && !atomic_compare_exchange_weak(&h->notified, &seen, rev))
		;
	/* With nobody watching, a commit costs no wake-up (a context switch per
	 * put on a small machine); the hub reads notified when it next runs. */
	if (seen >= rev || !atomic_load(&h->listening))
		return;
	pthread_mutex_lock(&h->mu);
	if (wake == NULL || wake(h, rev))
		pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

void watch_store_replaced(struct core *c)
{
	if (c->watch == NULL)
		return;
	atomic_store(&c->watch->replaced, true);
	notify(c->watch, mvcc_rev(c->mvcc), NULL);
}

/* The writer's batch up to rev, whose keys are in h->taken (mu held):
 * record whether it wrote anything a watcher or wait may want, and wake
 * the hub only when one may, or when it must reach the head anyway. */
static bool batch_wakes(struct watch_hub *h, int64_t rev)
{
	const struct mvcc_span *sp = &h->taken;
	/* A gap: revisions published while nobody listened (or by a snapshot). */
	bool clean = sp->any && sp->first_rev <= h->pend_upto + 1 &&
		     !mvcc_span_meets(sp, &h->want, h->want_open);
	if (!h->pend) {
		h->pend = true;
		h->pend_clean = clean;
		h->pend_first = sp->any ? sp->first_rev : rev;
	} else {
		h->pend_clean = h->pend_clean && clean;
	}
	if (rev > h->pend_upto)
		h->pend_upto = rev;
	return !h->pend_clean || h->eager || atomic_load(&h->c->cwaiting);
}

void watch_notify(struct core *c)
{
	struct watch_hub *h = c->watch;
	if (h == NULL)
		return;
	/* Taken every batch, listening or not, so it only ever holds keys of
	 * the batches since the last notify. */
	mvcc_span_take(c->mvcc, &h->taken);
	notify(h, mvcc_rev(c->mvcc), batch_wakes);
}

void watch_poke(struct core *c)
{
	struct watch_hub *h = c->watch;
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

/* ---- the public calls ---- */

struct core_watch_stream *core_watch_open(struct core *c, const struct core_watch_sink *sink,
					  void *arg)
{
	struct core_watch_stream *ws = calloc(1, sizeof(*ws));
	struct watch_cmd *cmd = calloc(1, sizeof(*cmd));
	if (ws == NULL || cmd == NULL) {
		free(ws);
		free(cmd);
		return NULL;
	}
	ws->hub = c->watch;
	ws->sink = sink;
	ws->arg = arg;
	cmd->type = WCMD_OPEN;
	cmd->ws = ws;
	push_cmd(c->watch, cmd);
	return ws;
}

void core_watch_request(struct core_watch_stream *ws, const Etcdserverpb__WatchRequest *req)
{
	/* A deep copy through the wire format: simple, and requests are small. */
	size_t len = etcdserverpb__watch_request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	struct watch_cmd *cmd = calloc(1, sizeof(*cmd));
	if (buf != NULL && cmd != NULL) {
		etcdserverpb__watch_request__pack(req, buf);
		cmd->req = etcdserverpb__watch_request__unpack(NULL, len, buf);
	}
	free(buf);
	if (cmd == NULL || cmd->req == NULL) {
		free(cmd);
		return; /* out of memory: the request is lost, as if never sent */
	}
	cmd->type = WCMD_REQUEST;
	cmd->ws = ws;
	push_cmd(ws->hub, cmd);
}

void core_watch_sent(struct core_watch_stream *ws, size_t len)
{
	struct watch_hub *h = ws->hub;
	size_t left = atomic_fetch_sub(&ws->queued, len) - len;
	if (left <= h->queue_limit / 2 && atomic_exchange(&ws->blocked, false)) {
		pthread_mutex_lock(&h->mu);
		if (!ws->in_ready) {
			ws->in_ready = true;
			ws->ready_next = h->ready;
			h->ready = ws;
		}
		pthread_cond_signal(&h->cv);
		pthread_mutex_unlock(&h->mu);
	}
}

void core_watch_close(struct core_watch_stream *ws)
{
	/* Preallocated: a close must never be lost to a failed allocation,
	 * since the owner waits for sink->closed. */
	struct watch_cmd *cmd = &ws->close_cmd;
	cmd->type = WCMD_CLOSE;
	cmd->ws = ws;
	push_cmd(ws->hub, cmd);
}

void core_watch_abort_waits(struct core *c)
{
	struct watch_hub *h = c->watch;
	struct watch_cmd *cmd = calloc(1, sizeof(*cmd));
	if (h == NULL || cmd == NULL) {
		free(cmd);
		return;
	}
	cmd->type = WCMD_ABORT_WAITS;
	push_cmd(h, cmd);
	pthread_mutex_lock(&h->mu);
	while (!h->aborted_done)
		pthread_cond_wait(&h->abort_cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

int core_watch_wait(struct core *c, const uint8_t *key, size_t key_len, const uint8_t *end,
		    size_t end_len, int64_t after_rev, core_watch_wait_fn cb, void *arg)
{
	struct watch_wait *w = calloc(1, sizeof(*w));
	struct watch_cmd *cmd = calloc(1, sizeof(*cmd));
	uint8_t *k = malloc(key_len + end_len + 1);
	if (w == NULL || cmd == NULL || k == NULL) {
		free(w);
		free(cmd);
		free(k);
		return CORE_ENOMEM;
	}
	memcpy(k, key, key_len);
	if (end_len)
		memcpy(k + key_len, end, end_len);
	w->key = k;
	w->key_len = key_len;
	w->end = k + key_len;
	w->end_len = end_len;
	w->after_rev = after_rev;
	w->cb = cb;
	w->arg = arg;
	cmd->type = WCMD_WAIT;
	cmd->wait = w;
	push_cmd(c->watch, cmd);
	return CORE_OK;
}
