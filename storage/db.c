/*
 * storage/db.c — the WiredTiger connection, sessions and transactions.
 *
 * One connection per node holds every table, so a single transaction can
 * cover the Raft log, the key space and meta. Sessions open a cursor on each
 * table once and keep it: opening cursors per operation costs more than the
 * operation itself on the hot read and write paths.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "storage/db_internal.h"

/* Debian ships the snappy compressor as a loadable extension. */
#define SNAPPY_EXT "/usr/lib/x86_64-linux-gnu/libwiredtiger_snappy.so"

/*
 * Tables, in enum db_table order. Keys and values are raw bytes ('u') with
 * our own encodings. Prefix compression is off everywhere: snappy already
 * shrinks the blocks, and prefix-compressed keys must be rebuilt on every
 * search inside a leaf page (46% of a put/get profile when it was on).
 *
 * The key space tables use 4 KiB leaf pages instead of WiredTiger's 32 KiB,
 * in 512-byte allocation units so compression still shrinks them on disk:
 * a point read of a value not in the cache (a key's latest entry sits
 * anywhere in kv's history) then reads and decompresses 4 KiB, not 32, and
 * eviction rewrites smaller pages for the scattered updates of a put load.
 * Measured, 15 s of 1,000-client puts then txn-mixed 90/10 on 100,000
 * keys: 28.7k -> 31.9k puts/s and 18.1k -> 32.2k mixed requests/s. On-disk
 * size after 1M keys: 113 MiB (32 KiB pages), 463 (4 KiB pages in 4 KiB
 * units), 180 (4 KiB pages in 512 B units).
 */
static const struct {
	const char *uri;
	int prefix_compression;
	int always_journaled; /* the Raft log: durable on every synced commit */
	int small_pages;
} tables[DB_TBL_COUNT] = {
	[DB_TBL_KV] = {"table:kv", 0, 0, 1},
	[DB_TBL_CURRENT] = {"table:current", 0, 0, 1},
	[DB_TBL_LEASE_KEYS] = {"table:lease_keys", 0},
	[DB_TBL_META] = {"table:meta", 0},
	[DB_TBL_RAFT_LOG] = {"table:raft_log", 0, 1},
	[DB_TBL_RAFT_STATE] = {"table:raft_state", 0, 1},
	[DB_TBL_LEASE] = {"table:lease", 0},
	[DB_TBL_AUTH] = {"table:auth", 0},
};

int db_wt_error(int wt_rv)
{
	switch (wt_rv) {
	case 0:
		return DB_OK;
	case WT_NOTFOUND:
		return DB_NOTFOUND;
	case ENOMEM:
		return DB_NOMEM;
	case EINVAL:
		return DB_INVALID;
	default:
		return DB_IO;
	}
}

const char *db_strerror(int code)
{
	switch (code) {
	case DB_OK:
		return "ok";
	case DB_NOTFOUND:
		return "not found";
	case DB_COMPACTED:
		return "mvcc: required revision has been compacted";
	case DB_FUTURE_REV:
		return "mvcc: required revision is a future revision";
	case DB_NOMEM:
		return "out of memory";
	case DB_IO:
		return "storage engine error";
	case DB_CORRUPT:
		return "stored data does not decode";
	case DB_INVALID:
		return "invalid argument";
	default:
		return "unknown storage error";
	}
}

int db_buf_reserve(struct db_buf *b, size_t need)
{
	if (need <= b->cap)
		return DB_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL)
		return DB_NOMEM;
	b->p = p;
	b->cap = cap;
	return DB_OK;
}

/*
 * Open the connection, with snappy when the extension loads.
 * Dirty-eviction thresholds are raised from WiredTiger's 5%/20%: with the
 * defaults, application threads (the apply loop) spend most of a write batch
 * evicting dirty pages (measured: ~3x fewer puts/s). Checkpoints bound the
 * dirty data anyway (core/checkpoint.c), and a page of `current` evicted
 * dirty is soon dirtied again by a random put and written twice: 70/90 over
 * 30/50 cut eviction CPU per 1,000-client put from ~7 to ~2 us (puts/s +8%,
 * measured with the (key, revision) index of the time, which suffered the
 * same) without raising peak RSS.
 */
