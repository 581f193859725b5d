/*
 * etcdapi/snapshot.c — Maintenance.Snapshot: the store as an etcd backend
 * file (core/backup.c), streamed as etcd streams it.
 *
 * ETCD-COMPAT: remaining_bytes counting down to 0, then one last message
 * whose blob is the SHA-256 of everything before it (etcdctl appends it to
 * the file; `snapshot restore` checks it). etcd sends 32 KiB blobs; clients
 * only append them, so metad sends 256 KiB (far below any client's
 * receive limit: 4 MiB in gRPC's default, 2 GiB in etcd's clientv3):
 * etcdctl spends less per byte on fewer messages, 1M keys with no writes
 * 1.05-1.49 s -> 0.91-1.23 s in alternating runs. Root only, as
 * etcd's authMaintenanceServer. The file is made on a thread of its own
 * from one storage snapshot, so writes go on: a first run over the
 * snapshot lays it out (remaining_bytes needs its size, and its first
 * pages depend on the rest), a second makes it and sends it as it goes
 * (core/backup.h), so nothing is staged on disk and making overlaps
 * sending; sending waits while 4 MiB are queued.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/backup.h"
#include "etcdapi/authz.h"
#include "etcdapi/call.h"
#include "etcdapi/stream.h"

#define BLOB (256 * 1024)
#define QUEUE_MAX (4u << 20)

struct snap {
	struct api_stream *st;
	struct core *core;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool gone;
};

static void snap_recv_end(struct api_stream *st, bool eof)
{
	(void)eof;
	struct snap *sn = st->owner;
	pthread_mutex_lock(&sn->mu);
	sn->gone = !eof;
	pthread_cond_broadcast(&sn->cv);
	pthread_mutex_unlock(&sn->mu);
}

static void snap_sent(struct api_stream *st, size_t len, size_t msgs)
{
	(void)len, (void)msgs;
	struct snap *sn = st->owner;
	pthread_mutex_lock(&sn->mu);
	pthread_cond_broadcast(&sn->cv);
	pthread_mutex_unlock(&sn->mu);
}

static void snap_release(struct api_stream *st)
{
	struct snap *sn = st->owner;
	pthread_mutex_destroy(&sn->mu);
	pthread_cond_destroy(&sn->cv);
	free(sn);
}

static const struct api_stream_ops snap_ops = {NULL, snap_recv_end, snap_sent, snap_release, false};

/* Wait until the queue has room; false when the client went away. */
static bool room(struct snap *sn)
{
	pthread_mutex_lock(&sn->mu);
	while (!sn->gone && api_stream_queued(sn->st) > QUEUE_MAX) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1; /* re-check: a finished call reports nothing more */
		pthread_cond_timedwait(&sn->cv, &sn->mu, &until);
	}
	bool ok = !sn->gone;
	pthread_mutex_unlock(&sn->mu);
	return ok;
}

static void send_blob(struct snap *sn, uint64_t remaining, const uint8_t *data, size_t len)
{
	Etcdserverpb__SnapshotResponse r = ETCDSERVERPB__SNAPSHOT_RESPONSE__INIT;
	r.remaining_bytes = remaining;
	r.blob.data = (uint8_t *)data;
	r.blob.len = len;
	api_stream_send_msg(sn->st, &r.base);
}

/*
 * The file is made on one thread (the storage snapshot belongs to its
 * session) and sent from another: the maker fills blobs and hands
 * them over through a ring of NBUF; the sender hashes and queues them on
 * the stream. Making and sending then overlap (each costs about as much).
 */
#define NBUF 32

struct pipe {
	struct snap *sn;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint8_t *buf[NBUF];
	size_t len[NBUF];
	size_t head, tail; /* blobs taken by the sender, blobs handed over */
	size_t fill;       /* bytes in buf[tail % NBUF], not handed over yet */
	bool done, failed;
	uint64_t size, sent;
	bool ok;           /* the sender's verdict */
};

