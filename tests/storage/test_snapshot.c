/*
 * tests/storage/test_snapshot.c — a dump loaded into another store, fed in
 * pieces cut anywhere, is the same store once switched: revision, compact
 * revision, consistent index, every key and its history (HashKV equal), the
 * dumped raft_state blobs; rows the target had before are gone, and stay
 * gone after a restart. Until the switch the target is untouched; a
 * truncated or malformed dump is refused and leaves it so.
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
	if (len == 0)
		return 0; /* the dump's "index known" call */
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

/* Feed p[0..len) in pieces of step bytes; the first error, or DB_OK with
 * *l ready to switch. */
static int load(struct fx *f, const uint8_t *p, size_t len, size_t step, struct snap_load **l)
{
	int rv = snap_load_begin(f->db, l), done = 0;
	for (size_t off = 0; rv == DB_OK && off < len; off += step) {
		size_t n = len - off < step ? len - off : step, used = 0;
		rv = snap_load_feed(*l, p + off, n, &used, &done);
		if (rv == DB_OK && used != n)
			rv = DB_INVALID; /* nothing follows a dump here */
	}
	return rv == DB_OK ? snap_load_finish(*l) : rv;
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
	/* Cut at every field boundary and inside fields, then in big pieces. */
	struct snap_load *l = NULL;
	CHECK_EQ(load(&b, m.p, m.len, 3, &l), DB_OK);
	snap_load_free(l); /* not switched: the target is still its own */
	CHECK(fx_get(&b, "stale", 0, val, sizeof(val)) > 0);
	CHECK_EQ(load(&b, m.p, m.len, 65536, &l), DB_OK);
	CHECK(fx_get(&b, "stale", 0, val, sizeof(val)) > 0);
	CHECK_EQ(snap_load_switch(l, b.m, b.s), DB_OK);
	snap_load_free(l);
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

	/* A dump cut short, with an unknown record tag, or with a table's
	 * rows out of order, is refused; the store is untouched. */
	int64_t rev = mvcc_rev(b.m);
	CHECK_EQ(load(&b, m.p, m.len / 2, 4096, &l), DB_CORRUPT);
	snap_load_free(l);
	uint8_t *bad = malloc(m.len);
	REQUIRE(bad != NULL);
	memcpy(bad, m.p, m.len);
	bad[0] = 99;
	CHECK_EQ(load(&b, bad, m.len, 4096, &l), DB_CORRUPT);
	snap_load_free(l);
	/* Swap the keys of the first two rows: current's (its keys here are
	 * all 5 bytes long, "k0001" ...). */
	memcpy(bad, m.p, m.len);
	REQUIRE(bad[0] == 2 && bad[4] == 5); /* a current row: tag, BE32 5, key */
	uint32_t r1 = 5 + 5 + 4 + ((uint32_t)bad[10] << 24 | (uint32_t)bad[11] << 16 | (uint32_t)bad[12] << 8 | bad[13]);
	REQUIRE(bad[r1] == 2 && bad[r1 + 4] == 5 && memcmp(bad + 5, bad + r1 + 5, 5) < 0);
	uint8_t tmpkey[5];
	memcpy(tmpkey, bad + 5, 5);
	memcpy(bad + 5, bad + r1 + 5, 5);
	memcpy(bad + r1 + 5, tmpkey, 5);
	CHECK_EQ(load(&b, bad, m.len, 4096, &l), DB_CORRUPT);
	snap_load_free(l);
	free(bad);
	CHECK_EQ(mvcc_rev(b.m), rev);
	CHECK_EQ(fx_get(&b, "after", 0, val, sizeof(val)), rev);
	free(m.p);
	fx_close(&a);
	fx_close(&b);
	return check_done("test_snapshot");
}
