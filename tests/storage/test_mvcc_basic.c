/*
 * tests/storage/test_mvcc_basic.c — etcd's revision model at the head:
 * revisions and sub revisions, versions, create_revision across delete and
 * re-create, prev/out lists, range rules, limit/count and read flags.
 */
#include "tests/storage/fixture.h"

#define B(s) (const uint8_t *)(s), strlen(s)

static void test_revisions(void)
{
	struct fx f;
	fx_open(&f);
	CHECK_EQ(mvcc_rev(f.m), 1); /* empty store, as etcd */
	CHECK_EQ(fx_put(&f, "a", "1", 0), 2);
	CHECK_EQ(fx_put(&f, "a", "2", 0), 3);
	CHECK_EQ(mvcc_rev(f.m), 3);

	/* One request, three changes: one revision, sub revisions 0..2. */
	struct mvcc_kvlist out, prev;
	mvcc_kvlist_init(&out);
	mvcc_kvlist_init(&prev);
	fx_begin(&f);
	CHECK_EQ(mvcc_put(f.m, f.s, B("b"), B("x"), 0, &prev, &out), DB_OK);
	CHECK_EQ(mvcc_put(f.m, f.s, B("a"), B("3"), 0, &prev, &out), DB_OK);
	int64_t n;
	CHECK_EQ(mvcc_delete_range(f.m, f.s, B("b"), NULL, 0, &n, &prev), DB_OK);
	CHECK_EQ(n, 1);
	CHECK_EQ(fx_end(&f), 4);
	CHECK_EQ(out.n, 2);
	CHECK_EQ(out.kvs[0].mod_revision, 4);
	CHECK_EQ(out.kvs[0].create_revision, 4);
	CHECK_EQ(out.kvs[0].version, 1);
	CHECK_EQ(out.kvs[1].mod_revision, 4);
	CHECK_EQ(out.kvs[1].create_revision, 2);
	CHECK_EQ(out.kvs[1].version, 3);
	CHECK_EQ(prev.n, 2); /* a's old value, b as just put */
	CHECK_BYTES(prev.kvs[0].value, prev.kvs[0].value_len, "2");
	CHECK_EQ(prev.kvs[0].mod_revision, 3);
	CHECK_BYTES(prev.kvs[1].key, prev.kvs[1].key_len, "b");
	CHECK_EQ(prev.kvs[1].mod_revision, 4);
	mvcc_kvlist_free(&out);
	mvcc_kvlist_free(&prev);

	/* A request that changes nothing keeps the revision. */
	CHECK_EQ(fx_del(&f, "nope", NULL), 0);
	CHECK_EQ(mvcc_rev(f.m), 4);
	fx_begin(&f);
	CHECK_EQ(mvcc_req_end(f.m, f.s), 4);
	mvcc_abort(f.m, f.s);
	CHECK_EQ(mvcc_rev(f.m), 4);

	/* Several requests in one transaction take consecutive revisions. */
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	for (int i = 0; i < 3; i++) {
		mvcc_req_begin(f.m, f.s);
		CHECK_EQ(mvcc_put(f.m, f.s, B("c"), B("v"), 0, NULL, NULL), DB_OK);
		CHECK_EQ(mvcc_req_end(f.m, f.s), 5 + i);
	}
	CHECK_EQ(mvcc_commit(f.m, f.s, 100, 1), DB_OK);
	CHECK_EQ(mvcc_rev(f.m), 7);
	CHECK_EQ(mvcc_consistent_index(f.m), 100);

	/* Aborted work is forgotten. */
	fx_begin(&f);
	CHECK_EQ(mvcc_put(f.m, f.s, B("c"), B("lost"), 0, NULL, NULL), DB_OK);
	mvcc_abort(f.m, f.s);
	CHECK_EQ(mvcc_rev(f.m), 7);
	char v[32];
	CHECK_EQ(fx_get(&f, "c", 0, v, sizeof(v)), 7);
	CHECK(strcmp(v, "v") == 0);
	fx_close(&f);
}

