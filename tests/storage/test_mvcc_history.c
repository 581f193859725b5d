/*
 * tests/storage/test_mvcc_history.c — reads at older revisions: the newest
 * version at or below the revision, tombstones hiding keys, keys created
 * later being absent, count/limit/flags on the history path, keys with
 * zero bytes and prefix relations, and each key's chain of entries across
 * deletes, recreation and compaction (tombstone rows in `current`).
 */
#include "tests/storage/fixture.h"

#define B(s) (const uint8_t *)(s), strlen(s)

static void test_history(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "a", "a2", 0);  /* 2 */
	fx_put(&f, "b", "b3", 0);  /* 3 */
	fx_put(&f, "a", "a4", 0);  /* 4 */
	fx_del(&f, "b", NULL);     /* 5 */
	fx_put(&f, "c", "c6", 0);  /* 6 */
	fx_put(&f, "b", "b7", 0);  /* 7 */
	fx_put(&f, "a", "a8", 0);  /* 8 */
	char v[16];
	CHECK_EQ(fx_get(&f, "a", 1, v, sizeof(v)), 0);
	CHECK_EQ(fx_get(&f, "a", 2, v, sizeof(v)), 2);
	CHECK(strcmp(v, "a2") == 0);
	CHECK_EQ(fx_get(&f, "a", 3, v, sizeof(v)), 2);
	CHECK_EQ(fx_get(&f, "a", 7, v, sizeof(v)), 4);
	CHECK(strcmp(v, "a4") == 0);
	CHECK_EQ(fx_get(&f, "b", 4, v, sizeof(v)), 3);
	CHECK_EQ(fx_get(&f, "b", 5, v, sizeof(v)), 0); /* tombstone */
	CHECK_EQ(fx_get(&f, "b", 6, v, sizeof(v)), 0);
	CHECK_EQ(fx_get(&f, "b", 7, v, sizeof(v)), 7);

	struct mvcc_range_res res;
	/* Whole key space at each revision: live counts 0,1,2,2,1,2,3,3. */
	const int want[] = {0, 0, 1, 2, 2, 1, 2, 3, 3};
	for (int r = 1; r <= 8; r++) {
		CHECK_EQ(fx_range(&f, "a", "", r, 0, 0, &res), DB_OK);
		CHECK_EQ(res.count, want[r]);
		CHECK_EQ(res.kvs.n, want[r]);
		CHECK_EQ(res.rev, 8); /* header revision is the current one */
		mvcc_kvlist_free(&res.kvs);
	}
	/* At 6: a@4, c@6 with versions and create revisions. */
	CHECK_EQ(fx_range(&f, "a", "z", 6, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 2);
	CHECK_BYTES(res.kvs.kvs[0].key, res.kvs.kvs[0].key_len, "a");
	CHECK_BYTES(res.kvs.kvs[0].value, res.kvs.kvs[0].value_len, "a4");
	CHECK_EQ(res.kvs.kvs[0].mod_revision, 4);
	CHECK_EQ(res.kvs.kvs[0].create_revision, 2);
	CHECK_EQ(res.kvs.kvs[0].version, 2);
	CHECK_BYTES(res.kvs.kvs[1].key, res.kvs.kvs[1].key_len, "c");
	mvcc_kvlist_free(&res.kvs);
	/* b recreated at 7: create 7, version 1. */
	CHECK_EQ(fx_range(&f, "b", NULL, 7, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].create_revision, 7);
	CHECK_EQ(res.kvs.kvs[0].version, 1);
	mvcc_kvlist_free(&res.kvs);
	/* limit, keys_only, count_only at an old revision. */
	CHECK_EQ(fx_range(&f, "a", "", 7, 1, MVCC_KEYS_ONLY, &res), DB_OK);
	CHECK_EQ(res.count, 3);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].value_len, 0);
	CHECK_EQ(res.kvs.kvs[0].mod_revision, 4);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "a", "", 7, 0, MVCC_COUNT_ONLY, &res), DB_OK);
	CHECK_EQ(res.count, 3);
	CHECK_EQ(res.kvs.n, 0);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "a", NULL, 9, 0, 0, &res), DB_FUTURE_REV);
	mvcc_kvlist_free(&res.kvs);
	fx_close(&f);
}

