/*
 * core/snap_fetch.c — a member behind the leader's compacted log: the
 * leader's Raft snapshot message names index S; unless the store already
 * holds S, a thread fetches the leader's store file (peer_snap.c), loading
 * it beside the live store as it arrives and checking its hash at the end,
 * and the node switches to it and only then steps the message, so Raft
 * never believes in a snapshot the store does not hold. One fetch at a
 * time; the leader repeats its message until the member answers, so a
 * message that arrives meanwhile, or a fetch that fails, costs nothing but
 * time (a broken transfer starts again, its load with it).
 * The leader's side is snap_serve.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "core/node_internal.h"
#include "core/peer.h"
#include "core/snapshot.h"

#define FETCH_IDLE_MS 60000 /* the leader may be dumping a large store first */

struct snap_fetch {
	struct node_op op; /* first: the op is the fetch */
	struct core *c;
	struct raft_message msg; /* the snapshot message, stepped once installed */
	struct snap_loader *loader; /* loads what is fetched, while fetching */
	struct snap_stream *st;  /* the load, once the whole file was fed */
	uint64_t fed;            /* bytes fed to the loader */
	int result;              /* 0: fetched and verified */
	uint64_t index;
	struct raft_snapshot_meta meta; /* Raft's at index, if the file says */
	char err[512];
};

static void fetch_free(struct snap_fetch *f)
{
	snap_stream_free(f->st);
	raft_message_release(&f->msg);
	free(f);
}

/* Node thread, posted by the fetch thread as it ends. */
static void fetched(struct core *c, struct node_op *op)
{
	struct snap_fetch *f = (struct snap_fetch *)op;
	c->fetch = NULL;
	if (atomic_load(&c->fetch_stop)) { /* closing: the node may be gone */
		fetch_free(f);
		return;
	}
	uint64_t want = f->msg.snapshot.meta.index;
	if (f->result == 0 && f->index < want) {
		f->result = -1;
		snprintf(f->err, sizeof(f->err), "the leader's store holds index %llu, short of %llu",
			 (unsigned long long)f->index, (unsigned long long)want);
	}
	if (f->result == 0 && !atomic_load(&c->removed)) {
		/* The log may have brought the store to the snapshot's index or
		 * past it while the file came (this member applying entries its
		 * own log held): installing then would drop what was applied
		 * above the snapshot, which Raft never hands out again. Raft
		 * gets the message either way, and answers from its own log. */
		uint64_t ci = mvcc_consistent_index(c->mvcc);
		if (ci >= f->index) {
			core_log("info", "not installing the snapshot at index %llu: applied %llu meanwhile",
				 (unsigned long long)f->index, (unsigned long long)ci);
		} else {
			core_log("info", "installing snapshot at index %llu from leader %llx",
				 (unsigned long long)f->index, (unsigned long long)f->msg.from);
			int rv = snap_stream_install(c, f->st);
			if (rv != DB_OK)
				node_fatal("snapshot install", db_strerror(rv));
			/* Raft restores where the store now stands, when the
			 * leader said what its snapshot there would be: the
			 * entries between its own snapshot and the store are not
			 * sent, stored and skipped. snap_stream_end left the
			 * meta only if it names the file's index. The term check
			 * keeps the message one Raft accepts from this sender. */
			struct raft_snapshot_meta *m = &f->meta;
			if (m->index > want && m->term != 0 && m->term <= f->msg.term &&
			    mvcc_consistent_index(c->mvcc) == m->index) {
				f->msg.snapshot.meta = *m;
				want = m->index;
			}
			core_log("info", "installed snapshot at index %llu; raft snapshot index %llu",
				 (unsigned long long)f->index, (unsigned long long)want);
			node_republish(c, c->node);
		}
		(void)raft_step(c->raft, &f->msg);
	} else if (f->result != 0) {
		core_log("warn", "fetching a snapshot from %llx: %s", (unsigned long long)f->msg.from,
			 f->err);
	}
	fetch_free(f);
}

/* Fetch thread: each chunk to the loader; a fetch that starts again
 * starts the load again. */
