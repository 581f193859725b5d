/*
 * storage/snapshot.c — dump and restore of the state tables.
 *
 * Record: u8 tag | BE32 key length | key | BE32 value length | value.
 * Tags name what a record restores into; they are part of the dump format
 * and never change meaning (a member may restore a dump from an older
 * binary): 1 kv, 2 current, 3 lease_keys, 4 meta, 5 lease, 6 auth,
 * 7 a raft_state blob (key = its name, as rlog_save_blob takes it), 0 the
 * end (no key or value).
 * Tables are dumped in key order, so a restore appends.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/db_internal.h"
#include "storage/mvcc_internal.h"
#include "storage/raftlog.h"
#include "storage/snapshot.h"

#define TAG_END 0
#define TAG_BLOB 7
#define RESTORE_TXN_BYTES (8u << 20) /* rows per restore transaction, by size */
#define RESTORE_MAX_FIELD (64u << 20) /* larger than any row we write */

static const struct {
	uint8_t tag;
	enum db_table table;
} state_tables[] = {
	{1, DB_TBL_KV},    {2, DB_TBL_CURRENT}, {3, DB_TBL_LEASE_KEYS},
	{4, DB_TBL_META},  {5, DB_TBL_LEASE},   {6, DB_TBL_AUTH},
};
#define N_STATE (sizeof(state_tables) / sizeof(state_tables[0]))

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int put_record(snap_write_fn out, void *arg, uint8_t tag, const void *k, size_t klen,
		      const void *v, size_t vlen)
{
	uint8_t h[5];
	h[0] = tag;
	be32(h + 1, (uint32_t)klen);
	if (out(arg, h, 5) != 0 || (klen > 0 && out(arg, k, klen) != 0))
		return DB_IO;
	be32(h, (uint32_t)vlen);
	if (out(arg, h, 4) != 0 || (vlen > 0 && out(arg, v, vlen) != 0))
		return DB_IO;
	return DB_OK;
}

static int dump_table(WT_CURSOR *c, uint8_t tag, snap_write_fn out, void *arg)
{
	int wrv;
	c->reset(c);
	while ((wrv = c->next(c)) == 0) {
		WT_ITEM k, v;
		if ((wrv = c->get_key(c, &k)) != 0 || (wrv = c->get_value(c, &v)) != 0)
			break;
		int rv = put_record(out, arg, tag, k.data, k.size, v.data, v.size);
		if (rv != DB_OK) {
			c->reset(c);
			return rv;
		}
	}
	c->reset(c);
	return wrv == WT_NOTFOUND ? DB_OK : db_wt_error(wrv);
}

int snap_dump(struct db_session *s, const char *const *blobs, size_t n, snap_write_fn out,
	      void *arg, uint64_t *ci)
{
	if (s->in_txn)
		return DB_INVALID;
	int rv = db_txn_begin(s);
	if (rv != DB_OK)
		return rv;
	int64_t rev, crev;
	rv = mvcc_meta_load(s, &rev, &crev, ci);
	for (size_t i = 0; rv == DB_OK && i < N_STATE; i++)
		rv = dump_table(db_cursor(s, state_tables[i].table), state_tables[i].tag, out, arg);
	for (size_t i = 0; rv == DB_OK && i < n; i++) {
		uint8_t *v = NULL;
		size_t vlen = 0;
		rv = rlog_load_blob(s, blobs[i], &v, &vlen);
		if (rv == DB_OK)
			rv = put_record(out, arg, TAG_BLOB, blobs[i], strlen(blobs[i]), v, vlen);
		else if (rv == DB_NOTFOUND)
			rv = DB_OK;
		free(v);
	}
	if (rv == DB_OK)
		rv = put_record(out, arg, TAG_END, NULL, 0, NULL, 0);
	db_txn_abort(s); /* read only */
	return rv;
}

/* Remove every row of one table, in bounded transactions. */
static int clear_table(struct db_session *s, WT_CURSOR *c)
{
	for (;;) {
		int rv = db_txn_begin(s);
		if (rv != DB_OK)
			return rv;
		size_t n = 0;
		int wrv = 0;
		c->reset(c);
		while (n < 20000 && (wrv = c->next(c)) == 0) {
			if ((wrv = c->remove(c)) != 0)
				break;
			n++;
		}
		c->reset(c);
		if (wrv != 0 && wrv != WT_NOTFOUND) {
			db_txn_abort(s);
			return db_wt_error(wrv);
		}
		if ((rv = db_txn_commit(s, 0)) != DB_OK)
			return rv;
		if (wrv == WT_NOTFOUND)
			return DB_OK;
	}
}

