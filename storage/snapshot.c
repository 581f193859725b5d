/*
 * storage/snapshot.c — dump and restore of the state tables.
 *
 * Record: u8 tag | BE32 key length | key | BE32 value length | value.
 * Tags name what a record restores into; they are part of the dump format
 * and never change meaning (a member may restore a dump from an older
 * binary): 1 kv, 2 current, 3 lease_keys, 4 meta, 5 lease, 6 auth,
 * 7 a raft_state blob (key = its name, as rlog_save_blob takes it), 0 the
 * end (no key or value).
 * Tables are dumped in key order, one after another, so a load appends
 * each with a bulk cursor into a new generation of the state tables; a
 * load takes them in any order. kv goes last: a member loads the small
 * rows of current (1M keys: ~64 MiB, 1M rows) slower than the leader dumps
 * them, and kv's large rows faster, so the member makes up during kv what
 * it lost during current instead of loading current after the dump ended
 * (six alternating 1M-key catch-ups: 337-497 ms from the dump's end to the
 * member's, against 389-879 with kv first).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "storage/db_internal.h"
#include "storage/mvcc_internal.h"
#include "storage/raftlog.h"
#include "storage/snapshot.h"

#define TAG_END 0
#define TAG_BLOB 7
#define RESTORE_MAX_FIELD (64u << 20) /* larger than any row we write */