/* Keys that are prefixes of each other or hold 00/FF bytes. */
static void test_binary_keys(void)
{
	struct fx f;
	fx_open(&f);
	static const struct {
		const char *k;
		size_t n;
	} keys[] = {{"\x00", 1}, {"\x00\x00", 2}, {"\x00\xff", 2}, {"p", 1},
		    {"p\x00", 2}, {"p\x00\x01", 3}, {"p\x01", 2}, {"pq", 2}, {"p\xff", 2}};
	enum { NK = sizeof(keys) / sizeof(keys[0]) };
	for (int round = 0; round < 3; round++) {
		fx_begin(&f);
		for (int i = 0; i < NK; i++)
			CHECK_EQ(mvcc_put(f.m, f.s, (const uint8_t *)keys[i].k, keys[i].n,
					  B("v"), 0, NULL, NULL),
				 DB_OK);
		fx_end(&f); /* revisions 2, 3, 4 */
	}
	for (int64_t r = 2; r <= 4; r++) {
		struct mvcc_range_res res;
		struct mvcc_range_req req = {.key = (const uint8_t *)"\x00", .key_len = 1,
					     .end = (const uint8_t *)"\x00", .end_len = 1, .rev = r};
		memset(&res, 0, sizeof(res));
		CHECK_EQ(mvcc_range(f.m, f.s, &req, &res), DB_OK);
		REQUIRE(res.kvs.n == NK);
		for (int i = 0; i < NK; i++) {
			CHECK(res.kvs.kvs[i].key_len == keys[i].n &&
			      memcmp(res.kvs.kvs[i].key, keys[i].k, keys[i].n) == 0);
			CHECK_EQ(res.kvs.kvs[i].mod_revision, r);
			CHECK_EQ(res.kvs.kvs[i].version, r - 1);
		}
		mvcc_kvlist_free(&res.kvs);
		/* Single key "p" must not pick up "p\0..." entries. */
		req = (struct mvcc_range_req){.key = (const uint8_t *)"p", .key_len = 1, .rev = r};
		memset(&res, 0, sizeof(res));
		CHECK_EQ(mvcc_range(f.m, f.s, &req, &res), DB_OK);
		CHECK_EQ(res.kvs.n, 1);
		mvcc_kvlist_free(&res.kvs);
		/* Prefix "p\0": [p\0, p\1) has 2 keys. */
		req = (struct mvcc_range_req){.key = (const uint8_t *)"p\x00", .key_len = 2,
					      .end = (const uint8_t *)"p\x01", .end_len = 2, .rev = r};
		memset(&res, 0, sizeof(res));
		CHECK_EQ(mvcc_range(f.m, f.s, &req, &res), DB_OK);
		CHECK_EQ(res.count, 2);
		mvcc_kvlist_free(&res.kvs);
	}
	fx_close(&f);
}

static void test_lease_keys(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "a", "1", 7);
	fx_put(&f, "b", "1", 7);
	fx_put(&f, "c", "1", 8);
	struct mvcc_kvlist keys;
	mvcc_kvlist_init(&keys);
	CHECK_EQ(mvcc_lease_keys(f.m, f.s, 7, &keys), DB_OK);
	REQUIRE(keys.n == 2);
	CHECK_BYTES(keys.kvs[0].key, keys.kvs[0].key_len, "a");
	CHECK_BYTES(keys.kvs[1].key, keys.kvs[1].key_len, "b");
	mvcc_kvlist_free(&keys);
	/* Re-put b with lease 8, a without lease, delete c. */
	fx_put(&f, "b", "2", 8);
	fx_put(&f, "a", "2", 0);
	fx_del(&f, "c", NULL);
	CHECK_EQ(mvcc_lease_keys(f.m, f.s, 7, &keys), DB_OK);
	CHECK_EQ(keys.n, 0);
	mvcc_kvlist_free(&keys);
	CHECK_EQ(mvcc_lease_keys(f.m, f.s, 8, &keys), DB_OK);
	REQUIRE(keys.n == 1);
	CHECK_BYTES(keys.kvs[0].key, keys.kvs[0].key_len, "b");
	mvcc_kvlist_free(&keys);
	/* The lease is part of the key-value. */
	struct mvcc_range_res res;
	CHECK_EQ(fx_range(&f, "b", NULL, 0, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].lease, 8);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "b", NULL, 2, 0, 0, &res), DB_OK);
	CHECK_EQ(res.kvs.n, 0);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "b", NULL, 3, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].lease, 7);
	mvcc_kvlist_free(&res.kvs);
	fx_close(&f);
}

