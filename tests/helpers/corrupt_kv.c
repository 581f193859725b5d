/*
 * tests/helpers/corrupt_kv.c — metad-test-corrupt-kv: alter a stopped
 * member's data on disk, as a bad disk or a bug would, for the corruption
 * check tests (tests/e2e/test_corrupt_check.py).
 *
 *   metad-test-corrupt-kv DATA_DIR KEY [WAL_DIR]
 *
 * Flips a bit in the value of KEY's newest history entry, in place: same
 * revision, nothing logged, nothing the member's Raft log or consistent
 * index knows about. Its HashKV then differs from its peers'. Test-only:
 * it reaches into storage's internal tables (as storage's own tests do).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/db_internal.h"
#include "storage/mvcc_internal.h"

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "metad-test-corrupt-kv: %s: %s\n", what, why);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4)
		return fail("usage", "DATA_DIR KEY [WAL_DIR]");
	const char *key = argv[2];
	size_t klen = strlen(key);
	char err[512];
	/* As core_open opens it, so the tables' settings and the WAL match. */
	struct db_options o = {.cache_mb = 64, .unjournaled_state = 1,
			       .wal_dir = argc == 4 ? argv[3] : NULL};
	struct db *db;
	if (db_open(argv[1], &o, &db, err, sizeof(err)) != DB_OK)
		return fail(argv[1], err);
	struct db_session *s;
	if (db_session_open(db, &s) != DB_OK || db_txn_begin(s) != DB_OK)
		return fail(argv[1], "cannot open a session");
	WT_CURSOR *kv = db_cursor(s, DB_TBL_KV);
	int rv, found = 0;
	/* Newest first: the key's latest entry is the one reads return. */
	while (!found && (rv = kv->prev(kv)) == 0) {
		WT_ITEM k, v;
		struct mvcc_kv e;
		struct mvcc_revpair prev;
		int tomb;
		if (kv->get_key(kv, &k) != 0 || kv->get_value(kv, &v) != 0 ||
		    mvcc_kv_val_decode(v.data, v.size, &e, &tomb, &prev) != DB_OK)
			return fail(argv[1], "unreadable history entry");
		if (tomb || e.key_len != klen || memcmp(e.key, key, klen) != 0)
			continue;
		uint8_t *value = malloc(e.value_len + 1);
		uint8_t *out = malloc(mvcc_kv_val_max(klen, e.value_len + 1));
		uint8_t rk[MVCC_REV_BYTES];
		if (value == NULL || out == NULL || k.size != sizeof(rk))
			return fail(argv[1], "out of memory");
		memcpy(rk, k.data, sizeof(rk));
		memcpy(value, e.value, e.value_len);
		if (e.value_len > 0)
			value[0] ^= 1;
		else
			value[e.value_len++] = 'x';
		e.value = value;
		size_t n = mvcc_kv_val_encode(&e, 0, prev, out);
		WT_ITEM nk = {.data = rk, .size = sizeof(rk)}, nv = {.data = out, .size = n};
		kv->set_key(kv, &nk);
		kv->set_value(kv, &nv);
		if (kv->update(kv) != 0)
			return fail(argv[1], "update failed");
		printf("altered %s at revision %llu\n", key, (unsigned long long)be64_get(rk));
		free(value);
		free(out);
		found = 1;
	}
	if (!found)
		return fail(key, "no such key in the history");
	if (db_txn_commit(s, 1) != DB_OK)
		return fail(argv[1], "commit failed");
	db_session_close(s);
	db_close(db); /* a checkpoint: the change is in the table files */
	return 0;
}
