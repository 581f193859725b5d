/*
 * storage/raftlog.c — the Raft log and Raft state in WiredTiger.
 *
 *   raft_log   key BE64(index)  val varint term | varint type | data (rest)
 *   raft_state "hs"             val BE64 term | BE64 vote | BE64 commit
 *              "first"          val BE64 first index kept after compaction
 *              "b/" name        val blob bytes
 *
 * Big-endian indexes make the table's order the log's order, so bounds are
 * the first and last records. "first" remembers where a compacted log starts
 * when compaction removed every entry (after a snapshot install).
 * Calls that write with no transaction open run in their own, committed with
 * sync=on, because Raft must not act on state that a crash could lose.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/db_internal.h"
#include "storage/raftlog.h"

#define KEY_HS "hs"
#define KEY_FIRST "first"
#define BLOB_PREFIX "b/"

int rlog_init(struct db *db)
{
	(void)db; /* db_open creates every table, raft_log and raft_state included */
	return DB_OK;
}

/* Begin a transaction when none is open; *own says whether we must end it. */
static int txn_enter(struct db_session *s, int *own)
{
	*own = !s->in_txn;
	return *own ? db_txn_begin(s) : DB_OK;
}

/* End what txn_enter began: commit synced on success, else roll back. */
static int txn_leave(struct db_session *s, int own, int rv)
{
	if (!own)
		return rv;
	if (rv != DB_OK) {
		db_txn_abort(s);
		return rv;
	}
	return db_txn_commit(s, 1);
}

static int state_put(struct db_session *s, const void *k, size_t klen, const void *v, size_t vlen)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_STATE);
	WT_ITEM key = {.data = k, .size = klen}, val = {.data = v, .size = vlen};
	c->set_key(c, &key);
	c->set_value(c, &val);
	int rv = c->insert(c);
	c->reset(c);
	return db_wt_error(rv);
}

/* Look up k in raft_state; on DB_OK the cursor is positioned, caller resets. */
static int state_get(struct db_session *s, const void *k, size_t klen, WT_ITEM *val)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_STATE);
	WT_ITEM key = {.data = k, .size = klen};
	c->set_key(c, &key);
	int rv = c->search(c);
	if (rv == 0)
		rv = c->get_value(c, val);
	if (rv != 0)
		c->reset(c);
	return db_wt_error(rv);
}

/* "first" from raft_state, 1 when never compacted. */
static int stored_first(struct db_session *s, uint64_t *first)
{
	WT_ITEM v;
	int rv = state_get(s, KEY_FIRST, strlen(KEY_FIRST), &v);
	*first = 1;
	if (rv == DB_NOTFOUND)
		return DB_OK;
	if (rv != DB_OK)
		return rv;
	if (v.size == 8)
		*first = be64_get(v.data);
	else
		rv = DB_CORRUPT;
	db_cursor(s, DB_TBL_RAFT_STATE)->reset(db_cursor(s, DB_TBL_RAFT_STATE));
	return rv;
}

/* Index of the entry the cursor is on. */
static int cursor_index(WT_CURSOR *c, uint64_t *index)
{
	WT_ITEM k;
	int rv = c->get_key(c, &k);
	if (rv != 0)
		return db_wt_error(rv);
	if (k.size != 8)
		return DB_CORRUPT;
	*index = be64_get(k.data);
	return DB_OK;
}

/* Remove entries with index >= from (a conflicting suffix). */
static int truncate_from(struct db_session *s, uint64_t from)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	uint64_t last = 0; /* = 0: gcc -O3 cannot see cursor_index set it */
	/* Common case: appending past the end, nothing to remove. */
	int rv = db_wt_error(c->prev(c));
	if (rv == DB_OK && (rv = cursor_index(c, &last)) == DB_OK && last < from)
		rv = DB_NOTFOUND;
	while (rv == DB_OK) {
		uint64_t idx = 0;
		if ((rv = cursor_index(c, &idx)) != DB_OK || idx < from)
			break;
		if ((rv = db_wt_error(c->remove(c))) != DB_OK)
			break;
		rv = db_wt_error(c->prev(c));
	}
	if (rv == DB_NOTFOUND)
		rv = DB_OK;
	c->reset(c);
	return rv;
}