static int open_conn(const char *dir, uint64_t cache_mb, WT_CONNECTION **conn, int *snappy)
{
	char cfg[512];
	const char *base = "create,cache_size=%lluM,session_max=1000,"
			   "log=(enabled=true,archive=true,file_max=16MB),"
			   "checkpoint=(wait=60),transaction_sync=(enabled=false),"
			   "eviction_dirty_target=70,eviction_dirty_trigger=90%s";
	snprintf(cfg, sizeof(cfg), base, (unsigned long long)cache_mb,
		 ",extensions=[\"" SNAPPY_EXT "\"]");
	int rv = wiredtiger_open(dir, NULL, cfg, conn);
	if (rv == 0) {
		*snappy = 1;
		return 0;
	}
	snprintf(cfg, sizeof(cfg), base, (unsigned long long)cache_mb, "");
	*snappy = 0;
	return wiredtiger_open(dir, NULL, cfg, conn);
}

static int create_tables(WT_CONNECTION *conn, int snappy, int unjournaled_state)
{
	WT_SESSION *ws;
	int rv = conn->open_session(conn, NULL, NULL, &ws);
	if (rv != 0)
		return rv;
	for (int t = 0; t < DB_TBL_COUNT; t++) {
		char cfg[256];
		snprintf(cfg, sizeof(cfg), "key_format=u,value_format=u,prefix_compression=%s%s%s%s",
			 tables[t].prefix_compression ? "true" : "false",
			 tables[t].small_pages ? ",leaf_page_max=4KB,allocation_size=512B" : "",
			 snappy ? ",block_compressor=snappy" : "",
			 unjournaled_state && !tables[t].always_journaled ? ",log=(enabled=false)" : "");
		rv = ws->create(ws, tables[t].uri, cfg);
		if (rv != 0)
			break;
	}
	int crv = ws->close(ws, NULL);
	return rv != 0 ? rv : crv;
}

int db_open(const char *dir, const struct db_options *opts, struct db **out, char *errbuf,
	    size_t errlen)
{
	uint64_t cache_mb = (opts && opts->cache_mb) ? opts->cache_mb : 256;
	struct db *db = calloc(1, sizeof(*db));
	if (db == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return DB_NOMEM;
	}
	db->dir = strdup(dir);
	if (db->dir == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		free(db);
		return DB_NOMEM;
	}
	int snappy;
	int rv = open_conn(dir, cache_mb, &db->conn, &snappy);
	if (rv != 0) {
		snprintf(errbuf, errlen, "wiredtiger_open %s: %s", dir, wiredtiger_strerror(rv));
		goto err_after_alloc;
	}
	rv = create_tables(db->conn, snappy, opts ? opts->unjournaled_state : 0);
	if (rv != 0) {
		snprintf(errbuf, errlen, "create tables in %s: %s", dir, wiredtiger_strerror(rv));
		goto err_after_open;
	}
	*out = db;
	return DB_OK;

err_after_open:
	db->conn->close(db->conn, NULL);
err_after_alloc:
	free(db->dir);
	free(db);
	return db_wt_error(rv) == DB_NOTFOUND ? DB_IO : db_wt_error(rv);
}

int db_checkpoint(struct db_session *s)
{
	return db_wt_error(s->wt->checkpoint(s->wt, NULL));
}

int db_defragment(struct db_session *s)
{
	for (int t = 0; t < DB_TBL_COUNT; t++) {
		int rv = s->wt->compact(s->wt, tables[t].uri, NULL);
		if (rv != 0)
			return db_wt_error(rv);
	}
	return DB_OK;
}

void db_close(struct db *db)
{
	if (db == NULL)
		return;
	/* Closing the connection takes a final checkpoint. */
	db->conn->close(db->conn, NULL);
	free(db->dir);
	free(db);
}

