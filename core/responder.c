/*
 * core/responder.c — answering applied requests off the writer thread.
 *
 * Sending a reply runs gRPC's write path (framing, sendmsg) on the calling
 * thread. Done by the writer, it lengthened every batch and made the single
 * writer the bottleneck under load; a responder thread takes finished
 * batches and answers them while the writer commits the next one. Small
 * batches (a lone client) are answered inline: one hand-off fewer.
 * Linearizable reads whose read index is applied run here too, off the
 * node's thread.
 *
 * While this thread answers (writes and reads), core_answering_batch tells
 * the callbacks so: etcdapi then leaves the gRPC send to its
 * completion-queue thread (etcdapi/handback.c, which has the figures).
 * That costs the CQ thread a wake-up per batch, which the small batches
 * answered inline (a lone client's) would not repay.
 */
#include <stdlib.h>

#include "core/core_internal.h"

#define INLINE_MAX 2

static _Thread_local bool answering_batch;

bool core_answering_batch(void)
{
	return answering_batch;
}

static void answer(struct core *c, struct proposal *list)
{
	while (list != NULL) {
		struct proposal *p = list;
		list = p->next;
		if (p->compact_rev > 0 && p->physical) {
			compactor_request(c, p); /* answered once history is gone */
			continue;
		}
		if (p->compact_rev > 0)
			compactor_request(c, NULL); /* history goes in the background */
		int err = p->reply->pub.err;
		if (err == CORE_ETIMEOUT || err == CORE_ENO_LEADER || err == CORE_ESTOPPED ||
		    err == CORE_ENOT_LEADER || err == CORE_EPROPOSAL_DROPPED)
			atomic_fetch_add_explicit(&c->proposals_failed, 1, memory_order_relaxed);
		p->cb(p->arg, &p->reply->pub);
		free(p);
	}
}

static void run_reads(struct read_wait *list)
{
	while (list != NULL) {
		struct read_wait *w = list;
		list = w->next;
		w->run(w->arg, w->ctx == UINT64_MAX ? CORE_ETIMEOUT : CORE_OK);
	}
}

void responder_reads(struct core *c, struct read_wait *list)
{
	struct read_wait *last = list;
	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&c->rmu);
	last->next = c->rreads;
	c->rreads = list;
	pthread_cond_signal(&c->rcv);
	pthread_mutex_unlock(&c->rmu);
}

void responder_submit(struct core *c, struct proposal *batch, size_t n)
{
	if (n <= INLINE_MAX) {
		answer(c, batch);
		return;
	}
	struct proposal *last = batch;
	while (last->next != NULL)
		last = last->next;
	pthread_mutex_lock(&c->rmu);
	if (c->rtail)
		c->rtail->next = batch;
	else
		c->rhead = batch;
	c->rtail = last;
	pthread_cond_signal(&c->rcv);
	pthread_mutex_unlock(&c->rmu);
}

static void *responder_main(void *arg)
{
	struct core *c = arg;
	pthread_setname_np(pthread_self(), "metad-reply");
	pthread_mutex_lock(&c->rmu);
	for (;;) {
		while (c->rhead == NULL && c->rreads == NULL && !c->rstop)
			pthread_cond_wait(&c->rcv, &c->rmu);
		if (c->rhead == NULL && c->rreads == NULL)
			break;
		struct proposal *list = c->rhead;
		struct read_wait *reads = c->rreads;
		c->rhead = c->rtail = NULL;
		c->rreads = NULL;
		pthread_mutex_unlock(&c->rmu);
		answering_batch = true;
		answer(c, list);
		run_reads(reads);
		answering_batch = false;
		pthread_mutex_lock(&c->rmu);
	}
	pthread_mutex_unlock(&c->rmu);
	return NULL;
}

int responder_start(struct core *c)
{
	return pthread_create(&c->responder, NULL, responder_main, c) == 0 ? DB_OK : DB_NOMEM;
}

void responder_stop(struct core *c)
{
	pthread_mutex_lock(&c->rmu);
	c->rstop = true;
	pthread_cond_broadcast(&c->rcv);
	pthread_mutex_unlock(&c->rmu);
	pthread_join(c->responder, NULL);
}
