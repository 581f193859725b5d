/*
 * storage/raftlog.c — the Raft log and Raft state in WiredTiger.
 *
 *   raft_log   key BE64(last index of the row's entries)
 *              val varint term | varint type | data (rest)       one entry
 *                  varint 0 | varint n | n x (varint term | varint type |
 *                  varint len | data)                           a run of n
 *   raft_state "hs"             val BE64 term | BE64 vote | BE64 commit
 *              "first"          val BE64 first index kept after compaction
 *              "b/" name        val blob bytes
 *
 * Big-endian indexes make the table's order the log's order. "first"
 * remembers where a compacted log starts: compaction removes whole rows, so
 * entries before it may still be stored, or none at all may be (after a
 * snapshot install).
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

/*
 * A row of raft_log holds a run of consecutive entries and is keyed by the
 * index of its last one, so the row holding index i is the first row whose
 * key is >= i, and the log's last index is the last row's key. An append
 * writes few rows (ROW_BYTES below): a batch of ~100 proposals was ~100
 * inserts (appending in batches of 93, with checkpoints: ~1.7 us of CPU per
 * entry then, ~1.0 with one row).
 * A row of one entry keeps the original layout (term >= 1 first, data to
 * the end), so logs written before rows held runs read the same.
 */
#define RUN_MARK 0 /* a term no entry has: the row is a run */

/*
 * An append of many entries still writes rows of at most ~12 KiB (bigger
 * entries alone in theirs). WiredTiger callocs each update with its value,
 * and jemalloc zeroes a calloc of 16 KiB or more by madvise(MADV_DONTNEED)
 * on pages that the copy then faults back in: with a whole batch in one row
 * (~300 KiB for 1,000 puts) that was ~1.5 us of CPU per put in the writer,
 * plus TLB shootdowns felt by every thread. Below 16 KiB jemalloc memsets.
 */
#define ROW_BYTES (12 * 1024)

struct row {
	uint64_t last;	 /* index of its last entry (the key) */
	uint64_t n;	 /* entries in it */
	uint64_t next;	 /* index of the entry row_next returns next */
	int run;	 /* 0: one entry in the original layout */
	const uint8_t *p, *end; /* unread encoding; borrowed from the cursor */
};

/* The key of the row under the cursor: the index of its last entry. */
static int row_key(WT_CURSOR *c, uint64_t *last)
{
	WT_ITEM k;
	int rv = c->get_key(c, &k);
	if (rv != 0)
		return db_wt_error(rv);
	if (k.size != 8)
		return DB_CORRUPT;
	*last = be64_get(k.data);
	return DB_OK;
}

/* The row under the cursor. Its bytes are valid until the cursor moves. */
static int row_open(WT_CURSOR *c, struct row *r)
{
	WT_ITEM v;
	uint64_t mark;
	int rv = row_key(c, &r->last);
	if (rv != DB_OK)
		return rv;
	if ((rv = c->get_value(c, &v)) != 0)
		return db_wt_error(rv);
	r->p = v.data;
	r->end = r->p + v.size;
	const uint8_t *p = varint_get(r->p, r->end, &mark);
	if (p == NULL)
		return DB_CORRUPT;
	r->run = mark == RUN_MARK;
	r->n = 1;
	if (r->run) { /* else row_next reads the entry from its start */
		if ((p = varint_get(p, r->end, &r->n)) == NULL || r->n == 0 || r->n > r->last)
			return DB_CORRUPT;
		r->p = p;
	}
	r->next = r->last - r->n + 1;
	return DB_OK;
}

