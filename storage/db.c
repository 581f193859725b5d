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
#include <limits.h>
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
 * The key space tables use small leaf pages instead of WiredTiger's 32 KiB,
 * in 512-byte allocation units so compression still shrinks them on disk:
 * a point read of a value not in the cache (a key's latest entry sits
 * anywhere in kv's history) then reads and decompresses a few KiB, not 32,
 * and eviction rewrites smaller pages for the scattered updates of a put
 * load. Measured with 4 KiB for both, 15 s of 1,000-client puts then
 * txn-mixed 90/10 on 100,000 keys: 28.7k -> 31.9k puts/s and 18.1k ->
 * 32.2k mixed requests/s. On-disk size after 1M keys: 113 MiB (32 KiB
 * pages), 463 (4 KiB pages in 4 KiB units), 180 (4 KiB pages in 512 B
 * units). kv has 8 KiB since 6 Dec 2026: its puts append (keys are
 * revisions), so only its reads and whole-table scans see the page size,
 * and a scan paid one pread per page. A new member's catch-up (the
 * leader dumps kv, the member bulk-loads it; 1M keys, ~94k page reads on
 * the leader with 4 KiB) went from 1.74-1.84 s to 1.20-1.63 s, the leader's
 * CPU over it 1.17-1.32 -> 0.87-0.95 s (three alternating pairs), for
 * txn-mixed 90/10 at 25.0k/29.5k against 29.9k/31.8k requests/s (two
 * pairs; puts and ranges unchanged). `current`, updated at random places,
 * keeps 4 KiB. A table keeps the page size it was created with.
 *
 * The Raft log keeps entries up to 1 MiB inside its leaf pages: a batched
 * entry (many puts) is larger than WiredTiger's default in-page limit, and
 * each checkpoint then wrote every new entry as an overflow item, copying
 * it again into the overflow reuse list. 1,000-client puts on 100,000 keys,
 * eight alternating runs: checkpoint thread 2.4-3.6 -> 1.0-1.8 us of CPU
 * per put, the other threads unchanged.
 */
/*
 * The state tables (everything a snapshot carries) exist in generations:
 * generation 0 is "table:kv", generation g "table:kv_g<g>". A snapshot
 * install loads the next generation beside the live one and switches with
 * one synced write of the number (DB_GEN_KEY in raft_state), so the store
 * is never half replaced and nothing needs redoing after a crash.
 */
static const struct {
	const char *name;
	int prefix_compression;
	int always_journaled; /* the Raft log: durable on every synced commit */
	int leaf_kb; /* leaf_page_max in KiB, 512 B allocation units; 0: WiredTiger's */
	int state; /* one per generation */
	int big_values; /* values up to 1 MiB stay in the leaf page */
} tables[DB_TBL_COUNT] = {
	[DB_TBL_KV] = {"kv", 0, 0, 8, 1},
	[DB_TBL_CURRENT] = {"current", 0, 0, 4, 1},
	[DB_TBL_LEASE_KEYS] = {"lease_keys", 0, 0, 0, 1},
	[DB_TBL_META] = {"meta", 0, 0, 0, 1},
	[DB_TBL_RAFT_LOG] = {"raft_log", 0, 1, 0, 0, 1},
	[DB_TBL_RAFT_STATE] = {"raft_state", 0, 1, 0, 0},
	[DB_TBL_LEASE] = {"lease", 0, 0, 0, 1},
	[DB_TBL_AUTH] = {"auth", 0, 0, 0, 1},
};

bool db_table_is_state(enum db_table t)
{
	return tables[t].state != 0;
}

