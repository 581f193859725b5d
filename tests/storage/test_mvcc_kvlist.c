/*
 * tests/storage/test_mvcc_kvlist.c — result lists own copies of their bytes,
 * across many small entries (several arena chunks) and oversized ones.
 */
#include "storage/mvcc.h"
#include "tests/storage/check.h"

int main(void)
{
	struct mvcc_kvlist l;
	mvcc_kvlist_init(&l);
	char key[32], *big = malloc(200000);
	REQUIRE(big != NULL);
	memset(big, 'x', 200000);
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "key-%06d", i);
		struct mvcc_kv kv = {.key = (const uint8_t *)key, .key_len = strlen(key),
				     .value = (const uint8_t *)big, .value_len = (i % 1000 == 0) ? 200000 : (size_t)(i % 17),
				     .mod_revision = i, .version = 1};
		CHECK_EQ(mvcc_kvlist_push(&l, &kv), DB_OK);
		memset(key, 0, sizeof(key)); /* the list must not point at our buffer */
	}
	CHECK_EQ(l.n, 20000);
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "key-%06d", i);
		CHECK_BYTES(l.kvs[i].key, l.kvs[i].key_len, key);
		size_t want = (i % 1000 == 0) ? 200000 : (size_t)(i % 17);
		CHECK_EQ(l.kvs[i].value_len, want);
		CHECK(want == 0 || (l.kvs[i].value[0] == 'x' && l.kvs[i].value[want - 1] == 'x'));
		CHECK_EQ(l.kvs[i].mod_revision, i);
	}
	/* An empty key-value is fine too. */
	struct mvcc_kv empty = {0};
	CHECK_EQ(mvcc_kvlist_push(&l, &empty), DB_OK);
	CHECK_EQ(l.kvs[l.n - 1].key_len, 0);
	mvcc_kvlist_free(&l);
	CHECK(l.n == 0 && l.kvs == NULL);
	mvcc_kvlist_free(&l); /* twice is harmless */
	free(big);
	return check_done("test_mvcc_kvlist");
}
