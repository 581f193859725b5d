/*
 * storage/mvcc_compact.c — Compact: record the compact revision, then remove
 * history below it in the background.
 *
 * mvcc_compact only records the revision (in the caller's transaction, with
 * the other apply-loop changes); from then on reads below it fail. The
 * physical part, mvcc_compact_run, walks the whole index in key order and, per
 * user key, deletes every entry with main <= C except the newest one, which
 * is deleted too if it is a tombstone (the key did not exist at C). It works in
 * chunks of CHUNK removals, each its own transaction, so the apply loop is
 * never blocked behind it. It never touches revisions > C, which are the only
 * ones the writer creates, so the two do not conflict. "mvcc_compacted" in
 * meta records how far physical compaction got, so a restart resumes it.
 */
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_internal.h"

#define CHUNK 1000

int mvcc_compact(struct mvcc *m, struct db_session *s, int64_t rev)
{
	struct mvcc_txn_state *st;
	int rv = mvcc_txn_state(m, s, &st);
	if (rv != DB_OK)
		return rv;
	if (rev <= st->compact_rev)
		return DB_COMPACTED;
	if (rev > mvcc_txn_view_rev(st))
		return DB_FUTURE_REV;
	st->compact_rev = rev;
	/* Also stored now, so a caller ending with db_txn_commit keeps it too. */
	uint64_t ci = 0;
	int64_t r, c;
	if ((rv = mvcc_meta_load(s, &r, &c, &ci)) != DB_OK)
		return rv;
	return mvcc_meta_store(s, st->rev, rev, ci);
}

/* Per-user-key state carried across chunks. */
struct group {
	uint8_t *prefix; /* escaped key + terminator (s->buf[0]) */
	size_t len;
	int have;      /* a candidate (newest entry <= C so far) exists */
	int64_t main, sub;
	int tomb;
};

static int remove_entry(struct db_session *s, const uint8_t *prefix, size_t plen, int64_t main,
			int64_t sub)
{
	struct db_buf *b = &s->buf[2];
	int rv = db_buf_reserve(b, plen + MVCC_REV_BYTES);
	if (rv != DB_OK)
		return rv;
	memcpy(b->p, prefix, plen);
	mvcc_rev_key(main, sub, b->p + plen);
	WT_CURSOR *ix = db_cursor(s, DB_TBL_INDEX), *kv = db_cursor(s, DB_TBL_KV);
	WT_ITEM k = {.data = b->p, .size = plen + MVCC_REV_BYTES};
	ix->set_key(ix, &k);
	if ((rv = ix->remove(ix)) != 0)
		goto out;
	k.data = b->p + plen;
	k.size = MVCC_REV_BYTES;
	kv->set_key(kv, &k);
	rv = kv->remove(kv);
out:
	ix->reset(ix);
	kv->reset(kv);
	return db_wt_error(rv);
}

/*
 * One chunk: scan the index with c (a cursor of its own: removals go through
 * the session's cached cursors, which would lose this one's position) from
 * the resume key (exclusive; from the start when first) removing up to CHUNK
 * entries. *done when the index is exhausted. The last key seen is left in
 * s->buf[3] for the next chunk.
 */
