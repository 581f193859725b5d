/*
 * storage/mvcc.h — etcd's multi-version key space on WiredTiger.
 *
 * The model is etcd's: every write request gets one main revision; each
 * operation inside it (a key put or deleted) gets a sub revision. Keys carry
 * create_revision, mod_revision, version (1 on create, reset by delete) and
 * lease. History is kept explicitly (WiredTiger timestamps are not durable in
 * 3.2) until compaction removes versions below the compact revision, keeping
 * each key's latest one.
 *
 * Tables (all in the db's connection):
 *   kv      (main rev, sub rev)  -> key, value, create, version, lease, tombstone,
 *                                   and the key's previous entry [history, watches]
 *   current (user key)           -> where the key's newest entry is [head reads;
 *                                   older revisions walk back from it]
 *   lease_keys (lease id, user key)        -> ""                [keys attached to a lease]
 *   meta    name -> value: rev, compact_rev, consistent_index, ...
 * Keys are encoded so that WiredTiger's byte order is etcd's order.
 *
 * Threads: struct mvcc is shared; every call also takes the calling thread's
 * db_session. Writes happen only inside a transaction the caller opened with
 * mvcc_begin (or db_txn_begin where no compaction can run at the same time);
 * mvcc_commit() ends it and publishes the new revision.
 */
#ifndef METAD_STORAGE_MVCC_H
#define METAD_STORAGE_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"

struct mvcc;

/* One key-value, as etcd's mvccpb.KeyValue. */
struct mvcc_kv {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *value;
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
};

/*
 * A list of key-values whose bytes it owns (copied out of WiredTiger memory
 * into an internal arena). Zero-initialise or mvcc_kvlist_init before use;
 * results are appended; mvcc_kvlist_free releases everything.
 */
struct mvcc_kvlist {
	struct mvcc_kv *kvs;
	size_t n;
	size_t cap;       /* private */
	void *arena;      /* private */
};

void mvcc_kvlist_init(struct mvcc_kvlist *l);
void mvcc_kvlist_free(struct mvcc_kvlist *l);
/* Append a copy of kv. Returns DB_OK or DB_NOMEM. */
int mvcc_kvlist_push(struct mvcc_kvlist *l, const struct mvcc_kv *kv);

/* Open the key space in db (creating tables on first use) and load rev,
 * compact_rev and consistent_index from meta. */
int mvcc_open(struct db *db, struct mvcc **out);
/* History entries mvcc_compact_run handles per transaction (etcd's
 * --experimental-compaction-batch-limit; default 1000); n <= 0 keeps it. */
void mvcc_set_compact_batch(struct mvcc *m, int n);
void mvcc_close(struct mvcc *m); /* NULL is allowed */

/* Published state (atomics: safe from any thread). */
int64_t mvcc_rev(const struct mvcc *m);          /* last committed revision; 1 when empty, as etcd */
int64_t mvcc_compact_rev(const struct mvcc *m);  /* 0 if never compacted */
/* Live keys (etcd_debugging_mvcc_keys_total), as of the last commit. */
int64_t mvcc_keys(const struct mvcc *m);
/* How long mvcc_commit's commits took (the applied batches: etcd's backend
 * commit duration). Borrowed from m. */
const struct db_hist *mvcc_commit_hist(const struct mvcc *m);
uint64_t mvcc_consistent_index(const struct mvcc *m);

/* ---- keys written, for the watch hub ---- */

/* The keys put or deleted since the last mvcc_span_take: the smallest and
 * largest, and the first revision that wrote one. The watch hub skips the
 * revisions whose keys no watcher's range can hold, without reading them. */
struct mvcc_span {
	int any;   /* 0: nothing was written */
	int all;   /* the bounds could not be kept (out of memory): any key */
	int64_t first_rev;
	uint8_t *lo, *hi;
	size_t lo_len, hi_len, lo_cap, hi_cap;
};

/* Move what was written since the last take into *out, whose buffers are
 * reused. Writes are made under mvcc_begin; so is this call's swap. */
void mvcc_span_take(struct mvcc *m, struct mvcc_span *out);
void mvcc_span_free(struct mvcc_span *sp);
/* Widen sp to hold key (written at rev). DB_OK, or DB_NOMEM (then sp->all). */
int mvcc_span_add(struct mvcc_span *sp, int64_t rev, const uint8_t *key, size_t key_len);
/* Whether a key within written's bounds can lie in want's: from want->lo
 * up to want->hi excluded, or with no upper bound when up_open. */
