/*
 * tests/storage/test_mvcc_key.c — the index key encoding preserves order:
 * sorting encoded (key, main, sub) triples bytewise must equal sorting by
 * user key (bytewise, shorter prefix first) and then revision, including keys
 * that are prefixes of each other and keys holding 00 and FF bytes. Also
 * round-trips of the value encodings.
 */
#include "storage/mvcc_internal.h"
#include "tests/storage/check.h"

struct item {
	const uint8_t *key;
	size_t key_len;
	int64_t main, sub;
	uint8_t enc[64];
	size_t enc_len;
};

static int cmp_logical(const struct item *a, const struct item *b)
{
	int c = mvcc_key_cmp(a->key, a->key_len, b->key, b->key_len);
	if (c != 0)
		return c;
	if (a->main != b->main)
		return a->main < b->main ? -1 : 1;
	return a->sub < b->sub ? -1 : (a->sub > b->sub);
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

static void test_order(void)
{
	static const struct {
		const char *k;
		size_t n;
	} keys[] = {
		{"", 0},          {"\x00", 1},       {"\x00\x00", 2}, {"\x00\x01", 2},
		{"\x00\xff", 2},  {"\x01", 1},       {"a", 1},        {"a\x00", 2},
		{"a\x00\x00", 3}, {"a\x00\x01", 3},  {"a\x00\xff", 3}, {"a\x01", 2},
		{"a\xff", 2},     {"a\xff\x00", 3},  {"ab", 2},       {"abc", 3},
		{"\xff", 1},      {"\xff\xff", 2},   {"\xff\x00", 2}, {"b", 1},
	};
	const int64_t revs[][2] = {{1, 0}, {1, 1}, {2, 0}, {255, 7}, {256, 0}, {1LL << 40, 3}};
	enum { NK = sizeof(keys) / sizeof(keys[0]), NR = sizeof(revs) / sizeof(revs[0]) };
	static struct item items[NK * NR];
	int n = 0;
	for (int i = 0; i < NK; i++)
		for (int j = 0; j < NR; j++, n++) {
			struct item *it = &items[n];
			it->key = (const uint8_t *)keys[i].k;
			it->key_len = keys[i].n;
			it->main = revs[j][0];
			it->sub = revs[j][1];
			it->enc_len = mvcc_index_key(it->key, it->key_len, it->main, it->sub, it->enc);
		}
	for (int a = 0; a < n; a++)
		for (int b = 0; b < n; b++) {
			int want = sign(cmp_logical(&items[a], &items[b]));
			int got = sign(mvcc_key_cmp(items[a].enc, items[a].enc_len, items[b].enc,
						    items[b].enc_len));
			if (want != got) {
				fprintf(stderr, "order mismatch for items %d and %d\n", a, b);
				check_failures++;
			}
		}
	/* Decoding gives the parts back. */
	for (int a = 0; a < n; a++) {
		uint8_t out[64];
		size_t klen, glen;
		int64_t main, sub;
		CHECK_EQ(mvcc_index_key_decode(items[a].enc, items[a].enc_len, out, &klen, &glen,
					       &main, &sub),
			 DB_OK);
		CHECK_EQ(klen, items[a].key_len);
		CHECK(klen == 0 || memcmp(out, items[a].key, klen) == 0);
		CHECK_EQ(main, items[a].main);
		CHECK_EQ(sub, items[a].sub);
		CHECK_EQ(glen, items[a].enc_len - MVCC_REV_BYTES);
	}
	/* A prefix bound sorts before every key that starts with it. */
	uint8_t p[8], e[64];
	size_t pl = mvcc_escape_prefix((const uint8_t *)"a\x00", 2, p);
	size_t el = mvcc_index_key((const uint8_t *)"a\x00", 2, 1, 0, e);
	CHECK(mvcc_key_cmp(p, pl, e, el) < 0);
	uint8_t bad[] = {'a', 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
	uint8_t out[32];
	size_t klen, glen;
	int64_t main, sub;
	CHECK_EQ(mvcc_index_key_decode(bad, sizeof(bad), out, &klen, &glen, &main, &sub),
		 DB_CORRUPT);
	CHECK_EQ(mvcc_index_key_decode(bad, 5, out, &klen, &glen, &main, &sub), DB_CORRUPT);
}

static void test_values(void)
{
	uint8_t buf[128];
	struct mvcc_kv kv = {.key = (const uint8_t *)"key", .key_len = 3,
			     .value = (const uint8_t *)"value", .value_len = 5,
			     .create_revision = 300, .mod_revision = 1LL << 40, .version = 7,
			     .lease = 0x7fffffffffffffffLL};
	size_t n = mvcc_kv_val_encode(&kv, 0, buf);
	CHECK(n <= mvcc_kv_val_max(3, 5));
	struct mvcc_kv d;
	int tomb;
	CHECK_EQ(mvcc_kv_val_decode(buf, n, &d, &tomb), DB_OK);
	CHECK_EQ(tomb, 0);
	CHECK_EQ(d.create_revision, 300);
	CHECK_EQ(d.version, 7);
	CHECK_EQ(d.lease, kv.lease);
	CHECK_BYTES(d.key, d.key_len, "key");
	CHECK_BYTES(d.value, d.value_len, "value");
	CHECK_EQ(mvcc_kv_val_decode(buf, 3, &d, &tomb), DB_CORRUPT);

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
	test_order();
	test_values();
	return check_done("test_mvcc_key");
}
