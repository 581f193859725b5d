/*
 * storage/mvcc_internal.h — what the mvcc*.c files share: struct mvcc,
 * the table encodings (mvcc_key.c) and the per-transaction state (mvcc.c).
 *
 * Table encodings (all key_format=u, value_format=u):
 *   kv      key  BE64(main) BE64(sub)
 *           val  u8 flags (1 = tombstone) | varint create | varint version |
 *                varint lease | varint key_len | key | value (rest)
 *   index   key  escaped(user key) 00 01 BE64(main) BE64(sub)
 *           val  u8: 0 = put, 1 = tombstone
 *   current key  user key (raw bytes: WiredTiger's order is etcd's order)
 *           val  varint create | varint mod | varint sub | varint version | varint lease
 *           The value is not repeated here: it is read from kv at (mod, sub).
 *           Random updates to `current` are what stays dirty in the cache
 *           under a write load; without values they are a tenth the size,
 *           which measured 2-5x less eviction work per put once history
 *           outgrows the cache.
 *   lease_keys key BE64(lease) user key, val u8 0
 *   meta    "mvcc" -> BE64(rev) BE64(compact_rev) BE64(consistent_index)
 *           "mvcc_compacted" -> BE64(rev history was physically compacted to)
 *
 * Escaping: every 0x00 byte of a user key becomes 00 FF and the key ends with
 * 00 01. Then key a < key b (bytewise, shorter prefix first) exactly when
 * escaped(a)00 01... < escaped(b)00 01..., whatever revisions follow, so the
 * index is grouped by user key and each group is in revision order.
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
};

#define MVCC_META_STATE "mvcc"
#define MVCC_META_COMPACTED "mvcc_compacted"

/* Size of the revision suffix of an index key, and of a kv key. */
#define MVCC_REV_BYTES 16
/* Terminator after the escaped user key in an index key. */
#define MVCC_TERM0 0x00
#define MVCC_TERM1 0x01

/* ---- mvcc_key.c: encodings ---- */

/* Bytes escaped(key) + terminator + revs can take at most. */
static inline size_t mvcc_index_key_max(size_t key_len)
{
	return 2 * key_len + 2 + MVCC_REV_BYTES;
}
/* Write escaped(key) + terminator (no revs) at out; returns bytes written. */
size_t mvcc_escape_key(const uint8_t *key, size_t key_len, uint8_t *out);
/* Write escaped(key) without terminator (a seek bound for every key >= key). */
size_t mvcc_escape_prefix(const uint8_t *key, size_t key_len, uint8_t *out);
/* Full index key: escaped + terminator + BE main + BE sub. Returns its length. */
size_t mvcc_index_key(const uint8_t *key, size_t key_len, int64_t main, int64_t sub,
		      uint8_t *out);
/*
 * Split an index key: *group_len = bytes of escaped key + terminator; the user
 * key is unescaped into out (room for ik_len bytes); revs are decoded.
 * DB_CORRUPT if malformed.
 */
int mvcc_index_key_decode(const uint8_t *ik, size_t ik_len, uint8_t *out, size_t *key_len,
			  size_t *group_len, int64_t *main, int64_t *sub);

void mvcc_rev_key(int64_t main, int64_t sub, uint8_t out[MVCC_REV_BYTES]);

/* kv value. The decoded kv points into `val` (borrowed). */
size_t mvcc_kv_val_max(size_t key_len, size_t value_len);
size_t mvcc_kv_val_encode(const struct mvcc_kv *kv, int tombstone, uint8_t *out);
int mvcc_kv_val_decode(const uint8_t *val, size_t len, struct mvcc_kv *kv, int *tombstone);

/* current value: kv's revisions, version and lease, and the sub revision
 * of its history entry; neither key nor value (see the table comment). */
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

/* History entry (main, sub) decoded into *kv, pointing into the memory of
 * the session's kv cursor: valid until mvcc_history_done (which resets that
 * cursor; call it whatever this returned). DB_CORRUPT if the entry is missing. */
int mvcc_history_get(struct db_session *s, int64_t main, int64_t sub, struct mvcc_kv *kv,
		     int *tombstone);
void mvcc_history_done(struct db_session *s);

#endif