int mvcc_span_meets(const struct mvcc_span *written, const struct mvcc_span *want, int up_open);

/* ---- reads ---- */

#define MVCC_KEYS_ONLY 0x1  /* values are not copied (value_len 0) */
#define MVCC_COUNT_ONLY 0x2 /* only count is computed */

struct mvcc_range_req {
	const uint8_t *key;
	size_t key_len;
	/* end_len == 0: the single key `key`. end == "\0" (len 1): every key >= key.
	 * Otherwise the half-open interval [key, end). */
	const uint8_t *end;
	size_t end_len;
	int64_t rev;   /* <= 0: the current revision */
	int64_t limit; /* <= 0: no limit */
	unsigned flags;
};

struct mvcc_range_res {
	struct mvcc_kvlist kvs; /* in key order, at most limit */
	int64_t count;          /* every live key in the range at rev, ignoring limit */
	int64_t rev;            /* the store's current revision at the read (etcd's header revision) */
};

/*
 * Range at a revision. Outside a transaction this opens and closes its own
 * snapshot, so rev/count/kvs are mutually consistent. Inside the caller's
 * write transaction it reads that transaction's state, own writes included.
 * Errors (etcd's rules): DB_COMPACTED when 0 < rev < compact_rev (reading at
 * exactly compact_rev is allowed), DB_FUTURE_REV when rev > current, DB_NOMEM, DB_IO.
 * res must be zeroed by the caller; free res->kvs with mvcc_kvlist_free.
 */
int mvcc_range(struct mvcc *m, struct db_session *s, const struct mvcc_range_req *req,
	       struct mvcc_range_res *res);

/* ---- writes: only inside a transaction opened with db_txn_begin ---- */

/* Begin a write transaction on s, excluding mvcc_compact_run's chunks
 * until mvcc_commit or mvcc_abort ends it (both also write `current`). */
int mvcc_begin(struct mvcc *m, struct db_session *s);

/* Start one write request: its first change takes revision current+1.
 * mvcc_put / mvcc_delete_range outside a request return DB_INVALID. */
void mvcc_req_begin(struct mvcc *m, struct db_session *s);
/* End the request; returns its revision (current+1 if it changed anything,
 * else the unchanged current revision). */
int64_t mvcc_req_end(struct mvcc *m, struct db_session *s);

/* Put one key. If prev is not NULL and the key existed, its previous
 * key-value is appended to prev. If out is not NULL the new key-value
 * (create/mod revision, version, lease) is appended to out. Maintains
 * lease_keys (detaching from the old lease, attaching to the new). */
int mvcc_put(struct mvcc *m, struct db_session *s, const uint8_t *key, size_t key_len,
	     const uint8_t *value, size_t value_len, int64_t lease, struct mvcc_kvlist *prev,
	     struct mvcc_kvlist *out);

/* Delete every live key in the range (same key/end rules as mvcc_range).
 * *deleted gets the count; if prev is not NULL the deleted key-values are
 * appended in key order. Each deleted key takes one sub revision; deleting
 * nothing does not change the revision. */
int mvcc_delete_range(struct mvcc *m, struct db_session *s, const uint8_t *key, size_t key_len,
		      const uint8_t *end, size_t end_len, int64_t *deleted, struct mvcc_kvlist *prev);

/* Record a compaction at rev (reads below rev fail from now on). Does not
 * change the revision. DB_COMPACTED if rev <= compact_rev, DB_FUTURE_REV if
 * rev > current. History is removed later by mvcc_compact_run. */
int mvcc_compact(struct mvcc *m, struct db_session *s, int64_t rev);

/* Keys attached to a lease, appended to keys (keys only). */
int mvcc_lease_keys(struct mvcc *m, struct db_session *s, int64_t lease, struct mvcc_kvlist *keys);

/* Store the consistent index and commit the transaction (sync or not), then
 * publish rev / compact_rev / consistent_index. On error the transaction is
 * rolled back and nothing is published. */
