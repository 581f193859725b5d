/*
 * storage/raftlog.h — the Raft log and Raft state on WiredTiger.
 *
 * Entries are stored in table `raft_log`, a run of entries per row (raftlog.c);
 * hard state (term, vote, commit), conf state and snapshot metadata in
 * `raft_state`. The node driver (core/node.c) appends here before it sends
 * or applies. Appends are batched: one call writes many entries in the
 * caller's transaction (or its own, synced, when none is open).
 */
#ifndef METAD_STORAGE_RAFTLOG_H
#define METAD_STORAGE_RAFTLOG_H

#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"

struct rlog_entry {
	uint64_t index;
	uint64_t term;
	uint32_t type; /* caller-defined (normal, conf change, ...) */
	const uint8_t *data;
	size_t len;
};

struct rlog_hardstate {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;
};

/* Create the tables if missing. Call once at start-up. (db_open already
 * creates every table, so this cannot fail today; kept for the contract.) */
int rlog_init(struct db *db);

/*
 * Append entries (consecutive indexes). Any stored entries at or after
 * entries[0].index are removed first (a conflicting suffix). If no
 * transaction is open on s, the append runs in its own transaction and is
 * committed with sync=on before returning; otherwise it joins the caller's.
 */
int rlog_append(struct db_session *s, const struct rlog_entry *entries, size_t n);

/* First and last stored index (first = last+1 when empty; both 0 on a new log
 * that was never compacted means empty: first=1,last=0). */
int rlog_bounds(struct db_session *s, uint64_t *first, uint64_t *last);

/*
 * Read entries [lo, hi) up to max_bytes of data (at least one entry when any
 * exists). Calls fn for each entry; the entry's data is borrowed only for the
 * duration of the call, and fn must not use s (it would move the cursor the
 * entries are read with). Stops early when fn returns non-zero.
 * Errors: DB_COMPACTED if lo < first, DB_NOTFOUND if hi > last + 1 (entries
 * not yet stored; etcd raft's ErrUnavailable), DB_CORRUPT, DB_IO.
 */
typedef int (*rlog_visit_fn)(void *arg, const struct rlog_entry *e);
int rlog_read(struct db_session *s, uint64_t lo, uint64_t hi, size_t max_bytes, rlog_visit_fn fn,
	      void *arg);

/* Remove entries with index >= from (the caller's transaction, or its own
 * synced one). */
int rlog_truncate(struct db_session *s, uint64_t from);

/* Term of the entry at index (DB_NOTFOUND if not stored). */
int rlog_term(struct db_session *s, uint64_t index, uint64_t *term);

/* Remove entries with index < upto (log compaction after a snapshot). The
 * log then starts at upto, even if that is past the last entry (first =
 * upto, last = upto - 1). Own synced transaction if none is open. */
int rlog_compact(struct db_session *s, uint64_t upto);

/* Hard state; a missing one reads as all zero. Saving with no transaction
 * open commits it synced (the same holds for rlog_save_blob). */
int rlog_save_hardstate(struct db_session *s, const struct rlog_hardstate *hs);
int rlog_load_hardstate(struct db_session *s, struct rlog_hardstate *hs);

/* Opaque blobs owned by the Raft layer (conf state, snapshot metadata),
 * stored by name in raft_state. load: *buf is malloc'ed, caller frees;
 * DB_NOTFOUND when absent. */
int rlog_save_blob(struct db_session *s, const char *name, const uint8_t *buf, size_t len);
int rlog_load_blob(struct db_session *s, const char *name, uint8_t **buf, size_t *len);

#endif
