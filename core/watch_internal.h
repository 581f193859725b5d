/*
 * core/watch_internal.h — the watch hub, shared by core/watch*.c.
 *
 * One hub thread owns every watcher. After each commit the writer only
 * publishes the new revision (watch_notify); the hub reads the new changes
 * from storage once into a ring of recent events, and each stream PULLS its
 * watchers' events from the ring (or, for a watcher that fell behind the
 * ring, from storage in bounded chunks). A watcher is just "next revision I
 * owe the client", so catch-up joins the live stream with no gap and no
 * duplicate by construction, and a slow stream costs no memory: the hub
 * stops building for a stream whose transport queue is over its byte limit,
 * and the watcher becomes unsynced (etcd's victim/unsynced groups) until the
 * client reads again.
 */
#ifndef METAD_CORE_WATCH_INTERNAL_H
#define METAD_CORE_WATCH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "storage/mvcc.h"

/* A watcher this far behind the head (in revisions) is "unsynced": it gets
 * many revisions per response (etcd batches unsynced watchers too). */
#define WATCH_LAG_REVS 64
/* etcd's watchBatchMaxRevs: revisions per catch-up response. */
#define WATCH_BATCH_MAX_REVS 1000
/* Changes read from storage per catch-up chunk. */
#define WATCH_CHUNK_CHANGES 1024
/* An unsynced watcher's response stops growing at the first revision
 * boundary past this (clients' default receive limit is 4 MiB). */
#define WATCH_BATCH_MAX_BYTES (256u << 10)
/* Ring bounds: recent events kept in memory for watchers near the head. */
#define WATCH_RING_MAX_EVENTS 16384
#define WATCH_RING_MAX_BYTES (16u << 20)
/* Past this many bytes the ring keeps nothing for streams blocked on a slow
 * reader: they catch up from storage anyway, and a stalled client should not
 * pin the whole ring. (Below it, a stream blocked for a moment still finds
 * its events in memory.) */
#define WATCH_RING_SOFT_BYTES (4u << 20)

/* One event in the ring (hub thread only). */
struct wev {
	struct mvcc_kv kv; /* bytes in data[] */
	int tombstone;
	int prev_state; /* 0 = not looked up, 1 = none, 2 = prev set */
	int64_t prev_main, prev_sub; /* the key's entry before this event */
	struct mvcc_kvlist prev;
	uint8_t *enc; /* the packed mvccpb.Event without prev_kv, made once */
	size_t enc_len;
	size_t size;
	uint8_t data[];
};

struct watcher {
	int64_t id;
	uint8_t *key; /* key, then end, in one allocation */
	size_t key_len;
	uint8_t *end; /* end_len 0: single key; "\0": every key >= key */
	size_t end_len;
	int64_t next_rev; /* first revision not yet delivered */
	bool noput, nodelete, prev_kv, progress_notify, fragment;
	bool progress_due;
	bool dead;
	/* Cancelled by the server (its start revision was compacted): it gets
	 * nothing more, but its id stays taken until the client cancels it,
	 * which is then answered, as in etcd. */
	bool compacted;
};

struct watch_wait;
enum watch_cmd_type { WCMD_OPEN, WCMD_REQUEST, WCMD_CLOSE, WCMD_WAIT, WCMD_ABORT_WAITS };

struct watch_cmd {
	struct watch_cmd *next;
	enum watch_cmd_type type;
	struct core_watch_stream *ws;
	Etcdserverpb__WatchRequest *req; /* WCMD_REQUEST: owned (unpacked copy) */
	struct watch_wait *wait;         /* WCMD_WAIT */
};

struct core_watch_stream {
	struct watch_cmd close_cmd; /* preallocated: closing cannot fail */
	struct watch_hub *hub;
	struct core_watch_stream *prev, *next; /* hub->streams (hub thread) */
	const struct core_watch_sink *sink;
	void *arg;
	struct watcher **w; /* hub thread only */
	size_t n, cap;
	size_t cursor;      /* round robin between watchers */
	int64_t next_auto_id;
	int64_t progress_at; /* a progress request awaits the hub at this revision (0: none) */
	_Atomic size_t queued;  /* bytes delivered, not yet taken by the transport */
	_Atomic bool blocked;   /* the hub stopped building: over the limit */
	bool in_ready;          /* on hub->ready (hub->mu) */
	struct core_watch_stream *ready_next;
};