/* The row's next entry into *e: 1, or 0 past its last, or DB_CORRUPT. */
static int row_next(struct row *r, struct rlog_entry *e)
{
	uint64_t term, type, len;
	if (r->next > r->last)
		return 0;
	const uint8_t *p = varint_get(r->p, r->end, &term);
	if (p != NULL)
		p = varint_get(p, r->end, &type);
	if (p != NULL && r->run)
		p = varint_get(p, r->end, &len);
	else if (p != NULL)
		len = (uint64_t)(r->end - p);
	if (p == NULL || term == RUN_MARK || len > (uint64_t)(r->end - p))
		return DB_CORRUPT;
	*e = (struct rlog_entry){r->next, term, (uint32_t)type, p, (size_t)len};
	r->p = p + len;
	r->next++;
	return 1;
}

/* Most bytes a row's value takes: its run header, then each entry's. */
#define ROW_HEAD_MAX (2 * VARINT_MAX)
static size_t entry_max(const struct rlog_entry *e)
{
	return 3 * VARINT_MAX + e->len;
}

/* Encode entries[0..n) as one row's value into b; *len its size. */
static int row_encode(struct db_buf *b, const struct rlog_entry *entries, size_t n, size_t *len)
{
	size_t need = ROW_HEAD_MAX;
	for (size_t i = 0; i < n; i++)
		need += entry_max(&entries[i]);
	int rv = db_buf_reserve(b, need);
	if (rv != DB_OK)
		return rv;
	uint8_t *p = b->p;
	if (n > 1) {
		p = varint_put(p, RUN_MARK);
		p = varint_put(p, n);
	}
	for (size_t i = 0; i < n; i++) {
		const struct rlog_entry *e = &entries[i];
		if (e->term == RUN_MARK)
			return DB_INVALID;
		p = varint_put(p, e->term);
		p = varint_put(p, e->type);
		if (n > 1)
			p = varint_put(p, e->len);
		if (e->len)
			memcpy(p, e->data, e->len);
		p += e->len;
	}
	*len = (size_t)(p - b->p);
	return DB_OK;
}

static int row_insert(WT_CURSOR *c, uint64_t last, const uint8_t *v, size_t len)
{
	uint8_t kb[8];
	be64_put(kb, last);
	WT_ITEM key = {.data = kb, .size = 8}, val = {.data = v, .size = len};
	c->set_key(c, &key);
	c->set_value(c, &val);
	return db_wt_error(c->insert(c));
}

/* Position c on the row holding index (the first row keyed >= index). */
static int row_seek(WT_CURSOR *c, uint64_t index)
{
	uint8_t kb[8];
	be64_put(kb, index);
	WT_ITEM key = {.data = kb, .size = 8};
	int exact;
	c->set_key(c, &key);
	int rv = c->search_near(c, &exact);
	if (rv == 0 && exact < 0)
		rv = c->next(c);
	return db_wt_error(rv);
}

/*
 * Remove entries with index >= from (a conflicting suffix). A row that
 * holds entries on both sides is rewritten with the ones before from.
 */
static int truncate_from(struct db_session *s, uint64_t from)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	struct row r;
	int rv;
	/* Common case: appending past the end, nothing to remove. */
	for (rv = db_wt_error(c->prev(c)); rv == DB_OK; rv = db_wt_error(c->prev(c))) {
		uint64_t last;
		/* The key first: an append reads no value. */
		if ((rv = row_key(c, &last)) != DB_OK || last < from || (rv = row_open(c, &r)) != DB_OK)
			break;
		if (r.next >= from) {
			if ((rv = db_wt_error(c->remove(c))) != DB_OK)
				break;
			continue;
		}
		/* Keep [r.next, from): re-encode them before the row goes. */
		size_t keep = (size_t)(from - r.next), len = 0;
		struct rlog_entry *e = calloc(keep, sizeof(*e));
		if (e == NULL) {
			rv = DB_NOMEM;
			break;
		}
		for (size_t i = 0; i < keep && rv == DB_OK; i++)
			if (row_next(&r, &e[i]) != 1)
				rv = DB_CORRUPT;
		if (rv == DB_OK)
			rv = row_encode(&s->buf[1], e, keep, &len);
		free(e);
		if (rv == DB_OK)
			rv = db_wt_error(c->remove(c));
		if (rv == DB_OK)
			rv = row_insert(c, from - 1, s->buf[1].p, len);
		break;
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
	if (entries[0].index == 0)
		return DB_INVALID;
	int own;
	int rv = txn_enter(s, &own);
	if (rv != DB_OK)
		return rv;
	rv = truncate_from(s, entries[0].index);
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	for (size_t i = 0, k; i < n && rv == DB_OK; i = k) {
		size_t len = 0, bound = ROW_HEAD_MAX + entry_max(&entries[i]);
		for (k = i + 1; k < n; k++) {
			bound += entry_max(&entries[k]);
			if (bound > ROW_BYTES)
				break;
		}
		if ((rv = row_encode(&s->buf[0], entries + i, k - i, &len)) == DB_OK)
			rv = row_insert(c, entries[k - 1].index, s->buf[0].p, len);
	}
	c->reset(c);
	return txn_leave(s, own, rv);
}

