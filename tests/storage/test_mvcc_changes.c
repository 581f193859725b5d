/*
 * tests/storage/test_mvcc_changes.c — the history in revision order for
 * watches: puts with full key-values, deletes with only key and revision,
 * key filters (single, range, from-key), chunks that end on revision
 * boundaries, the callback's stop value, DB_COMPACTED below the
 * compacted revision, each change's link to its key's entry before it, and
 * scans inside a caller's transaction (its snapshot, left open).
 */
#include "tests/storage/fixture.h"

struct seen {
	int n;
	char keys[32][8];
	int64_t revs[32];
	int tomb[32];
	int64_t prev[32][2]; /* chain link */
	int stop_at; /* return 99 on this change (1-based), 0 = never */
};

static int collect(void *arg, const struct mvcc_change *ch)
{
	struct seen *s = arg;
	if (s->n < 32) {
		snprintf(s->keys[s->n], 8, "%.*s", (int)ch->kv.key_len, (const char *)ch->kv.key);
		s->revs[s->n] = ch->kv.mod_revision;
		s->tomb[s->n] = ch->tombstone;
		s->prev[s->n][0] = ch->prev_main;
		s->prev[s->n][1] = ch->prev_sub;
		if (ch->tombstone)
			CHECK(ch->kv.value_len == 0 && ch->kv.create_revision == 0 &&
			      ch->kv.version == 0);
	}
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 99 : 0;
}

static int scan(struct fx *f, int64_t from, int64_t to, const char *k, const char *end,
		size_t max, struct seen *s, int64_t *last)
{
	memset(s, 0, sizeof(*s));
	return mvcc_changes(f->m, f->s, from, to, (const uint8_t *)k, k ? strlen(k) : 0,
			    (const uint8_t *)end, end ? (end[0] ? strlen(end) : 1) : 0, max, collect,
			    s, last);
}