void db_table_uri(enum db_table t, uint32_t gen, char *buf, size_t cap)
{
	if (!tables[t].state || gen == 0)
		snprintf(buf, cap, "table:%s", tables[t].name);
	else
		snprintf(buf, cap, "table:%s_g%u", tables[t].name, (unsigned)gen);
}

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
static int open_conn(struct db *db, uint64_t cache_mb)
{
	char cfg[PATH_MAX + 512], log_path[PATH_MAX + 16] = "";
	if (db->wal_dir != NULL) /* db_wal_resolve: absolute, no quote */
		snprintf(log_path, sizeof(log_path), ",path=\"%s\"", db->wal_dir);
	const char *base = "create,cache_size=%lluM,session_max=1000,"
			   "log=(enabled=true,archive=true,file_max=16MB%s),"
			   "checkpoint=(wait=60),transaction_sync=(enabled=false),"
			   "eviction_dirty_target=70,eviction_dirty_trigger=90%s";
	WT_EVENT_HANDLER *h = db->events.log != NULL ? &db->events.handler : NULL;
	snprintf(cfg, sizeof(cfg), base, (unsigned long long)cache_mb, log_path,
		 ",extensions=[\"" SNAPPY_EXT "\"]");
	int rv = wiredtiger_open(db->dir, h, cfg, &db->conn);
	if (rv == 0) {
		db->snappy = 1;
		return 0;
	}
	snprintf(cfg, sizeof(cfg), base, (unsigned long long)cache_mb, log_path, "");
	db->snappy = 0;
	return wiredtiger_open(db->dir, h, cfg, &db->conn);
}

/* WiredTiger's messages through db_options.log (the server's logger). */
static int on_error(WT_EVENT_HANDLER *h, WT_SESSION *ws, int error, const char *message)
{
	(void)ws;
	(void)error; /* the message names it */
	((struct db_events *)(void *)h)->log("error", message);
	return 0;
}

static int on_message(WT_EVENT_HANDLER *h, WT_SESSION *ws, const char *message)
{
	(void)ws;
	((struct db_events *)(void *)h)->log("info", message);
	return 0;
}

/* Table t's URI in this db: with a WAL dir the Raft tables are files there
 * (a file: object may live outside the home directory); the state tables
 * are db_table_uri's. */
static void uri_of(const struct db *db, enum db_table t, uint32_t gen, char *buf, size_t cap)
{
	if (db->wal_dir != NULL && !tables[t].state)
		snprintf(buf, cap, "file:%s/%s.wt", db->wal_dir, tables[t].name);
	else
		db_table_uri(t, gen, buf, cap);
}

#define URI_MAX (PATH_MAX + 32)

static void free_db(struct db *db)
{
	pthread_mutex_destroy(&db->drop_mu);
	pthread_mutex_destroy(&db->cache_mu);
	free(db->wal_dir);
	free(db->dir);
	free(db);
}

int db_table_create(WT_SESSION *ws, const struct db *db, enum db_table t, uint32_t gen)
{
	char cfg[256], uri[URI_MAX], pages[64] = "";
	if (tables[t].leaf_kb != 0)
		snprintf(pages, sizeof(pages), ",leaf_page_max=%dKB,allocation_size=512B",
			 tables[t].leaf_kb);
	snprintf(cfg, sizeof(cfg), "key_format=u,value_format=u,prefix_compression=%s%s%s%s%s",
		 tables[t].prefix_compression ? "true" : "false", pages,
		 tables[t].big_values ? ",leaf_value_max=1MB" : "",
		 db->snappy ? ",block_compressor=snappy" : "",
		 db->unjournaled_state && !tables[t].always_journaled ? ",log=(enabled=false)" : "");
	uri_of(db, t, gen, uri, sizeof(uri));
	return ws->create(ws, uri, cfg);
}

/* The state generation recorded in raft_state (0 when never switched). */
static int load_gen(const struct db *db, WT_SESSION *ws, uint32_t *gen)
{
	WT_CURSOR *c;
	char uri[URI_MAX];
	*gen = 0;
	uri_of(db, DB_TBL_RAFT_STATE, 0, uri, sizeof(uri));
	int rv = ws->open_cursor(ws, uri, NULL, NULL, &c);
	if (rv != 0)
		return rv;
	WT_ITEM k = {.data = DB_GEN_KEY, .size = strlen(DB_GEN_KEY)}, v;
	c->set_key(c, &k);
	rv = c->search(c);
	if (rv == 0 && (rv = c->get_value(c, &v)) == 0 && v.size == 4) {
		const uint8_t *p = v.data;
		*gen = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	} else if (rv == 0) {
		rv = v.size == 0 ? 0 : EINVAL; /* empty: never switched */
	}
	c->close(c);
	return rv == WT_NOTFOUND ? 0 : rv;
}

