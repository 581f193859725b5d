/*
 * core/compactor.c — physical compaction off the write path.
 *
 * Applying a Compact only records the compact revision (reads below it fail
 * at once). Removing the history is slow, so this thread does it in bounded
 * chunks, then answers the requests that asked for `physical`.
 *
 * The watch hub reads each committed revision from storage after the commit,
 * possibly after a Compact at or above it was recorded; its watchers are in
 * sync and etcd never cancels those. So removal never passes the hub's
 * floor (the revisions it has read or skipped). A hub that reads nothing
 * (nobody watches, or it stopped) sets the floor to INT64_MAX and holds
 * nothing back; before it reads again it resumes past the current revision,
 * which is past any compaction already chosen (compactor_floor_resume).
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/core_internal.h"

static void answer(struct proposal *list)
{
	while (list != NULL) {
		struct proposal *p = list;
		list = p->next;
		p->cb(p->arg, &p->reply->pub);
		free(p);
	}
}

static void *compactor_main(void *arg)
{
	struct core *c = arg;
	pthread_setname_np(pthread_self(), "metad-compact");
	pthread_mutex_lock(&c->cmu);
	for (;;) {
		while (!c->cpending && !c->cstopping)
			pthread_cond_wait(&c->ccv, &c->cmu);
		if (!c->cpending && c->cstopping)
			break;
		c->cpending = false;
		struct proposal *waiters = c->cwaiters;
		c->cwaiters = NULL;
		/* The compact revision is published before the revision, so
		 * bound it by a revision read after it: resume reads one later. */
		int64_t upto = mvcc_compact_rev(c->mvcc), rev = mvcc_rev(c->mvcc);
		if (upto > rev)
			upto = rev;
		atomic_store(&c->cwaiting, true);
		/* A hub that skips revisions nobody watches may sleep below upto;
		 * while cwaiting it wakes for every commit. */
		if (atomic_load(&c->watch_floor) < upto)
			watch_poke(c);
		while (atomic_load(&c->watch_floor) < upto && !c->cstopping)
			pthread_cond_wait(&c->ccv, &c->cmu);
		atomic_store(&c->cwaiting, false);
		/* Stopping with the hub still reading: the next start finishes. */
		bool run = atomic_load(&c->watch_floor) >= upto;
		pthread_mutex_unlock(&c->cmu);

		int rv = run ? mvcc_compact_run_to(c->mvcc, c->csession, upto) : DB_OK;
		if (rv != DB_OK)
			core_log("error", "compaction: %s", db_strerror(rv));
		answer(waiters);

		pthread_mutex_lock(&c->cmu);
	}
	struct proposal *waiters = c->cwaiters;
	c->cwaiters = NULL;
	pthread_mutex_unlock(&c->cmu);
	answer(waiters);
	return NULL;
}

void compactor_request(struct core *c, struct proposal *p)
{
	pthread_mutex_lock(&c->cmu);
	c->cpending = true;
	if (p != NULL) {
		p->next = c->cwaiters;
		c->cwaiters = p;
	}
	pthread_cond_signal(&c->ccv);
	pthread_mutex_unlock(&c->cmu);
}

void compactor_floor_raise(struct core *c, int64_t floor)
{
	atomic_store(&c->watch_floor, floor);
	/* Both seq_cst, against the compactor's store of cwaiting and load of
	 * the floor: one of the two sees the other, so no wake-up is lost. */
	if (atomic_load(&c->cwaiting)) {
		pthread_mutex_lock(&c->cmu);
		pthread_cond_broadcast(&c->ccv);
		pthread_mutex_unlock(&c->cmu);
	}
}

int64_t compactor_floor_resume(struct core *c, int64_t rev)
{
	pthread_mutex_lock(&c->cmu);
	int64_t cur = mvcc_rev(c->mvcc);
	if (rev < cur)
		rev = cur;
	atomic_store(&c->watch_floor, rev);
	pthread_mutex_unlock(&c->cmu);
	return rev;
}

int compactor_start(struct core *c)
{
	if (c->cpending || mvcc_compact_rev(c->mvcc) > 0)
		c->cpending = true; /* finish a compaction a crash interrupted */
	return pthread_create(&c->compactor, NULL, compactor_main, c) == 0 ? DB_OK : DB_NOMEM;
}

void compactor_stop(struct core *c)
{
	pthread_mutex_lock(&c->cmu);
	c->cstopping = true;
	pthread_cond_broadcast(&c->ccv);
	pthread_mutex_unlock(&c->cmu);
	pthread_join(c->compactor, NULL);
}
