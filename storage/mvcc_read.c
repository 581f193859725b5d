/*
 * storage/mvcc_read.c — Range: at the head revision from `current`, at an
 * older revision from `index` + `kv`.
 *
 * Reading at the head must not walk history (a key with a million versions
 * costs the same as one with a single version), so it scans `current` and
 * reads each value from `kv` by its exact revision. A
 * historical read walks the index groups (one per user key, in revision
 * order), takes the newest entry at or below the wanted revision and skips
 * the rest of the group with one seek.
 */
#include <string.h>

#include "storage/mvcc_internal.h"

/* Scratch buffers of the session used here. */
#define BUF_GROUP 0 /* current index group prefix */
#define BUF_UKEY 1  /* decoded user key */
#define BUF_SEEK 2  /* encoded seek key */

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

int mvcc_history_get(struct db_session *s, int64_t main, int64_t sub, struct mvcc_kv *kv,
		     int *tombstone)
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
		return rv == WT_NOTFOUND ? DB_CORRUPT : db_wt_error(rv); /* referenced, missing */
	if ((rv = mvcc_kv_val_decode(v.data, v.size, kv, tombstone)) != DB_OK)
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

/* Range over `current`: the live keys at the snapshot's head revision. */
static int range_head(struct db_session *s, const struct mvcc_bounds *b,
		      const struct mvcc_range_req *req, struct mvcc_range_res *res)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_CURRENT);
	WT_ITEM k, v;
	struct mvcc_kv kv;
	int rv;
	if (b->single) {
		k.data = b->key;
		k.size = b->key_len;
		c->set_key(c, &k);
		rv = c->search(c);
	} else {
		rv = mvcc_seek_ge(c, b->key, b->key_len);
	}
	for (; rv == 0; rv = c->next(c)) {
		if ((rv = c->get_key(c, &k)) != 0 || (rv = c->get_value(c, &v)) != 0)
			break;
		if (mvcc_bounds_past(b, k.data, k.size))
			break;
		int64_t sub;
		if ((rv = mvcc_cur_val_decode(v.data, v.size, &kv, &sub)) != DB_OK)
			goto out;
		kv.key = k.data;
		kv.key_len = k.size;
		int fetched = wants_value(req, res);
		if (fetched) {
			struct mvcc_kv h;
			int tomb;
			if ((rv = mvcc_history_get(s, kv.mod_revision, sub, &h, &tomb)) != DB_OK) {
				mvcc_history_done(s);
				goto out;
			}
			kv.value = h.value;
			kv.value_len = h.value_len;
		}
		rv = emit(req, res, &kv);
		if (fetched)
			mvcc_history_done(s);
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

/* Fetch history entry (main, sub) and emit it under user key ukey. */
static int emit_history(struct db_session *s, int64_t main, int64_t sub,
			const struct mvcc_range_req *req, struct mvcc_range_res *res)
{
	int want_kv = !(req->flags & MVCC_COUNT_ONLY) &&
		      (req->limit <= 0 || (int64_t)res->kvs.n < req->limit);
	if (!want_kv) {
		res->count++;
		return DB_OK;
	}
	struct mvcc_kv kv;
	int tomb;
	int rv = mvcc_history_get(s, main, sub, &kv, &tomb);
	if (rv == DB_OK)
		rv = emit(req, res, &kv);
	mvcc_history_done(s);
	return rv;
}

/* Range over the history: for each key the newest version with main <= at. */
static int range_history(struct db_session *s, const struct mvcc_bounds *b, int64_t at,
			 const struct mvcc_range_req *req, struct mvcc_range_res *res)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_INDEX);
	struct db_buf *gb = &s->buf[BUF_GROUP], *ub = &s->buf[BUF_UKEY], *sb = &s->buf[BUF_SEEK];
	WT_ITEM k, v;
	int rv = db_buf_reserve(sb, mvcc_index_key_max(b->key_len));
	if (rv != DB_OK)
		return rv;
	size_t n = b->single ? mvcc_escape_key(b->key, b->key_len, sb->p)
			     : mvcc_escape_prefix(b->key, b->key_len, sb->p);
	rv = mvcc_seek_ge(c, sb->p, n);
	while (rv == 0) {
		if ((rv = c->get_key(c, &k)) != 0)
			break;
		size_t klen, glen;
		int64_t main, sub;
		if ((rv = db_buf_reserve(ub, k.size)) != DB_OK ||
		    (rv = db_buf_reserve(gb, k.size)) != DB_OK)
			goto out;
		if ((rv = mvcc_index_key_decode(k.data, k.size, ub->p, &klen, &glen, &main,
						&sub)) != DB_OK)
			goto out;
		if (mvcc_bounds_past(b, ub->p, klen))
			break;
		memcpy(gb->p, k.data, glen);
		gb->len = glen;
		/* Walk the group while revisions are <= at; remember the newest. */
		int64_t best_main = 0, best_sub = 0;
		int best_tomb = 0, in_group = 1;
		while (main <= at) {
			if ((rv = c->get_value(c, &v)) != 0)
				break;
			best_main = main;
			best_sub = sub;
			best_tomb = v.size > 0 && ((const uint8_t *)v.data)[0] == 1;
			if ((rv = c->next(c)) != 0 || (rv = c->get_key(c, &k)) != 0)
				break;
			if (k.size != glen + MVCC_REV_BYTES || memcmp(k.data, gb->p, glen) != 0) {
				in_group = 0;
				break;
			}
			mvcc_index_key_decode(k.data, k.size, ub->p, &klen, &glen, &main, &sub);
		}
		if (rv != 0 && rv != WT_NOTFOUND)
			break;
		int at_end = rv == WT_NOTFOUND;
		if (best_main > 0 && !best_tomb) {
			if ((rv = emit_history(s, best_main, best_sub, req, res)) != DB_OK)
				goto out;
		}
		if (b->single || at_end) {
			rv = WT_NOTFOUND;
			break;
		}
		if (in_group) {
			/* Newer versions remain: jump past the group (terminator 00 01 -> 00 02). */
			gb->p[glen - 1] = MVCC_TERM1 + 1;
			rv = mvcc_seek_ge(c, gb->p, glen);
		} else {
			rv = 0; /* already on the next group's first entry */
		}
	}
	rv = (rv == WT_NOTFOUND) ? DB_OK : db_wt_error(rv);
out:
	c->reset(c);
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
	if (at == cur)
		rv = range_head(s, &b, req, res);
	else
		rv = range_history(s, &b, at, req, res);
out:
	db_read_end(s, own);
	return rv;
}