static int create_tables(struct db *db)
{
	WT_SESSION *ws;
	int rv = db->conn->open_session(db->conn, NULL, NULL, &ws);
	if (rv != 0)
		return rv;
	/* The Raft tables first: raft_state says which generation is live. */
	for (int t = 0; rv == 0 && t < DB_TBL_COUNT; t++)
		if (!tables[t].state)
			rv = db_table_create(ws, db, t, 0);
	uint32_t gen = 0;
	if (rv == 0)
		rv = load_gen(db, ws, &gen);
	atomic_store(&db->gen, gen);
	for (int t = 0; rv == 0 && t < DB_TBL_COUNT; t++)
		if (tables[t].state)
			rv = db_table_create(ws, db, t, gen);
	int crv = ws->close(ws, NULL);
	if (rv == 0 && crv == 0)
		db_drop_stale(db); /* an old generation, or a load a crash cut short */
	return rv != 0 ? rv : crv;
}

/* "table:<state table>_g<n>" or "table:<state table>": its generation, or -1. */
static int64_t uri_gen(const char *uri)
{
	if (strncmp(uri, "table:", 6) != 0)
		return -1;
	const char *name = uri + 6;
	for (int t = 0; t < DB_TBL_COUNT; t++) {
		size_t n = strlen(tables[t].name);
		if (!tables[t].state || strncmp(name, tables[t].name, n) != 0)
			continue;
		if (name[n] == 0)
			return 0;
		char *end;
		if (name[n] == '_' && name[n + 1] == 'g' && name[n + 2] >= '1' && name[n + 2] <= '9') {
			unsigned long g = strtoul(name + n + 2, &end, 10);
			if (*end == 0 && g <= UINT32_MAX)
				return (int64_t)g;
		}
	}
	return -1;
}

int db_drop_stale(struct db *db)
{
	WT_SESSION *ws;
	WT_CURSOR *meta;
	if (db->conn->open_session(db->conn, NULL, NULL, &ws) != 0)
		return 0;
	/* Names first: dropping while walking the metadata is not allowed. */
	char (*stale)[64] = NULL;
	size_t n = 0, cap = 0;
	pthread_mutex_lock(&db->drop_mu);
	uint32_t live = atomic_load(&db->gen);
	if (ws->open_cursor(ws, "metadata:", NULL, NULL, &meta) == 0) {
		const char *key;
		while (meta->next(meta) == 0 && meta->get_key(meta, &key) == 0) {
			int64_t g = uri_gen(key);
			if (g < 0 || (uint32_t)g == live || (uint32_t)g == db->loading || strlen(key) >= 64)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 16;
				void *p = realloc(stale, nc * sizeof(*stale));
				if (p == NULL)
					break;
				stale = p;
				cap = nc;
			}
			snprintf(stale[n++], 64, "%s", key);
		}
		meta->close(meta);
	}
	int left = 0;
	for (size_t i = 0; i < n; i++)
		if (ws->drop(ws, stale[i], NULL) != 0)
			left++; /* a session still holds a cursor on it: next time */
	atomic_store(&db->stale, left > 0);
	pthread_mutex_unlock(&db->drop_mu);
	free(stale);
	ws->close(ws, NULL);
	return left;
}

int db_open(const char *dir, const struct db_options *opts, struct db **out, char *errbuf,
	    size_t errlen)
{
	uint64_t cache_mb = (opts && opts->cache_mb) ? opts->cache_mb : 256;
	char wal[PATH_MAX];
	int rv = db_wal_resolve(dir, opts ? opts->wal_dir : NULL, wal, sizeof(wal), errbuf, errlen);
	if (rv != DB_OK)
		return rv;
	struct db *db = calloc(1, sizeof(*db));
	if (db == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return DB_NOMEM;
	}
	pthread_mutex_init(&db->drop_mu, NULL);
	pthread_mutex_init(&db->cache_mu, NULL);
	db->cache_mb = cache_mb;
	if ((db->dir = strdup(dir)) == NULL || (wal[0] && (db->wal_dir = strdup(wal)) == NULL)) {
		snprintf(errbuf, errlen, "out of memory");
		free_db(db);
		return DB_NOMEM;
	}
	db->events.handler.handle_error = on_error;
	db->events.handler.handle_message = on_message;
	db->events.log = opts ? opts->log : NULL;
	rv = open_conn(db, cache_mb);
	if (rv != 0) {
		snprintf(errbuf, errlen, "wiredtiger_open %s: %s", dir, wiredtiger_strerror(rv));
		goto err_after_alloc;
	}
	db->unjournaled_state = opts ? opts->unjournaled_state : 0;
	rv = create_tables(db);
	if (rv != 0) {
		snprintf(errbuf, errlen, "create tables in %s: %s", dir, wiredtiger_strerror(rv));
		goto err_after_open;
	}
	*out = db;
	return DB_OK;

err_after_open:
	db->conn->close(db->conn, NULL);
err_after_alloc:
	free_db(db);
	return db_wt_error(rv) == DB_NOTFOUND ? DB_IO : db_wt_error(rv);
}