static void test_versions_and_recreate(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "k", "1", 0);                 /* 2 */
	fx_put(&f, "k", "2", 0);                 /* 3 */
	CHECK_EQ(fx_del(&f, "k", NULL), 1);      /* 4 */
	CHECK_EQ(fx_put(&f, "k", "3", 0), 5);    /* recreated */
	struct mvcc_range_res res;
	CHECK_EQ(fx_range(&f, "k", NULL, 0, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].create_revision, 5);
	CHECK_EQ(res.kvs.kvs[0].mod_revision, 5);
	CHECK_EQ(res.kvs.kvs[0].version, 1);
	CHECK_EQ(res.rev, 5);
	CHECK_EQ(res.count, 1);
	mvcc_kvlist_free(&res.kvs);
	fx_put(&f, "k", "4", 0);
	CHECK_EQ(fx_range(&f, "k", NULL, 0, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_EQ(res.kvs.kvs[0].create_revision, 5);
	CHECK_EQ(res.kvs.kvs[0].version, 2);
	mvcc_kvlist_free(&res.kvs);
	/* A deleted key is gone at the head. */
	fx_del(&f, "k", NULL);
	CHECK_EQ(fx_range(&f, "k", NULL, 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.kvs.n, 0);
	CHECK_EQ(res.count, 0);
	CHECK_EQ(res.rev, 7);
	mvcc_kvlist_free(&res.kvs);
	fx_close(&f);
}

static void test_range_rules(void)
{
	struct fx f;
	fx_open(&f);
	const char *keys[] = {"a", "ab", "abc", "b", "foo", "foo/1", "foo/2", "fop", "z"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		fx_put(&f, keys[i], keys[i], 0);
	struct mvcc_range_res res;
	/* [a, b) */
	CHECK_EQ(fx_range(&f, "a", "b", 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 3);
	CHECK_EQ(res.kvs.n, 3);
	CHECK_BYTES(res.kvs.kvs[2].key, res.kvs.kvs[2].key_len, "abc");
	mvcc_kvlist_free(&res.kvs);
	/* prefix "foo/" = [foo/, foo0) */
	CHECK_EQ(fx_range(&f, "foo/", "foo0", 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 2);
	mvcc_kvlist_free(&res.kvs);
	/* "\0" end: every key >= key */
	CHECK_EQ(fx_range(&f, "foo", "", 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 5);
	CHECK_BYTES(res.kvs.kvs[4].key, res.kvs.kvs[4].key_len, "z");
	mvcc_kvlist_free(&res.kvs);
	/* key "\0", end "\0": everything */
	struct mvcc_range_req all = {.key = (const uint8_t *)"", .key_len = 1,
				     .end = (const uint8_t *)"", .end_len = 1};
	memset(&res, 0, sizeof(res));
	CHECK_EQ(mvcc_range(f.m, f.s, &all, &res), DB_OK);
	CHECK_EQ(res.count, 9);
	mvcc_kvlist_free(&res.kvs);
	/* end <= key: nothing */
	CHECK_EQ(fx_range(&f, "b", "a", 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 0);
	mvcc_kvlist_free(&res.kvs);
	/* single key that is a prefix of others */
	CHECK_EQ(fx_range(&f, "ab", NULL, 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.count, 1);
	CHECK_BYTES(res.kvs.kvs[0].key, res.kvs.kvs[0].key_len, "ab");
	mvcc_kvlist_free(&res.kvs);
	/* limit: count still counts everything */
	CHECK_EQ(fx_range(&f, "a", "", 0, 2, 0, &res), DB_OK);
	CHECK_EQ(res.count, 9);
	CHECK_EQ(res.kvs.n, 2);
	mvcc_kvlist_free(&res.kvs);
	/* keys_only: no values */
	CHECK_EQ(fx_range(&f, "a", "b", 0, 0, MVCC_KEYS_ONLY, &res), DB_OK);
	CHECK_EQ(res.kvs.n, 3);
	CHECK_EQ(res.kvs.kvs[0].value_len, 0);
	CHECK_EQ(res.kvs.kvs[0].mod_revision, 2);
	CHECK_EQ(res.kvs.kvs[0].version, 1);
	mvcc_kvlist_free(&res.kvs);
	/* count_only: no kvs */
	CHECK_EQ(fx_range(&f, "a", "", 0, 0, MVCC_COUNT_ONLY, &res), DB_OK);
	CHECK_EQ(res.count, 9);
	CHECK_EQ(res.kvs.n, 0);
	mvcc_kvlist_free(&res.kvs);
	/* delete a range, with prev */
	struct mvcc_kvlist prev;
	int64_t n;
	mvcc_kvlist_init(&prev);
	fx_begin(&f);
	CHECK_EQ(mvcc_delete_range(f.m, f.s, B("foo"), B("fop"), &n, &prev), DB_OK);
	int64_t rev = fx_end(&f);
	CHECK_EQ(n, 3);
	CHECK_EQ(prev.n, 3);
	CHECK_BYTES(prev.kvs[1].key, prev.kvs[1].key_len, "foo/1");
	CHECK_BYTES(prev.kvs[1].value, prev.kvs[1].value_len, "foo/1");
	mvcc_kvlist_free(&prev);
	CHECK_EQ(rev, 11);
	CHECK_EQ(fx_range(&f, "a", "", 0, 0, MVCC_COUNT_ONLY, &res), DB_OK);
	CHECK_EQ(res.count, 6);
	mvcc_kvlist_free(&res.kvs);
	/* delete everything */
	CHECK_EQ(fx_del(&f, "\x01", ""), 6);
	CHECK_EQ(mvcc_rev(f.m), 12);
	fx_close(&f);
}

static void test_errors(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "a", "1", 0);
	struct mvcc_range_res res;
	CHECK_EQ(fx_range(&f, "a", NULL, 3, 0, 0, &res), DB_FUTURE_REV);
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "a", NULL, 2, 0, 0, &res), DB_OK);
	mvcc_kvlist_free(&res.kvs);
	/* writes need a transaction and a request */
	CHECK_EQ(mvcc_put(f.m, f.s, B("a"), B("x"), 0, NULL, NULL), DB_INVALID);
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	CHECK_EQ(mvcc_put(f.m, f.s, B("a"), B("x"), 0, NULL, NULL), DB_INVALID);
	mvcc_req_begin(f.m, f.s);
	CHECK_EQ(mvcc_put(f.m, f.s, (const uint8_t *)"", 0, B("x"), 0, NULL, NULL), DB_INVALID);
	mvcc_abort(f.m, f.s);
	CHECK_EQ(mvcc_commit(f.m, f.s, 1, 0), DB_INVALID);
	CHECK(strlen(db_strerror(DB_COMPACTED)) > 0);
	fx_close(&f);
}

static void test_read_in_txn(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "a", "1", 0); /* 2 */
	fx_begin(&f);
	CHECK_EQ(mvcc_put(f.m, f.s, B("a"), B("2"), 0, NULL, NULL), DB_OK);
	struct mvcc_range_res res;
	CHECK_EQ(fx_range(&f, "a", NULL, 0, 0, 0, &res), DB_OK);
	CHECK_EQ(res.rev, 3); /* own writes and their revision */
	REQUIRE(res.kvs.n == 1);
	CHECK_BYTES(res.kvs.kvs[0].value, res.kvs.kvs[0].value_len, "2");
	mvcc_kvlist_free(&res.kvs);
	CHECK_EQ(fx_range(&f, "a", NULL, 2, 0, 0, &res), DB_OK);
	REQUIRE(res.kvs.n == 1);
	CHECK_BYTES(res.kvs.kvs[0].value, res.kvs.kvs[0].value_len, "1");
	mvcc_kvlist_free(&res.kvs);
	fx_end(&f);
	fx_close(&f);
}

int main(void)
{
	test_revisions();
	test_versions_and_recreate();
	test_range_rules();
	test_errors();
	test_read_in_txn();
	return check_done("test_mvcc_basic");
}
