/*
 * tests/storage/test_raftlog.c — the Raft log: append, conflicting-suffix
 * truncation, bounds, reads with a byte budget, compaction, hard state and
 * blobs, all surviving a close and reopen; an append of small entries is
 * stored as one row, so truncation and compaction also cut inside rows; an
 * append bigger than a row's budget is split over several.
 */
#include "storage/codec_internal.h"
#include "storage/db_internal.h"
#include "storage/raftlog.h"
#include "tests/storage/check.h"

struct seen {
	uint64_t idx[64];
	uint64_t term[64];
	char data[64][16];
	int n;
};

static int visit(void *arg, const struct rlog_entry *e)
{
	struct seen *s = arg;
	s->idx[s->n] = e->index;
	s->term[s->n] = e->term;
	snprintf(s->data[s->n], sizeof(s->data[0]), "%.*s", (int)e->len, (const char *)e->data);
	s->n++;
	return 0;
}

/* visit, then stop after the second entry. */
static int visit_two(void *arg, const struct rlog_entry *e)
{
	visit(arg, e);
	return ((struct seen *)arg)->n >= 2;
}

static void append_range(struct db_session *s, uint64_t from, uint64_t to, uint64_t term)
{
	struct rlog_entry e[64];
	char buf[64][16];
	size_t n = 0;
	for (uint64_t i = from; i <= to; i++, n++) {
		snprintf(buf[n], sizeof(buf[n]), "e%llu.%llu", (unsigned long long)i,
			 (unsigned long long)term);
		e[n] = (struct rlog_entry){.index = i, .term = term, .type = (uint32_t)(i % 3),
					   .data = (const uint8_t *)buf[n], .len = strlen(buf[n])};
	}
	CHECK_EQ(rlog_append(s, e, n), DB_OK);
}

/* Entries lo..hi read back one by one: index, term, data as appended. */
static void check_entries(struct db_session *s, uint64_t lo, uint64_t hi, const uint64_t *terms)
{
	struct seen seen = {0};
	CHECK_EQ(rlog_read(s, lo, hi + 1, 1 << 20, visit, &seen), DB_OK);
	CHECK_EQ((uint64_t)seen.n, hi - lo + 1);
	for (int i = 0; i < seen.n; i++) {
		char want[16];
		snprintf(want, sizeof(want), "e%llu.%llu", (unsigned long long)(lo + (uint64_t)i),
			 (unsigned long long)terms[i]);
		CHECK_EQ(seen.idx[i], lo + (uint64_t)i);
		CHECK_EQ(seen.term[i], terms[i]);
		CHECK(strcmp(seen.data[i], want) == 0);
	}
}

/* Cuts inside and at the edges of rows: 100..109 in one row, 110 alone,
 * 111..115 in one row. */
static void rows(struct db_session *s)
{
	uint64_t first, last, term;
	uint64_t t[16];
	CHECK_EQ(rlog_compact(s, 100), DB_OK);
	append_range(s, 100, 109, 5);
	append_range(s, 110, 110, 5);
	append_range(s, 111, 115, 6);
	for (int i = 0; i < 16; i++)
		t[i] = i < 11 ? 5 : 6;
	check_entries(s, 100, 115, t);
	check_entries(s, 104, 112, t + 4); /* from inside one row into another */
	/* A budget that ends inside a row. */
	struct seen seen = {0};
	CHECK_EQ(rlog_read(s, 103, 116, 3 * strlen("e103.5"), visit, &seen), DB_OK);
	CHECK_EQ(seen.n, 3);
	CHECK_EQ(seen.idx[2], 105);
	/* A visitor that stops: nothing after it. */
	memset(&seen, 0, sizeof(seen));
	CHECK_EQ(rlog_read(s, 108, 116, 1 << 20, visit_two, &seen), DB_OK);
	CHECK_EQ(seen.n, 2);
	CHECK_EQ(seen.idx[1], 109);
	CHECK_EQ(rlog_term(s, 110, &term), DB_OK);
	CHECK_EQ(term, 5);
	CHECK_EQ(rlog_term(s, 113, &term), DB_OK);
	CHECK_EQ(term, 6);

	/* Cut at a row's first entry: the whole row goes. */
	append_range(s, 111, 112, 7);
	t[11] = t[12] = 7;
	check_entries(s, 100, 112, t);
	CHECK_EQ(rlog_term(s, 113, &term), DB_NOTFOUND);
	/* Cut inside a row leaving one entry of it, then two. */
	append_range(s, 101, 103, 8);
	t[1] = t[2] = t[3] = 8;
	check_entries(s, 100, 103, t);
	CHECK_EQ(rlog_truncate(s, 103), DB_OK);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(last, 102);
	check_entries(s, 100, 102, t);

	/* Compaction inside a row hides its earlier entries. */
	append_range(s, 103, 112, 9);
	for (int i = 3; i < 13; i++)
		t[i] = 9;
	CHECK_EQ(rlog_compact(s, 105), DB_OK);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 105);
	CHECK_EQ(last, 112);
	CHECK_EQ(rlog_term(s, 104, &term), DB_NOTFOUND);
	CHECK_EQ(rlog_read(s, 104, 106, 100, visit, &seen), DB_COMPACTED);
	check_entries(s, 105, 112, t + 5);
	/* ... and a cut inside that same row keeps the rest of it. */
	CHECK_EQ(rlog_truncate(s, 108), DB_OK);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 105);
	CHECK_EQ(last, 107);
	check_entries(s, 105, 107, t + 5);
}

