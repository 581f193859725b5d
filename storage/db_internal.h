/*
 * storage/db_internal.h — storage-module-only view of struct db.
 * Never included outside storage/ (and storage tests).
 */
#ifndef METAD_STORAGE_DB_INTERNAL_H
#define METAD_STORAGE_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <wiredtiger.h>

#include "storage/db.h"

/* raft_state row holding the live state generation (BE32); a raft_state
 * blob's key ("b/" + name, raftlog.c), so rlog_save_blob writes it. */
#define DB_GEN_BLOB "state_gen"
#define DB_GEN_KEY "b/" DB_GEN_BLOB

/* CLOCK_MONOTONIC in nanoseconds (db.c). */
uint64_t db_now_ns(void);

/* Map a WiredTiger return code to a DB_* code. */
int db_wt_error(int wt_rv);

/*
 * Tables every session keeps a cursor on. Adding a table: add it here and
 * to the table list in db.c (name + creation config); db_open creates it.
 */
enum db_table {
	DB_TBL_KV,         /* mvcc history: (main, sub) -> entry */
	DB_TBL_CURRENT,    /* mvcc: key -> where its newest entry is */
	DB_TBL_LEASE_KEYS, /* mvcc: (lease, key) -> "" */
	DB_TBL_META,       /* name -> value */
	DB_TBL_RAFT_LOG,   /* index -> term, type, data */
	DB_TBL_RAFT_STATE, /* name -> hard state / blobs */
	DB_TBL_LEASE,      /* lessor: BE64(lease id) -> varint TTL */
	DB_TBL_AUTH,       /* auth store: kind byte + name -> opaque record */
	DB_TBL_COUNT
};

/* WiredTiger's event handler first, so its callbacks find the db. */
struct db_events {
	WT_EVENT_HANDLER handler;
	void (*log)(const char *level, const char *msg); /* db_options.log */
};

struct db {
	struct db_events events;
	WT_CONNECTION *conn;
	char *dir;
	char *wal_dir;         /* absolute; NULL: the log is in dir */
	int snappy;            /* the compressor loaded: tables use it */
	int unjournaled_state; /* db_options.unjournaled_state */
	_Atomic uint32_t gen;  /* live generation of the state tables (db.c) */
	_Atomic bool stale;    /* an older generation is left to drop */
	pthread_mutex_t drop_mu; /* db_drop_stale vs a load's choice of generation */
	uint32_t loading;      /* generation a snap_load fills (0: none); drop_mu */
	struct db_hist sync_commits; /* commits with sync (the Raft log's) */
	pthread_mutex_t cache_mu;    /* db_cache.c: the cache's size while scans run */
	uint64_t cache_mb;           /* as opened */
	uint64_t boost_mb;           /* extra while boost_users > 0 */
	uint32_t boost_users;
};

/*
 * --wal-dir's marker (waldir.c): check wal_dir (NULL: none) against what
 * dir recorded when its store was created, creating wal_dir and recording
 * it for a new store. On DB_OK abs is the absolute WAL directory, or ""
 * when the log stays in dir. Errors: DB_INVALID (a mismatch, explained in
 * err), DB_IO.
 */
int db_wal_resolve(const char *dir, const char *wal_dir, char *abs, size_t len, char *err,
		   size_t errlen);

/* Tables of the state machine (one per generation), vs the Raft log's. */
bool db_table_is_state(enum db_table t);
/* State table t's URI in generation gen. (The Raft tables' URIs depend on
 * the db: with --wal-dir they are files there; db.c resolves them.) */
void db_table_uri(enum db_table t, uint32_t gen, char *buf, size_t cap);
/* Create table t of generation gen with its configuration (exists: 0). */
int db_table_create(WT_SESSION *ws, const struct db *db, enum db_table t, uint32_t gen);
/* Drop the state tables of every generation but the live one; returns how
 * many are still in use (a session's cursors: it refreshes at its next
 * transaction) and left for a later call. */
int db_drop_stale(struct db *db);

/* A growable scratch buffer owned by a session (reused, never shrunk). */
struct db_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

/* Make room for at least `need` bytes; DB_OK or DB_NOMEM. len is untouched. */
int db_buf_reserve(struct db_buf *b, size_t need);

/*
 * Per-transaction MVCC state of a session (see mvcc*.c). It is valid only
 * while gen == the session's txn_gen, so a transaction ended by any path
 * (db_txn_commit, db_txn_abort, mvcc_commit) invalidates it for free.
 */
struct mvcc_txn_state {
	uint64_t gen;        /* txn_gen this state belongs to; 0 = never loaded */
	int64_t rev;         /* revision of the last request applied in this txn */
	int64_t compact_rev; /* compact revision as seen/changed in this txn */
	int64_t req_rev;     /* revision the open request writes at */
	int64_t req_sub;     /* next sub revision inside the open request */
	int in_req;          /* between mvcc_req_begin and mvcc_req_end */
	int holds_apply;     /* begun by mvcc_begin: holds mvcc's apply_mu */
	int64_t keys_delta;  /* live keys created minus deleted in this txn */
};

/* Number of scratch buffers a session carries (see users in mvcc*.c). */
#define DB_SESSION_BUFS 4

struct db_session {
	struct db *db;
	WT_SESSION *wt;
	WT_CURSOR *cur[DB_TBL_COUNT]; /* opened once, reset after each use */
	uint32_t gen;                 /* state generation of cur[] */
	int in_txn;
	uint64_t txn_gen; /* incremented by every db_txn_begin */
	struct db_buf buf[DB_SESSION_BUFS];
	struct mvcc_txn_state mv;
};

/* The session's cached cursor for table t (never NULL on an open session). */
static inline WT_CURSOR *db_cursor(struct db_session *s, enum db_table t)
{
	return s->cur[t];
}

/*
 * Begin a read-only snapshot transaction if none is open. *own is set to 1
 * when one was begun; end it with db_read_end(s, own).
 */
int db_read_begin(struct db_session *s, int *own);
void db_read_end(struct db_session *s, int own);

#endif
