/*
 * core/writer.c — the write path: proposal queue -> log -> apply -> reply.
 *
 * Client threads queue packed requests. One writer thread takes everything
 * queued (group commit), appends it to the log in one synced WiredTiger
 * commit, applies the batch in one more transaction that also stores the
 * applied (consistent) index, and only then answers. A crash between the two
 * commits loses nothing: start-up replays the log above the applied index.
 * Raft will sit between queue and log without changing this shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_internal.h"
#include "storage/raftlog.h"

#define BATCH_MAX_REQS 4096
#define BATCH_MAX_BYTES (8u << 20)

#define ENTRY_NORMAL 0

static void fatal(const char *what, int rv)
{
	/* Storage failed under an acknowledged log: stop rather than diverge.
	 * Restart recovers from the log. */
	fprintf(stderr, "metad: fatal: %s: %s\n", what, db_strerror(rv));
	abort();
}

static void run_batch(struct core *c, struct proposal *batch, size_t n, size_t bytes);

/* Set by callers holding no lock the apply path could need (core.h). */
static _Thread_local bool may_commit_inline;
/* A lone write this thread queued without waking the writer: it commits
 * it in core_commit_deferred, unless the writer took it first. */
static _Thread_local struct core *deferred;

/*
 * Commit what is queued, up to the batch bounds, on this thread. Called
 * with mu held, !busy and head != NULL; returns with mu held and busy clear.
 */
static void commit_queued_locked(struct core *c)
{
	struct proposal *batch = c->head, *last = c->head;
	size_t n = 1, bytes = last->len;
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
	c->busy = true;
	pthread_mutex_unlock(&c->mu);
	run_batch(c, batch, n, bytes);
	pthread_mutex_lock(&c->mu);
	c->busy = false;
}

void writer_submit(struct core *c, const Metadpb__InternalRequest *req, core_done_fn cb, void *arg)
{
	struct reply *r = reply_new();
	struct proposal *p = calloc(1, sizeof(*p));
	size_t len = metadpb__internal_request__get_packed_size(req);
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
	metadpb__internal_request__pack(req, data);
	p->data = data;
	p->len = len;
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
	commit_queued_locked(c);
	if (c->head != NULL || c->stopping) /* a stopping writer waits for us */
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void core_commit_inline(bool on)
{
	may_commit_inline = on;
}

/* Apply one packed entry; fills p->reply when p is not NULL. */
static void apply_entry(struct core *c, const uint8_t *data, size_t len, struct proposal *p)
{
	if (len == 0 && p == NULL)
		return; /* the bootstrap entry: nothing to apply */
	struct reply *r = p ? p->reply : reply_new();
	if (r == NULL)
		fatal("apply", DB_NOMEM);
	Metadpb__InternalRequest *req = metadpb__internal_request__unpack(NULL, len, data);
	ProtobufCMessage *msg = NULL;
	int64_t crev = 0;
	int err = req ? apply_request(c, c->wsession, r, req, &msg, &crev) : CORE_EINTERNAL;
	if (err == CORE_ENOMEM)
		fatal("apply", DB_NOMEM);
	/* The compactor is asked once the batch has committed (responder.c):
	 * asked now, it could run before the new compact revision is visible. */
	if (err == CORE_OK && crev > 0 && p != NULL) {
		p->compact_rev = crev;
		p->physical = req->compaction->physical;
	}
	metadpb__internal_request__free_unpacked(req, NULL);
	r->pub.err = err;
	r->pub.msg = err == CORE_OK ? msg : NULL;
	if (p == NULL)
		core_reply_free(&r->pub);
}

/* n proposals, bytes their packed entries' total length. */
static void run_batch(struct core *c, struct proposal *batch, size_t n, size_t bytes)
{
	struct rlog_entry *ents = malloc(n * sizeof(*ents));
	if (ents == NULL)
		fatal("batch", DB_NOMEM);
	uint64_t first = atomic_load(&c->last_index) + 1;
	size_t i = 0;
	for (struct proposal *p = batch; p; p = p->next, i++) {
		ents[i].index = first + i;
		ents[i].term = 1;
		ents[i].type = ENTRY_NORMAL;
		ents[i].data = p->data;
		ents[i].len = p->len;
	}
	/* 1. durable: one synced commit for the whole batch */
	int rv = rlog_append(c->wsession, ents, n);
	if (rv != DB_OK)
		fatal("log append", rv);
	free(ents);
	atomic_store(&c->last_index, first + n - 1);
	atomic_fetch_add(&c->commits, 1);
	atomic_fetch_add(&c->requests, n);

	/* 2. apply in one transaction with the consistent index */
	rv = mvcc_begin(c->mvcc, c->wsession);
	if (rv != DB_OK)
		fatal("apply begin", rv);
	for (struct proposal *p = batch; p; p = p->next)
		apply_entry(c, p->data, p->len, p);
	rv = mvcc_commit(c->mvcc, c->wsession, first + n - 1, 0);
	if (rv != DB_OK)
		fatal("apply commit", rv);
	checkpointer_applied(c, bytes);

	/* 3. answer (the responder sends, so the writer can commit the next batch) */
	for (struct proposal *p = batch; p; p = p->next) {
		free(p->data);
		p->data = NULL;
	}
	responder_submit(c, batch, n);
	/* After the replies are on their way: waking the hub is not on a
	 * client's path. The hub reads the new revisions itself. */
	watch_notify(c);
}

static void *writer_main(void *arg)
{
	struct core *c = arg;
	pthread_setname_np(pthread_self(), "metad-writer");
	struct timespec sized = {0, 0};
	for (;;) {
		pthread_mutex_lock(&c->mu);
		while ((c->head == NULL || c->busy) && !c->stopping)
			pthread_cond_wait(&c->cv, &c->mu);
		while (c->busy) /* stopping: let an inline commit finish first */
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->head == NULL) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		commit_queued_locked(c);
		pthread_mutex_unlock(&c->mu);
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec != sized.tv_sec) { /* at most once a second */
			atomic_store(&c->db_size, db_size_bytes(c->db));
			sized = now;
		}
	}
	return NULL;
}