static int sink(void *arg, uint64_t off, const void *data, size_t len)
{
	struct snap_fetch *f = arg;
	if (off == 0) { /* a load a failed try left, even at 0 bytes, may be broken */
		f->fed = 0;
		if (snap_loader_reset(f->loader) != 0)
			return -1;
	}
	if (off != f->fed || snap_loader_feed(f->loader, data, len) != 0)
		return -1;
	f->fed += len;
	return 0;
}

static void *fetch_main(void *arg)
{
	struct snap_fetch *f = arg;
	struct core *c = f->c;
	pthread_setname_np(pthread_self(), "metad-snapfetch");
	size_t n = 0;
	char **urls = members_peer_urls(&c->members, f->msg.from, &n);
	f->result = -1;
	bool fetched = false;
	if (urls == NULL || n == 0)
		snprintf(f->err, sizeof(f->err), "no peer URL for the leader");
	else if ((f->loader = snap_loader_start(c)) == NULL)
		snprintf(f->err, sizeof(f->err), "cannot start a loader thread");
	else
		fetched = peer_fetch_snapshot(c->peers, (const char *const *)urls, n, FETCH_IDLE_MS,
					      &c->fetch_stop, sink, f, f->err, sizeof(f->err)) == 0;
	if (f->loader) {
		f->st = snap_loader_finish(f->loader); /* also when the fetch failed: joins */
		f->loader = NULL;
	}
	if (fetched) {
		int64_t t0 = node_now_ns();
		f->result = f->st ? snap_stream_end(f->st, &f->index, &f->meta) : -1;
		if (f->result != 0)
			snprintf(f->err, sizeof(f->err), "the fetched snapshot is damaged (hash mismatch)");
		else
			core_log("info", "fetched and loaded the snapshot; made it durable in %lld ms",
				 (long long)((node_now_ns() - t0) / 1000000));
	}
	members_free_urls(urls, n);
	writer_op(c, &f->op);
	snap_thread_done(c);
	return NULL;
}

int snap_thread_start(struct core *c, void *(*fn)(void *), void *arg)
{
	pthread_mutex_lock(&c->mu);
	bool closing = atomic_load(&c->fetch_stop); /* snap_fetch_stop waits for it otherwise */
	if (!closing)
		c->fetch_threads++;
	pthread_mutex_unlock(&c->mu);
	if (closing)
		return -1;
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rv = pthread_create(&th, &attr, fn, arg) == 0 ? 0 : -1;
	pthread_attr_destroy(&attr);
	if (rv != 0)
		snap_thread_done(c);
	return rv;
}

void snap_thread_done(struct core *c)
{
	pthread_mutex_lock(&c->mu);
	c->fetch_threads--;
	pthread_cond_broadcast(&c->pcv);
	pthread_mutex_unlock(&c->mu);
}

void snap_fetch_or_step(struct core *c, struct raft_message *m)
{
	if (m->snapshot.meta.index <= mvcc_consistent_index(c->mvcc)) {
		/* The store holds it already (an install, or a replay). */
		(void)raft_step(c->raft, m);
		raft_message_release(m);
		return;
	}
	struct snap_fetch *f = c->fetch || c->peers == NULL ? NULL : calloc(1, sizeof(*f));
	if (f == NULL) {
		raft_message_release(m); /* repeated by the leader */
		return;
	}
	f->msg = *m;
	memset(m, 0, sizeof(*m));
	f->op.fn = fetched;
	f->c = c;
	core_log("info", "fetching a snapshot from leader %llx (raft snapshot index %llu, applied %llu)",
		 (unsigned long long)f->msg.from, (unsigned long long)f->msg.snapshot.meta.index,
		 (unsigned long long)mvcc_consistent_index(c->mvcc));
	if (snap_thread_start(c, fetch_main, f) != 0)
		fetch_free(f);
	else
		c->fetch = f;
}

void snap_fetch_stop(struct core *c)
{
	atomic_store(&c->fetch_stop, true);
	pthread_mutex_lock(&c->mu);
	while (c->fetch_threads > 0)
		pthread_cond_wait(&c->pcv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	/* Its op, if the writer did not run it, is run by writer_drain. */
}
