/*
 * core/checkpoint.c — making applied state durable, and trimming the log.
 *
 * The key space is not journaled (db_options.unjournaled_state): applying a
 * batch writes it once, and durability comes from the synced log. This
 * thread checkpoints WiredTiger every few seconds; everything applied before
 * a checkpoint started is on disk after it, so the log below that point can
 * go once Raft no longer needs it (the node takes a snapshot there).
 * A crash replays the log above the last checkpoint's consistent index.
 *
 * Under a heavy write load a checkpoint starts sooner, once CHECKPOINT_BYTES
 * of log have been applied: while WiredTiger checkpoints a table it cannot
 * evict that table's new dirty pages, so the writes that arrive meanwhile
 * pile up beyond the cache. Measured loading 1M keys at ~40k puts/s: peak
 * RSS 253 MiB with a checkpoint every 5 s, 173 MiB with one per ~0.5 s, at
 * the same put rate. Each checkpoint rewrites every page of `current` a
 * random put load has touched, nearly all of them, so fewer cost less CPU
 * per put: with the 96 MiB cache, 70/90% dirty eviction and the (key,
 * revision) index of the time, 1,000-client puts on 100k keys took 30.4 /
 * 29.3 / 28.5 us of metad CPU per put at 8 / 16 / 32 MiB, and the 1M-key
 * load peaked at 172 / 182 / 231 MiB RSS. Without the index, 32 MiB showed
 * no gain over 16 for +30 MiB of RSS. 16 MiB keeps RSS well under half of
 * etcd's (~500 MiB).
 * Below that rate a checkpoint comes every CHECKPOINT_EVERY_S: its file
 * syncs share the disk with the log's, and a lone client's puts were ~6%
 * faster with 30 s than with 5 s (eight alternating 20,000-put runs).
 * Replay after a crash stays bounded by CHECKPOINT_BYTES either way.
 *
 * ETCD-COMPAT: etcd commits its backend (bbolt) every
 * --backend-batch-interval (100 ms) or --backend-batch-limit (10,000)
 * operations, whichever comes first; its WAL covers the rest, as metad's
 * log does. A checkpoint is metad's backend commit, so those flags, when
 * given, set its period and an applied-entries trigger (on top of the
 * bytes one). metad's defaults stay much longer than etcd's: a WiredTiger
 * checkpoint costs far more than a bbolt commit (figures above).
 */
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "core/core_internal.h"

#define CHECKPOINT_EVERY_S 30
#define CHECKPOINT_BYTES (16u << 20)
#define CHECKPOINT_MIN_MS 1000
static void checkpoint_once(struct core *c)
{
	/* Read before the checkpoint starts: the checkpoint holds at least this. */
	uint64_t ci = mvcc_consistent_index(c->mvcc);
	atomic_store(&c->kbytes, 0);
	if (ci == atomic_load(&c->durable_index))
		return;
	int rv = db_checkpoint(c->ksession);
	if (rv != DB_OK) {
		core_log("error", "checkpoint: %s", db_strerror(rv));
		return;
	}
	/* The node compacts the Raft log behind this (node.c maybe_snapshot). */
	atomic_store(&c->durable_index, ci);
}

/* --backend-batch-limit: entries applied since the last checkpoint began. */
static bool entries_due(struct core *c)
{
	uint64_t limit = c->cfg.checkpoint_entries;
	return limit > 0 &&
	       mvcc_consistent_index(c->mvcc) - atomic_load(&c->durable_index) >= limit;
}

static void *checkpoint_main(void *arg)
{
	struct core *c = arg;
	pthread_setname_np(pthread_self(), "metad-ckpt");
	int64_t every_ms = c->cfg.checkpoint_interval_ms > 0 ? c->cfg.checkpoint_interval_ms
							     : CHECKPOINT_EVERY_S * 1000;
	/* etcd's own default (100 ms), passed explicitly, would checkpoint
	 * ten times a second: a floor keeps a copied etcd config usable. */
	if (every_ms < CHECKPOINT_MIN_MS)
		every_ms = CHECKPOINT_MIN_MS;
	pthread_mutex_lock(&c->kmu);
	while (!c->kstop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		int64_t ns = until.tv_nsec + every_ms % 1000 * 1000000;
		until.tv_sec += every_ms / 1000 + ns / 1000000000;
		until.tv_nsec = ns % 1000000000;
		while (!c->kstop && !c->kforce && atomic_load(&c->kbytes) < CHECKPOINT_BYTES &&
		       !entries_due(c) && pthread_cond_timedwait(&c->kcv, &c->kmu, &until) == 0)
			;
		if (c->kstop)
			break;
		c->kforce = false;
		pthread_mutex_unlock(&c->kmu);
		checkpoint_once(c);
		pthread_mutex_lock(&c->kmu);
	}
	pthread_mutex_unlock(&c->kmu);
	return NULL;
}

void checkpointer_soon(struct core *c)
{
	pthread_mutex_lock(&c->kmu);
	if (!c->kforce) {
		c->kforce = true;
		pthread_cond_signal(&c->kcv);
	}
	pthread_mutex_unlock(&c->kmu);
}

void checkpointer_applied(struct core *c, size_t bytes)
{
	uint64_t before = atomic_fetch_add(&c->kbytes, bytes);
	/* Wake it once, when the threshold is crossed (the entries one: at
	 * every batch past it, until the checkpoint moves durable_index). */
	if ((before < CHECKPOINT_BYTES && before + bytes >= CHECKPOINT_BYTES) || entries_due(c)) {
		pthread_mutex_lock(&c->kmu);
		pthread_cond_signal(&c->kcv);
		pthread_mutex_unlock(&c->kmu);
	}
}

int checkpointer_start(struct core *c)
{
	return pthread_create(&c->checkpointer, NULL, checkpoint_main, c) == 0 ? DB_OK : DB_NOMEM;
}

void checkpointer_stop(struct core *c)
{
	pthread_mutex_lock(&c->kmu);
	c->kstop = true;
	pthread_cond_broadcast(&c->kcv);
	pthread_mutex_unlock(&c->kmu);
	pthread_join(c->checkpointer, NULL);
}