static void compact_to(struct fx *f, int64_t rev)
{
	CHECK_EQ(fx_compact(f, rev), DB_OK);
	CHECK_EQ(mvcc_compact_run(f->m, f->s), DB_OK);
}

static void test_chains(void)
{
	struct fx f;
	fx_open(&f);
	char v[16];
	struct mvcc_range_res res;
	fx_put(&f, "b", "b2", 0);          /* 2 */
	CHECK_EQ(fx_del(&f, "b", NULL), 1); /* 3 */
	/* A deleted key: invisible at the head, deleting it again changes
	 * nothing, and its history is still there. */
	CHECK_EQ(fx_range(&f, "a", "", 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 0);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "a", "", 0, 0, MVCC_COUNT_ONLY, &res), DB_OK);
	CHECK_EQ(res.count, 0);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_del(&f, "b", NULL), 0);
	CHECK_EQ(fx_del(&f, "a", "z"), 0);
	CHECK_EQ(mvcc_rev(f.m), 3);
	CHECK_EQ(fx_rows(&f, DB_TBL_CURRENT), 1); /* b's tombstone row */
	CHECK_EQ(fx_get(&f, "b", 2, v, sizeof(v)), 2);
	/* Recreated: a new generation linked to the old one. */
	fx_put(&f, "b", "b4", 0); /* 4 */
	fx_put(&f, "b", "b5", 0); /* 5 */
	CHECK_EQ(fx_range(&f, "b", NULL, 0, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].create_revision, 4);
	CHECK_EQ(res.kvs.kvs[0].version, 2);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_get(&f, "b", 4, v, sizeof(v)), 4);
	CHECK_EQ(fx_get(&f, "b", 3, v, sizeof(v)), 0);
	CHECK_EQ(fx_get(&f, "b", 2, v, sizeof(v)), 2);
	CHECK(strcmp(v, "b2") == 0);

	/* Compacted at 4: b2 and the tombstone 3 go (the tombstone was the
	 * newest entry <= 3 but 4 follows it); b4 and b5 stay. */
	compact_to(&f, 4);
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 2);
	CHECK_EQ(fx_get(&f, "b", 4, v, sizeof(v)), 4);
	CHECK(strcmp(v, "b4") == 0);
	CHECK_EQ(fx_get(&f, "b", 5, v, sizeof(v)), 5);

	/* Deleted, recreated above the next compaction point: at 7 the key did
	 * not exist, and the chain through the removed tombstone says so. */
	CHECK_EQ(fx_del(&f, "b", NULL), 1); /* 6 */
	fx_put(&f, "c", "c7", 0);          /* 7 */
	fx_put(&f, "b", "b8", 0);          /* 8 */
	compact_to(&f, 7);
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 2); /* b8, c7: b4, b5 and the tombstone 6 went */
	CHECK_EQ(fx_get(&f, "b", 7, v, sizeof(v)), 0);
	CHECK_EQ(fx_get(&f, "b", 8, v, sizeof(v)), 8);
	CHECK_EQ(fx_range(&f, "a", "", 7, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 1);
	REQUIRE(res.kvs.n == 1);
	CHECK_BYTES(res.kvs.kvs[0].key, res.kvs.kvs[0].key_len, "c");
	mvcc_kvlist_free(&res.kvs);

	/* A tombstone that stays newest goes with its `current` row. */
	CHECK_EQ(fx_del(&f, "c", NULL), 1); /* 9 */
	fx_put(&f, "d", "d10", 0);         /* 10 */
	CHECK_EQ(fx_rows(&f, DB_TBL_CURRENT), 3);
	compact_to(&f, 10);
	CHECK_EQ(fx_rows(&f, DB_TBL_CURRENT), 2); /* b, d */
	CHECK_EQ(fx_rows(&f, DB_TBL_KV), 2);
	CHECK_EQ(fx_range(&f, "a", "", 10, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 2);
	mvcc_kvlist_free(&res.kvs);
	/* Put back after all that: a fresh key again. */
	fx_put(&f, "c", "c11", 0); /* 11 */
	CHECK_EQ(fx_range(&f, "c", NULL, 0, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].create_revision, 11);
	CHECK_EQ(res.kvs.kvs[0].version, 1);
	mvcc_kvlist_free(&res.kvs);
	fx_close(&f);
}

int main(void)
{
	test_history();
	test_binary_keys();
	test_lease_keys();
	test_chains();
	return check_done("test_mvcc_history");
}