int mvcc_commit(struct mvcc *m, struct db_session *s, uint64_t consistent_index, int sync);
/* Roll back the transaction and forget pending revisions. */
void mvcc_abort(struct mvcc *m, struct db_session *s);

/* ---- maintenance ---- */

/* Physically remove history below the recorded compact revision, keeping each
 * key's latest version at or below it (and dropping tombstones <= it). Runs
 * its own transactions in bounded chunks so writers are not blocked long.
 * Call with no transaction open on s (else DB_INVALID); safe to run on its
 * own thread next to the writer. Progress is kept in meta, so calling it at
 * start-up finishes a compaction interrupted by a restart; with nothing to
 * do it returns at once. */
int mvcc_compact_run(struct mvcc *m, struct db_session *s);
/* As mvcc_compact_run, but removes nothing above upto even when a later
 * compact revision is recorded (a reader still needs that history). */
int mvcc_compact_run_to(struct mvcc *m, struct db_session *s, int64_t upto);

/* Hash of the key-value history up to rev (for HashKV); DB_COMPACTED etc.
 * rev <= 0 means the current revision. CRC-32C over the history entries with
 * compact_rev < main <= rev (scheme documented in mvcc_hash.c), so it does
 * not change when mvcc_compact_run removes entries. *compact_rev is set. */
int mvcc_hash(struct mvcc *m, struct db_session *s, int64_t rev, uint32_t *hash,
	      int64_t *compact_rev);

/* ---- history of changes (mvcc_changes.c), for watches ---- */

/* One change: a put (kv complete, mod_revision = its revision) or, when
 * tombstone is set, a delete (only kv.key and kv.mod_revision are set, as in
 * etcd's DELETE event). Bytes are borrowed for the callback only. */
struct mvcc_change {
	struct mvcc_kv kv;
	int64_t sub;
	int tombstone;
	/* The key's entry before this one (prev_main 0: none), for
	 * mvcc_history_kv: a watch's prev_kv without a search. */
	int64_t prev_main, prev_sub;
};
/* Append the key-value of history entry (main, sub) to out (own snapshot
 * outside a transaction). DB_NOTFOUND when main is 0, the entry is a
 * tombstone (the key did not exist) or compaction removed it. */
int mvcc_history_kv(struct mvcc *m, struct db_session *s, int64_t main, int64_t sub,
		    struct mvcc_kvlist *out);

/* Return non-zero to stop the scan (that value is returned). */
typedef int (*mvcc_change_fn)(void *arg, const struct mvcc_change *ch);

/*
 * Every change with from_rev <= revision <= to_rev, in revision order, whose
 * key is in the range (key/end rules as mvcc_range; key == NULL: all keys).
 * Runs in s's open transaction if any (its snapshot, so several reads see
 * the same store), else in a snapshot of its own. Returns
 * DB_COMPACTED when from_rev < the compacted revision seen in that snapshot
 * (the history is incomplete there), else DB_OK, DB_NOMEM, DB_IO, DB_CORRUPT
 * or the callback's stop value. At most max_changes changes are reported
 * (0 = no limit); *last_rev gets the last revision fully scanned, so a caller
 * can go on from *last_rev + 1 in bounded chunks.
 */
int mvcc_changes(struct mvcc *m, struct db_session *s, int64_t from_rev, int64_t to_rev,
		 const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
		 size_t max_changes, mvcc_change_fn fn, void *arg, int64_t *last_rev);
/* Every change (all keys) as mvcc_changes, but also below the recorded
 * compact revision: for a caller that holds physical compaction back from
 * from_rev (the watch hub, see core/compactor.c), where the history is still
 * whole although a Compact was recorded. */
int mvcc_changes_any(struct mvcc *m, struct db_session *s, int64_t from_rev, int64_t to_rev,
		     size_t max_changes, mvcc_change_fn fn, void *arg, int64_t *last_rev);
/* The revision, compacted revision and consistent index as s's open
 * transaction sees them (all three come from the same commit). */
int mvcc_snapshot_state(struct mvcc *m, struct db_session *s, int64_t *rev, int64_t *compact_rev,
			uint64_t *ci);
/* The compact revision up to which history was physically removed (0: none
 * yet), as s's open transaction sees it: below a recorded compact revision
 * until the background run has finished. */
int mvcc_compacted_rev(struct db_session *s, int64_t *rev);

#endif