uint64_t db_size_bytes(const struct db *db)
{
	DIR *d = opendir(db->dir);
	if (d == NULL)
		return 0;
	uint64_t total = 0;
	struct dirent *e;
	char path[4096];
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		/* The journal (and its pre-allocated files) is not the database,
		 * as etcd's WAL is not counted in its db size. */
		if (strncmp(e->d_name, "WiredTigerLog.", 14) == 0 ||
		    strncmp(e->d_name, "WiredTigerPreplog.", 18) == 0 ||
		    strncmp(e->d_name, "WiredTigerTmplog.", 17) == 0 ||
		    strcmp(e->d_name, "raft_log.wt") == 0) /* the WAL's counterpart */
			continue;
		snprintf(path, sizeof(path), "%s/%s", db->dir, e->d_name);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

int db_session_open(struct db *db, struct db_session **out)
{
	struct db_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return DB_NOMEM;
	s->db = db;
	int rv = db->conn->open_session(db->conn, NULL, "isolation=snapshot", &s->wt);
	if (rv != 0)
		goto err_after_alloc;
	for (int t = 0; t < DB_TBL_COUNT; t++) {
		rv = s->wt->open_cursor(s->wt, tables[t].uri, NULL, NULL, &s->cur[t]);
		if (rv != 0)
			goto err_after_session;
	}
	*out = s;
	return DB_OK;

err_after_session:
	s->wt->close(s->wt, NULL); /* closes the cursors opened so far */
err_after_alloc:
	free(s);
	return db_wt_error(rv) == DB_NOTFOUND ? DB_IO : db_wt_error(rv);
}

void db_session_close(struct db_session *s)
{
	if (s == NULL)
		return;
	/* Closing the session rolls back an open transaction and closes cursors. */
	s->wt->close(s->wt, NULL);
	for (int i = 0; i < DB_SESSION_BUFS; i++)
		free(s->buf[i].p);
	free(s);
}

int db_txn_begin(struct db_session *s)
{
	if (s->in_txn)
		return DB_INVALID;
	int rv = s->wt->begin_transaction(s->wt, "isolation=snapshot");
	if (rv != 0)
		return db_wt_error(rv);
	s->in_txn = 1;
	s->txn_gen++;
	return DB_OK;
}

void db_hist_observe(struct db_hist *h, uint64_t ns)
{
	size_t i = 0;
	for (uint64_t le = 1000000; i < DB_HIST_BUCKETS && ns > le; le *= 2)
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

const struct db_hist *db_sync_commit_hist(const struct db *db)
{
	return &db->sync_commits;
}

uint64_t db_now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int db_txn_commit(struct db_session *s, int sync)
{
	if (!s->in_txn)
		return DB_INVALID;
	/* On failure WiredTiger has rolled the transaction back already. */
	uint64_t t0 = sync ? db_now_ns() : 0;
	int rv = s->wt->commit_transaction(s->wt, sync ? "sync=on" : "sync=off");
	if (sync)
		db_hist_observe(&s->db->sync_commits, db_now_ns() - t0);
	s->in_txn = 0;
	if (rv != 0)
		return db_wt_error(rv) == DB_NOTFOUND ? DB_IO : db_wt_error(rv);
	return DB_OK;
}

void db_txn_abort(struct db_session *s)
{
	if (!s->in_txn)
		return;
	s->wt->rollback_transaction(s->wt, NULL);
	s->in_txn = 0;
}

int db_txn_active(const struct db_session *s)
{
	return s->in_txn;
}

int db_read_begin(struct db_session *s, int *own)
{
	*own = 0;
	if (s->in_txn)
		return DB_OK;
	int rv = db_txn_begin(s);
	if (rv != DB_OK)
		return rv;
	*own = 1;
	return DB_OK;
}

void db_read_end(struct db_session *s, int own)
{
	if (!own) {
		for (int t = 0; t < DB_TBL_COUNT; t++)
			s->cur[t]->reset(s->cur[t]);
		return;
	}
	/* A read-only transaction: rollback releases the snapshot and resets cursors. */
	db_txn_abort(s);
}
