/*
 * tests/storage/test_mvcc_key.c — the kv key encoding preserves revision
 * order (bytewise order of encoded (main, sub) pairs is numeric order), and
 * the value encodings round-trip, chain link included.
 */
#include "storage/mvcc_internal.h"
#include "tests/storage/check.h"

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

static void test_rev_order(void)
{
	const int64_t revs[][2] = {{0, 0},     {1, 0},   {1, 1},         {1, 255}, {1, 256},
				   {2, 0},     {255, 7}, {256, 0},       {65535, 1},
				   {65536, 0}, {1LL << 40, 3}, {INT64_MAX, 0}};
	enum { NR = sizeof(revs) / sizeof(revs[0]) };
	uint8_t enc[NR][MVCC_REV_BYTES];
	for (int i = 0; i < NR; i++)
		mvcc_rev_key(revs[i][0], revs[i][1], enc[i]);
	for (int a = 0; a < NR; a++)
		for (int b = 0; b < NR; b++) {
			int want = sign(a - b); /* revs is sorted */
			int got = sign(mvcc_key_cmp(enc[a], MVCC_REV_BYTES, enc[b], MVCC_REV_BYTES));
			if (want != got) {
				fprintf(stderr, "order mismatch for revisions %d and %d\n", a, b);
				check_failures++;
			}
		}
	/* Shorter prefix first, as WiredTiger orders raw keys in `current`. */
	CHECK(mvcc_key_cmp((const uint8_t *)"a", 1, (const uint8_t *)"a\x00", 2) < 0);
	CHECK(mvcc_key_cmp((const uint8_t *)"a\xff", 2, (const uint8_t *)"b", 1) < 0);
	CHECK(mvcc_key_cmp((const uint8_t *)"", 0, (const uint8_t *)"\x00", 1) < 0);
}

static void test_values(void)
{
	uint8_t buf[128];
	struct mvcc_kv kv = {.key = (const uint8_t *)"key", .key_len = 3,
			     .value = (const uint8_t *)"value", .value_len = 5,
			     .create_revision = 300, .mod_revision = 1LL << 40, .version = 7,
			     .lease = 0x7fffffffffffffffLL};
	struct mvcc_revpair link = {INT64_MAX, 1LL << 33}, got = {0, 0};
	size_t n = mvcc_kv_val_encode(&kv, 0, link, buf);
	CHECK(n <= mvcc_kv_val_max(3, 5));
	struct mvcc_kv d;
	int tomb;
	CHECK_EQ(mvcc_kv_val_decode(buf, n, &d, &tomb, &got), DB_OK);
	CHECK_EQ(tomb, 0);
	CHECK_EQ(got.main, INT64_MAX);
	CHECK_EQ(got.sub, 1LL << 33);
	CHECK_EQ(d.create_revision, 300);
	CHECK_EQ(d.version, 7);
	CHECK_EQ(d.lease, kv.lease);
	CHECK_BYTES(d.key, d.key_len, "key");
	CHECK_BYTES(d.value, d.value_len, "value");
	CHECK_EQ(mvcc_kv_val_decode(buf, 3, &d, &tomb, NULL), DB_CORRUPT);
	/* A tombstone with no link, decoded without asking for the link. */
	struct mvcc_kv t = {.key = (const uint8_t *)"k", .key_len = 1, .mod_revision = 9};
	link.main = link.sub = 0;
	n = mvcc_kv_val_encode(&t, 1, link, buf);
	CHECK_EQ(mvcc_kv_val_decode(buf, n, &d, &tomb, NULL), DB_OK);
	CHECK_EQ(tomb, 1);
	CHECK_BYTES(d.key, d.key_len, "k");
	CHECK(d.value_len == 0);
	CHECK_EQ(mvcc_kv_val_decode(buf, n, &d, &tomb, &got), DB_OK);
	CHECK_EQ(got.main, 0);

	n = mvcc_cur_val_encode(&kv, 12345, buf);
	CHECK(n <= MVCC_CUR_VAL_MAX);
	memset(&d, 0, sizeof(d));
	int64_t sub = 0;
	CHECK_EQ(mvcc_cur_val_decode(buf, n, &d, &sub), DB_OK);
	CHECK_EQ(d.mod_revision, 1LL << 40);
	CHECK_EQ(d.create_revision, 300);
	CHECK_EQ(d.version, 7);
	CHECK_EQ(d.lease, kv.lease);
	CHECK_EQ(sub, 12345);
	CHECK(d.value_len == 0); /* values live in kv only */
	CHECK_EQ(mvcc_cur_val_decode(buf, 2, &d, &sub), DB_CORRUPT);
	buf[n] = 0; /* trailing bytes: not a current value */
	CHECK_EQ(mvcc_cur_val_decode(buf, n + 1, &d, &sub), DB_CORRUPT);
}

int main(void)
{
	test_rev_order();
	test_values();
	return check_done("test_mvcc_key");
}