/* Maker: hand the blob being filled over; false once the sender gave up. */
static bool hand_over(struct pipe *p)
{
	pthread_mutex_lock(&p->mu);
	p->len[p->tail % NBUF] = p->fill;
	p->tail++;
	p->fill = 0;
	pthread_cond_broadcast(&p->cv);
	while (!p->failed && p->tail - p->head == NBUF)
		pthread_cond_wait(&p->cv, &p->mu);
	bool ok = !p->failed;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

static int emit(void *arg, const uint8_t *bytes, size_t len)
{
	struct pipe *p = arg;
	while (len > 0) {
		uint8_t *b = p->buf[p->tail % NBUF]; /* the maker's own until handed over */
		size_t n = BLOB - p->fill < len ? BLOB - p->fill : len;
		memcpy(b + p->fill, bytes, n);
		p->fill += n;
		bytes += n;
		len -= n;
		if (p->fill == BLOB && !hand_over(p))
			return -1;
	}
	return 0;
}

static void *sender_main(void *arg)
{
	struct pipe *p = arg;
	pthread_setname_np(pthread_self(), "metad-snapsend");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (ok && p->head == p->tail && !p->done)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!ok || p->head == p->tail)
			break; /* failed, or done and drained */
		uint8_t *b = p->buf[p->head % NBUF];
		size_t n = p->len[p->head % NBUF];
		pthread_mutex_unlock(&p->mu);
		EVP_DigestUpdate(md, b, n);
		p->sent += n;
		ok = room(p->sn); /* false: the client went away */
		if (ok)
			send_blob(p->sn, p->size - p->sent, b, n);
		pthread_mutex_lock(&p->mu);
		p->head++;
		pthread_cond_broadcast(&p->cv);
	}
	ok = ok && p->done && p->sent == p->size;
	if (!ok)
		p->failed = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (ok) {
		uint8_t sum[EVP_MAX_MD_SIZE];
		unsigned sl = 0;
		EVP_DigestFinal_ex(md, sum, &sl);
		send_blob(p->sn, 0, sum, sl);
	}
	EVP_MD_CTX_free(md);
	p->ok = ok;
	return NULL;
}

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Make the file and send it; whether all of it (and its hash) went. A
 * failure is logged: the client sees UNAVAILABLE, which clientv3 retries
 * with a whole new snapshot, so without the log only the time shows it. */
static bool make_and_send(struct core_backup *b, struct pipe *p)
{
	pthread_t t;
	if (pthread_create(&t, NULL, sender_main, p) != 0) {
		core_log("warn", "failed to send database snapshot to client: no thread");
		return false;
	}
	int err = core_backup_stream(b, emit, p);
	pthread_mutex_lock(&p->mu);
	bool gone = p->failed; /* the sender found the client gone */
	bool ok = err == CORE_OK && !p->failed;
	pthread_mutex_unlock(&p->mu);
	if (ok && p->fill > 0)
		ok = hand_over(p);
	pthread_mutex_lock(&p->mu);
	p->done = true;
	if (!ok)
		p->failed = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(t, NULL);
	if (err != CORE_OK && !gone)
		core_log("warn", "failed to send database snapshot to client: %s (%llu of %llu bytes sent)",
			 core_strerror(err), (unsigned long long)p->sent, (unsigned long long)p->size);
	else if (!(ok && p->ok))
		core_log("warn", "failed to send database snapshot to client: the stream ended "
			 "(%llu of %llu bytes sent)", (unsigned long long)p->sent,
			 (unsigned long long)p->size);
	return ok && p->ok;
}

static void *snap_main(void *arg)
{
	struct snap *sn = arg;
	pthread_setname_np(pthread_self(), "metad-snapshot");
	struct timespec t0, t1, t2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct core_backup *b = NULL;
	struct pipe p = {.sn = sn};
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	int err = CORE_OK;
	for (size_t i = 0; i < NBUF && err == CORE_OK; i++)
		if ((p.buf[i] = malloc(BLOB)) == NULL)
			err = CORE_ENOMEM;
	if (err == CORE_OK)
		err = core_backup_open(sn->core, &b);
	if (err != CORE_OK) {
		api_stream_finish(sn->st, (grpc_status_code)core_grpc_code(err), core_strerror(err));
		goto out;
	}
	p.size = core_backup_size(b);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	core_log("info", "sending database snapshot to client (%llu bytes; laid out in %.3f s)",
		 (unsigned long long)p.size, secs(&t0, &t1));
	if (make_and_send(b, &p)) {
		api_stream_finish(sn->st, GRPC_STATUS_OK, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t2);
		core_log("info", "sent database snapshot to client (%llu bytes; made and sent in %.3f s)",
			 (unsigned long long)p.size, secs(&t1, &t2));
	} else {
		api_stream_finish(sn->st, GRPC_STATUS_UNAVAILABLE, "etcdserver: snapshot not sent");
	}
out:
	core_backup_close(b);
	for (size_t i = 0; i < NBUF; i++)
		free(p.buf[i]);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
	api_stream_unref(sn->st); /* the worker's */
	return NULL;
}

void api_snapshot(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (!api_authz_admin(call))
		return;
	api_authz_end(); /* nothing is written */
	struct snap *sn = calloc(1, sizeof(*sn));
	if (sn == NULL) {
		api_finish_status(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		return;
	}
	sn->core = api_core(call);
	pthread_mutex_init(&sn->mu, NULL);
	pthread_cond_init(&sn->cv, NULL);
	sn->st = api_stream_open(call, &snap_ops, sn, false);
	if (sn->st == NULL) {
		pthread_mutex_destroy(&sn->mu);
		pthread_cond_destroy(&sn->cv);
		free(sn);
		return;
	}
	api_stream_ref(sn->st); /* the worker's */
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, snap_main, sn) != 0) {
		api_stream_finish(sn->st, GRPC_STATUS_RESOURCE_EXHAUSTED, "etcdserver: out of memory");
		api_stream_unref(sn->st);
	}
	pthread_attr_destroy(&at);
	api_stream_unref(sn->st); /* the handler's */
}
