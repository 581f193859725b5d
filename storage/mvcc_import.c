/*
 * storage/mvcc_import.c — writing history entries with the revisions they
 * already have (see mvcc_import.h), in the table encodings of
 * mvcc_internal.h: the entry in `kv` linked to the key's previous entry,
 * the key's `current` row pointing at it, and `lease_keys`.
 */
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_import.h"
#include "storage/mvcc_internal.h"

static int insert(WT_CURSOR *c, const void *k, size_t klen, const void *v, size_t vlen)
{
	WT_ITEM key = {.data = k, .size = klen}, val = {.data = v, .size = vlen};
	c->set_key(c, &key);
	c->set_value(c, &val);
	int rv = c->insert(c);
	c->reset(c);
	return db_wt_error(rv);
}

static int lease_key(struct db_session *s, int64_t lease, const uint8_t *key, size_t key_len,
		     int attach)
{
	struct db_buf *b = &s->buf[0];
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
	rv = c->remove(c);
	c->reset(c);
	return db_wt_error(rv);
}

int mvcc_import_entry(struct db_session *s, const struct mvcc_kv *kv, int64_t sub, int tombstone)
{
	if (!s->in_txn || kv->key_len == 0)
		return DB_INVALID;
	WT_CURSOR *cur = db_cursor(s, DB_TBL_CURRENT);
	WT_ITEM k = {.data = kv->key, .size = kv->key_len}, v;
	struct mvcc_revpair link = {0, 0};
	int64_t old_lease = 0;
	cur->set_key(cur, &k);
	int rv = cur->search(cur);
	if (rv == 0) {
		struct mvcc_kv old;
		int64_t old_sub;
		if ((rv = cur->get_value(cur, &v)) != 0)
			rv = db_wt_error(rv);
		else if ((rv = mvcc_cur_val_decode(v.data, v.size, &old, &old_sub)) == DB_OK) {
			link.main = old.mod_revision;
			link.sub = old_sub;
			old_lease = old.version > 0 ? old.lease : 0;
		}
	} else {
		rv = rv == WT_NOTFOUND ? DB_OK : db_wt_error(rv);
	}
	cur->reset(cur);
	if (rv != DB_OK)
		return rv;
	struct mvcc_kv e = *kv;
	if (tombstone) {
		e.value = NULL;
		e.value_len = 0;
		e.create_revision = e.version = e.lease = 0;
	}
	/* history entry */
	struct db_buf *b = &s->buf[1];
	if ((rv = db_buf_reserve(b, mvcc_kv_val_max(e.key_len, e.value_len))) != DB_OK)
		return rv;
	uint8_t rk[MVCC_REV_BYTES];
	mvcc_rev_key(e.mod_revision, sub, rk);
	size_t vlen = mvcc_kv_val_encode(&e, tombstone, link, b->p);
	if ((rv = insert(db_cursor(s, DB_TBL_KV), rk, sizeof(rk), b->p, vlen)) != DB_OK)
		return rv;
	/* current row (a tombstone row has version 0) */
	uint8_t cv[MVCC_CUR_VAL_MAX];
	if ((rv = insert(cur, e.key, e.key_len, cv, mvcc_cur_val_encode(&e, sub, cv))) != DB_OK)
		return rv;
	if (old_lease != e.lease) {
		if (old_lease != 0 && (rv = lease_key(s, old_lease, e.key, e.key_len, 0)) != DB_OK)
			return rv;
		if (e.lease != 0 && (rv = lease_key(s, e.lease, e.key, e.key_len, 1)) != DB_OK)
			return rv;
	}
	return DB_OK;
}

int mvcc_import_finish(struct db_session *s, int64_t rev, int64_t compact_rev)
{
	if (!s->in_txn)
		return DB_INVALID;
	int rv = mvcc_meta_store(s, rev, compact_rev, 0);
	if (rv == DB_OK && compact_rev > 0)
		rv = mvcc_meta_put_u64(s, MVCC_META_COMPACTED, (uint64_t)compact_rev);
	return rv;
}
