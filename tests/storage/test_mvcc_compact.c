/*
 * tests/storage/test_mvcc_compact.c — compaction: reads below the compact
 * revision fail, reads at it work, compact_run removes history but keeps each
 * key's latest version at or below it (dropping tombstones), big histories
 * are processed across several chunks, and HashKV is stable across it.
 */
#include "tests/storage/fixture.h"

static void test_compact(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "a", "a2", 0); /* 2 */
	fx_put(&f, "a", "a3", 0); /* 3 */
	fx_put(&f, "b", "b4", 0); /* 4 */
	fx_del(&f, "b", NULL);    /* 5 */
	fx_put(&f, "c", "c6", 0); /* 6 */
	fx_del(&f, "c", NULL);    /* 7 */
	fx_put(&f, "a", "a8", 0); /* 8 */
	uint32_t h_before, h_after;
	int64_t crev;
	CHECK_EQ(mvcc_hash(f.m, f.s, 8, &h_before, &crev), DB_OK);
	CHECK_EQ(crev, 0);

	CHECK_EQ(fx_compact(&f, 9), DB_FUTURE_REV);
	CHECK_EQ(fx_compact(&f, 6), DB_OK);
	CHECK_EQ(mvcc_compact_rev(f.m), 6);
	CHECK_EQ(mvcc_rev(f.m), 8); /* compaction does not change the revision */
	CHECK_EQ(fx_compact(&f, 6), DB_COMPACTED);
	CHECK_EQ(fx_compact(&f, 5), DB_COMPACTED);

	struct mvcc_range_res res;
	CHECK_EQ(fx_range(&f, "a", "", 5, 0, 0, &res), DB_COMPACTED);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(mvcc_hash(f.m, f.s, 5, &h_after, &crev), DB_COMPACTED);
	CHECK_EQ(mvcc_hash(f.m, f.s, 9, &h_after, &crev), DB_FUTURE_REV);
	uint32_t h6_before;
	CHECK_EQ(mvcc_hash(f.m, f.s, 8, &h6_before, &crev), DB_OK);
	CHECK_EQ(crev, 6);

	/* Before the physical run, everything is still there; at 6: a3, c6. */
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 7);
	CHECK_EQ(fx_range(&f, "a", "", 6, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 2);
	mvcc_kvlist_free(&res.kvs);

	CHECK_EQ(mvcc_compact_run(f.m, f.s), DB_OK);
	/* Kept: a3 (latest <= 6), c6 (latest <= 6), c7 tombstone (> 6), a8.
	 * Removed: a2, b4, b5 (tombstone <= 6). */
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 4);
	CHECK_EQ(fx_rows(&f, DB_TBL_CURRENT), 2); /* a, c (tombstone row); b's went */
	CHECK_EQ(fx_range(&f, "a", "", 6, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 2);
	CHECK_BYTES(res.kvs.kvs[0].value, res.kvs.kvs[0].value_len, "a3");
	CHECK_EQ(res.kvs.kvs[0].version, 2);
	CHECK_BYTES(res.kvs.kvs[1].value, res.kvs.kvs[1].value_len, "c6");
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "a", "", 7, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 1);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(mvcc_hash(f.m, f.s, 8, &h_after, &crev), DB_OK);
	CHECK_EQ(h_after, h6_before);
	CHECK(h_before != h_after);
	/* A second run has nothing to do. */
	CHECK_EQ(mvcc_compact_run(f.m, f.s), DB_OK);
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 4);

	/* Compact to the head: c's tombstone goes, a keeps a8 only. Bounded
	 * at 7 first (a reader still needs 8): a3 stays, c goes. */
	CHECK_EQ(fx_compact(&f, 8), DB_OK);
	CHECK_EQ(mvcc_compact_run_to(f.m, f.s, 7), DB_OK);
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 2);
	CHECK_EQ(mvcc_compact_run(f.m, f.s), DB_OK);
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 1);
	char v[16];
	CHECK_EQ(fx_get(&f, "a", 0, v, sizeof(v)), 8);
	CHECK_EQ(fx_get(&f, "a", 8, v, sizeof(v)), 8);
	/* Writes continue with versions intact. */
	fx_put(&f, "a", "a9", 0);
	CHECK_EQ(fx_range(&f, "a", NULL, 0, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].version, 4);
	CHECK_EQ(res.kvs.kvs[0].create_revision, 2);
	mvcc_kvlist_free(&res.kvs);
	fx_close(&f);
}

/* Many versions of many keys: several chunks, and the result is exact. */
static void test_compact_big(void)
{
	struct fx f;
	fx_open(&f);
	enum { KEYS = 300, ROUNDS = 10 };
	char k[16], v[16];
	for (int r = 0; r < ROUNDS; r++) {
		REQUIRE(db_txn_begin(f.s) == DB_OK);
		for (int i = 0; i < KEYS; i++) {
			mvcc_req_begin(f.m, f.s);
			snprintf(k, sizeof(k), "k%04d", i);
			snprintf(v, sizeof(v), "r%d", r);
			if (r == 5 && i % 2 == 0) {
				int64_t n;
				CHECK_EQ(mvcc_delete_range(f.m, f.s, (const uint8_t *)k, strlen(k),
							   NULL, 0, &n, NULL),
					 DB_OK);
			} else {
				CHECK_EQ(mvcc_put(f.m, f.s, (const uint8_t *)k, strlen(k),
						  (const uint8_t *)v, strlen(v), 0, NULL, NULL),
					 DB_OK);
			}
			mvcc_req_end(f.m, f.s);
		}
		REQUIRE(mvcc_commit(f.m, f.s, ++f.ci, 0) == DB_OK);
	}
	/* Revision 1 + 3000 writes; round 5 ends at 1 + 6*300. */
	CHECK_EQ(mvcc_rev(f.m), 1 + KEYS * ROUNDS);
	int64_t c = 1 + 6 * KEYS;
	struct mvcc_range_res before;
	CHECK_EQ(fx_range(&f, "k", "", c, 0, 0, &before), DB_OK);
	CHECK_EQ(before.count, KEYS / 2);
	CHECK_EQ(fx_compact(&f, c), DB_OK);
	CHECK_EQ(mvcc_compact_run(f.m, f.s), DB_OK);
	/* Left: odd keys' round-5 version + rounds 6..9 of every key. */
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), KEYS / 2 + 4 * KEYS);
	struct mvcc_range_res after;
	CHECK_EQ(fx_range(&f, "k", "", c, 0, 0, &after), DB_OK);
	CHECK_EQ(after.count, before.count);
	REQUIRE(after.kvs.n == before.kvs.n);
	for (size_t i = 0; i < after.kvs.n; i++) {
		CHECK_EQ(after.kvs.kvs[i].mod_revision, before.kvs.kvs[i].mod_revision);
		CHECK_EQ(after.kvs.kvs[i].version, before.kvs.kvs[i].version);
	}
	mvcc_kvlist_free(&before.kvs);
	mvcc_kvlist_free(&after.kvs);
	/* The physical compaction is recorded: a restart does not redo it. */
	fx_reopen(&f);
	CHECK_EQ(mvcc_compact_rev(f.m), c);
	CHECK_EQ(mvcc_compact_run(f.m, f.s), DB_OK);
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), KEYS / 2 + 4 * KEYS);
	fx_close(&f);
}

int main(void)
{
	test_compact();
	test_compact_big();
	return check_done("test_mvcc_compact");
}