int rlog_bounds(struct db_session *s, uint64_t *first, uint64_t *last)
{
	uint64_t sf, f = 0, l = 0;
	int rv = stored_first(s, &sf);
	if (rv != DB_OK)
		return rv;
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	struct row r;
	if ((rv = db_wt_error(c->next(c))) == DB_OK && (rv = row_open(c, &r)) == DB_OK) {
		f = r.next;
		c->reset(c);
		if ((rv = db_wt_error(c->prev(c))) == DB_OK && (rv = row_open(c, &r)) == DB_OK)
			l = r.last;
	}
	c->reset(c);
	if (rv == DB_NOTFOUND) {
		/* Empty: the log starts where compaction left it. */
		*first = sf;
		*last = sf - 1;
		return DB_OK;
	}
	if (rv != DB_OK)
		return rv;
	/* A row that straddles where compaction stopped still holds
	 * entries before it: they are gone as far as callers know. */
	*first = f > sf ? f : sf;
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
	size_t bytes = 0;
	for (rv = row_seek(c, lo); rv == DB_OK; rv = db_wt_error(c->next(c))) {
		struct row r;
		struct rlog_entry e;
		int got = 0, stop = 0;
		if ((rv = row_open(c, &r)) != DB_OK)
			break;
		while (!stop && (got = row_next(&r, &e)) == 1) {
			if (e.index < lo)
				continue;
			/* At least one entry, then stop before exceeding max_bytes. */
			if (e.index >= hi || (bytes > 0 && bytes + e.len > max_bytes))
				break;
			bytes += e.len;
			stop = fn(arg, &e) != 0;
		}
		if (got < 0)
			rv = got;
		if (got != 0) /* stopped inside the row, or it is corrupt */
			break;
	}
	if (rv == DB_NOTFOUND)
		rv = DB_OK;
	c->reset(c);
	return rv;
}

int rlog_term(struct db_session *s, uint64_t index, uint64_t *term)
{
	uint64_t sf;
	int rv = stored_first(s, &sf);
	if (rv != DB_OK)
		return rv;
	if (index < sf) /* compacted, even if its row is still there */
		return DB_NOTFOUND;
	WT_CURSOR *c = db_cursor(s, DB_TBL_RAFT_LOG);
	struct row r;
	struct rlog_entry e;
	if ((rv = row_seek(c, index)) == DB_OK && (rv = row_open(c, &r)) == DB_OK) {
		rv = DB_NOTFOUND;
		int got;
		while ((got = row_next(&r, &e)) == 1)
			if (e.index == index) {
				*term = e.term;
				rv = DB_OK;
				break;
			}
		if (got < 0)
			rv = got;
	}
	c->reset(c);
	return rv;
}

/* Rows wholly before upto go; one that straddles it stays, its entries
 * before upto hidden by "first". */
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
		uint64_t last;
		if ((rv = row_key(c, &last)) != DB_OK || last >= upto)
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
