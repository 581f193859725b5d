/*
 * etcdapi/snapshot.c — Maintenance.Snapshot: the store as an etcd backend
 * file (core/backup.c), streamed as etcd streams it.
 *
 * ETCD-COMPAT: 32 KiB blobs, remaining_bytes counting down to 0, then one
 * last message whose blob is the SHA-256 of everything before it (etcdctl
 * appends it to the file; `snapshot restore` checks it). Root only, as
 * etcd's authMaintenanceServer. The file is built in the data dir (removed
 * from the directory at once) on a thread of its own, from one storage
 * snapshot, so writes go on; sending waits while 4 MiB are queued.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/backup.h"
#include "etcdapi/authz.h"
#include "etcdapi/call.h"
#include "etcdapi/stream.h"

#define BLOB (32 * 1024)
#define QUEUE_MAX (4u << 20)

struct snap {
	struct api_stream *st;
	struct core *core;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool gone;
};

static bool snap_recv(struct api_stream *st, const uint8_t *data, size_t len)
{
	(void)st, (void)data, (void)len;
	return false;
}

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

static const struct api_stream_ops snap_ops = {snap_recv, snap_recv_end, snap_sent, snap_release};

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

static void *snap_main(void *arg)
{
	struct snap *sn = arg;
	pthread_setname_np(pthread_self(), "metad-snapshot");
	char path[4200];
	snprintf(path, sizeof(path), "%s/.snapshot-XXXXXX", core_config(sn->core)->data_dir);
	int fd = mkstemp(path);
	if (fd >= 0)
		unlink(path); /* gone with the last close */
	uint64_t size = 0;
	int err = fd < 0 ? CORE_EINTERNAL : core_backup_write(sn->core, fd, &size);
	if (err != CORE_OK) {
		api_stream_finish(sn->st, (grpc_status_code)core_grpc_code(err), core_strerror(err));
		goto out;
	}
	core_log("info", "sending database snapshot to client (%llu bytes)",
		 (unsigned long long)size);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = malloc(BLOB);
	bool ok = md != NULL && buf != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	uint64_t sent = 0;
	while (ok && sent < size) {
		size_t want = size - sent < BLOB ? (size_t)(size - sent) : BLOB;
		ssize_t n = pread(fd, buf, want, (off_t)sent);
		if (n <= 0) {
			ok = false;
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		sent += (uint64_t)n;
		if (!room(sn)) {
			ok = false;
			break;
		}
		send_blob(sn, size - sent, buf, (size_t)n);
	}
	if (ok) {
		uint8_t sum[EVP_MAX_MD_SIZE];
		unsigned sl = 0;
		EVP_DigestFinal_ex(md, sum, &sl);
		send_blob(sn, 0, sum, sl);
		api_stream_finish(sn->st, GRPC_STATUS_OK, NULL);
		core_log("info", "sent database snapshot to client (%llu bytes)",
			 (unsigned long long)size);
	} else {
		api_stream_finish(sn->st, GRPC_STATUS_UNAVAILABLE, "etcdserver: snapshot not sent");
	}
	EVP_MD_CTX_free(md);
	free(buf);
out:
	if (fd >= 0)
		close(fd);
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