static int count_big(void *arg, const struct rlog_entry *e)
{
	uint64_t *n = arg;
	char want = (char)('a' + e->index % 26);
	CHECK_EQ(e->len, (size_t)1000);
	CHECK(e->data[0] == want && e->data[999] == want);
	CHECK_EQ(e->term, 10);
	(*n)++;
	return 0;
}

/* 60 entries of 1,000 bytes in one append: several rows of at most ~12 KiB
 * each (storage/raftlog.c's ROW_BYTES), read back whole; a cut inside the
 * second row keeps what precedes it. */
static void big_append(struct db_session *s)
{
	static uint8_t data[60][1000];
	struct rlog_entry e[60];
	uint64_t first, last, n = 0;
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	for (int i = 0; i < 60; i++) {
		uint64_t idx = last + 1 + (uint64_t)i;
		memset(data[i], 'a' + (int)(idx % 26), sizeof(data[i]));
		e[i] = (struct rlog_entry){.index = idx, .term = 10, .data = data[i], .len = 1000};
	}
	CHECK_EQ(rlog_append(s, e, 60), DB_OK);
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	int rows = 0, rv;
	uint8_t kb[8];
	be64_put(kb, last + 1);
	WT_ITEM k = {.data = kb, .size = 8}, v;
	int exact;
	c->set_key(c, &k);
	rv = c->search_near(c, &exact);
	if (rv == 0 && exact < 0)
		rv = c->next(c); /* the rows of this append come after */
	for (; rv == 0; rv = c->next(c), rows++) {
		CHECK_EQ(c->get_value(c, &v), 0);
		CHECK(v.size <= 12 * 1024);
	}
	c->reset(c);
	CHECK(rows >= 5 && rows <= 6);
	CHECK_EQ(rlog_read(s, last + 1, last + 61, 1 << 20, count_big, &n), DB_OK);
	CHECK_EQ(n, 60);
	CHECK_EQ(rlog_truncate(s, last + 15), DB_OK);
	n = 0;
	CHECK_EQ(rlog_read(s, last + 1, last + 15, 1 << 20, count_big, &n), DB_OK);
	CHECK_EQ(n, 14);
	CHECK_EQ(rlog_bounds(s, &first, &n), DB_OK);
	CHECK_EQ(n, last + 14);
}

