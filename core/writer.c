/*
 * core/writer.c — the write path's queues and the thread that drives the
 * Raft node: proposal queue -> node cycle (log, send, apply) -> reply.
 *
 * Client threads queue packed requests; peers' messages and linearizable
 * reads queue here too. Whoever holds `busy` runs one node cycle with
 * everything queued (group commit: many requests, one synced commit): the
 * writer thread, woken by the queues and every tick, or a gRPC thread that
 * commits a lone write itself (core_commit_inline).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"
#include "core/deadline.h"

#define BATCH_MAX_REQS 4096
#define BATCH_MAX_BYTES (8u << 20)
#define MAX_TICKS 10 /* after a long stall, catch up at most this many ticks at once */

/* Set by callers holding no lock the apply path could need (core.h). */
static _Thread_local bool may_commit_inline;
/* A lone write this thread queued without waking the writer: it commits
 * it in core_commit_deferred, unless the writer took it first. */
static _Thread_local struct core *deferred;

/*
 * One node cycle with what is queued (proposals up to the batch bounds).
 * Called with mu held and !busy; returns with mu held and busy clear.
 */
static void cycle_locked(struct core *c)
{
	struct proposal *batch = c->head, *last = c->head;
	size_t n = 0;
	if (batch != NULL) {
		size_t bytes = last->len;
		n = 1;
		while (last->next != NULL && n < BATCH_MAX_REQS && bytes < BATCH_MAX_BYTES) {
			last = last->next;
			n++;
			bytes += last->len;
		}
		c->head = last->next;
		if (c->head == NULL)
			c->tail = NULL;
		last->next = NULL;
		c->queued -= n;
	}
	struct node_in in = {.msgs = c->in_head, .props = batch, .n = n, .reads = c->rd_head,
			     .ops = c->op_head};
	c->in_head = c->in_tail = NULL;
	c->rd_head = c->rd_tail = NULL;
	c->op_head = c->op_tail = NULL;
	int64_t now = node_now_ns();
	while (now >= c->next_tick_ns && in.ticks < MAX_TICKS) {
		in.ticks++;
		c->next_tick_ns += c->tick_ns;
	}
	if (now >= c->next_tick_ns) /* stalled (SIGSTOP, overload): resume from now */
		c->next_tick_ns = now + c->tick_ns;
	c->busy = true;
	pthread_mutex_unlock(&c->mu);
	node_cycle(c, &in);
	pthread_mutex_lock(&c->mu);
	c->busy = false;
}

static bool has_work(struct core *c, int64_t now)
{
	return c->head != NULL || c->in_head != NULL || c->rd_head != NULL || c->op_head != NULL ||
	       now >= c->next_tick_ns;
}

