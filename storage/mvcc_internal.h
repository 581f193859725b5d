/*
 * storage/mvcc_internal.h — what the mvcc*.c files share: struct mvcc,
 * the table encodings (mvcc_key.c) and the per-transaction state (mvcc.c).
 *
 * Table encodings (all key_format=u, value_format=u):
 *   kv      key  BE64(main) BE64(sub)
 *           val  u8 flags (1 = tombstone) | varint create | varint version |
 *                varint lease | varint prev main | varint prev sub |
 *                varint key_len | key | value (rest)
 *           prev is the key's entry before this one (main 0: none), so each
 *           key's history is a chain from its `current` row down.
 *   current key  user key (raw bytes: WiredTiger's order is etcd's order)
 *           val  varint create | varint mod | varint sub | varint version | varint lease
 *           The key's newest history entry is (mod, sub). A deleted key keeps
 *           its row, with version 0, create 0 and lease 0, pointing at its
 *           tombstone, until compaction passes that tombstone: reads at the
 *           head skip it, reads at older revisions follow its chain.
 *           The value is not repeated here: it is read from kv at (mod, sub).
 *           Random updates to `current` are what stays dirty in the cache
 *           under a write load; without values they are a tenth the size,
 *           which measured 2-5x less eviction work per put once history
 *           outgrows the cache.
 *   lease_keys key BE64(lease) user key, val u8 0
 *   meta    "mvcc" -> BE64(rev) BE64(compact_rev) BE64(consistent_index)
 *           "mvcc_compacted" -> BE64(rev history was physically compacted to)
 *
 * Why chains and no (key, revision) index: a put then writes one random row
 * (`current`, as many rows as keys) and one appended entry (`kv`); an index
 * grows by a row per put at a random place, so every checkpoint rewrites
 * nearly all of it. Measured with 1,000 clients putting over 100,000 keys:
 * ~29 us of server CPU per put with the index, ~23.5 without. The price is
 * paid by reads at old revisions, which walk a key's chain from its newest
 * entry (one point read per newer version, bounded by compaction).
 */
#ifndef METAD_STORAGE_MVCC_INTERNAL_H
#define METAD_STORAGE_MVCC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "storage/db_internal.h"
#include "storage/mvcc.h"

struct mvcc {
	struct db *db;
	_Atomic int64_t rev;
	_Atomic int64_t compact_rev;
	_Atomic uint64_t consistent_index;
	pthread_mutex_t compact_mu; /* one mvcc_compact_run at a time */
	/* Held by a write transaction begun with mvcc_begin and by each
	 * compaction chunk, the two writers of `current`: serialised, they
	 * never conflict (see mvcc_compact.c). */
	pthread_mutex_t apply_mu;
	_Atomic int compact_batch; /* entries per compaction chunk (mvcc_set_compact_batch) */
	_Atomic int64_t keys;    /* live keys as of the last commit */
	struct db_hist commits;  /* mvcc_commit's commit times */
	struct mvcc_span written; /* since the last mvcc_span_take (apply_mu) */
};

#define MVCC_META_STATE "mvcc"
#define MVCC_META_COMPACTED "mvcc_compacted"
#define MVCC_META_KEYS "mvcc_keys" /* live keys; absent in stores made before it */

/* Size of a kv key. */
#define MVCC_REV_BYTES 16

/* ---- mvcc_key.c: encodings ---- */

void mvcc_rev_key(int64_t main, int64_t sub, uint8_t out[MVCC_REV_BYTES]);

/* A history entry's revision; main 0: none. */
struct mvcc_revpair {
	int64_t main, sub;
};

/* kv value. The decoded kv points into `val` (borrowed). */
size_t mvcc_kv_val_max(size_t key_len, size_t value_len);
size_t mvcc_kv_val_encode(const struct mvcc_kv *kv, int tombstone, struct mvcc_revpair prev,
			  uint8_t *out);
/* prev may be NULL. */
int mvcc_kv_val_decode(const uint8_t *val, size_t len, struct mvcc_kv *kv, int *tombstone,
		       struct mvcc_revpair *prev);

/* current value: kv's revisions, version and lease, and the sub revision
 * of its history entry; neither key nor value (see the table comment).
 * version 0: the key is deleted and (mod, sub) is its tombstone. */
#define MVCC_CUR_VAL_MAX 50 /* five varints of at most 10 bytes */
size_t mvcc_cur_val_encode(const struct mvcc_kv *kv, int64_t sub, uint8_t *out);
int mvcc_cur_val_decode(const uint8_t *val, size_t len, struct mvcc_kv *kv, int64_t *sub);

/* Bytewise compare with shorter-prefix-first, as WiredTiger orders 'u' keys. */
int mvcc_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* ---- mvcc.c: transaction state ---- */

/* Load s->mv for the open transaction (from meta, once per transaction). */
int mvcc_txn_state(struct mvcc *m, struct db_session *s, struct mvcc_txn_state **st);
/* Revision a read inside the open transaction sees as "current". */
int64_t mvcc_txn_view_rev(const struct mvcc_txn_state *st);
/* Read the meta "mvcc" record in the session's current snapshot. */
int mvcc_meta_load(struct db_session *s, int64_t *rev, int64_t *compact_rev, uint64_t *ci);
/* Write the meta "mvcc" record in the open transaction. */
int mvcc_meta_store(struct db_session *s, int64_t rev, int64_t compact_rev, uint64_t ci);
/* The live keys in the session's current snapshot: MVCC_META_KEYS, or,
 * where it is absent, a count of `current` (mvcc.c). */
int mvcc_keys_load(struct db_session *s, int64_t *keys);
/* Read/write a single BE64 meta value (DB_NOTFOUND when absent). */
int mvcc_meta_get_u64(struct db_session *s, const char *name, uint64_t *v);
int mvcc_meta_put_u64(struct db_session *s, const char *name, uint64_t v);

/* ---- mvcc_kvlist.c ---- */

/* Append kv and return the copy's slot; value copied unless keys_only. */
int mvcc_kvlist_push_flags(struct mvcc_kvlist *l, const struct mvcc_kv *kv, int keys_only);

/* ---- ranges (mvcc_read.c) ---- */

/* Resolve mvcc_range_req key/end rules: *single or an end bound (NULL = none). */
struct mvcc_bounds {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *end; /* NULL: unbounded */
	size_t end_len;
	int single;
};
void mvcc_bounds_init(struct mvcc_bounds *b, const uint8_t *key, size_t key_len,
		      const uint8_t *end, size_t end_len);
/* Non-zero if key is past the bounds (scan must stop). */
int mvcc_bounds_past(const struct mvcc_bounds *b, const uint8_t *key, size_t key_len);

/* Position c (a table keyed by raw bytes) on the first key >= (k, klen). */
int mvcc_seek_ge(WT_CURSOR *c, const uint8_t *k, size_t klen);
/* Position c (on `current`) on the first row inside the bounds b (the key
 * itself for a single key). WiredTiger's return code. */
int mvcc_seek_bounds(WT_CURSOR *c, const struct mvcc_bounds *b);

/* History entry (main, sub) decoded into *kv (and its chain link into
 * *prev unless NULL), pointing into the memory of the session's kv cursor:
 * valid until mvcc_history_done (which resets that cursor; call it whatever
 * this returned). DB_NOTFOUND if the entry is not there. */
int mvcc_history_get(struct db_session *s, int64_t main, int64_t sub, struct mvcc_kv *kv,
		     int *tombstone, struct mvcc_revpair *prev);
void mvcc_history_done(struct db_session *s);

#endif