int main(void)
{
	char dir[64], err[256];
	struct db *db;
	struct db_session *s;
	check_tmpdir(dir, sizeof(dir));
	REQUIRE(db_open(dir, NULL, &db, err, sizeof(err)) == DB_OK);
	REQUIRE(rlog_init(db) == DB_OK);
	REQUIRE(db_session_open(db, &s) == DB_OK);

	uint64_t first, last, term;
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 1);
	CHECK_EQ(last, 0);
	struct rlog_hardstate hs;
	CHECK_EQ(rlog_load_hardstate(s, &hs), DB_OK);
	CHECK(hs.term == 0 && hs.vote == 0 && hs.commit == 0);

	append_range(s, 1, 10, 1);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 1);
	CHECK_EQ(last, 10);
	CHECK_EQ(rlog_term(s, 5, &term), DB_OK);
	CHECK_EQ(term, 1);
	CHECK_EQ(rlog_term(s, 11, &term), DB_NOTFOUND);

	/* A conflicting suffix from 6 on is replaced by term-2 entries 6..7. */
	append_range(s, 6, 7, 2);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(last, 7);
	CHECK_EQ(rlog_term(s, 7, &term), DB_OK);
	CHECK_EQ(term, 2);
	CHECK_EQ(rlog_term(s, 8, &term), DB_NOTFOUND);

	/* Appends in the caller's transaction vanish with its rollback. */
	REQUIRE(db_txn_begin(s) == DB_OK);
	append_range(s, 8, 9, 2);
	db_txn_abort(s);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(last, 7);

	struct seen seen = {0};
	CHECK_EQ(rlog_read(s, 2, 8, 1 << 20, visit, &seen), DB_OK);
	CHECK_EQ(seen.n, 6);
	CHECK_EQ(seen.idx[0], 2);
	CHECK(strcmp(seen.data[0], "e2.1") == 0);
	CHECK(strcmp(seen.data[5], "e7.2") == 0);
	/* A tiny budget still returns one entry. */
	memset(&seen, 0, sizeof(seen));
	CHECK_EQ(rlog_read(s, 2, 8, 1, visit, &seen), DB_OK);
	CHECK_EQ(seen.n, 1);
	/* Budget for two 4-byte entries. */
	memset(&seen, 0, sizeof(seen));
	CHECK_EQ(rlog_read(s, 2, 8, 8, visit, &seen), DB_OK);
	CHECK_EQ(seen.n, 2);
	CHECK_EQ(rlog_read(s, 2, 9, 100, visit, &seen), DB_NOTFOUND);

	/* Compaction. */
	CHECK_EQ(rlog_compact(s, 4), DB_OK);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 4);
	CHECK_EQ(last, 7);
	CHECK_EQ(rlog_read(s, 3, 5, 100, visit, &seen), DB_COMPACTED);
	CHECK_EQ(rlog_term(s, 3, &term), DB_NOTFOUND);

	hs = (struct rlog_hardstate){.term = 2, .vote = 3, .commit = 7};
	CHECK_EQ(rlog_save_hardstate(s, &hs), DB_OK);
	const uint8_t blob[] = {1, 2, 0, 4};
	CHECK_EQ(rlog_save_blob(s, "conf", blob, sizeof(blob)), DB_OK);
	CHECK_EQ(rlog_save_blob(s, "empty", blob, 0), DB_OK);

	/* Restart. */
	db_session_close(s);
	db_close(db);
	REQUIRE(db_open(dir, NULL, &db, err, sizeof(err)) == DB_OK);
	REQUIRE(db_session_open(db, &s) == DB_OK);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 4);
	CHECK_EQ(last, 7);
	CHECK_EQ(rlog_term(s, 6, &term), DB_OK);
	CHECK_EQ(term, 2);
	memset(&hs, 0, sizeof(hs));
	CHECK_EQ(rlog_load_hardstate(s, &hs), DB_OK);
	CHECK(hs.term == 2 && hs.vote == 3 && hs.commit == 7);
	uint8_t *b = NULL;
	size_t blen = 0;
	CHECK_EQ(rlog_load_blob(s, "conf", &b, &blen), DB_OK);
	CHECK(blen == sizeof(blob) && memcmp(b, blob, blen) == 0);
	free(b);
	CHECK_EQ(rlog_load_blob(s, "empty", &b, &blen), DB_OK);
	CHECK_EQ(blen, 0);
	free(b);
	CHECK_EQ(rlog_load_blob(s, "missing", &b, &blen), DB_NOTFOUND);

	/* Compacting past the end leaves an empty log that starts there. */
	CHECK_EQ(rlog_compact(s, 20), DB_OK);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 20);
	CHECK_EQ(last, 19);
	append_range(s, 20, 21, 3);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 20);
	CHECK_EQ(last, 21);

	rows(s);
	db_session_close(s);
	db_close(db);
	REQUIRE(db_open(dir, NULL, &db, err, sizeof(err)) == DB_OK);
	REQUIRE(db_session_open(db, &s) == DB_OK);
	CHECK_EQ(rlog_bounds(s, &first, &last), DB_OK);
	CHECK_EQ(first, 105);
	CHECK_EQ(last, 107);
	uint64_t nine[3] = {9, 9, 9};
	check_entries(s, 105, 107, nine);
	big_append(s);

	db_session_close(s);
	db_close(db);
	check_rmdir(dir);
	return check_done("test_raftlog");
}