void writer_op(struct core *c, struct node_op *op)
{
	op->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->op_tail)
		c->op_tail->next = op;
	else
		c->op_head = op;
	c->op_tail = op;
	if (!c->busy)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void writer_deliver(struct core *c, struct inmsg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->stopping) { /* nobody will step it */
		pthread_mutex_unlock(&c->mu);
		raft_message_release(&m->m);
		free(m);
		return;
	}
	if (c->in_tail)
		c->in_tail->next = m;
	else
		c->in_head = m;
	c->in_tail = m;
	if (!c->busy)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void writer_read(struct core *c, struct read_wait *w)
{
	w->next = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->rd_tail)
		c->rd_tail->next = w;
	else
		c->rd_head = w;
	c->rd_tail = w;
	if (!c->busy)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void submit(struct core *c, const Metadpb__InternalRequest *req, bool kept, core_done_fn cb,
		   void *arg)
{
	Metadpb__InternalRequest ir = *req;
	auth_stamp(&ir); /* who the client was checked as (auth_stamp.c) */
	ir.id = atomic_fetch_add(&c->next_req_id, 1);
	ir.origin = c->member_id;
	/* The stamp is this thread's, rewritten by its next request: a kept
	 * request keeps a copy. */
	size_t user = kept && ir.auth_user ? strlen(ir.auth_user) + 1 : 0;
	struct reply *r = reply_new();
	struct proposal *p = calloc(1, sizeof(*p) + user);
	if (p != NULL && kept) {
		p->kept = true;
		p->ir = ir;
		if (user) {
			memcpy(p->user, ir.auth_user, user);
			p->ir.auth_user = p->user;
		}
	}
	size_t len = metadpb__internal_request__get_packed_size(&ir);
	/* etcd limits the proposed entry, not the client message. */
	if (r != NULL && len > c->cfg.max_request_bytes) {
		free(p);
		reply_done(r, CORE_EREQUEST_TOO_LARGE, NULL, cb, arg);
		return;
	}
	uint8_t *data = malloc(len ? len : 1);
	if (r == NULL || p == NULL || data == NULL) {
		free(p);
		free(data);
		if (r == NULL)
			reply_fail(cb, arg, CORE_ENOMEM);
		else
			reply_done(r, CORE_ENOMEM, NULL, cb, arg);
		return;
	}
	metadpb__internal_request__pack(&ir, data);
	p->data = data;
	p->len = len;
	p->id = ir.id;
	p->cb = cb;
	p->arg = arg;
	p->reply = r;
	pthread_mutex_lock(&c->mu);
	if (c->stopping) {
		pthread_mutex_unlock(&c->mu);
		free(data);
		free(p);
		reply_done(r, CORE_ESTOPPED, NULL, cb, arg);
		return;
	}
	if (c->tail)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
	c->queued++;
	if (!may_commit_inline || c->busy || c->head != p) {
		/* Busy, or a second write arrived: the writer batches them. */
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	/* Nothing in flight: this thread commits it once it has nothing else to
	 * do (core_commit_deferred), rather than waking the writer. */
	deferred = c;
	pthread_mutex_unlock(&c->mu);
}

void writer_submit(struct core *c, const Metadpb__InternalRequest *req, core_done_fn cb, void *arg)
{
	submit(c, req, false, cb, arg);
}

void writer_submit_kept(struct core *c, const Metadpb__InternalRequest *req, core_done_fn cb,
			void *arg)
{
	submit(c, req, true, cb, arg);
}

bool core_commit_pending(void)
{
	return deferred != NULL;
}

void core_commit_deferred(bool here)
{
	struct core *c = deferred;
	if (c == NULL)
		return;
	deferred = NULL;
	pthread_mutex_lock(&c->mu);
	if (c->busy || c->head == NULL || !here) {
		/* The writer has it, will take it after its batch, or is asked to:
		 * this thread has other work, and a commit here would stop it
		 * reading the writes that should join the batch. */
		if (c->head != NULL && !c->busy)
			pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		return;
	}
	cycle_locked(c);
	if (c->head != NULL || c->stopping) /* a stopping writer waits for us */
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void core_commit_inline(bool on)
{
	may_commit_inline = on;
}

static void *writer_main(void *arg)
{
	struct core *c = arg;
	pthread_setname_np(pthread_self(), "metad-writer");
	struct timespec sized = {0, 0};
	pthread_mutex_lock(&c->mu);
	for (;;) {
		int64_t now = node_now_ns();
		while ((!has_work(c, now) || c->busy) && !c->stopping) {
			/* Sleep until the next tick (CLOCK_REALTIME deadline for the
			 * condition variable, computed from the monotonic gap). */
			int64_t gap = c->next_tick_ns - now;
			if (gap < 0 || c->busy)
				gap = c->tick_ns;
			struct timespec until = core_deadline_ns(CLOCK_REALTIME, gap);
			pthread_cond_timedwait(&c->cv, &c->mu, &until);
			now = node_now_ns();
		}
		while (c->busy) /* stopping: let an inline commit finish first */
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stopping && c->head == NULL)
			break;
		cycle_locked(c);
		pthread_mutex_unlock(&c->mu);
		struct timespec mono;
		clock_gettime(CLOCK_MONOTONIC, &mono);
		if (mono.tv_sec != sized.tv_sec) { /* at most once a second */
			atomic_store(&c->db_size, db_size_bytes(c->db));
			sized = mono;
		}
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int writer_start(struct core *c)
{
	c->next_tick_ns = node_now_ns() + c->tick_ns;
	return pthread_create(&c->writer, NULL, writer_main, c) == 0 ? DB_OK : DB_NOMEM;
}

void writer_stop(struct core *c)
{
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->writer, NULL);
	writer_drain(c);
}

void writer_drain(struct core *c)
{
	/* Writes queued but never proposed (the writer never ran: a start-up
	 * that failed after the node queued its publish). */
	for (struct proposal *p = c->head, *next; p; p = next) {
		next = p->next;
		free(p->data);
		p->reply->pub.err = CORE_ESTOPPED;
		p->cb(p->arg, &p->reply->pub);
		free(p);
	}
	c->head = c->tail = NULL;
	c->queued = 0;
	/* Messages and reads nobody will handle now. */
	for (struct inmsg *m = c->in_head, *next; m; m = next) {
		next = m->next;
		raft_message_release(&m->m);
		free(m);
	}
	c->in_head = c->in_tail = NULL;
	for (struct read_wait *w = c->rd_head, *next; w; w = next) {
		next = w->next;
		w->run(w->arg, CORE_ESTOPPED);
	}
	c->rd_head = c->rd_tail = NULL;
	/* Ops queued after the last cycle run here: what they wait for can no
	 * longer happen, and node_close answers them "server stopped". */
	for (struct node_op *op = c->op_head, *next; op; op = next) {
		next = op->next;
		op->fn(c, op);
	}
	c->op_head = c->op_tail = NULL;
}