int rlog_truncate(struct db_session *s, uint64_t from)
{
	int own;
	int rv = txn_enter(s, &own);
	if (rv != DB_OK)
		return rv;
	return txn_leave(s, own, truncate_from(s, from));
}

int rlog_append(struct db_session *s, const struct rlog_entry *entries, size_t n)
{
	if (n == 0)
		return DB_OK;
	for (size_t i = 1; i < n; i++)
		if (entries[i].index != entries[0].index + i)
			return DB_INVALID;
	int own;
	int rv = txn_enter(s, &own);
	if (rv != DB_OK)
		return rv;
	if ((rv = truncate_from(s, entries[0].index)) != DB_OK)
		goto out;
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	struct db_buf *b = &s->buf[0];
	for (size_t i = 0; i < n && rv == DB_OK; i++) {
		const struct rlog_entry *e = &entries[i];
		if ((rv = db_buf_reserve(b, 3 * VARINT_MAX + e->len)) != DB_OK)
			break;
		uint8_t *p = varint_put(b->p, e->term);
		p = varint_put(p, e->type);
		if (e->len)
			memcpy(p, e->data, e->len);
		p += e->len;
		uint8_t kb[8];
		be64_put(kb, e->index);
		WT_ITEM key = {.data = kb, .size = 8}, val = {.data = b->p, .size = (size_t)(p - b->p)};
		c->set_key(c, &key);
		c->set_value(c, &val);
		rv = db_wt_error(c->insert(c));
	}
	c->reset(c);
out:
	return txn_leave(s, own, rv);
}

int rlog_bounds(struct db_session *s, uint64_t *first, uint64_t *last)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	uint64_t f = 0, l = 0, sf;
	int rv = db_wt_error(c->next(c));
	if (rv == DB_OK && (rv = cursor_index(c, &f)) == DB_OK) {
		c->reset(c);
		if ((rv = db_wt_error(c->prev(c))) == DB_OK)
			rv = cursor_index(c, &l);
	}
	c->reset(c);
	if (rv == DB_NOTFOUND) {
		/* Empty: the log starts where compaction left it. */
		if ((rv = stored_first(s, &sf)) != DB_OK)
			return rv;
		*first = sf;
		*last = sf - 1;
		return DB_OK;
	}
	if (rv != DB_OK)
		return rv;
	*first = f;
	*last = l;
	return DB_OK;
}

int rlog_read(struct db_session *s, uint64_t lo, uint64_t hi, size_t max_bytes, rlog_visit_fn fn,
	      void *arg)
{
	uint64_t first, last;
	int rv = rlog_bounds(s, &first, &last);
	if (rv != DB_OK)
		return rv;
	if (lo >= hi)
		return DB_OK;
	if (lo < first)
		return DB_COMPACTED;
	if (hi > last + 1)
		return DB_NOTFOUND;
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	uint8_t kb[8];
	be64_put(kb, lo);
	WT_ITEM key = {.data = kb, .size = 8};
	size_t bytes = 0;
	c->set_key(c, &key);
	for (rv = db_wt_error(c->search(c)); rv == DB_OK; rv = db_wt_error(c->next(c))) {
		WT_ITEM v;
		struct rlog_entry e;
		uint64_t term, type;
		if ((rv = cursor_index(c, &e.index)) != DB_OK)
			goto out;
		if (e.index >= hi)
			break;
		if ((rv = db_wt_error(c->get_value(c, &v))) != DB_OK)
			goto out;
		const uint8_t *p = v.data, *end = p + v.size;
		if ((p = varint_get(p, end, &term)) == NULL || (p = varint_get(p, end, &type)) == NULL) {
			rv = DB_CORRUPT;
			goto out;
		}
		e.term = term;
		e.type = (uint32_t)type;
		e.data = p;
		e.len = (size_t)(end - p);
		/* At least one entry, then stop before exceeding max_bytes. */
		if (bytes > 0 && bytes + e.len > max_bytes)
			break;
		bytes += e.len;
		if (fn(arg, &e) != 0)
			break;
	}
	if (rv == DB_NOTFOUND)
		rv = DB_OK;
out:
	c->reset(c);
	return rv;
}