static void test_changes(void)
{
	struct fx f;
	fx_open(&f);
	fx_put(&f, "a", "1", 0);  /* 2 */
	fx_put(&f, "b", "2", 0);  /* 3 */
	fx_put(&f, "a", "3", 0);  /* 4 */
	fx_del(&f, "a", "c");     /* 5: a and b */
	fx_put(&f, "c", "6", 7);  /* 6 */
	struct seen s;
	int64_t last;
	/* Everything, in revision order. */
	CHECK_EQ(scan(&f, 1, 100, NULL, NULL, 0, &s, &last), DB_OK);
	CHECK_EQ(s.n, 6);
	CHECK_EQ(last, 6); /* clamped to the current revision */
	const char *keys[] = {"a", "b", "a", "a", "b", "c"};
	const int64_t revs[] = {2, 3, 4, 5, 5, 6};
	const int tombs[] = {0, 0, 0, 1, 1, 0};
	for (int i = 0; i < 6; i++) {
		CHECK(strcmp(s.keys[i], keys[i]) == 0);
		CHECK_EQ(s.revs[i], revs[i]);
		CHECK_EQ(s.tomb[i], tombs[i]);
	}
	/* Each change links to its key's entry before it: (main, sub). */
	const int64_t links[][2] = {{0, 0}, {0, 0}, {2, 0}, {4, 0}, {3, 0}, {0, 0}};
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(s.prev[i][0], links[i][0]);
		CHECK_EQ(s.prev[i][1], links[i][1]);
	}
	/* ...which is what a watch's prev_kv reads. */
	struct mvcc_kvlist kvs;
	mvcc_kvlist_init(&kvs);
	CHECK_EQ(mvcc_history_kv(f.m, f.s, 2, 0, &kvs), DB_OK);
	REQUIRE(kvs.n == 1);
	CHECK_BYTES(kvs.kvs[0].key, kvs.kvs[0].key_len, "a");
	CHECK_BYTES(kvs.kvs[0].value, kvs.kvs[0].value_len, "1");
	CHECK_EQ(kvs.kvs[0].mod_revision, 2);
	CHECK_EQ(mvcc_history_kv(f.m, f.s, 5, 0, &kvs), DB_NOTFOUND); /* a tombstone */
	CHECK_EQ(mvcc_history_kv(f.m, f.s, 0, 0, &kvs), DB_NOTFOUND);
	CHECK_EQ(mvcc_history_kv(f.m, f.s, 99, 0, &kvs), DB_NOTFOUND);
	CHECK_EQ(kvs.n, 1);
	mvcc_kvlist_free(&kvs);
	/* A single key, a range and from-key. */
	CHECK_EQ(scan(&f, 1, 100, "a", NULL, 0, &s, &last), DB_OK);
	CHECK_EQ(s.n, 3);
	CHECK_EQ(scan(&f, 3, 100, "b", "c", 0, &s, &last), DB_OK);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(scan(&f, 1, 100, "b", "", 0, &s, &last), DB_OK);
	CHECK_EQ(s.n, 3);
	/* Chunks end on revision boundaries: revision 5 is never split. */
	CHECK_EQ(scan(&f, 1, 100, NULL, NULL, 4, &s, &last), DB_OK);
	CHECK_EQ(s.n, 5);
	CHECK_EQ(last, 5);
	CHECK_EQ(scan(&f, 1, 100, NULL, NULL, 2, &s, &last), DB_OK);
	CHECK_EQ(s.n, 2);
	CHECK_EQ(last, 3);
	CHECK_EQ(scan(&f, last + 1, 100, NULL, NULL, 2, &s, &last), DB_OK);
	CHECK_EQ(s.n, 3); /* 4, then both changes of 5 */
	CHECK_EQ(last, 5);
	/* Empty ranges of revisions. */
	CHECK_EQ(scan(&f, 7, 100, NULL, NULL, 0, &s, &last), DB_OK);
	CHECK_EQ(s.n, 0);
	CHECK_EQ(last, 6);
	/* The callback's stop value comes back. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	CHECK_EQ(mvcc_changes(f.m, f.s, 1, 100, NULL, 0, NULL, 0, 0, collect, &s, &last), 99);
	/* Below the compacted revision the history is incomplete. */
	REQUIRE(db_txn_begin(f.s) == DB_OK);
	CHECK_EQ(mvcc_compact(f.m, f.s, 4), DB_OK);
	REQUIRE(mvcc_commit(f.m, f.s, ++f.ci, 0) == DB_OK);
	CHECK_EQ(scan(&f, 3, 100, NULL, NULL, 0, &s, &last), DB_COMPACTED);
	CHECK_EQ(scan(&f, 4, 100, NULL, NULL, 0, &s, &last), DB_OK);
	CHECK_EQ(s.n, 4);
	/* ... unless the caller holds physical compaction back (watch hub). */
	memset(&s, 0, sizeof(s));
	CHECK_EQ(mvcc_changes_any(f.m, f.s, 3, 100, 0, collect, &s, &last), DB_OK);
	CHECK_EQ(s.n, 5);
	CHECK_EQ(last, 6);
	/* In a transaction the caller holds open, a scan reads its snapshot
	 * (a later commit is not seen, twice over) and leaves it open. */
	struct db_session *r;
	REQUIRE(db_session_open(f.db, &r) == DB_OK);
	REQUIRE(db_txn_begin(r) == DB_OK);
	fx_put(&f, "d", "7", 0); /* 7 */
	for (int pass = 0; pass < 2; pass++) {
		memset(&s, 0, sizeof(s));
		CHECK_EQ(mvcc_changes_any(f.m, r, 3, 100, 0, collect, &s, &last), DB_OK);
		CHECK_EQ(s.n, 5);
		CHECK(db_txn_active(r));
	}
	int64_t rev, crev;
	uint64_t ci;
	CHECK_EQ(mvcc_snapshot_state(f.m, r, &rev, &crev, &ci), DB_OK);
	CHECK_EQ(rev, 6);
	CHECK_EQ(crev, 4);
	db_txn_abort(r);
	CHECK_EQ(mvcc_snapshot_state(f.m, r, &rev, &crev, &ci), DB_INVALID);
	memset(&s, 0, sizeof(s));
	CHECK_EQ(mvcc_changes_any(f.m, r, 3, 100, 0, collect, &s, &last), DB_OK);
	CHECK_EQ(s.n, 6);
	db_session_close(r);
	fx_close(&f);
}

int main(void)
{
	test_changes();
	return check_done("test_mvcc_changes");
}
