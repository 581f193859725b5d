/*
 * storage/mvcc_write.c — Put and DeleteRange inside a write request.
 *
 * Each change writes two places in the caller's transaction: the history
 * entry in `kv` at (revision, sub), linked to the key's entry before it, and
 * the key's `current` row, which points at the new entry (a delete leaves a
 * tombstone row: see mvcc_internal.h); plus `lease_keys` when a lease is
 * attached or detached. Encoding goes through the session's scratch
 * buffers, so a put allocates nothing once those have grown.
 */
#include <string.h>

#include "storage/mvcc_internal.h"
#include "storage/codec_internal.h"

/* Scratch buffers of the session used here. */
#define BUF_A 0 /* lease_keys keys being written */
#define BUF_B 1 /* values being written */
#define BUF_K 3 /* the deleted key, copied out of cursor memory */

static int insert(WT_CURSOR *c, const void *k, size_t klen, const void *v, size_t vlen)
{
	WT_ITEM key = {.data = k, .size = klen}, val = {.data = v, .size = vlen};
	c->set_key(c, &key);
	c->set_value(c, &val);
	int rv = c->insert(c);
	c->reset(c);
	return db_wt_error(rv);
}

static int lease_key_set(struct db_session *s, int64_t lease, const uint8_t *key,
			 size_t key_len, int attach)
{
	struct db_buf *b = &s->buf[BUF_A];
	int rv = db_buf_reserve(b, 8 + key_len);
	if (rv != DB_OK)
		return rv;
	be64_put(b->p, (uint64_t)lease);
	memcpy(b->p + 8, key, key_len);
	WT_CURSOR *c = db_cursor(s, DB_TBL_LEASE_KEYS);
	if (attach) {
		static const uint8_t zero = 0;
		return insert(c, b->p, 8 + key_len, &zero, 1);
	}
	WT_ITEM k = {.data = b->p, .size = 8 + key_len};
	c->set_key(c, &k);
	rv = c->remove(c); /* overwrite cursor: absent is not an error */
	c->reset(c);
	return db_wt_error(rv);
}

/* Write the history entry of kv at (main, sub), linked to prev. */
static int write_history(struct db_session *s, const struct mvcc_kv *kv, int64_t sub,
			 int tombstone, struct mvcc_revpair prev)
{
	struct db_buf *b = &s->buf[BUF_B];
	int rv = db_buf_reserve(b, mvcc_kv_val_max(kv->key_len, kv->value_len));
	if (rv != DB_OK)
		return rv;
	uint8_t rk[MVCC_REV_BYTES];
	mvcc_rev_key(kv->mod_revision, sub, rk);
	size_t vlen = mvcc_kv_val_encode(kv, tombstone, prev, b->p);
	return insert(db_cursor(s, DB_TBL_KV), rk, sizeof(rk), b->p, vlen);
}

/* Append old (decoded from `current`) to prev with its value, which lives in
 * its history entry. */
static int push_prev(struct db_session *s, struct mvcc_kvlist *prev, struct mvcc_kv *old,
		     int64_t old_sub)
{
	struct mvcc_kv h;
	int tomb;
	int rv = mvcc_history_get(s, old->mod_revision, old_sub, &h, &tomb, NULL);
	if (rv == DB_NOTFOUND)
		rv = DB_CORRUPT; /* a live key's newest entry is never compacted */
	if (rv == DB_OK) {
		old->value = h.value;
		old->value_len = h.value_len;
		rv = mvcc_kvlist_push(prev, old);
		old->value = NULL;
		old->value_len = 0;
	}
	mvcc_history_done(s);
	return rv;
}

/* The open request's state, or DB_INVALID outside a request. */
static int req_state(struct mvcc *m, struct db_session *s, struct mvcc_txn_state **st)
{
	int rv = mvcc_txn_state(m, s, st);
	if (rv != DB_OK)
		return rv;
	return (*st)->in_req ? DB_OK : DB_INVALID;
}

int mvcc_put(struct mvcc *m, struct db_session *s, const uint8_t *key, size_t key_len,
	     const uint8_t *value, size_t value_len, int64_t lease, struct mvcc_kvlist *prev,
	     struct mvcc_kvlist *out)
{
	struct mvcc_txn_state *st;
	int rv;
	if (key_len == 0 || lease < 0)
		return DB_INVALID;
	if ((rv = req_state(m, s, &st)) != DB_OK)
		return rv;

	/* The previous version decides create_revision, version and the old lease. */
	WT_CURSOR *cur = db_cursor(s, DB_TBL_CURRENT);
	WT_ITEM k = {.data = key, .size = key_len}, v;
	struct mvcc_kv old;
	int64_t old_sub;
	struct mvcc_revpair link = {0, 0};
	int found = 0;
	cur->set_key(cur, &k);
	rv = cur->search(cur);
	bool positioned = rv == 0;
	if (rv == 0) {
		if ((rv = cur->get_value(cur, &v)) != 0)
			rv = db_wt_error(rv);
		else if ((rv = mvcc_cur_val_decode(v.data, v.size, &old, &old_sub)) == DB_OK) {
			link.main = old.mod_revision;
			link.sub = old_sub;
			found = old.version > 0; /* else a tombstone row: a new generation */
		}
		if (found) {
			old.key = key;
			old.key_len = key_len;
			if (prev != NULL)
				rv = push_prev(s, prev, &old, old_sub);
		}
	} else {
		rv = rv == WT_NOTFOUND ? DB_OK : db_wt_error(rv);
	}
	/* No reset: the update below writes where the search stopped. */
	if (rv != DB_OK) {
		cur->reset(cur);
		return rv;
	}

