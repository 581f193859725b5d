/*
 * storage/db.h — the node's single WiredTiger connection.
 *
 * Every table of a node (MVCC key space, Raft log, leases, meta) lives in one
 * WiredTiger connection opened here, so that one transaction can span them
 * (the apply loop commits key changes and the consistent index together).
 * WiredTiger types never appear in public headers; storage-internal files
 * reach the connection through storage/db_internal.h.
 */
#ifndef METAD_STORAGE_DB_H
#define METAD_STORAGE_DB_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

struct db;

/* Error codes shared by the storage module; 0 is success. */
enum {
	DB_OK = 0,
	DB_NOTFOUND = 1, /* no such key / entry */
	DB_COMPACTED,    /* revision below the compacted revision */
	DB_FUTURE_REV,   /* revision above the current revision */
	DB_NOMEM,        /* allocation failed */
	DB_IO,           /* WiredTiger reported an error */
	DB_CORRUPT,      /* stored bytes do not decode */
	DB_INVALID,      /* caller broke a precondition */
};

struct db_options {
	uint64_t cache_mb; /* WiredTiger cache; 0 = default (256 MiB) */
	/*
	 * 0 (default): every table is journaled, so a synced commit makes all
	 * of it durable. 1: only the Raft log and Raft state are journaled;
	 * the key space, leases and meta become durable at checkpoints, and
	 * the caller replays its log above the checkpointed consistent index
	 * (etcd's model: half the bytes written per request). Fixed when a
	 * table is created.
	 */
	int unjournaled_state;
	/*
	 * --wal-dir: the write-ahead data (WiredTiger's journal and the Raft
	 * log tables, raft_log and raft_state) lives in this directory
	 * (created if missing) instead of dir, so it can sit on its own disk.
	 * NULL: in dir. The choice is recorded in dir when the store is
	 * created; opening it later with another choice fails (DB_INVALID,
	 * with the reason in errbuf) rather than find no log.
	 */
	const char *wal_dir;
	/* WiredTiger's own error and information messages ("error", "info");
	 * NULL: WiredTiger writes them to stderr/stdout. Called from any thread. */
	void (*log)(const char *level, const char *msg);
};

/*
 * Open (creating if needed) the database under `dir`, which must exist.
 * On failure returns a DB_* code and writes a message to errbuf.
 */
int db_open(const char *dir, const struct db_options *opts, struct db **out,
	    char *errbuf, size_t errlen);

/* Close the connection cleanly (a checkpoint is taken). NULL is allowed. */
void db_close(struct db *db);

/* Bytes of the WiredTiger data files under the data dir (Status.db_size):
 * tables and metadata. The journal (WiredTigerLog.*, pre-allocated log
 * files) is not counted, as etcd does not count its WAL. */
uint64_t db_size_bytes(const struct db *db);

/*
 * Grow WiredTiger's cache by extra_mb for a scan that reads the whole store
 * more than once (an etcd-format snapshot makes two runs over it), so the
 * second run finds its pages in memory instead of reading, decompressing
 * and evicting them again; db_cache_boost_end gives the memory back once
 * the last such scan ends. Overlapping scans share the largest boost.
 * DB_OK, or a WiredTiger error (the cache is then left as it was).
 */
int db_cache_boost(struct db *db, uint64_t extra_mb);
void db_cache_boost_end(struct db *db);

/*
 * A session is one thread's handle: a WiredTiger session with its cursors
 * cached. Sessions are not thread-safe; open one per thread. Transactions
 * span every table, so a batch can write the log, keys and meta at once.
 */
struct db_session;

int db_session_open(struct db *db, struct db_session **out);
void db_session_close(struct db_session *s); /* NULL is allowed */

/* Begin a snapshot-isolation transaction on the session. */
int db_txn_begin(struct db_session *s);

/* Begin a transaction on s that sees exactly what like's open one sees
 * (so two threads can read one snapshot); like's becomes read-only. */
int db_txn_begin_like(struct db_session *s, struct db_session *like);

/*
 * A latency histogram in etcd's buckets for disk operations (Prometheus
 * ExponentialBuckets(0.001, 2, 14): 1 ms .. 8.192 s, then +Inf): counts per
 * bucket (not cumulative), their number and the sum. Recorded with relaxed
 * atomics: reading it takes no lock and may see a commit half counted.
 */
#define DB_HIST_BUCKETS 14
struct db_hist {
	_Atomic uint64_t bucket[DB_HIST_BUCKETS + 1]; /* the last: above 8.192 s */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};
void db_hist_observe(struct db_hist *h, uint64_t ns);
/* Time of db_txn_commit(s, 1) calls on any session of db (the Raft log's
 * group commits): etcd's WAL fsync duration. Borrowed from db. */
const struct db_hist *db_sync_commit_hist(const struct db *db);
/* Commit; with sync the commit is on disk (fsync'd) when this returns. */
int db_txn_commit(struct db_session *s, int sync);
/* Roll back; safe to call when no transaction is open. */
void db_txn_abort(struct db_session *s);
/* Non-zero while a transaction is open on the session. */
int db_txn_active(const struct db_session *s);

/* Take a checkpoint (everything committed before it starts is in it). */
int db_checkpoint(struct db_session *s);

/* Give free space in every table file back to the file system (etcd's
 * defragment). Slow on big tables; readers and writers go on meanwhile. */
int db_defragment(struct db_session *s);

/* Static message for a DB_* code. */
const char *db_strerror(int code);

#endif
