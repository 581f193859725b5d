/*
 * tests/storage/test_mvcc_restart.c — what must survive a close and reopen:
 * the revision, the compact revision, the consistent index, keys and history,
 * and the live key count (kept with the store, or counted when a store made
 * before it has none).
 */
#include "tests/storage/fixture.h"
#include "storage/mvcc_internal.h"

static void drop_keys_record(struct fx *f)
{
	REQUIRE(db_txn_begin(f->s) == DB_OK);
	WT_CURSOR *meta = db_cursor(f->s, DB_TBL_META);
	WT_ITEM k = {.data = MVCC_META_KEYS, .size = strlen(MVCC_META_KEYS)};
	meta->set_key(meta, &k);
	CHECK_EQ(meta->remove(meta), 0);
	REQUIRE(db_txn_commit(f->s, 1) == DB_OK);
}

int main(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "a", "1", 0); /* 2 */
	fx_put(&f, "a", "2", 0); /* 3 */
	fx_put(&f, "b", "1", 0); /* 4 */
	fx_del(&f, "b", NULL);   /* 5 */
	fx_put(&f, "c", "1", 0); /* 6 */
	CHECK_EQ(mvcc_keys(f.m), 2); /* a, c */
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	CHECK_EQ(mvcc_compact(f.m, f.s, 3), DB_OK);
	CHECK_EQ(mvcc_commit(f.m, f.s, 42, 1), DB_OK);
	CHECK_EQ(mvcc_compact_rev(f.m), 3);

	fx_reopen(&f);
	CHECK_EQ(mvcc_rev(f.m), 6);
	CHECK_EQ(mvcc_compact_rev(f.m), 3);
	CHECK_EQ(mvcc_consistent_index(f.m), 42);
	CHECK_EQ(mvcc_keys(f.m), 2);
	char v[16];
	CHECK_EQ(fx_get(&f, "a", 0, v, sizeof(v)), 3);
	CHECK(strcmp(v, "2") == 0);
	CHECK_EQ(fx_get(&f, "b", 4, v, sizeof(v)), 4);
	CHECK_EQ(fx_get(&f, "b", 0, v, sizeof(v)), 0);
	struct mvcc_range_res res;
	CHECK_EQ(fx_range(&f, "a", NULL, 2, 0, 0, &res), DB_COMPACTED);
	mvcc_kvlist_free(&res.kvs);
	/* The next write continues the revision sequence. */
	CHECK_EQ(fx_put(&f, "d", "1", 0), 7);

	/* A committed transaction without sync is still there after a clean close. */
	fx_reopen(&f);
	CHECK_EQ(mvcc_rev(f.m), 7);
	CHECK_EQ(mvcc_consistent_index(f.m), 43);
	CHECK_EQ(mvcc_keys(f.m), 3);
	/* A store without the record (made before it, or imported): counted;
	 * a commit that changes the count writes it again. */
	drop_keys_record(&f);
	fx_reopen(&f);
	CHECK_EQ(mvcc_keys(f.m), 3); /* a, c, d: counted from `current` */
	fx_del(&f, "a", NULL);        /* 8 */
	CHECK_EQ(mvcc_keys(f.m), 2);
	fx_reopen(&f);
	CHECK_EQ(mvcc_keys(f.m), 2);
	drop_keys_record(&f);
	fx_reopen(&f);
	CHECK_EQ(mvcc_keys(f.m), 2); /* c, d: counted from `current` */
	fx_close(&f);
	return check_done("test_mvcc_restart");
}
