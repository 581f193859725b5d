/*
 * tests/storage/test_db.c — the connection: open errors, sessions and
 * transactions, synced and unsynced commits, error strings, db_size_bytes,
 * that tables use block compression when the snappy extension loads, the
 * cache boost of whole-store scans (overlapping boosts, the last end), and
 * a snapshot shared by two sessions.
 */
#include "storage/db_internal.h"
#include "tests/storage/check.h"

/* Whether table:kv was created with snappy (printed, not required). */
static int kv_compressed(struct db_session *s)
{
	WT_CURSOR *c;
	REQUIRE(s->wt->open_cursor(s->wt, "metadata:", NULL, NULL, &c) == 0);
	c->set_key(c, "file:kv.wt");
	int found = 0;
	if (c->search(c) == 0) {
		const char *v;
		if (c->get_value(c, &v) == 0)
			found = strstr(v, "block_compressor=snappy") != NULL;
	}
	c->close(c);
	return found;
}

/* WiredTiger's configured cache size, in MiB. */
static long cache_mb(struct db_session *s)
{
	WT_CURSOR *c;
	REQUIRE(s->wt->open_cursor(s->wt, "statistics:", NULL, NULL, &c) == 0);
	c->set_key(c, WT_STAT_CONN_CACHE_BYTES_MAX);
	int64_t v = -1;
	if (c->search(c) == 0) {
		const char *desc, *pv;
		REQUIRE(c->get_value(c, &desc, &pv, &v) == 0);
	}
	c->close(c);
	return (long)(v / (1 << 20));
}

int main(void)
{
	char dir[64], err[256];
	struct db *db = NULL;
	struct db_session *s, *s2;

	CHECK(db_open("/nonexistent/metad-dir", NULL, &db, err, sizeof(err)) != DB_OK);
	CHECK(strlen(err) > 0);

	check_tmpdir(dir, sizeof(dir));
	struct db_options opts = {.cache_mb = 32};
	REQUIRE(db_open(dir, &opts, &db, err, sizeof(err)) == DB_OK);
	REQUIRE(db_session_open(db, &s) == DB_OK);
	REQUIRE(db_session_open(db, &s2) == DB_OK);
	printf("snappy block compression: %s\n", kv_compressed(s) ? "on" : "off");

	CHECK_EQ(db_txn_active(s), 0);
	CHECK_EQ(db_txn_commit(s, 0), DB_INVALID);
	db_txn_abort(s); /* no transaction: harmless */
	CHECK_EQ(db_txn_begin(s), DB_OK);
	CHECK_EQ(db_txn_active(s), 1);
	CHECK_EQ(db_txn_begin(s), DB_INVALID);

	/* A write is invisible to another session until committed. */
	WT_CURSOR *c = db_cursor(s, DB_TBL_META), *c2 = db_cursor(s2, DB_TBL_META);
	WT_ITEM k = {.data = "x", .size = 1}, v = {.data = "1", .size = 1};
	c->set_key(c, &k);
	c->set_value(c, &v);
	CHECK_EQ(c->insert(c), 0);
	c2->set_key(c2, &k);
	CHECK_EQ(c2->search(c2), WT_NOTFOUND);
	c2->reset(c2);
	CHECK_EQ(db_txn_commit(s, 1), DB_OK);
	CHECK_EQ(db_txn_active(s), 0);
	c2->set_key(c2, &k);
	CHECK_EQ(c2->search(c2), 0);
	c2->reset(c2);

	/* Write-write conflict: the second writer gets an error, not a hang. */
	CHECK_EQ(db_txn_begin(s), DB_OK);
	CHECK_EQ(db_txn_begin(s2), DB_OK);
	c->set_key(c, &k);
	c->set_value(c, &v);
	CHECK_EQ(c->insert(c), 0);
	c2->set_key(c2, &k);
	c2->set_value(c2, &v);
	CHECK_EQ(db_wt_error(c2->insert(c2)), DB_IO);
	db_txn_abort(s2);
	CHECK_EQ(db_txn_commit(s, 0), DB_OK);

	/* One snapshot read by two sessions: a third commits between their
	 * beginnings, and only a fresh transaction sees it. */
	struct db_session *s3;
	REQUIRE(db_session_open(db, &s3) == DB_OK);
	CHECK_EQ(db_txn_begin_like(s2, s), DB_INVALID); /* nothing to share */
	CHECK_EQ(db_txn_begin(s), DB_OK);
	c->set_key(c, &k);
	CHECK_EQ(c->search(c), 0); /* the snapshot is taken */
	c->reset(c);
	WT_ITEM k3 = {.data = "y", .size = 1};
	WT_CURSOR *c3 = db_cursor(s3, DB_TBL_META);
	for (int i = 0; i < 50; i++) { /* and many after it */
		CHECK_EQ(db_txn_begin(s3), DB_OK);
		c3->set_key(c3, &k3);
		c3->set_value(c3, &v);
		CHECK_EQ(c3->insert(c3), 0);
		CHECK_EQ(db_txn_commit(s3, 0), DB_OK);
	}
	CHECK_EQ(db_txn_begin_like(s2, s), DB_OK);
	CHECK_EQ(db_txn_active(s2), 1);
	CHECK_EQ(db_txn_begin_like(s2, s), DB_INVALID); /* already in one */
	c2->set_key(c2, &k3);
	CHECK_EQ(c2->search(c2), WT_NOTFOUND);
	c2->reset(c2);
	c2->set_key(c2, &k);
	CHECK_EQ(c2->search(c2), 0);
	c2->reset(c2);
	c->set_key(c, &k3);
	CHECK_EQ(c->search(c), WT_NOTFOUND);
	c->reset(c);
	db_txn_abort(s);
	db_txn_abort(s2);
	CHECK_EQ(db_txn_begin(s2), DB_OK);
	c2->set_key(c2, &k3);
	CHECK_EQ(c2->search(c2), 0);
	c2->reset(c2);
	db_txn_abort(s2);
	db_session_close(s3);

	CHECK(db_size_bytes(db) > 0);

	REQUIRE(db->conn->reconfigure(db->conn, "statistics=(fast)") == 0);
	CHECK_EQ(cache_mb(s), 32);
	CHECK_EQ(db_cache_boost(db, 64), DB_OK);
	CHECK_EQ(cache_mb(s), 96);
	CHECK_EQ(db_cache_boost(db, 16), DB_OK); /* a smaller one shares the larger */
	CHECK_EQ(cache_mb(s), 96);
	db_cache_boost_end(db);
	CHECK_EQ(cache_mb(s), 96); /* one scan still runs */
	db_cache_boost_end(db);
	CHECK_EQ(cache_mb(s), 32);
	db_cache_boost_end(db); /* unmatched: harmless */
	CHECK_EQ(cache_mb(s), 32);
	CHECK_EQ(db_wt_error(WT_NOTFOUND), DB_NOTFOUND);
	CHECK_EQ(db_wt_error(0), DB_OK);
	for (int code = DB_OK; code <= DB_INVALID; code++)
		CHECK(strcmp(db_strerror(code), "unknown storage error") != 0);

	db_session_close(s2);
	db_session_close(s);
	db_session_close(NULL);
	db_close(db);
	db_close(NULL);
	check_rmdir(dir);
	return check_done("test_db");
}
