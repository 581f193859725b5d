/*
 * tests/storage/fixture.h — a real store in a temporary directory, and
 * one-line helpers for single-request writes and reads, so the tests read as
 * sequences of etcd operations.
 */
#ifndef METAD_TESTS_STORAGE_FIXTURE_H
#define METAD_TESTS_STORAGE_FIXTURE_H

#include "storage/mvcc_internal.h"
#include "tests/storage/check.h"

struct fx {
	char dir[64];
	struct db *db;
	struct mvcc *m;
	struct db_session *s;
	uint64_t ci; /* consistent index given to the next commit */
};

static inline void fx_open_dir(struct fx *f)
{
	char err[256];
	int rv = db_open(f->dir, NULL, &f->db, err, sizeof(err));
	if (rv != DB_OK)
		fprintf(stderr, "db_open: %s\n", err);
	REQUIRE(rv == DB_OK);
	REQUIRE(mvcc_open(f->db, &f->m) == DB_OK);
	REQUIRE(db_session_open(f->db, &f->s) == DB_OK);
	f->ci = mvcc_consistent_index(f->m);
}

static inline void fx_open(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	check_tmpdir(f->dir, sizeof(f->dir));
	fx_open_dir(f);
}

/* Close everything but keep the directory (for restart tests). */
static inline void fx_close_keep(struct fx *f)
{
	db_session_close(f->s);
	mvcc_close(f->m);
	db_close(f->db);
	f->s = NULL;
	f->m = NULL;
	f->db = NULL;
}

static inline void fx_reopen(struct fx *f)
{
	fx_close_keep(f);
	fx_open_dir(f);
}

static inline void fx_close(struct fx *f)
{
	fx_close_keep(f);
	check_rmdir(f->dir);
}

/* Start a one-request write transaction. */
static inline void fx_begin(struct fx *f)
{
	REQUIRE(db_txn_begin(f->s) == DB_OK);
	mvcc_req_begin(f->m, f->s);
}

/* End the request and commit; returns the request's revision. */
static inline int64_t fx_end(struct fx *f)
{
	int64_t rev = mvcc_req_end(f->m, f->s);
	REQUIRE(mvcc_commit(f->m, f->s, ++f->ci, 0) == DB_OK);
	return rev;
}

static inline int64_t fx_put(struct fx *f, const char *k, const char *v, int64_t lease)
{
	fx_begin(f);
	CHECK_EQ(mvcc_put(f->m, f->s, (const uint8_t *)k, strlen(k), (const uint8_t *)v,
			  strlen(v), lease, NULL, NULL),
		 DB_OK);
	return fx_end(f);
}

/* Delete [k, end) (end NULL: the single key); returns the deleted count. */
static inline int64_t fx_del(struct fx *f, const char *k, const char *end)
{
	int64_t n = -1;
	fx_begin(f);
	CHECK_EQ(mvcc_delete_range(f->m, f->s, (const uint8_t *)k, strlen(k),
				   (const uint8_t *)end, end ? (end[0] ? strlen(end) : 1) : 0, &n,
				   NULL),
		 DB_OK);
	fx_end(f);
	return n;
}

/* Record a compaction at rev in its own transaction; mvcc_compact's result. */
static inline int fx_compact(struct fx *f, int64_t rev)
{
	REQUIRE(db_txn_begin(f->s) == DB_OK);
	int rv = mvcc_compact(f->m, f->s, rev);
	if (rv != DB_OK) {
		mvcc_abort(f->m, f->s);
		return rv;
	}
	REQUIRE(mvcc_commit(f->m, f->s, ++f->ci, 0) == DB_OK);
	return DB_OK;
}

/* Rows in a table (raw count through the session's cursor). */
static inline int64_t fx_rows(struct fx *f, enum db_table t)
{
	WT_CURSOR *c = db_cursor(f->s, t);
	int64_t n = 0;
	while (c->next(c) == 0)
		n++;
	c->reset(c);
	return n;
}

/* Range [k, end) at rev (end NULL: single key; "" means "\0"). res is zeroed here. */
static inline int fx_range(struct fx *f, const char *k, const char *end, int64_t rev,
			   int64_t limit, unsigned flags, struct mvcc_range_res *res)
{
	struct mvcc_range_req req = {
		.key = (const uint8_t *)k,
		.key_len = strlen(k),
		.end = (const uint8_t *)end,
		.end_len = end ? (end[0] ? strlen(end) : 1) : 0,
		.rev = rev,
		.limit = limit,
		.flags = flags,
	};
	memset(res, 0, sizeof(*res));
	return mvcc_range(f->m, f->s, &req, res);
}

/* Value of k at rev ("" sets *found 0). Returns mod_revision or 0. */
static inline int64_t fx_get(struct fx *f, const char *k, int64_t rev, char *val, size_t vlen)
{
	struct mvcc_range_res res;
	int64_t mod = 0;
	val[0] = 0;
	CHECK_EQ(fx_range(f, k, NULL, rev, 0, 0, &res), DB_OK);
	if (res.kvs.n == 1) {
		snprintf(val, vlen, "%.*s", (int)res.kvs.kvs[0].value_len,
			 (const char *)res.kvs.kvs[0].value);
		mod = res.kvs.kvs[0].mod_revision;
	}
	mvcc_kvlist_free(&res.kvs);
	return mod;
}

#endif
