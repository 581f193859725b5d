/*
 * tests/core/test_snapshot_file.c — the store as a snapshot file
 * (core/snapshot.c): a file the leader makes loads on a member, fed in
 * uneven pieces and through the loader thread (core/snap_loader.c); a file
 * with one byte changed in a value, which still parses, is refused at the
 * end by its hash; a cut file is refused; and a file in an older binary's
 * format ("METADSN2", SHA-256 at the end) still loads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "core/core.h"
#include "core/core_internal.h"
#include "core/snapshot.h"
#include "tests/core/core_fixture.h"
#include "tests/expect.h"

#define MARKER "marker-value-0123456789"
#define SHA_BYTES 32
#define XXH_BYTES 16

static struct core *c;

static int put(const char *key, const char *value)
{
	struct waiter w;
	waiter_init(&w);
	Etcdserverpb__PutRequest q = ETCDSERVERPB__PUT_REQUEST__INIT;
	q.key.data = (uint8_t *)key;
	q.key.len = strlen(key);
	q.value.data = (uint8_t *)value;
	q.value.len = strlen(value);
	core_put(c, &q, done, &w);
	return wait_err(&w, false);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	if (f == NULL || fstat(fileno(f), &st) != 0) {
		if (f)
			fclose(f);
		return NULL;
	}
	uint8_t *b = malloc((size_t)st.st_size + SHA_BYTES);
	*len = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	return b;
}

/* Feed buf to a fresh stream in pieces of 1, 7, 4096, 1 MiB, ... bytes;
 * 0 when the stream takes it all and its end passes. */
static int load(const uint8_t *buf, size_t len, uint64_t *index)
{
	static const size_t pieces[] = {1, 7, 4096, 1u << 20, 13};
	struct snap_stream *st = snap_stream_new(c);
	if (st == NULL)
		return -2;
	int rv = 0;
	for (size_t off = 0, i = 0; rv == 0 && off < len; i++) {
		size_t n = pieces[i % 5] < len - off ? pieces[i % 5] : len - off;
		rv = snap_stream_feed(st, buf + off, n);
		off += n;
	}
	struct raft_snapshot_meta meta;
	if (rv == 0)
		rv = snap_stream_end(st, index, &meta);
	snap_stream_free(st);
	return rv;
}

/* The same through the loader thread, in 64 KiB pieces. */
static int load_threaded(const uint8_t *buf, size_t len, uint64_t *index)
{
	struct snap_loader *l = snap_loader_start(c);
	if (l == NULL || snap_loader_reset(l) != 0)
		return -2;
	int rv = 0;
	for (size_t off = 0; rv == 0 && off < len; off += 65536)
		rv = snap_loader_feed(l, buf + off, len - off < 65536 ? len - off : 65536);
	struct snap_stream *st = snap_loader_finish(l);
	struct raft_snapshot_meta meta;
	if (rv == 0)
		rv = st ? snap_stream_end(st, index, &meta) : -1;
	snap_stream_free(st);
	return rv;
}

static void test_file(void)
{
	char key[32], path[4400];
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%05d", i);
		EXPECT(put(key, i == 1000 ? MARKER : "some value") == CORE_OK);
	}
	uint64_t made = 0;
	EXPECT(snap_make(c, core_session(c), NULL, NULL, path, sizeof(path), &made) == 0);
	EXPECT(made > 0);
	size_t len = 0;
	uint8_t *buf = slurp(path, &len);
	EXPECT(buf != NULL && len > 2000 * 20);
	if (buf == NULL)
		return;
	EXPECT(memcmp(buf, "METADSN3", 8) == 0);

	uint64_t index = 0;
	EXPECT(load(buf, len, &index) == 0 && index == made);
	index = 0;
	EXPECT(load_threaded(buf, len, &index) == 0 && index == made);

	/* One byte of a value: every record still parses; the hash refuses. */
	uint8_t *at = memmem(buf, len, MARKER, strlen(MARKER));
	EXPECT(at != NULL);
	if (at != NULL) {
		at[3] ^= 0x20;
		EXPECT(load(buf, len, &index) == -1);
		EXPECT(load_threaded(buf, len, &index) == -1);
		at[3] ^= 0x20;
	}
	/* Cut short: the trailer is missing. */
	EXPECT(load(buf, len - 1, &index) == -1);

	/* An older binary's file: "METADSN2", SHA-256 in place of XXH3-128. */
	memcpy(buf, "METADSN2", 8);
	size_t body = len - XXH_BYTES;
	unsigned int mdlen = 0;
	EXPECT(EVP_Digest(buf, body, buf + body, &mdlen, EVP_sha256(), NULL) == 1 &&
	       mdlen == SHA_BYTES);
	index = 0;
	EXPECT(load(buf, body + SHA_BYTES, &index) == 0 && index == made);
	buf[body] ^= 1;
	EXPECT(load(buf, body + SHA_BYTES, &index) == -1);
	free(buf);
	remove(path);
}

int main(void)
{
	char dir[] = "/tmp/metad-test-snapfile-XXXXXX";
	c = fixture_open(dir);
	test_file();
	return fixture_close(c, dir, "test_snapshot_file", failures);
}
