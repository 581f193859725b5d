/*
 * storage/mvcc_read.c — Range: a scan of `current`, walking back a key's
 * chain only where it changed after the wanted revision.
 *
 * Reading at the head must not walk history (a key with a million versions
 * costs the same as one with a single version), so it scans `current` and
 * reads each value from `kv` by its exact revision. At an older revision
 * the same scan follows the chain (newest first) of each key changed since
 * to its newest entry at or below that revision: one point read per newer
 * version, which compaction bounds.
 */
#include "storage/mvcc_internal.h"

void mvcc_bounds_init(struct mvcc_bounds *b, const uint8_t *key, size_t key_len,
		      const uint8_t *end, size_t end_len)
{
	b->key = key;
	b->key_len = key_len;
	b->single = end_len == 0;
	b->end = NULL;
	b->end_len = 0;
	if (end_len == 1 && end[0] == 0)
		return; /* "\0": every key >= key */
	if (end_len > 0) {
		b->end = end;
		b->end_len = end_len;
	}
}

int mvcc_bounds_past(const struct mvcc_bounds *b, const uint8_t *key, size_t key_len)
{
	if (b->single)
		return mvcc_key_cmp(key, key_len, b->key, b->key_len) != 0;
	return b->end != NULL && mvcc_key_cmp(key, key_len, b->end, b->end_len) >= 0;
}

int mvcc_seek_ge(WT_CURSOR *c, const uint8_t *k, size_t klen)
{
	WT_ITEM item = {.data = k, .size = klen};
	int exact;
	c->set_key(c, &item);
	int rv = c->search_near(c, &exact);
	if (rv == 0 && exact < 0)
		rv = c->next(c);
	return rv;
}

int mvcc_seek_bounds(WT_CURSOR *c, const struct mvcc_bounds *b)
{
	if (!b->single)
		return mvcc_seek_ge(c, b->key, b->key_len);
	WT_ITEM k = {.data = b->key, .size = b->key_len};
	c->set_key(c, &k);
	return c->search(c);
}

int mvcc_history_get(struct db_session *s, int64_t main, int64_t sub, struct mvcc_kv *kv,
		     int *tombstone, struct mvcc_revpair *prev)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_KV);
	uint8_t rk[MVCC_REV_BYTES];
	mvcc_rev_key(main, sub, rk);
	WT_ITEM k = {.data = rk, .size = sizeof(rk)}, v;
	c->set_key(c, &k);
	int rv = c->search(c);
	if (rv == 0)
		rv = c->get_value(c, &v);
	if (rv != 0)
		return db_wt_error(rv);
	if ((rv = mvcc_kv_val_decode(v.data, v.size, kv, tombstone, prev)) != DB_OK)
		return rv;
	kv->mod_revision = main;
	return DB_OK;
}

void mvcc_history_done(struct db_session *s)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_KV);
	c->reset(c);
}

/* Whether the next emit stores a value (not counting, not keys only, under
 * the limit): only then is the value worth reading. */
static int wants_value(const struct mvcc_range_req *req, const struct mvcc_range_res *res)
{
	return !(req->flags & (MVCC_COUNT_ONLY | MVCC_KEYS_ONLY)) &&
	       (req->limit <= 0 || (int64_t)res->kvs.n < req->limit);
}

/* Push kv unless only counting or the limit is reached. */
static int emit(const struct mvcc_range_req *req, struct mvcc_range_res *res,
		const struct mvcc_kv *kv)
{
	res->count++;
	if (req->flags & MVCC_COUNT_ONLY)
		return DB_OK;
	if (req->limit > 0 && (int64_t)res->kvs.n >= req->limit)
		return DB_OK;
	return mvcc_kvlist_push_flags(&res->kvs, kv, (req->flags & MVCC_KEYS_ONLY) != 0);
}

/* Emit kv, decoded from the key's `current` row (its newest entry is at
 * sub revision sub), reading the value from history only when it is kept. */
static int emit_head(struct db_session *s, const struct mvcc_kv *head, int64_t sub,
		     const struct mvcc_range_req *req, struct mvcc_range_res *res)
{
	if (!wants_value(req, res))
		return emit(req, res, head);
	struct mvcc_kv kv = *head, h;
	int tomb;
	int rv = mvcc_history_get(s, kv.mod_revision, sub, &h, &tomb, NULL);
	if (rv == DB_OK) {
		kv.value = h.value;
		kv.value_len = h.value_len;
		rv = emit(req, res, &kv);
	} else if (rv == DB_NOTFOUND) {
		rv = DB_CORRUPT; /* a live key's newest entry */
	}
	mvcc_history_done(s);
	return rv;
}

