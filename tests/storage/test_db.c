/*
 * tests/storage/test_db.c — the connection: open errors, sessions and
 * transactions, synced and unsynced commits, error strings, db_size_bytes,
 * and that tables use block compression when the snappy extension loads.
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

	CHECK(db_size_bytes(db) > 0);
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
