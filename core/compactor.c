/*
 * core/compactor.c — physical compaction off the write path.
 *
 * Applying a Compact only records the compact revision (reads below it fail
 * at once). Removing the history is slow, so this thread does it in bounded
 * chunks, then answers the requests that asked for `physical`.
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
		pthread_mutex_unlock(&c->cmu);

		int rv = mvcc_compact_run(c->mvcc, c->csession);
		if (rv != DB_OK)
			fprintf(stderr, "metad: compaction: %s\n", db_strerror(rv));
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