static const struct {
	uint8_t tag;
	enum db_table table;
} state_tables[] = {
	{2, DB_TBL_CURRENT}, {3, DB_TBL_LEASE_KEYS}, {4, DB_TBL_META},
	{5, DB_TBL_LEASE},   {6, DB_TBL_AUTH},       {1, DB_TBL_KV},
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
	if (rv == DB_OK && out(arg, NULL, 0) != 0) /* *ci is known */
		rv = DB_IO;
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

/* ---- loading a dump beside the live store ---- */

struct blob {
	char name[64];
	uint8_t *v;
	size_t len;
};

struct snap_load {
	struct db *db;
	WT_SESSION *ws;
	uint32_t gen;      /* the generation being loaded */
	uint8_t tag;       /* table of the open bulk cursor (0: none) */
	uint8_t done_tags; /* bit per table loaded: each comes in one run */
	WT_CURSOR *bulk;
	bool ended, switched;
	struct db_buf pend; /* an incomplete record carried between feeds */
	struct blob *blobs;
	size_t nblobs;
};

static int table_of(uint8_t tag, enum db_table *t)
{
	for (size_t i = 0; i < N_STATE; i++)
		if (state_tables[i].tag == tag) {
			*t = state_tables[i].table;
			return 0;
		}
	return -1;
}

static bool exists(WT_SESSION *ws, const char *uri)
{
	WT_CURSOR *meta;
	if (ws->open_cursor(ws, "metadata:", NULL, NULL, &meta) != 0)
		return true; /* cannot tell: do not use it */
	meta->set_key(meta, uri);
	bool found = meta->search(meta) != WT_NOTFOUND;
	meta->close(meta);
	return found;
}

static void drop_gen(WT_SESSION *ws, uint32_t gen)
{
	for (size_t i = 0; i < N_STATE; i++) {
		char uri[64];
		db_table_uri(state_tables[i].table, gen, uri, sizeof(uri));
		(void)ws->drop(ws, uri, NULL);
	}
}

int snap_load_begin(struct db *db, struct snap_load **out)
{
	struct snap_load *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return DB_NOMEM;
	l->db = db;
	db_drop_stale(db);
	int wrv = db->conn->open_session(db->conn, NULL, NULL, &l->ws);
	if (wrv != 0) {
		free(l);
		return db_wt_error(wrv);
	}
	/* The first generation above the live one with none of its tables
	 * left over (one still in use when it was to be dropped); marked as
	 * loading before its tables exist, so db_drop_stale leaves them. */
	pthread_mutex_lock(&db->drop_mu);
	uint32_t live = atomic_load(&db->gen);
	for (l->gen = live + 1;; l->gen++) {
		bool any = false;
		if (l->gen - live > 64) { /* the metadata cannot be read */
			pthread_mutex_unlock(&db->drop_mu);
			l->ws->close(l->ws, NULL);
			free(l);
			return DB_IO;
		}
		for (size_t i = 0; !any && i < N_STATE; i++) {
			char uri[64];
			db_table_uri(state_tables[i].table, l->gen, uri, sizeof(uri));
			any = exists(l->ws, uri);
		}
		if (!any)
			break;
	}
	db->loading = l->gen;
	pthread_mutex_unlock(&db->drop_mu);
	for (size_t i = 0; wrv == 0 && i < N_STATE; i++)
		wrv = db_table_create(l->ws, db, state_tables[i].table, l->gen);
	if (wrv != 0) {
		snap_load_free(l);
		return db_wt_error(wrv);
	}
	*out = l;
	return DB_OK;
}

static int close_bulk(struct snap_load *l)
{
	if (l->bulk == NULL)
		return DB_OK;
	int wrv = l->bulk->close(l->bulk); /* finishes the file's bulk load */
	l->bulk = NULL;
	l->tag = 0;
	return db_wt_error(wrv);
}

/* One record: a row (appended with the bulk cursor of its table) or a blob. */
static int load_record(struct snap_load *l, uint8_t tag, const uint8_t *k, uint32_t klen,
		       const uint8_t *v, uint32_t vlen)
{
	if (tag == TAG_BLOB) {
		if (klen == 0 || klen >= sizeof(l->blobs[0].name))
			return DB_CORRUPT;
		struct blob *b = realloc(l->blobs, (l->nblobs + 1) * sizeof(*b));
		if (b == NULL)
			return DB_NOMEM;
		l->blobs = b;
		b = &l->blobs[l->nblobs];
		memcpy(b->name, k, klen);
		b->name[klen] = 0;
		b->len = vlen;
		if ((b->v = malloc(vlen ? vlen : 1)) == NULL)
			return DB_NOMEM;
		memcpy(b->v, v, vlen);
		l->nblobs++;
		return DB_OK;
	}
	enum db_table t;
	if (table_of(tag, &t) != 0)
		return DB_CORRUPT;
	if (tag != l->tag) {
		/* A bulk load needs an empty table: a table comes in one run. */
		if (close_bulk(l) != DB_OK || (l->done_tags & (1u << tag)) != 0)
			return DB_CORRUPT;
		char uri[64];
		db_table_uri(t, l->gen, uri, sizeof(uri));
		int wrv = l->ws->open_cursor(l->ws, uri, NULL, "bulk", &l->bulk);
		if (wrv != 0)
			return db_wt_error(wrv);
		l->tag = tag;
		l->done_tags |= (uint8_t)(1u << tag);
	}
	WT_ITEM ki = {.data = k, .size = klen}, vi = {.data = v, .size = vlen};
	l->bulk->set_key(l->bulk, &ki);
	l->bulk->set_value(l->bulk, &vi);
	/* Out of order or repeated keys are refused by the bulk cursor. */
	return l->bulk->insert(l->bulk) == 0 ? DB_OK : DB_CORRUPT;
}

/* Parse whole records of p[0..len); *used is what they took. */
static int parse(struct snap_load *l, const uint8_t *p, size_t len, size_t *used)
{
	size_t off = 0;
	int rv = DB_OK;
	while (rv == DB_OK && !l->ended && len - off >= 5) {
		uint32_t klen = get_be32(p + off + 1);
		if (klen > RESTORE_MAX_FIELD)
			return DB_CORRUPT;
		if (len - off < 5 + (size_t)klen + 4)
			break;
		uint32_t vlen = get_be32(p + off + 5 + klen);
		if (vlen > RESTORE_MAX_FIELD)
			return DB_CORRUPT;
		size_t rec = 5 + (size_t)klen + 4 + vlen;
		if (len - off < rec)
			break;
		uint8_t tag = p[off];
		if (tag == TAG_END)
			l->ended = klen == 0 && vlen == 0;
		if (tag == TAG_END && !l->ended)
			return DB_CORRUPT;
		if (tag != TAG_END)
			rv = load_record(l, tag, p + off + 5, klen, p + off + 9 + klen, vlen);
		off += rec;
	}
	*used = off;
	return rv;
}

/* Bytes the carried record takes in all, as far as its header is known. */
static int pend_need(const struct db_buf *b, size_t *need)
{
	*need = 5;
	if (b->len < 5)
		return DB_OK;
	uint32_t klen = get_be32(b->p + 1);
	if (klen > RESTORE_MAX_FIELD)
		return DB_CORRUPT;
	*need = 9 + (size_t)klen;
	if (b->len < *need)
		return DB_OK;
	uint32_t vlen = get_be32(b->p + *need - 4);
	if (vlen > RESTORE_MAX_FIELD)
		return DB_CORRUPT;
	*need += vlen;
	return DB_OK;
}

int snap_load_feed(struct snap_load *l, const void *buf, size_t len, size_t *used, int *done)
{
	const uint8_t *p = buf;
	size_t got, need;
	int rv;
	*used = 0;
	/* A record cut by the previous feed: complete it from this one. */
	while (l->pend.len > 0 && *used < len) {
		if ((rv = pend_need(&l->pend, &need)) != DB_OK)
			return rv;
		size_t take = need - l->pend.len;
		if (take > len - *used)
			take = len - *used;
		if (db_buf_reserve(&l->pend, l->pend.len + take) != DB_OK)
			return DB_NOMEM;
		memcpy(l->pend.p + l->pend.len, p + *used, take);
		l->pend.len += take;
		*used += take;
		if ((rv = parse(l, l->pend.p, l->pend.len, &got)) != DB_OK)
			return rv;
		if (got > 0)
			l->pend.len = 0;
	}
	if (l->pend.len == 0 && !l->ended) {
		if ((rv = parse(l, p + *used, len - *used, &got)) != DB_OK)
			return rv;
		*used += got;
		if (!l->ended && *used < len) { /* carry the cut record */
			if (db_buf_reserve(&l->pend, len - *used) != DB_OK)
				return DB_NOMEM;
			memcpy(l->pend.p, p + *used, len - *used);
			l->pend.len = len - *used;
			*used = len;
		}
	}
	*done = l->ended;
	return DB_OK;
}

int snap_load_finish(struct snap_load *l)
{
	if (!l->ended)
		return DB_CORRUPT;
	int rv = close_bulk(l);
	/* The new tables on disk before anything names them: a bulk load is
	 * not journaled. */
	if (rv == DB_OK)
		rv = db_wt_error(l->ws->checkpoint(l->ws, NULL));
	return rv;
}

int snap_load_switch(struct snap_load *l, struct mvcc *m, struct db_session *s)
{
	if (!l->ended || l->bulk != NULL || s->in_txn)
		return DB_INVALID;
	pthread_mutex_lock(&m->compact_mu); /* no compaction of the old tables meanwhile */
	uint8_t g[4];
	be32(g, l->gen);
	int rv = db_txn_begin(s);
	for (size_t i = 0; rv == DB_OK && i < l->nblobs; i++)
		rv = rlog_save_blob(s, l->blobs[i].name, l->blobs[i].v, l->blobs[i].len);
	if (rv == DB_OK)
		rv = rlog_save_blob(s, DB_GEN_BLOB, g, sizeof(g));
	if (rv == DB_OK)
		rv = db_txn_commit(s, 1); /* the switch: durable, in one step */
	else
		db_txn_abort(s);
	int64_t rev = 0, crev = 0, keys = 0;
	uint64_t ci = 0;
	int own;
	if (rv == DB_OK) {
		l->switched = true;
		atomic_store_explicit(&l->db->gen, l->gen, memory_order_release);
		if ((rv = db_read_begin(s, &own)) == DB_OK) {
			rv = mvcc_meta_load(s, &rev, &crev, &ci);
			if (rv == DB_OK)
				rv = mvcc_keys_load(s, &keys);
			db_read_end(s, own);
		}
	}
	if (rv == DB_OK) {
		atomic_store(&m->keys, keys);
		/* Revision last: a reader that sees it sees the rest. */
		atomic_store(&m->consistent_index, ci);
		atomic_store(&m->compact_rev, crev);
		atomic_store(&m->rev, rev);
	}
	pthread_mutex_unlock(&m->compact_mu);
	if (l->switched)
		db_drop_stale(l->db); /* sessions still on it refresh, then a checkpoint drops it */
	return rv;
}

void snap_load_free(struct snap_load *l)
{
	if (l == NULL)
		return;
	if (l->bulk)
		l->bulk->close(l->bulk);
	if (!l->switched)
		drop_gen(l->ws, l->gen);
	l->ws->close(l->ws, NULL);
	pthread_mutex_lock(&l->db->drop_mu);
	l->db->loading = 0;
	pthread_mutex_unlock(&l->db->drop_mu);
	for (size_t i = 0; i < l->nblobs; i++)
		free(l->blobs[i].v);
	free(l->blobs);
	free(l->pend.p);
	free(l);
}
