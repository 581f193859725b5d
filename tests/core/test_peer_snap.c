/*
 * tests/core/test_peer_snap.c — snapshot transfer between two transports on
 * loopback: a fetch hands the served file to the sink byte for byte and in
 * order (several chunks); a chunk the sink refuses fails that try and the
 * next URL starts the file again from 0; a file still being written
 * arrives whole; a fetcher of another cluster is refused; a server with
 * nothing to send fails the fetch.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/peer.h"
#include "tests/core/poller_once.h"
#include "tests/expect.h"

#define FILE_BYTES (3u * 1024 * 1024 + 12345) /* four chunks, the last short */

/* See test_peer.c: OpenSSL's per-thread generators on gRPC's threads. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcrypto.so\n";
}

static char dir[256];
static char served[300]; /* the server's file; its id is "snap-1" */
static char asked[128];  /* have_id of the last call */
static int serve_calls;
static bool serve_nothing;
static _Atomic bool growing; /* served is being written (snapshot_state) */

static int serve_state(void *arg, const char *path, uint64_t *size)
{
	(void)arg;
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	*size = (uint64_t)st.st_size;
	return atomic_load(&growing) ? 0 : 1;
}

/* Writes the content to served in pieces, then says it is whole. */
static const uint8_t *grow_content;
static void *grow_main(void *arg)
{
	(void)arg;
	FILE *f = fopen(served, "a");
	for (size_t off = 0; f && off < FILE_BYTES; off += 300000) {
		size_t n = FILE_BYTES - off < 300000 ? FILE_BYTES - off : 300000;
		fwrite(grow_content + off, 1, n, f);
		fflush(f);
		usleep(20000);
	}
	if (f)
		fclose(f);
	atomic_store(&growing, false);
	return NULL;
}

struct sunk {
	uint8_t *buf;
	uint64_t next; /* offset the next chunk must have */
	bool out_of_order;
	uint64_t refuse_at; /* refuse the chunk at this offset, once */
	int restarts;       /* times the file came again from 0 */
};

static int sink(void *arg, uint64_t off, const void *data, size_t len)
{
	struct sunk *k = arg;
	if (off == k->refuse_at) {
		k->refuse_at = UINT64_MAX;
		return -1;
	}
	if (off == 0 && k->next != 0) {
		k->restarts++;
		k->next = 0;
	}
	if (off != k->next || off + len > FILE_BYTES)
		k->out_of_order = true;
	else
		memcpy(k->buf + off, data, len);
	k->next = off + len;
	return 0;
}

static int serve(void *arg, const char *have_id, char **path)
{
	(void)arg;
	snprintf(asked, sizeof(asked), "%s", have_id);
	serve_calls++;
	if (serve_nothing)
		return -1;
	*path = strdup(served);
	return *path ? 0 : -1;
}

static void on_recv(void *arg, uint64_t from, const uint8_t *data, size_t len)
{
	(void)arg, (void)from, (void)data, (void)len;
}

