/*
 * storage/mvcc_changes.c — reading the history in revision order, for watch
 * catch-up and for the watch hub's view of each new batch.
 *
 * The kv table is keyed by (main, sub) revision, so "every change between two
 * revisions" is one ordered scan; the key filter is applied while scanning.
 * Scans stop only at a revision boundary (never inside one revision), so a
 * caller reading in chunks sees each revision's events together.
 */
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_internal.h"

static int changes(struct db_session *s, bool check_compacted, int64_t from_rev, int64_t to_rev,
		   const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
		   size_t max_changes, mvcc_change_fn fn, void *arg, int64_t *last_rev)
{
	*last_rev = from_rev - 1;
	if (from_rev > to_rev)
		return DB_OK;
	/* The caller's open transaction, or a snapshot of our own. */
	bool own = !s->in_txn;
	int rv = own ? db_txn_begin(s) : DB_OK;
	if (rv != DB_OK)
		return rv;
	int64_t rev, crev;
	uint64_t ci;
	if ((rv = mvcc_meta_load(s, &rev, &crev, &ci)) != DB_OK)
		goto out;
	if (check_compacted && from_rev < crev) {
		rv = DB_COMPACTED;
		goto out;
	}
	if (to_rev > rev)
		to_rev = rev; /* nothing above the committed revision in this snapshot */
	struct mvcc_bounds b;
	if (key != NULL)
		mvcc_bounds_init(&b, key, key_len, end, end_len);
	WT_CURSOR *c = db_cursor(s, DB_TBL_KV);
	uint8_t start[MVCC_REV_BYTES];
	mvcc_rev_key(from_rev, 0, start);
	size_t n = 0;
	int64_t cur = from_rev - 1; /* revision being reported */
	int wrv; /* WiredTiger's code, kept apart from DB_* codes */
	for (wrv = mvcc_seek_ge(c, start, sizeof(start)); wrv == 0; wrv = c->next(c)) {
		WT_ITEM k, v;
		if ((wrv = c->get_key(c, &k)) != 0 || (wrv = c->get_value(c, &v)) != 0)
			break;
		if (k.size != MVCC_REV_BYTES) {
			rv = DB_CORRUPT;
			goto out;
		}
		int64_t main = (int64_t)be64_get(k.data);
		if (main > to_rev)
			break;
		if (main != cur) {
			/* A revision boundary: the only place a chunk may end. */
			if (max_changes && n >= max_changes) {
				*last_rev = cur;
				rv = DB_OK;
				goto out;
			}
			cur = main;
		}
		struct mvcc_change ch;
		struct mvcc_revpair prev;
		memset(&ch, 0, sizeof(ch));
		if ((rv = mvcc_kv_val_decode(v.data, v.size, &ch.kv, &ch.tombstone, &prev)) != DB_OK)
			goto out;
		if (key != NULL) {
			bool before = mvcc_key_cmp(ch.kv.key, ch.kv.key_len, b.key, b.key_len) < 0;
			if (before || mvcc_bounds_past(&b, ch.kv.key, ch.kv.key_len))
				continue;
		}
		ch.kv.mod_revision = main;
		ch.sub = (int64_t)be64_get((const uint8_t *)k.data + 8);
		ch.prev_main = prev.main;
		ch.prev_sub = prev.sub;
		if (ch.tombstone) {
			ch.kv.create_revision = ch.kv.version = ch.kv.lease = 0;
			ch.kv.value = NULL;
			ch.kv.value_len = 0;
		}
		n++;
		int stop = fn(arg, &ch);
		if (stop) {
			rv = stop;
			goto out;
		}
	}
	if (wrv == 0 || wrv == WT_NOTFOUND) {
		*last_rev = to_rev;
		rv = DB_OK;
	} else {
		rv = db_wt_error(wrv);
	}
out:
	if (own)
		db_txn_abort(s); /* read-only: releases the snapshot, resets cursors */
	else
		db_cursor(s, DB_TBL_KV)->reset(db_cursor(s, DB_TBL_KV));
	return rv;
}

int mvcc_changes(struct mvcc *m, struct db_session *s, int64_t from_rev, int64_t to_rev,
		 const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
		 size_t max_changes, mvcc_change_fn fn, void *arg, int64_t *last_rev)
{
	(void)m;
	return changes(s, true, from_rev, to_rev, key, key_len, end, end_len, max_changes, fn, arg,
		       last_rev);
}

int mvcc_changes_any(struct mvcc *m, struct db_session *s, int64_t from_rev, int64_t to_rev,
		     size_t max_changes, mvcc_change_fn fn, void *arg, int64_t *last_rev)
{
	(void)m;
	return changes(s, false, from_rev, to_rev, NULL, 0, NULL, 0, max_changes, fn, arg, last_rev);
}