struct watch_wait {
	struct watch_wait *next;
	uint8_t *key;
	size_t key_len;
	uint8_t *end;
	size_t end_len;
	int64_t after_rev;
	core_watch_wait_fn cb;
	void *arg;
};

struct watch_hub {
	struct core *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t abort_cv; /* core_watch_abort_waits waits here */
	struct watch_cmd *cmd_head, *cmd_tail;
	struct core_watch_stream *ready;
	/* Newest committed revision. Written before `listening` is read and
	 * read after it is written (both seq_cst): a commit that saw nobody
	 * listening is always seen by the hub's next read of notified. */
	_Atomic int64_t notified;
	_Atomic bool listening; /* watchers or waits exist: commits must wake the hub */
	_Atomic bool replaced;  /* a snapshot replaced the store (watch_store_replaced) */
	bool stopping;
	/* Skipping what nobody watches (watch.c), under mu. Every revision
	 * from pend_first to pend_upto (pend: some) was reported by the writer
	 * and, when pend_clean, none wrote a key inside want: the union of
	 * every watcher's and wait's range as one interval (want_open: no
	 * upper bound), want_n ranges folded in since it was last rebuilt.
	 * eager: a progress request waits for the head, so every commit wakes
	 * the hub. */
	bool pend, pend_clean, want_open, eager;
	int64_t pend_first, pend_upto;
	struct mvcc_span want;
	size_t want_n;
	struct mvcc_span taken; /* the writer's buffers (watch_notify) */
	pthread_t thread;
	bool started;

	/* hub thread only */
	struct db_session *s;
	struct wev **ring; /* circular */
	size_t ring_cap, ring_head, ring_n, ring_bytes;
	int64_t ring_lo; /* every event of revisions >= ring_lo is in the ring */
	int64_t rev;     /* newest revision read into the ring */
	struct core_watch_stream *streams;
	size_t n_watchers;
	struct watch_wait *waits;
	bool waits_aborted; /* shutdown: waits end at once */
	bool aborted_done;  /* (mu) core_watch_abort_waits may return */
	size_t queue_limit;
	int64_t progress_ns;
	int64_t next_progress;
	size_t frag_limit;
	uint8_t *obuf; /* response assembly buffer (watch_stream.c), reused */
	size_t obuf_cap;
	/* The last packed ResponseHeader, reused while the revision is the
	 * same (ids and term do not change within a revision here). */
	int64_t hdr_rev;
	uint8_t hdr_enc[64];
	size_t hdr_len;
};

/* watch.c */
static inline struct wev *ring_at(const struct watch_hub *h, size_t i)
{
	return h->ring[(h->ring_head + i) % h->ring_cap];
}
/* Index of the first ring event with revision >= rev (ring_n if none). */
size_t ring_find(const struct watch_hub *h, int64_t rev);
/* e packed as an mvccpb.Event without prev_kv (once; NULL if out of memory). */
const uint8_t *wev_enc(struct watch_hub *h, struct wev *e, size_t *len);
/* The previous key-value of ring event e (looked up once); NULL if none. */
const struct mvcc_kv *wev_prev(struct watch_hub *h, struct wev *e);
/* Append the prev_kv of the event at rev whose key's entry before it is
 * (main, sub); DB_OK only when there is one. */
int watch_prev_kv(struct watch_hub *h, int64_t rev, int64_t main, int64_t sub,
		  struct mvcc_kvlist *out);
/* Widen the hub's interest to a watcher-style range (hub thread). */
void watch_want(struct watch_hub *h, const uint8_t *key, size_t key_len, const uint8_t *end,
		size_t end_len);
/* Whether key is in a watcher-style range. */
bool watch_key_in(const uint8_t *key, size_t key_len, const uint8_t *k, size_t kl,
		  const uint8_t *end, size_t end_len);

/* watch_stream.c: hub-thread handlers */
void wstream_request(struct watch_hub *h, struct core_watch_stream *ws,
		     const Etcdserverpb__WatchRequest *req);
void wstream_close(struct watch_hub *h, struct core_watch_stream *ws);
/* Build and deliver what ws's watchers are owed, within its byte budget. */
void wstream_pump(struct watch_hub *h, struct core_watch_stream *ws);

#endif
