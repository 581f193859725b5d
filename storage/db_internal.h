/*
 * storage/db_internal.h — storage-module-only view of struct db.
 * Never included outside storage/ (and storage tests).
 */
#ifndef METAD_STORAGE_DB_INTERNAL_H
#define METAD_STORAGE_DB_INTERNAL_H

#include <stdint.h>
#include <wiredtiger.h>

#include "storage/db.h"

struct db {
	WT_CONNECTION *conn;
	char *dir;
	struct db_hist sync_commits; /* commits with sync (the Raft log's) */
};

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
