/*
 * tests/storage/test_mvcc_threads.c — one writer, several readers and a
 * background compactor on one store at once. Every write request rewrites all
 * keys with its own revision as the value, so any consistent snapshot has
 * all keys at one revision equal to their value; a torn read shows up as a
 * mismatch. Historical reads must see exactly their revision (or be refused
 * as compacted), and compact_run must never make the writer fail, also
 * where both write `current` (keys deleted and recreated).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "tests/storage/fixture.h"

enum { KEYS = 40, XKEYS = 100, REQUESTS = 600, READERS = 3 };

static struct fx F;
static atomic_int stop;
static atomic_long reads, hist_reads, errors;

static void fail(const char *what, long long a, long long b)
{
	fprintf(stderr, "threads: %s (%lld vs %lld)\n", what, a, b);
	atomic_fetch_add(&errors, 1);
}

static void *writer(void *arg)
{
	(void)arg;
	struct db_session *s;
	if (db_session_open(F.db, &s) != DB_OK) {
		fail("writer session", 0, 0);
		return NULL;
	}
	char k[16], v[24];
	uint64_t ci = 0;
	for (int r = 0; r < REQUESTS; r++) {
		if (mvcc_begin(F.m, s) != DB_OK) {
			fail("writer begin", r, 0);
			break;
		}
		mvcc_req_begin(F.m, s);
		int64_t rev = mvcc_rev(F.m) + 1;
		for (int i = 0; i < KEYS; i++) {
			snprintf(k, sizeof(k), "t%02d", i);
			snprintf(v, sizeof(v), "%lld", (long long)rev);
			int rv = mvcc_put(F.m, s, (const uint8_t *)k, strlen(k), (const uint8_t *)v,
					  strlen(v), 0, NULL, NULL);
			if (rv != DB_OK)
				fail("writer put", rv, 0);
		}
		/* Keys deleted and put back by turns: compaction removes their
		 * tombstone rows from `current` while this writer puts them. */
		for (int i = 0; i < XKEYS; i++) {
			snprintf(k, sizeof(k), "x%02d", i);
			int64_t n = 0;
			int rv = r % 2 ? mvcc_delete_range(F.m, s, (const uint8_t *)k, strlen(k), NULL,
							   0, &n, NULL)
				       : mvcc_put(F.m, s, (const uint8_t *)k, strlen(k),
						  (const uint8_t *)"x", 1, 0, NULL, NULL);
			if (rv != DB_OK || (r % 2 && n != 1))
				fail("writer x", rv, n);
		}
		if (mvcc_req_end(F.m, s) != rev)
			fail("writer rev", rev, 0);
		/* With x deleted: to the head, the tombstones being newest. */
		if (r % 10 == 5 && mvcc_compact(F.m, s, rev) != DB_OK)
			fail("writer compact head", rev, 0);
		if (r % 50 == 49 && mvcc_compact(F.m, s, rev - 2) != DB_OK)
			fail("writer compact", rev, 0);
		int rv = mvcc_commit(F.m, s, ++ci, 0);
		if (rv != DB_OK)
			fail("writer commit", rv, r);
	}
	db_session_close(s);
	atomic_store(&stop, 1);
	return NULL;
}

/* All KEYS keys at revision want, values equal to it. */
static void check_snapshot(const struct mvcc_range_res *res, int64_t want)
{
	if (res->count != KEYS || res->kvs.n != KEYS) {
		fail("snapshot count", res->count, KEYS);
		return;
	}
	char v[24];
	snprintf(v, sizeof(v), "%lld", (long long)want);
	for (size_t i = 0; i < res->kvs.n; i++) {
		const struct mvcc_kv *kv = &res->kvs.kvs[i];
		if (kv->mod_revision != want)
			fail("snapshot mod_revision", kv->mod_revision, want);
		if (kv->value_len != strlen(v) || memcmp(kv->value, v, kv->value_len) != 0)
			fail("snapshot value", (long long)kv->value_len, want);
		if (kv->version != want - 1)
			fail("snapshot version", kv->version, want - 1);
	}
}

static void *reader(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct db_session *s;
	if (db_session_open(F.db, &s) != DB_OK) {
		fail("reader session", 0, 0);
		return NULL;
	}
	while (!atomic_load(&stop)) {
		struct mvcc_range_req req = {.key = (const uint8_t *)"t", .key_len = 1,
					     .end = (const uint8_t *)"u", .end_len = 1};
		struct mvcc_range_res res = {0};
		int rv = mvcc_range(F.m, s, &req, &res);
		if (rv != DB_OK)
			fail("head read", rv, 0);
		else if (res.rev > 1)
			check_snapshot(&res, res.rev);
		int64_t head = res.rev;
		mvcc_kvlist_free(&res.kvs);
		atomic_fetch_add(&reads, 1);
		if (head < 3)
			continue;
		req.rev = 2 + (int64_t)(rand_r(&seed) % (unsigned)(head - 1));
		memset(&res, 0, sizeof(res));
		rv = mvcc_range(F.m, s, &req, &res);
		if (rv == DB_OK) {
			check_snapshot(&res, req.rev);
			atomic_fetch_add(&hist_reads, 1);
		} else if (rv != DB_COMPACTED) {
			fail("history read", rv, req.rev);
		}
		mvcc_kvlist_free(&res.kvs);
	}
	db_session_close(s);
	return NULL;
}

static void *compactor(void *arg)
{
	(void)arg;
	struct db_session *s;
	if (db_session_open(F.db, &s) != DB_OK) {
		fail("compactor session", 0, 0);
		return NULL;
	}
	while (!atomic_load(&stop)) {
		int rv = mvcc_compact_run(F.m, s);
		if (rv != DB_OK)
			fail("compact_run", rv, 0);
	}
	db_session_close(s);
	return NULL;
}

int main(void)
{
	fx_open(&F);
	pthread_t w, c, r[READERS];
	for (int i = 0; i < READERS; i++)
		REQUIRE(pthread_create(&r[i], NULL, reader, (void *)(uintptr_t)(i + 1)) == 0);
	REQUIRE(pthread_create(&c, NULL, compactor, NULL) == 0);
	REQUIRE(pthread_create(&w, NULL, writer, NULL) == 0);
	pthread_join(w, NULL);
	pthread_join(c, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	CHECK_EQ(atomic_load(&errors), 0);
	CHECK_EQ(mvcc_rev(F.m), 1 + REQUESTS);
	CHECK(atomic_load(&reads) > 0);
	printf("threads: %ld head reads, %ld history reads\n", atomic_load(&reads),
	       atomic_load(&hist_reads));
	/* After a final compact run only the kept history remains. */
	CHECK_EQ(mvcc_compact_run(F.m, F.s), DB_OK);
	struct mvcc_range_res res;
	CHECK_EQ(fx_range(&F, "t", "u", mvcc_compact_rev(F.m), 0, 0, &res), DB_OK);
	check_snapshot(&res, mvcc_compact_rev(F.m));
	mvcc_kvlist_free(&res.kvs);
	fx_close(&F);
	return check_done("test_mvcc_threads");
}