static int chunk(struct db_session *s, WT_CURSOR *c, int64_t C, struct group *g, int first,
		 int *done)
{
	struct db_buf *resume = &s->buf[3], *gb = &s->buf[0];
	int rv, removed = 0;
	if (first) {
		rv = c->next(c);
	} else {
		rv = mvcc_seek_ge(c, resume->p, resume->len);
		if (rv == 0) { /* skip the resume key itself if it is still there */
			WT_ITEM k;
			if ((rv = c->get_key(c, &k)) == 0 &&
			    mvcc_key_cmp(k.data, k.size, resume->p, resume->len) == 0)
				rv = c->next(c);
		}
	}
	*done = 0;
	for (; rv == 0 && removed < CHUNK; rv = c->next(c)) {
		WT_ITEM k, v;
		if ((rv = c->get_key(c, &k)) != 0 || (rv = c->get_value(c, &v)) != 0)
			break;
		if (k.size < 2 + MVCC_REV_BYTES) {
			rv = DB_CORRUPT;
			goto out;
		}
		size_t plen = k.size - MVCC_REV_BYTES;
		const uint8_t *kp = k.data;
		int64_t main = (int64_t)be64_get(kp + plen);
		int64_t sub = (int64_t)be64_get(kp + plen + 8);
		int tomb = v.size > 0 && ((const uint8_t *)v.data)[0] == 1;
		/* Save the position before any removal moves cursor memory. */
		if ((rv = db_buf_reserve(resume, k.size)) != DB_OK)
			goto out;
		memcpy(resume->p, k.data, k.size);
		resume->len = k.size;

		int same = g->len == plen && memcmp(g->prefix, kp, plen) == 0;
		if (!same) {
			/* Leaving a group: its newest entry <= C goes only if it is a tombstone. */
			if (g->have && g->tomb) {
				if ((rv = remove_entry(s, g->prefix, g->len, g->main, g->sub)) != DB_OK)
					goto out;
				removed++;
			}
			if ((rv = db_buf_reserve(gb, plen)) != DB_OK)
				goto out;
			memcpy(gb->p, resume->p, plen);
			g->prefix = gb->p;
			g->len = plen;
			g->have = 0;
		}
		if (main > C)
			continue; /* newer than C: kept, and so is the candidate */
		if (g->have) {
			if ((rv = remove_entry(s, g->prefix, g->len, g->main, g->sub)) != DB_OK)
				goto out;
			removed++;
		}
		g->have = 1;
		g->main = main;
		g->sub = sub;
		g->tomb = tomb;
	}
	if (rv == WT_NOTFOUND) {
		/* End of the index: settle the last group. */
		if (g->have && g->tomb) {
			if ((rv = remove_entry(s, g->prefix, g->len, g->main, g->sub)) != DB_OK)
				goto out;
		}
		g->have = 0;
		*done = 1;
		rv = 0;
	}
	rv = db_wt_error(rv);
out:
	c->reset(c);
	return rv;
}

int mvcc_compact_run(struct mvcc *m, struct db_session *s)
{
	return mvcc_compact_run_to(m, s, INT64_MAX);
}

int mvcc_compact_run_to(struct mvcc *m, struct db_session *s, int64_t upto)
{
	if (s->in_txn)
		return DB_INVALID;
	pthread_mutex_lock(&m->compact_mu);
	int64_t rev, C;
	uint64_t ci, compacted = 0;
	int rv = db_txn_begin(s);
	if (rv != DB_OK)
		goto out;
	if ((rv = mvcc_meta_load(s, &rev, &C, &ci)) != DB_OK)
		goto abort;
	if (C > upto)
		C = upto;
	rv = mvcc_meta_get_u64(s, MVCC_META_COMPACTED, &compacted);
	if (rv == DB_NOTFOUND)
		rv = DB_OK;
	if (rv != DB_OK || (int64_t)compacted >= C)
		goto abort; /* nothing to do */
	WT_CURSOR *scan;
	rv = db_wt_error(s->wt->open_cursor(s->wt, "table:index", NULL, NULL, &scan));
	if (rv != DB_OK)
		goto abort;
	struct group g = {0};
	int done = 0;
	for (int first = 1; !done; first = 0) {
		if (!first && (rv = db_txn_begin(s)) != DB_OK)
			break;
		if ((rv = chunk(s, scan, C, &g, first, &done)) != DB_OK ||
		    (done && (rv = mvcc_meta_put_u64(s, MVCC_META_COMPACTED, (uint64_t)C)) != DB_OK)) {
			db_txn_abort(s);
			break;
		}
		/* Not synced: a crash only means the next run redoes this chunk. */
		if ((rv = db_txn_commit(s, 0)) != DB_OK)
			break;
	}
	scan->close(scan);
	goto out;
abort:
	db_txn_abort(s);
out:
	pthread_mutex_unlock(&m->compact_mu);
	return rv;
}
