/*
 * tests/storage/test_snapshot.c — a dump restored into another store is the
 * same store: revision, compact revision, consistent index, every key and
 * its history (HashKV equal), the dumped raft_state blobs; rows the target
 * had before are gone; a truncated or malformed dump is refused.
 */
#include <stdlib.h>

#include "storage/raftlog.h"
#include "storage/snapshot.h"
#include "tests/storage/fixture.h"

struct mem {
	uint8_t *p;
	size_t len, cap, pos;
};

static int mem_write(void *arg, const void *buf, size_t len)
{
	struct mem *m = arg;
	if (m->len + len > m->cap) {
		size_t cap = (m->len + len) * 2;
		uint8_t *p = realloc(m->p, cap);
		if (p == NULL)
			return -1;
		m->p = p;
		m->cap = cap;
	}
	memcpy(m->p + m->len, buf, len);
	m->len += len;
	return 0;
}

static int mem_read(void *arg, void *buf, size_t len)
{
	struct mem *m = arg;
	if (m->pos + len > m->len)
		return -1;
	memcpy(buf, m->p + m->pos, len);
	m->pos += len;
	return 0;
}

static uint32_t hash_at(struct fx *f, int64_t rev)
{
	uint32_t h = 0;
	int64_t crev = 0;
	REQUIRE(mvcc_hash(f->m, f->s, rev, &h, &crev) == DB_OK);
	return h;
}

int main(void)
{
	const char *blobs[] = {"members", "absent"};
	struct fx a, b;
	fx_open(&a);
	fx_open(&b);
	char key[32], val[32];
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "k%04d", i % 700);
		snprintf(val, sizeof(val), "v%d", i);
		fx_put(&a, key, val, 0);
	}
	fx_del(&a, "k0001", NULL);
	REQUIRE(db_txn_begin(a.s) == DB_OK);
	CHECK_EQ(mvcc_compact(a.m, a.s, 1000), DB_OK);
	CHECK_EQ(mvcc_commit(a.m, a.s, 777, 1), DB_OK);
	CHECK_EQ(rlog_save_blob(a.s, "members", (const uint8_t *)"list", 4), DB_OK);
	CHECK_EQ(rlog_save_blob(a.s, "private", (const uint8_t *)"mine", 4), DB_OK);
	/* The target has rows of its own, which must not survive. */
	fx_put(&b, "stale", "x", 0);
	fx_put(&b, "k0002", "stale", 0);

	struct mem m = {0};
	uint64_t ci = 0;
	CHECK_EQ(snap_dump(a.s, blobs, 2, mem_write, &m, &ci), DB_OK);
	CHECK_EQ(ci, 777);
	CHECK_EQ(snap_restore(b.m, b.s, mem_read, &m), DB_OK);
	CHECK_EQ(m.pos, m.len);
	CHECK_EQ(mvcc_rev(b.m), mvcc_rev(a.m));
	CHECK_EQ(mvcc_compact_rev(b.m), 1000);
	CHECK_EQ(mvcc_consistent_index(b.m), 777);
	CHECK_EQ(hash_at(&b, mvcc_rev(b.m)), hash_at(&a, mvcc_rev(a.m)));
	CHECK_EQ(hash_at(&b, 2000), hash_at(&a, 2000));
	CHECK_EQ(fx_get(&b, "stale", 0, val, sizeof(val)), 0);
	CHECK(fx_get(&b, "k0002", 0, val, sizeof(val)) > 0 && strcmp(val, "stale") != 0);
	CHECK_EQ(fx_get(&b, "k0001", 0, val, sizeof(val)), 0);
	uint8_t *blob = NULL;
	size_t blen = 0;
	CHECK_EQ(rlog_load_blob(b.s, "members", &blob, &blen), DB_OK);
	CHECK(blen == 4 && memcmp(blob, "list", 4) == 0);
	free(blob);
	CHECK_EQ(rlog_load_blob(b.s, "private", &blob, &blen), DB_NOTFOUND);
	/* The restored store survives a restart and goes on. */
	fx_reopen(&b);
	CHECK_EQ(mvcc_consistent_index(b.m), 777);
	CHECK_EQ(hash_at(&b, mvcc_rev(b.m)), hash_at(&a, mvcc_rev(a.m)));
	b.ci = 778;
	CHECK_EQ(fx_put(&b, "after", "1", 0), mvcc_rev(a.m) + 1);

	/* A dump cut short, or with an unknown record tag, is refused. */
	struct mem cut = m;
	cut.pos = 0;
	cut.len = m.len / 2;
	CHECK_EQ(snap_restore(b.m, b.s, mem_read, &cut), DB_CORRUPT);
	struct mem bad = m;
	bad.pos = 0;
	bad.p = malloc(m.len);
	REQUIRE(bad.p != NULL);
	memcpy(bad.p, m.p, m.len);
	bad.p[0] = 99;
	CHECK_EQ(snap_restore(b.m, b.s, mem_read, &bad), DB_CORRUPT);
	free(bad.p);
	free(m.p);
	fx_close(&a);
	fx_close(&b);
	return check_done("test_snapshot");
}
