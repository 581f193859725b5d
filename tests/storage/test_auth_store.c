/*
 * tests/storage/test_auth_store.c — the auth table: records of each kind
 * load in (kind, name) order, overwrite and delete, writes are refused
 * outside a transaction, a stop value ends the scan, and everything
 * survives a reopen.
 */
#include "storage/auth.h"
#include "tests/storage/fixture.h"

struct seen {
	int n;
	char kinds[8];
	char names[8][16];
	char vals[8][16];
	int stop_at;
};

static int load(void *arg, int kind, const char *name, size_t name_len, const uint8_t *val,
		size_t val_len)
{
	struct seen *s = arg;
	if (s->n < 8 && name_len < 16 && val_len < 16) {
		s->kinds[s->n] = (char)kind;
		memcpy(s->names[s->n], name, name_len);
		s->names[s->n][name_len] = 0;
		memcpy(s->vals[s->n], val, val_len);
		s->vals[s->n][val_len] = 0;
	}
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

static void put(struct fx *f, int kind, const char *name, const char *val)
{
	CHECK_EQ(auth_store_put(f->s, kind, name, strlen(name), (const uint8_t *)val, strlen(val)),
		 DB_OK);
}

static void test_auth_table(void)
{
	struct fx f;
	fx_open(&f);
	CHECK_EQ(auth_store_put(f.s, AUTH_REC_USER, "x", 1, (const uint8_t *)"v", 1), DB_INVALID);
	CHECK_EQ(auth_store_delete(f.s, AUTH_REC_USER, "x", 1), DB_INVALID);
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	put(&f, AUTH_REC_USER, "root", "u-root");
	put(&f, AUTH_REC_ROLE, "r1", "r-1");
	put(&f, AUTH_REC_USER, "alice", "u-alice");
	put(&f, AUTH_REC_META, "revision", "7");
	put(&f, AUTH_REC_USER, "alice", "u-alice2"); /* overwrite */
	put(&f, AUTH_REC_ROLE, "", "empty-name");    /* the kind byte alone is a key */
	CHECK_EQ(auth_store_delete(f.s, AUTH_REC_ROLE, "nosuch", 6), DB_OK);
	REQUIRE(mvcc_commit(f.m, f.s, ++f.ci, 0) == DB_OK);

	struct seen s = {0};
	CHECK_EQ(auth_store_load(f.s, load, &s), DB_OK);
	CHECK_EQ(s.n, 5);
	/* 'm' < 'r' < 'u', then names in byte order. */
	CHECK(s.kinds[0] == AUTH_REC_META && strcmp(s.names[0], "revision") == 0);
	CHECK(s.kinds[1] == AUTH_REC_ROLE && strcmp(s.names[1], "") == 0);
	CHECK(s.kinds[2] == AUTH_REC_ROLE && strcmp(s.names[2], "r1") == 0);
	CHECK(s.kinds[3] == AUTH_REC_USER && strcmp(s.names[3], "alice") == 0);
	CHECK(strcmp(s.vals[3], "u-alice2") == 0);
	CHECK(s.kinds[4] == AUTH_REC_USER && strcmp(s.names[4], "root") == 0);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	CHECK_EQ(auth_store_load(f.s, load, &s), 7);
	CHECK_EQ(s.n, 2);

	/* Deletes stick and everything survives a reopen. */
	fx_reopen(&f);
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	CHECK_EQ(auth_store_delete(f.s, AUTH_REC_USER, "alice", 5), DB_OK);
	REQUIRE(mvcc_commit(f.m, f.s, ++f.ci, 0) == DB_OK);
	fx_reopen(&f);
	memset(&s, 0, sizeof(s));
	CHECK_EQ(auth_store_load(f.s, load, &s), DB_OK);
	CHECK_EQ(s.n, 4);
	CHECK(s.kinds[3] == AUTH_REC_USER && strcmp(s.names[3], "root") == 0);
	fx_close(&f);
}

/* A transaction that is rolled back leaves no record behind. */
static void test_auth_rollback(void)
{
	struct fx f;
	fx_open(&f);
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	put(&f, AUTH_REC_USER, "ghost", "g");
	db_txn_abort(f.s);
	struct seen s = {0};
	CHECK_EQ(auth_store_load(f.s, load, &s), DB_OK);
	CHECK_EQ(s.n, 0);
	fx_close(&f);
}

int main(void)
{
	test_auth_table();
	test_auth_rollback();
	return check_done("test_auth_store");
}
