/*
 * storage/mvcc.c — opening the key space, write requests and commits.
 *
 * The revision a write transaction works at lives in the session
 * (s->mv, struct mvcc_txn_state), loaded from meta once per transaction, so
 * one apply batch can carry many requests, each taking the next revision.
 * mvcc_commit writes rev, compact_rev and consistent_index to meta in the same
 * WiredTiger transaction as the key changes, then publishes them in atomics
 * for mvcc_rev() and friends. Readers never trust the atomics for their
 * snapshot: they read meta inside it (see mvcc_read.c).
 */
#include <stdlib.h>
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_internal.h"

static int meta_get(struct db_session *s, const char *name, const uint8_t **v, size_t *len)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_META);
	WT_ITEM k = {.data = name, .size = strlen(name)}, val;
	c->set_key(c, &k);
	int rv = c->search(c);
	if (rv == 0)
		rv = c->get_value(c, &val);
	if (rv != 0) {
		c->reset(c);
		return db_wt_error(rv);
	}
	*v = val.data;
	*len = val.size;
	return DB_OK; /* caller resets c after copying */
}

int mvcc_meta_load(struct db_session *s, int64_t *rev, int64_t *compact_rev, uint64_t *ci)
{
	const uint8_t *v;
	size_t len;
	int rv = meta_get(s, MVCC_META_STATE, &v, &len);
	if (rv == DB_NOTFOUND) {
		*rev = 1; /* etcd: an empty store is at revision 1 */
		*compact_rev = 0;
		*ci = 0;
		return DB_OK;
	}
	if (rv != DB_OK)
		return rv;
	if (len != 24)
		rv = DB_CORRUPT;
	else {
		*rev = (int64_t)be64_get(v);
		*compact_rev = (int64_t)be64_get(v + 8);
		*ci = be64_get(v + 16);
	}
	db_cursor(s, DB_TBL_META)->reset(db_cursor(s, DB_TBL_META));
	return rv;
}

int mvcc_snapshot_state(struct mvcc *m, struct db_session *s, int64_t *rev, int64_t *compact_rev,
			uint64_t *ci)
{
	(void)m;
	return s->in_txn ? mvcc_meta_load(s, rev, compact_rev, ci) : DB_INVALID;
}

static int meta_put(struct db_session *s, const char *name, const uint8_t *v, size_t len)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_META);
	WT_ITEM k = {.data = name, .size = strlen(name)}, val = {.data = v, .size = len};
	c->set_key(c, &k);
	c->set_value(c, &val);
	int rv = c->insert(c);
	c->reset(c);
	return db_wt_error(rv);
}

int mvcc_meta_store(struct db_session *s, int64_t rev, int64_t compact_rev, uint64_t ci)
{
	uint8_t v[24];
	be64_put(v, (uint64_t)rev);
	be64_put(v + 8, (uint64_t)compact_rev);
	be64_put(v + 16, ci);
	return meta_put(s, MVCC_META_STATE, v, sizeof(v));
}

int mvcc_meta_get_u64(struct db_session *s, const char *name, uint64_t *out)
{
	const uint8_t *v;
	size_t len;
	int rv = meta_get(s, name, &v, &len);
	if (rv != DB_OK)
		return rv;
	if (len != 8)
		rv = DB_CORRUPT;
	else
		*out = be64_get(v);
	db_cursor(s, DB_TBL_META)->reset(db_cursor(s, DB_TBL_META));
	return rv;
}

int mvcc_meta_put_u64(struct db_session *s, const char *name, uint64_t v)
{
	uint8_t b[8];
	be64_put(b, v);
	return meta_put(s, name, b, sizeof(b));
}

/* Rows of `current` that are not tombstones. */
static int count_keys(struct db_session *s, int64_t *keys)
{
	WT_CURSOR *c = db_cursor(s, DB_TBL_CURRENT);
	int64_t n = 0;
	int wrv, rv = DB_OK;
	while ((wrv = c->next(c)) == 0) {
		WT_ITEM v;
		struct mvcc_kv kv;
		int64_t sub;
		if ((wrv = c->get_value(c, &v)) != 0)
			break;
		if ((rv = mvcc_cur_val_decode(v.data, v.size, &kv, &sub)) != DB_OK)
			break;
		n += kv.version > 0;
	}
	c->reset(c);
	if (rv == DB_OK && wrv != 0 && wrv != WT_NOTFOUND)
		rv = db_wt_error(wrv);
	*keys = n;
	return rv;
}

int mvcc_keys_load(struct db_session *s, int64_t *keys)
{
	uint64_t v;
	int rv = mvcc_meta_get_u64(s, MVCC_META_KEYS, &v);
	if (rv == DB_OK)
		*keys = (int64_t)v;
	return rv == DB_NOTFOUND ? count_keys(s, keys) : rv;
}

int64_t mvcc_keys(const struct mvcc *m)
{
	return atomic_load(&((struct mvcc *)m)->keys);
}

const struct db_hist *mvcc_commit_hist(const struct mvcc *m)
{
	return &m->commits;
}

