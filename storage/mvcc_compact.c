/*
 * storage/mvcc_compact.c — Compact: record the compact revision, then remove
 * history below it in the background.
 *
 * mvcc_compact only records the revision (in the caller's transaction, with
 * the other apply-loop changes); from then on reads below it fail. The
 * physical part, mvcc_compact_run, reads `kv` in revision order from where
 * the last run stopped up to C, the compact revision. An entry E <= C makes
 * the key's entry before it (E's chain link) obsolete: removed. A tombstone
 * E <= C goes too when it is the key's newest entry <= C, with the key's
 * `current` row if it is its newest entry at all. So the work is
 * proportional to the history compacted, not to the number of keys.
 *
 * It works in chunks of m->compact_batch entries (etcd's
 * --experimental-compaction-batch-limit, 1000 by default), each its own
 * transaction under the
 * mvcc's apply_mu, which write transactions begun with mvcc_begin hold too:
 * only the two of them write `current`, and serialised they cannot conflict
 * (etcd's compaction, too, deletes in batches under the backend's write
 * lock). "mvcc_compacted" in meta records how far physical compaction got,
 * so a restart redoes at most the unfinished run, which is idempotent.
 */
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_internal.h"

int mvcc_compacted_rev(struct db_session *s, int64_t *rev)
{
	uint64_t v = 0;
	int rv = mvcc_meta_get_u64(s, MVCC_META_COMPACTED, &v);
	if (rv == DB_NOTFOUND)
		rv = DB_OK;
	*rev = rv == DB_OK ? (int64_t)v : 0;
	return rv;
}

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

/* Remove kv entry (main, sub); an absent one is not an error (overwrite
 * cursor), it was compacted before. */
static int remove_entry(struct db_session *s, int64_t main, int64_t sub)
{
	uint8_t rk[MVCC_REV_BYTES];
	mvcc_rev_key(main, sub, rk);
	WT_CURSOR *kv = db_cursor(s, DB_TBL_KV);
	WT_ITEM k = {.data = rk, .size = sizeof(rk)};
	kv->set_key(kv, &k);
	int rv = kv->remove(kv);
	kv->reset(kv);
	return db_wt_error(rv);
}

/* Whether the entry after tombstone (main, sub) in its key's chain, found
 * by walking down from the key's newest entry (head_main, head_sub), is
 * above C: then the tombstone is the key's newest entry <= C. */
static int next_above(struct db_session *s, int64_t head_main, int64_t head_sub, int64_t main,
		      int64_t sub, int64_t C, int *above)
{
	struct mvcc_revpair at = {head_main, head_sub};
	*above = 0;
	while (at.main > main) {
		struct mvcc_kv kv;
		struct mvcc_revpair prev;
		int tomb;
		int rv = mvcc_history_get(s, at.main, at.sub, &kv, &tomb, &prev);
		mvcc_history_done(s);
		if (rv != DB_OK)
			return rv == DB_NOTFOUND ? DB_CORRUPT : rv; /* above C: never removed */
		if (prev.main == main && prev.sub == sub) {
			*above = at.main > C;
			break;
		}
		at = prev;
	}
	return DB_OK;
}

/* Tombstone (main, sub) <= C of key: remove it if it is the key's newest
 * entry <= C, and with it the key's `current` row if it is its newest. */
static int remove_tombstone(struct db_session *s, const uint8_t *key, size_t key_len,
			    int64_t main, int64_t sub, int64_t C)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_CURRENT);
	WT_ITEM k = {.data = key, .size = key_len}, v;
	struct mvcc_kv head;
	int64_t head_sub;
	int above = 0;
	c->set_key(c, &k);
	int rv = db_wt_error(c->search(c));
	if (rv == DB_OK)
		rv = db_wt_error(c->get_value(c, &v));
	if (rv == DB_OK)
		rv = mvcc_cur_val_decode(v.data, v.size, &head, &head_sub);
	if (rv == DB_OK && head.mod_revision == main && head_sub == sub) {
		if ((rv = db_wt_error(c->remove(c))) == DB_OK)
			rv = remove_entry(s, main, sub);
	} else if (rv == DB_OK && head.mod_revision > C) {
		/* Recreated after C: nothing <= C will unlink it, so it goes now.
		 * (Recreated at or below C, the next entry's turn removes it.) */
		c->reset(c);
		rv = next_above(s, head.mod_revision, head_sub, main, sub, C, &above);
		if (rv == DB_OK && above)
			rv = remove_entry(s, main, sub);
	}
	c->reset(c);
	return rv == DB_NOTFOUND ? DB_OK : rv; /* no row: removed before */
}