int rlog_term(struct db_session *s, uint64_t index, uint64_t *term)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	uint8_t kb[8];
	be64_put(kb, index);
	WT_ITEM key = {.data = kb, .size = 8}, v;
	c->set_key(c, &key);
	int rv = c->search(c);
	if (rv == 0)
		rv = c->get_value(c, &v);
	if (rv == 0)
		rv = varint_get(v.data, (const uint8_t *)v.data + v.size, term) ? 0 : DB_CORRUPT;
	else
		rv = db_wt_error(rv);
	c->reset(c);
	return rv;
}

int rlog_compact(struct db_session *s, uint64_t upto)
{
	int own;
	int rv = txn_enter(s, &own);
	if (rv != DB_OK)
		return rv;
	uint64_t first;
	if ((rv = stored_first(s, &first)) != DB_OK)
		goto out;
	if (upto <= first)
		goto out;
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	for (rv = db_wt_error(c->next(c)); rv == DB_OK; rv = db_wt_error(c->next(c))) {
		uint64_t idx = 0;
		if ((rv = cursor_index(c, &idx)) != DB_OK || idx >= upto)
			break;
		if ((rv = db_wt_error(c->remove(c))) != DB_OK)
			break;
	}
	c->reset(c);
	if (rv == DB_NOTFOUND)
		rv = DB_OK;
	if (rv == DB_OK) {
		uint8_t v[8];
		be64_put(v, upto);
		rv = state_put(s, KEY_FIRST, strlen(KEY_FIRST), v, sizeof(v));
	}
out:
	return txn_leave(s, own, rv);
}

int rlog_save_hardstate(struct db_session *s, const struct rlog_hardstate *hs)
{
	uint8_t v[24];
	be64_put(v, hs->term);
	be64_put(v + 8, hs->vote);
	be64_put(v + 16, hs->commit);
	int own;
	int rv = txn_enter(s, &own);
	if (rv != DB_OK)
		return rv;
	rv = state_put(s, KEY_HS, strlen(KEY_HS), v, sizeof(v));
	return txn_leave(s, own, rv);
}

int rlog_load_hardstate(struct db_session *s, struct rlog_hardstate *hs)
{
	WT_ITEM v;
	memset(hs, 0, sizeof(*hs));
	int rv = state_get(s, KEY_HS, strlen(KEY_HS), &v);
	if (rv == DB_NOTFOUND)
		return DB_OK;
	if (rv != DB_OK)
		return rv;
	if (v.size == 24) {
		hs->term = be64_get(v.data);
		hs->vote = be64_get((const uint8_t *)v.data + 8);
		hs->commit = be64_get((const uint8_t *)v.data + 16);
	} else {
		rv = DB_CORRUPT;
	}
	db_cursor(s, DB_TBL_RAFT_STATE)->reset(db_cursor(s, DB_TBL_RAFT_STATE));
	return rv;
}

/* "b/" + name into the session buffer; returns its length. */
static int blob_key(struct db_session *s, const char *name, size_t *len)
{
	size_t n = strlen(name);
	int rv = db_buf_reserve(&s->buf[1], n + 2);
	if (rv != DB_OK)
		return rv;
	memcpy(s->buf[1].p, BLOB_PREFIX, 2);
	memcpy(s->buf[1].p + 2, name, n);
	*len = n + 2;
	return DB_OK;
}

int rlog_save_blob(struct db_session *s, const char *name, const uint8_t *buf, size_t len)
{
	size_t klen;
	int rv = blob_key(s, name, &klen);
	if (rv != DB_OK)
		return rv;
	int own;
	if ((rv = txn_enter(s, &own)) != DB_OK)
		return rv;
	rv = state_put(s, s->buf[1].p, klen, buf, len);
	return txn_leave(s, own, rv);
}

int rlog_load_blob(struct db_session *s, const char *name, uint8_t **buf, size_t *len)
{
	size_t klen;
	WT_ITEM v;
	int rv = blob_key(s, name, &klen);
	if (rv != DB_OK)
		return rv;
	if ((rv = state_get(s, s->buf[1].p, klen, &v)) != DB_OK)
		return rv;
	/* At least one byte so an empty blob is still a non-NULL buffer. */
	*buf = malloc(v.size ? v.size : 1);
	if (*buf == NULL)
		rv = DB_NOMEM;
	else {
		if (v.size)
			memcpy(*buf, v.data, v.size);
		*len = v.size;
	}
	db_cursor(s, DB_TBL_RAFT_STATE)->reset(db_cursor(s, DB_TBL_RAFT_STATE));
	return rv;
}