int db_checkpoint(struct db_session *s)
{
	int rv = db_wt_error(s->wt->checkpoint(s->wt, NULL));
	if (atomic_load(&s->db->stale))
		db_drop_stale(s->db);
	return rv;
}

int db_defragment(struct db_session *s)
{
	uint32_t gen = atomic_load(&s->db->gen);
	for (int t = 0; t < DB_TBL_COUNT; t++) {
		char uri[URI_MAX];
		uri_of(s->db, t, gen, uri, sizeof(uri));
		int rv = s->wt->compact(s->wt, uri, NULL);
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
	free_db(db);
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
	s->gen = atomic_load(&db->gen);
	for (int t = 0; t < DB_TBL_COUNT; t++) {
		char uri[URI_MAX];
		uri_of(db, t, s->gen, uri, sizeof(uri));
		rv = s->wt->open_cursor(s->wt, uri, NULL, NULL, &s->cur[t]);
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

/* The state tables were switched (a snapshot install): cursors on the new
 * generation, so the old one can be dropped. Outside a transaction only. */
static int refresh(struct db_session *s, uint32_t gen)
{
	for (int t = 0; t < DB_TBL_COUNT; t++) {
		if (!tables[t].state)
			continue;
		char uri[64];
		WT_CURSOR *c;
		db_table_uri(t, gen, uri, sizeof(uri));
		int rv = s->wt->open_cursor(s->wt, uri, NULL, NULL, &c);
		if (rv != 0)
			return db_wt_error(rv) == DB_NOTFOUND ? DB_IO : db_wt_error(rv);
		s->cur[t]->close(s->cur[t]);
		s->cur[t] = c;
	}
	s->gen = gen;
	return DB_OK;
}

int db_txn_begin(struct db_session *s)
{
	if (s->in_txn)
		return DB_INVALID;
	uint32_t gen = atomic_load_explicit(&s->db->gen, memory_order_acquire);
	if (gen != s->gen) {
		int rrv = refresh(s, gen);
		if (rrv != DB_OK)
			return rrv;
	}
	int rv = s->wt->begin_transaction(s->wt, "isolation=snapshot");
	if (rv != 0)
		return db_wt_error(rv);
	s->in_txn = 1;
	s->txn_gen++;
	return DB_OK;
}

int db_txn_begin_like(struct db_session *s, struct db_session *like)
{
	static _Atomic unsigned long seq;
	if (s->in_txn || !like->in_txn || s->db != like->db)
		return DB_INVALID;
	if (s->gen != like->gen) { /* the tables like reads */
		int rrv = refresh(s, like->gen);
		if (rrv != DB_OK)
			return rrv;
	}
	/* WiredTiger shares a snapshot by name: made from like's (which makes
	 * like's transaction read-only), begun from, and dropped at once, as
	 * a transaction keeps its own copy. */
	char name[48], cfg[112];
	snprintf(name, sizeof(name), "metad_like_%lu", atomic_fetch_add(&seq, 1));
	snprintf(cfg, sizeof(cfg), "name=%s", name);
	int rv = like->wt->snapshot(like->wt, cfg);
	if (rv != 0)
		return db_wt_error(rv);
	snprintf(cfg, sizeof(cfg), "isolation=snapshot,snapshot=%s", name);
	rv = s->wt->begin_transaction(s->wt, cfg);
	snprintf(cfg, sizeof(cfg), "drop=(names=[%s])", name);
	int drv = like->wt->snapshot(like->wt, cfg);
	if (rv != 0)
		return db_wt_error(rv);
	s->in_txn = 1;
	s->txn_gen++;
	if (drv != 0) {
		db_txn_abort(s);
		return db_wt_error(drv);
	}
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
