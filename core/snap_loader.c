/*
 * core/snap_loader.c — a fetched snapshot's bytes fed to its snap_stream on
 * a thread of their own. The fetch thread only receives and queues; this
 * one parses and bulk-loads. On one thread the two took turns: while the
 * load wrote pages the next chunk waited in the transport, and the load
 * (two thirds of the member's CPU for a 1M-key store) could not use the
 * core the leader's dump left idle once it was done.
 *
 * The queue is bounded (QUEUE_MAX bytes) so a member that loads slower
 * than the leader sends holds the rest back in the transport's flow
 * control, not in memory.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"
#include "core/snapshot.h"

#define QUEUE_MAX (8u << 20)

struct chunk {
	struct chunk *next;
	size_t len;
	uint8_t data[];
};

struct snap_loader {
	struct core *c;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* work queued, room made, queue drained */
	struct chunk *head, *tail;
	size_t queued; /* bytes in the queue and in the chunk being fed */
	bool stop;
	bool failed; /* the stream refused bytes (or closing): drop the rest */
	struct snap_stream *st;
};

static void *loader_main(void *arg)
{
	struct snap_loader *l = arg;
	pthread_setname_np(pthread_self(), "metad-snapload");
	pthread_mutex_lock(&l->mu);
	for (;;) {
		while (l->head == NULL && !l->stop)
			pthread_cond_wait(&l->cv, &l->mu);
		struct chunk *ch = l->head;
		if (ch == NULL)
			break;
		l->head = ch->next;
		if (l->head == NULL)
			l->tail = NULL;
		bool bad = l->failed || atomic_load(&l->c->fetch_stop);
		pthread_mutex_unlock(&l->mu);
		if (!bad)
			bad = snap_stream_feed(l->st, ch->data, ch->len) != 0;
		pthread_mutex_lock(&l->mu);
		l->failed = l->failed || bad;
		l->queued -= ch->len;
		free(ch);
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

struct snap_loader *snap_loader_start(struct core *c)
{
	struct snap_loader *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->c = c;
	l->failed = true; /* until snap_loader_reset gives it a stream */
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	if (pthread_create(&l->th, NULL, loader_main, l) != 0) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		free(l);
		return NULL;
	}
	return l;
}

/* Under mu: until everything queued has been fed. */
static void drain(struct snap_loader *l)
{
	while (l->queued > 0)
		pthread_cond_wait(&l->cv, &l->mu);
}

int snap_loader_reset(struct snap_loader *l)
{
	pthread_mutex_lock(&l->mu);
	drain(l);
	snap_stream_free(l->st);
	l->st = snap_stream_new(l->c);
	l->failed = l->st == NULL;
	pthread_mutex_unlock(&l->mu);
	return l->st ? 0 : -1;
}

int snap_loader_feed(struct snap_loader *l, const void *buf, size_t len)
{
	struct chunk *ch = malloc(sizeof(*ch) + len);
	if (ch == NULL)
		return -1;
	ch->next = NULL;
	ch->len = len;
	memcpy(ch->data, buf, len);
	pthread_mutex_lock(&l->mu);
	while (!l->failed && l->queued >= QUEUE_MAX)
		pthread_cond_wait(&l->cv, &l->mu);
	bool failed = l->failed;
	if (!failed) {
		if (l->tail)
			l->tail->next = ch;
		else
			l->head = ch;
		l->tail = ch;
		l->queued += len;
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (failed)
		free(ch);
	return failed ? -1 : 0;
}

struct snap_stream *snap_loader_finish(struct snap_loader *l)
{
	pthread_mutex_lock(&l->mu);
	drain(l);
	l->stop = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->th, NULL);
	struct snap_stream *st = l->failed ? NULL : l->st;
	if (st == NULL)
		snap_stream_free(l->st);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return st;
}
