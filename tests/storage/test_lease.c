/*
 * tests/storage/test_lease.c — the lessor's table: put/overwrite/delete in a
 * transaction, load in id order, stop value, survival across a reopen, and
 * writes refused outside a transaction.
 */
#include "storage/lease.h"
#include "tests/storage/fixture.h"

struct loaded {
	int n;
	int64_t ids[8], ttls[8];
	int stop_at;
};

static int load(void *arg, int64_t id, int64_t ttl)
{
	struct loaded *l = arg;
	if (l->n < 8) {
		l->ids[l->n] = id;
		l->ttls[l->n] = ttl;
	}
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 42 : 0;
}

static void test_lease_table(void)
{
	struct fx f;
	fx_open(&f);
	CHECK_EQ(lease_store_put(f.s, 1, 10), DB_INVALID);
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	CHECK_EQ(lease_store_put(f.s, 0x300, 30), DB_OK);
	CHECK_EQ(lease_store_put(f.s, 0x100, 10), DB_OK);
	CHECK_EQ(lease_store_put(f.s, 0x200, 20), DB_OK);
	CHECK_EQ(lease_store_put(f.s, 0x200, 9000000000LL), DB_OK); /* overwrite */
	CHECK_EQ(lease_store_delete(f.s, 0x999), DB_OK);             /* absent: fine */
	REQUIRE(mvcc_commit(f.m, f.s, ++f.ci, 0) == DB_OK);
	struct loaded l = {0};
	CHECK_EQ(lease_store_load(f.s, load, &l), DB_OK);
	CHECK_EQ(l.n, 3);
	CHECK_EQ(l.ids[0], 0x100);
	CHECK_EQ(l.ids[1], 0x200);
	CHECK_EQ(l.ttls[1], 9000000000LL);
	CHECK_EQ(l.ids[2], 0x300);
	memset(&l, 0, sizeof(l));
	l.stop_at = 2;
	CHECK_EQ(lease_store_load(f.s, load, &l), 42);
	/* Survives a reopen; a delete sticks. */
	fx_reopen(&f);
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	CHECK_EQ(lease_store_delete(f.s, 0x100), DB_OK);
	REQUIRE(mvcc_commit(f.m, f.s, ++f.ci, 0) == DB_OK);
	fx_reopen(&f);
	memset(&l, 0, sizeof(l));
	CHECK_EQ(lease_store_load(f.s, load, &l), DB_OK);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(l.ids[0], 0x200);
	fx_close(&f);
}

int main(void)
{
	test_lease_table();
	return check_done("test_lease");
}