/*
 * One chunk: up to limit entries of kv from *from (a revision key, updated)
 * with main <= C, read with scan (a cursor of its own: removals go through
 * the session's cached cursors, which would lose this one's position).
 * *done when the entries <= C are exhausted.
 */
static int chunk(struct db_session *s, WT_CURSOR *scan, int64_t C, uint8_t from[MVCC_REV_BYTES],
		 int limit, int *done)
{
	int rv, n = 0;
	*done = 0;
	for (rv = mvcc_seek_ge(scan, from, MVCC_REV_BYTES); rv == 0 && n < limit;
	     rv = scan->next(scan), n++) {
		WT_ITEM k, v;
		if ((rv = scan->get_key(scan, &k)) != 0 || (rv = scan->get_value(scan, &v)) != 0)
			break;
		if (k.size != MVCC_REV_BYTES) {
			rv = DB_CORRUPT;
			goto out;
		}
		int64_t main = (int64_t)be64_get(k.data);
		int64_t sub = (int64_t)be64_get((const uint8_t *)k.data + 8);
		if (main > C) {
			rv = WT_NOTFOUND;
			break;
		}
		struct mvcc_kv kv;
		struct mvcc_revpair prev;
		int tomb;
		if ((rv = mvcc_kv_val_decode(v.data, v.size, &kv, &tomb, &prev)) != DB_OK)
			goto out;
		/* Resume after this entry, and keep the key, whatever the removals
		 * below do to scan's memory. */
		mvcc_rev_key(main, sub + 1, from);
		struct db_buf *kb = &s->buf[0];
		if (tomb) {
			if ((rv = db_buf_reserve(kb, kv.key_len)) != DB_OK)
				goto out;
			memcpy(kb->p, kv.key, kv.key_len);
			kv.key = kb->p;
		}
		if (prev.main > 0 && (rv = remove_entry(s, prev.main, prev.sub)) != DB_OK)
			goto out;
		if (tomb && (rv = remove_tombstone(s, kv.key, kv.key_len, main, sub, C)) != DB_OK)
			goto out;
	}
	if (rv == WT_NOTFOUND) {
		*done = 1;
		rv = 0;
	}
	rv = db_wt_error(rv);
out:
	scan->reset(scan);
	return rv;
}

void mvcc_set_compact_batch(struct mvcc *m, int n)
{
	if (n > 0)
		atomic_store(&m->compact_batch, n);
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
	db_txn_abort(s); /* read only so far; each chunk has its own */
	WT_CURSOR *scan;
	char uri[64];
	db_table_uri(DB_TBL_KV, s->gen, uri, sizeof(uri)); /* no switch meanwhile: compact_mu */
	rv = db_wt_error(s->wt->open_cursor(s->wt, uri, NULL, NULL, &scan));
	if (rv != DB_OK)
		goto out;
	uint8_t from[MVCC_REV_BYTES];
	mvcc_rev_key((int64_t)compacted + 1, 0, from);
	for (int done = 0; !done && rv == DB_OK;) {
		/* Locked before the snapshot, as mvcc_begin. */
		pthread_mutex_lock(&m->apply_mu);
		if ((rv = db_txn_begin(s)) == DB_OK) {
			if ((rv = chunk(s, scan, C, from, atomic_load(&m->compact_batch), &done)) != DB_OK ||
			    (done && (rv = mvcc_meta_put_u64(s, MVCC_META_COMPACTED, (uint64_t)C)) != DB_OK))
				db_txn_abort(s);
			else /* not synced: a crash only means the next run redoes this */
				rv = db_txn_commit(s, 0);
		}
		pthread_mutex_unlock(&m->apply_mu);
	}
	scan->close(scan);
	goto out;
abort:
	db_txn_abort(s);
out:
	pthread_mutex_unlock(&m->compact_mu);
	return rv;
}