	struct mvcc_kv kv = {
		.key = key,
		.key_len = key_len,
		.value = value,
		.value_len = value_len,
		.create_revision = found ? old.create_revision : st->req_rev,
		.mod_revision = st->req_rev,
		.version = found ? old.version + 1 : 1,
		.lease = lease,
	};
	int64_t old_lease = found ? old.lease : 0;
	int64_t sub = st->req_sub;
	struct db_buf *b = &s->buf[BUF_B];
	if ((rv = db_buf_reserve(b, MVCC_CUR_VAL_MAX)) != DB_OK) {
		cur->reset(cur);
		return rv;
	}
	size_t vlen = mvcc_cur_val_encode(&kv, sub, b->p);
	if (positioned) {
		/* The search left the cursor on the key's row: an update there
		 * skips the second descent an insert would make (WiredTiger's
		 * insert always searches from the root). */
		WT_ITEM val = {.data = b->p, .size = vlen};
		cur->set_value(cur, &val);
		rv = db_wt_error(cur->update(cur));
		cur->reset(cur);
	} else {
		rv = insert(cur, key, key_len, b->p, vlen);
	}
	if (rv != DB_OK)
		return rv;
	if ((rv = write_history(s, &kv, sub, 0, link)) != DB_OK)
		return rv;
	(void)mvcc_span_add(&m->written, kv.mod_revision, key, key_len); /* failing: widens */
	if (old_lease != lease) {
		if (old_lease != 0 && (rv = lease_key_set(s, old_lease, key, key_len, 0)) != DB_OK)
			return rv;
		if (lease != 0 && (rv = lease_key_set(s, lease, key, key_len, 1)) != DB_OK)
			return rv;
	}
	st->req_sub = sub + 1;
	st->keys_delta += !found;
	if (out != NULL)
		return mvcc_kvlist_push(out, &kv);
	return DB_OK;
}

/* Delete the key `current` is positioned on (kv decoded from it, its
 * newest entry at sub revision old_sub). */
static int delete_one(struct mvcc *m, struct db_session *s, struct mvcc_txn_state *st,
		      WT_CURSOR *cur, const struct mvcc_kv *old, int64_t old_sub)
{
	struct mvcc_kv tomb = {
		.key = old->key,
		.key_len = old->key_len,
		.mod_revision = st->req_rev,
	};
	struct mvcc_revpair link = {old->mod_revision, old_sub};
	int rv = write_history(s, &tomb, st->req_sub, 1, link);
	if (rv != DB_OK)
		return rv;
	(void)mvcc_span_add(&m->written, tomb.mod_revision, tomb.key, tomb.key_len);
	if (old->lease != 0 &&
	    (rv = lease_key_set(s, old->lease, old->key, old->key_len, 0)) != DB_OK)
		return rv;
	/* The row stays, pointing at the tombstone (version 0), so reads at
	 * older revisions still find the key's chain. cur is positioned on
	 * it, and update leaves it there for the next step. */
	uint8_t val[MVCC_CUR_VAL_MAX];
	WT_ITEM v = {.data = val, .size = mvcc_cur_val_encode(&tomb, st->req_sub, val)};
	cur->set_value(cur, &v);
	if ((rv = cur->update(cur)) != 0)
		return db_wt_error(rv);
	st->req_sub++;
	return DB_OK;
}

int mvcc_delete_range(struct mvcc *m, struct db_session *s, const uint8_t *key, size_t key_len,
		      const uint8_t *end, size_t end_len, int64_t *deleted, struct mvcc_kvlist *prev)
{
	struct mvcc_txn_state *st;
	int rv;
	*deleted = 0;
	if (key_len == 0 && end_len == 0)
		return DB_INVALID;
	if ((rv = req_state(m, s, &st)) != DB_OK)
		return rv;
	struct mvcc_bounds bnd;
	mvcc_bounds_init(&bnd, key, key_len, end, end_len);
	WT_CURSOR *cur = db_cursor(s, DB_TBL_CURRENT);
	struct db_buf *kb = &s->buf[BUF_K];
	WT_ITEM k, v;
	for (rv = mvcc_seek_bounds(cur, &bnd); rv == 0; rv = cur->next(cur)) {
		struct mvcc_kv old;
		int64_t old_sub;
		if ((rv = cur->get_key(cur, &k)) != 0 || (rv = cur->get_value(cur, &v)) != 0)
			break;
		if (mvcc_bounds_past(&bnd, k.data, k.size))
			break;
		if ((rv = mvcc_cur_val_decode(v.data, v.size, &old, &old_sub)) != DB_OK)
			goto out;
		if (old.version == 0) { /* already deleted */
			if (bnd.single)
				break;
			continue;
		}
		/* Copy the key: the remove below invalidates what get_key returned. */
		if ((rv = db_buf_reserve(kb, k.size)) != DB_OK)
			goto out;
		memcpy(kb->p, k.data, k.size);
		old.key = kb->p;
		old.key_len = k.size;
		if (prev != NULL && (rv = push_prev(s, prev, &old, old_sub)) != DB_OK)
			goto out;
		if ((rv = delete_one(m, s, st, cur, &old, old_sub)) != DB_OK)
			goto out;
		(*deleted)++;
		if (bnd.single)
			break;
	}
	rv = (rv == WT_NOTFOUND) ? DB_OK : db_wt_error(rv);
	if (rv == DB_OK)
		st->keys_delta -= *deleted;
out:
	cur->reset(cur);
	return rv;
}