static WT_CURSOR *tag_cursor(struct db_session *s, uint8_t tag)
{
	for (size_t i = 0; i < N_STATE; i++)
		if (state_tables[i].tag == tag)
			return db_cursor(s, state_tables[i].table);
	return NULL;
}

static void reset_all(struct db_session *s)
{
	for (size_t i = 0; i < N_STATE; i++) {
		WT_CURSOR *c = db_cursor(s, state_tables[i].table);
		c->reset(c);
	}
}

static int read_field(snap_read_fn in, void *arg, struct db_buf *b, uint32_t *len)
{
	uint8_t h[4];
	if (in(arg, h, 4) != 0)
		return DB_CORRUPT;
	*len = get_be32(h);
	if (*len > RESTORE_MAX_FIELD || db_buf_reserve(b, *len ? *len : 1) != DB_OK)
		return *len > RESTORE_MAX_FIELD ? DB_CORRUPT : DB_NOMEM;
	return *len == 0 || in(arg, b->p, *len) == 0 ? DB_OK : DB_CORRUPT;
}

static int load(struct db_session *s, snap_read_fn in, void *arg)
{
	/* Not the session's buffers: rlog_save_blob uses those. */
	struct db_buf kbuf = {0}, vbuf = {0}, *kb = &kbuf, *vb = &vbuf;
	size_t bytes = 0;
	int rv = db_txn_begin(s);
	while (rv == DB_OK) {
		uint8_t tag;
		uint32_t klen, vlen;
		if (in(arg, &tag, 1) != 0) {
			rv = DB_CORRUPT;
			break;
		}
		WT_CURSOR *c = tag_cursor(s, tag);
		if (tag != TAG_END && tag != TAG_BLOB && c == NULL) {
			rv = DB_CORRUPT;
			break;
		}
		if ((rv = read_field(in, arg, kb, &klen)) != DB_OK ||
		    (rv = read_field(in, arg, vb, &vlen)) != DB_OK)
			break;
		if (tag == TAG_END) {
			reset_all(s);
			rv = db_txn_commit(s, 0);
			break;
		}
		if (tag == TAG_BLOB) {
			char name[64];
			if (klen == 0 || klen >= sizeof(name)) {
				rv = DB_CORRUPT;
				break;
			}
			memcpy(name, kb->p, klen);
			name[klen] = 0;
			if ((rv = rlog_save_blob(s, name, vb->p, vlen)) != DB_OK)
				break;
		} else {
			/* No reset between rows: a cursor still on its leaf lets
			 * WiredTiger try that page first, and a dump comes in
			 * key order. */
			WT_ITEM k = {.data = kb->p, .size = klen}, v = {.data = vb->p, .size = vlen};
			c->set_key(c, &k);
			c->set_value(c, &v);
			int wrv = c->insert(c);
			if (wrv != 0) {
				rv = db_wt_error(wrv);
				break;
			}
		}
		bytes += klen + vlen;
		if (bytes >= RESTORE_TXN_BYTES) {
			bytes = 0;
			reset_all(s);
			if ((rv = db_txn_commit(s, 0)) == DB_OK)
				rv = db_txn_begin(s);
		}
	}
	reset_all(s);
	if (s->in_txn)
		db_txn_abort(s);
	free(kbuf.p);
	free(vbuf.p);
	return rv;
}

int snap_restore(struct mvcc *m, struct db_session *s, snap_read_fn in, void *arg)
{
	if (s->in_txn)
		return DB_INVALID;
	pthread_mutex_lock(&m->compact_mu);
	int rv = DB_OK;
	for (size_t i = 0; rv == DB_OK && i < N_STATE; i++)
		rv = clear_table(s, db_cursor(s, state_tables[i].table));
	if (rv == DB_OK)
		rv = load(s, in, arg);
	int64_t rev = 0, crev = 0, keys = 0;
	uint64_t ci = 0;
	int own;
	if (rv == DB_OK && (rv = db_read_begin(s, &own)) == DB_OK) {
		rv = mvcc_meta_load(s, &rev, &crev, &ci);
		if (rv == DB_OK)
			rv = mvcc_keys_load(s, &keys);
		db_read_end(s, own);
	}
	if (rv == DB_OK) {
		atomic_store(&m->keys, keys);
		/* Revision last: a reader that sees it sees the rest. */
		atomic_store(&m->consistent_index, ci);
		atomic_store(&m->compact_rev, crev);
		atomic_store(&m->rev, rev);
	}
	pthread_mutex_unlock(&m->compact_mu);
	return rv;
}