static struct peer_transport *start(uint64_t id, uint64_t cluster, bool serves, char *url,
				    size_t cap)
{
	const char *listen[] = {"http://127.0.0.1:0"};
	struct peer_config cfg = {
		.listen_urls = listen,
		.n_listen_urls = 1,
		.self_id = id,
		.cluster_id = cluster,
		.snapshot = serves ? serve : NULL,
		.snapshot_state = serves ? serve_state : NULL,
		.poller = poller(),
	};
	struct peer_transport *t = NULL;
	char err[256];
	if (peer_start(&cfg, on_recv, NULL, &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "peer_start: %s\n", err);
		exit(1);
	}
	snprintf(url, cap, "http://127.0.0.1:%d", peer_listen_port(t, 0));
	return t;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "w");
	EXPECT(f != NULL && (len == 0 || fwrite(buf, 1, len, f) == len));
	if (f)
		fclose(f);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/metad-test-peer-snap-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(served, sizeof(served), "%s/snap-1.snap", dir);
	uint8_t *content = malloc(FILE_BYTES);
	for (size_t i = 0; i < FILE_BYTES; i++)
		content[i] = (uint8_t)(i * 2654435761u >> 13);
	write_file(served, content, FILE_BYTES);

	char surl[64], furl[64], xurl[64];
	struct peer_transport *server = start(1, 7, true, surl, sizeof(surl));
	struct peer_transport *fetcher = start(2, 7, false, furl, sizeof(furl));
	struct peer_transport *stranger = start(3, 8, false, xurl, sizeof(xurl));
	const char *urls[] = {surl};
	char err[256];
	_Atomic bool stop = false;

	/* A fetch: the whole file, in order, into the sink. */
	struct sunk k = {calloc(1, FILE_BYTES), 0, false, UINT64_MAX, 0};
	EXPECT(peer_fetch_snapshot(fetcher, urls, 1, 10000, &stop, sink, &k, err, sizeof(err)) == 0);
	EXPECT(!k.out_of_order && k.next == FILE_BYTES && memcmp(k.buf, content, FILE_BYTES) == 0);
	EXPECT(k.restarts == 0);
	EXPECT(strcmp(asked, "") == 0); /* from the start */

	/* The sink refuses the chunk at 1 MiB: that try fails, and the next
	 * URL sends the file again from its start. */
	const char *twice[] = {surl, surl};
	memset(k.buf, 0, FILE_BYTES);
	k = (struct sunk){k.buf, 0, false, 1u << 20, 0};
	EXPECT(peer_fetch_snapshot(fetcher, twice, 2, 10000, &stop, sink, &k, err, sizeof(err)) == 0);
	EXPECT(k.restarts == 1 && !k.out_of_order && k.next == FILE_BYTES &&
	       memcmp(k.buf, content, FILE_BYTES) == 0);
	/* ... and with one URL the fetch fails, saying why. */
	k = (struct sunk){k.buf, 0, false, 1u << 20, 0};
	EXPECT(peer_fetch_snapshot(fetcher, urls, 1, 10000, &stop, sink, &k, err, sizeof(err)) != 0);
	EXPECT(strstr(err, "does not load") != NULL);

	/* A file still being written: what is there is sent as it comes,
	 * and the fetch ends once it is whole; the sink sees every chunk. */
	char making[300];
	snprintf(making, sizeof(making), "%s/snap-2.making", dir);
	snprintf(served, sizeof(served), "%s", making);
	write_file(served, NULL, 0);
	grow_content = content;
	atomic_store(&growing, true);
	pthread_t grower;
	EXPECT(pthread_create(&grower, NULL, grow_main, NULL) == 0);
	memset(k.buf, 0, FILE_BYTES);
	k = (struct sunk){k.buf, 0, false, UINT64_MAX, 0};
	EXPECT(peer_fetch_snapshot(fetcher, urls, 1, 20000, &stop, sink, &k, err, sizeof(err)) == 0);
	pthread_join(grower, NULL);
	EXPECT(!k.out_of_order && k.next == FILE_BYTES && memcmp(k.buf, content, FILE_BYTES) == 0);
	unlink(making);
	snprintf(served, sizeof(served), "%s/snap-1.snap", dir);

	/* Another cluster is refused before anything is served. */
	int calls = serve_calls;
	EXPECT(peer_fetch_snapshot(stranger, urls, 1, 10000, &stop, sink, &k, err, sizeof(err)) != 0);
	EXPECT(strstr(err, "cluster ID mismatch") != NULL);
	EXPECT(serve_calls == calls);

	/* Nothing to send: the fetch fails, with the server's reason. */
	serve_nothing = true;
	EXPECT(peer_fetch_snapshot(fetcher, urls, 1, 10000, &stop, sink, &k, err, sizeof(err)) != 0);
	EXPECT(strstr(err, "no snapshot to send") != NULL);

	peer_stop(stranger);
	peer_stop(fetcher);
	peer_stop(server);
	unlink(served);
	rmdir(dir);
	free(k.buf);
	free(content);
	if (failures)
		fprintf(stderr, "test_peer_snap: %d failure(s)\n", failures);
	else
		printf("test_peer_snap: ok\n");
	return failures != 0;
}