#define REPLAY_CHUNK 256

/* Entries copied out of the log so apply runs outside the log cursor. */
struct replay_chunk {
	struct {
		uint64_t index;
		uint8_t *data;
		size_t len;
	} e[REPLAY_CHUNK];
	size_t n;
	int err;
};


static int collect(void *arg, const struct rlog_entry *e)
{
	struct replay_chunk *ch = arg;
	uint8_t *d = ch->n < REPLAY_CHUNK ? malloc(e->len ? e->len : 1) : NULL;
	if (d == NULL) {
		ch->err = DB_NOMEM;
		return 1;
	}
	memcpy(d, e->data, e->len);
	ch->e[ch->n].index = e->index;
	ch->e[ch->n].data = d;
	ch->e[ch->n].len = e->len;
	ch->n++;
	return 0;
}

int writer_replay(struct core *c)
{
	uint64_t first = 0, last = 0;
	int rv = rlog_bounds(c->wsession, &first, &last);
	if (rv != DB_OK)
		return rv;
	uint64_t applied = mvcc_consistent_index(c->mvcc);
	atomic_store(&c->last_index, last > applied ? last : applied);
	if (last <= applied)
		return DB_OK;
	if (applied + 1 < first)
		return DB_CORRUPT; /* the log lost entries that were never applied */
	fprintf(stderr, "metad: replaying log entries %llu..%llu\n",
		(unsigned long long)(applied + 1), (unsigned long long)last);
	struct replay_chunk *ch = malloc(sizeof(*ch));
	if (ch == NULL)
		return DB_NOMEM;
	uint64_t at = applied + 1;
	while (at <= last && rv == DB_OK) {
		ch->n = 0;
		ch->err = DB_OK;
		uint64_t hi = last + 1 - at > REPLAY_CHUNK ? at + REPLAY_CHUNK : last + 1;
		rv = rlog_read(c->wsession, at, hi, BATCH_MAX_BYTES, collect, ch);
		if (ch->err != DB_OK)
			rv = ch->err;
		if (rv == DB_OK && ch->n == 0)
			rv = DB_CORRUPT;
		if (rv == DB_OK)
			rv = mvcc_begin(c->mvcc, c->wsession);
		if (rv == DB_OK) {
			for (size_t i = 0; i < ch->n; i++)
				apply_entry(c, ch->e[i].data, ch->e[i].len, NULL);
			rv = mvcc_commit(c->mvcc, c->wsession, ch->e[ch->n - 1].index, 1);
			at = ch->e[ch->n - 1].index + 1;
		}
		for (size_t i = 0; i < ch->n; i++)
			free(ch->e[i].data);
	}
	free(ch);
	return rv;
}

int writer_bootstrap(struct core *c)
{
	if (atomic_load(&c->last_index) != 0)
		return DB_OK;
	/* A new member's log starts with one empty entry, so raft index and
	 * applied index are >= 1 from the first answer on, as in etcd. */
	struct rlog_entry e = {.index = 1, .term = 1, .type = ENTRY_NORMAL, .data = NULL, .len = 0};
	int rv = rlog_append(c->wsession, &e, 1);
	if (rv == DB_OK)
		rv = mvcc_begin(c->mvcc, c->wsession);
	if (rv == DB_OK)
		rv = mvcc_commit(c->mvcc, c->wsession, 1, 1);
	if (rv == DB_OK)
		atomic_store(&c->last_index, 1);
	return rv;
}

int writer_start(struct core *c)
{
	return pthread_create(&c->writer, NULL, writer_main, c) == 0 ? DB_OK : DB_NOMEM;
}

void writer_stop(struct core *c)
{
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->writer, NULL);
}