/*
 * The key whose newest entry is (main, sub), as it was at revision at:
 * walk its chain down to the first entry <= at and emit that unless it is a
 * tombstone. Entries at or below crev may have been compacted away; the
 * walk reaches one only when it is the newest <= crev (<= at), which
 * compaction removes only if it was a tombstone: the key did not exist.
 */
static int emit_at(struct db_session *s, int64_t main, int64_t sub, int64_t at, int64_t crev,
		   const struct mvcc_range_req *req, struct mvcc_range_res *res)
{
	int rv = DB_OK;
	while (main > 0) {
		struct mvcc_kv kv;
		struct mvcc_revpair prev;
		int tomb;
		rv = mvcc_history_get(s, main, sub, &kv, &tomb, &prev);
		if (rv == DB_NOTFOUND) {
			rv = main <= crev ? DB_OK : DB_CORRUPT;
		} else if (rv == DB_OK && main <= at) {
			if (!tomb)
				rv = emit(req, res, &kv);
		} else if (rv == DB_OK) {
			main = prev.main;
			sub = prev.sub;
			mvcc_history_done(s);
			continue;
		}
		mvcc_history_done(s);
		break;
	}
	return rv;
}

/* Every row of `current` in the bounds, as the key was at revision at: a
 * key unchanged since is its row (a tombstone row: deleted), one changed
 * after at is found down its chain. At the head, every key is the former. */
static int range_rows(struct db_session *s, const struct mvcc_bounds *b, int64_t at,
		      int64_t crev, const struct mvcc_range_req *req, struct mvcc_range_res *res)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_CURRENT);
	WT_ITEM k, v;
	int rv;
	for (rv = mvcc_seek_bounds(c, b); rv == 0; rv = c->next(c)) {
		if ((rv = c->get_key(c, &k)) != 0 || (rv = c->get_value(c, &v)) != 0)
			break;
		if (mvcc_bounds_past(b, k.data, k.size))
			break;
		struct mvcc_kv head;
		int64_t sub;
		if ((rv = mvcc_cur_val_decode(v.data, v.size, &head, &sub)) != DB_OK)
			goto out;
		if (head.mod_revision > at) {
			rv = emit_at(s, head.mod_revision, sub, at, crev, req, res);
		} else if (head.version > 0) { /* not a deleted key's tombstone row */
			head.key = k.data;
			head.key_len = k.size;
			rv = emit_head(s, &head, sub, req, res);
		}
		if (rv != DB_OK)
			goto out;
		if (b->single)
			break;
	}
	rv = (rv == WT_NOTFOUND) ? DB_OK : db_wt_error(rv);
out:
	c->reset(c);
	return rv;
}

int mvcc_history_kv(struct mvcc *m, struct db_session *s, int64_t main, int64_t sub,
		    struct mvcc_kvlist *out)
{
	(void)m;
	if (main <= 0)
		return DB_NOTFOUND;
	int own, rv = db_read_begin(s, &own);
	if (rv != DB_OK)
		return rv;
	struct mvcc_kv kv;
	int tomb;
	rv = mvcc_history_get(s, main, sub, &kv, &tomb, NULL);
	if (rv == DB_OK)
		rv = tomb ? DB_NOTFOUND : mvcc_kvlist_push(out, &kv);
	mvcc_history_done(s);
	db_read_end(s, own);
	return rv;
}

int mvcc_range(struct mvcc *m, struct db_session *s, const struct mvcc_range_req *req,
	       struct mvcc_range_res *res)
{
	int own, rv;
	int64_t cur, crev;
	if (req->key_len == 0 && req->end_len == 0)
		return DB_INVALID;
	if ((rv = db_read_begin(s, &own)) != DB_OK)
		return rv;
	if (own) {
		uint64_t ci;
		rv = mvcc_meta_load(s, &cur, &crev, &ci);
	} else {
		struct mvcc_txn_state *st;
		rv = mvcc_txn_state(m, s, &st);
		if (rv == DB_OK) {
			cur = mvcc_txn_view_rev(st);
			crev = st->compact_rev;
		}
	}
	if (rv != DB_OK)
		goto out;
	res->rev = cur;
	int64_t at = req->rev > 0 ? req->rev : cur;
	if (at > cur) {
		rv = DB_FUTURE_REV;
		goto out;
	}
	if (at < crev) {
		rv = DB_COMPACTED;
		goto out;
	}
	struct mvcc_bounds b;
	mvcc_bounds_init(&b, req->key, req->key_len, req->end, req->end_len);
	rv = range_rows(s, &b, at, crev, req, res);
out:
	db_read_end(s, own);
	return rv;
}