int mvcc_open(struct db *db, struct mvcc **out)
{
	struct mvcc *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return DB_NOMEM;
	m->db = db;
	atomic_init(&m->compact_batch, 1000); /* etcd's default batch */
	if (pthread_mutex_init(&m->compact_mu, NULL) != 0) {
		free(m);
		return DB_NOMEM;
	}
	if (pthread_mutex_init(&m->apply_mu, NULL) != 0) {
		pthread_mutex_destroy(&m->compact_mu);
		free(m);
		return DB_NOMEM;
	}
	struct db_session *s;
	int rv = db_session_open(db, &s);
	if (rv != DB_OK)
		goto err_after_mutex;
	int64_t rev, crev, keys = 0;
	uint64_t ci;
	int own;
	rv = db_read_begin(s, &own);
	if (rv == DB_OK) {
		rv = mvcc_meta_load(s, &rev, &crev, &ci);
		if (rv == DB_OK)
			rv = mvcc_keys_load(s, &keys);
		db_read_end(s, own);
	}
	db_session_close(s);
	if (rv != DB_OK)
		goto err_after_mutex;
	atomic_store(&m->keys, keys);
	atomic_store(&m->rev, rev);
	atomic_store(&m->compact_rev, crev);
	atomic_store(&m->consistent_index, ci);
	*out = m;
	return DB_OK;

err_after_mutex:
	pthread_mutex_destroy(&m->apply_mu);
	pthread_mutex_destroy(&m->compact_mu);
	free(m);
	return rv;
}

void mvcc_close(struct mvcc *m)
{
	if (m == NULL)
		return;
	mvcc_span_free(&m->written);
	pthread_mutex_destroy(&m->apply_mu);
	pthread_mutex_destroy(&m->compact_mu);
	free(m);
}

int64_t mvcc_rev(const struct mvcc *m)
{
	return atomic_load(&((struct mvcc *)m)->rev);
}

int64_t mvcc_compact_rev(const struct mvcc *m)
{
	return atomic_load(&((struct mvcc *)m)->compact_rev);
}

uint64_t mvcc_consistent_index(const struct mvcc *m)
{
	return atomic_load(&((struct mvcc *)m)->consistent_index);
}

int mvcc_txn_state(struct mvcc *m, struct db_session *s, struct mvcc_txn_state **st)
{
	(void)m;
	if (!s->in_txn)
		return DB_INVALID;
	struct mvcc_txn_state *mv = &s->mv;
	if (mv->gen != s->txn_gen) {
		uint64_t ci;
		int rv = mvcc_meta_load(s, &mv->rev, &mv->compact_rev, &ci);
		if (rv != DB_OK)
			return rv;
		mv->gen = s->txn_gen;
		mv->in_req = 0;
		mv->req_sub = 0;
		mv->req_rev = 0;
		mv->keys_delta = 0;
	}
	*st = mv;
	return DB_OK;
}

int64_t mvcc_txn_view_rev(const struct mvcc_txn_state *st)
{
	/* Inside a request that already changed something, reads see its revision. */
	return (st->in_req && st->req_sub > 0) ? st->req_rev : st->rev;
}

void mvcc_req_begin(struct mvcc *m, struct db_session *s)
{
	struct mvcc_txn_state *st;
	if (mvcc_txn_state(m, s, &st) != DB_OK)
		return; /* the following put/delete reports the error */
	st->in_req = 1;
	st->req_rev = st->rev + 1;
	st->req_sub = 0;
}

int64_t mvcc_req_end(struct mvcc *m, struct db_session *s)
{
	struct mvcc_txn_state *st;
	if (mvcc_txn_state(m, s, &st) != DB_OK)
		return mvcc_rev(m);
	if (st->in_req && st->req_sub > 0)
		st->rev = st->req_rev;
	st->in_req = 0;
	st->req_sub = 0;
	return st->rev;
}

int mvcc_begin(struct mvcc *m, struct db_session *s)
{
	/* Locked before the snapshot is taken: a compaction chunk that committed
	 * after it would make this transaction's update of the same row fail. */
	pthread_mutex_lock(&m->apply_mu);
	int rv = db_txn_begin(s);
	if (rv != DB_OK) {
		pthread_mutex_unlock(&m->apply_mu);
		return rv;
	}
	s->mv.holds_apply = 1;
	return DB_OK;
}

static void apply_release(struct mvcc *m, struct db_session *s)
{
	if (s->mv.holds_apply) {
		s->mv.holds_apply = 0;
		pthread_mutex_unlock(&m->apply_mu);
	}
}

int mvcc_commit(struct mvcc *m, struct db_session *s, uint64_t consistent_index, int sync)
{
	struct mvcc_txn_state *st;
	int rv = mvcc_txn_state(m, s, &st);
	if (rv != DB_OK)
		goto err;
	if (st->in_req) /* a request left open: its changes count */
		mvcc_req_end(m, s);
	rv = mvcc_meta_store(s, st->rev, st->compact_rev, consistent_index);
	/* Only this writer changes the count (apply_mu): m->keys is current. */
	int64_t keys = atomic_load(&m->keys) + st->keys_delta;
	if (rv == DB_OK && st->keys_delta != 0)
		rv = mvcc_meta_put_u64(s, MVCC_META_KEYS, (uint64_t)keys);
	if (rv != DB_OK)
		goto err;
	int64_t rev = st->rev, crev = st->compact_rev;
	uint64_t t0 = db_now_ns();
	rv = db_txn_commit(s, sync);
	db_hist_observe(&m->commits, db_now_ns() - t0);
	if (rv == DB_OK) {
		atomic_store(&m->keys, keys);
		atomic_store(&m->compact_rev, crev);
		atomic_store(&m->consistent_index, consistent_index);
		atomic_store(&m->rev, rev);
	}
	apply_release(m, s);
	return rv;
err:
	db_txn_abort(s);
	apply_release(m, s);
	return rv;
}

void mvcc_abort(struct mvcc *m, struct db_session *s)
{
	db_txn_abort(s);
	s->mv.gen = 0;
	apply_release(m, s);
}
