/*
 * core/snapshot.c — the store as a file: made by the leader for a member
 * too far behind its log, streamed into the member's store as it arrives.
 *
 * File: "METADSN3" | BE64 cluster id | dump records (storage/snapshot.h) |
 * BE64 consistent index A | BE32 length | Raft snapshot meta at A
 * (raft_snapshot_meta_encode, zero length when the leader no longer knew
 * it), padded to META_CAP | XXH3-128 of every byte before it (canonical,
 * big-endian). "METADSN2", from older binaries, is the same with SHA-256
 * (32 bytes) at the end. The hash guards against a damaged or cut file,
 * not against a forged one (peers are authenticated by the transport):
 * SHA-256 at ~1.6 GB/s was 13% of the leader's dump and 17% of the
 * member's load of a 1M-key store, both of which the catch-up waits for;
 * XXH3 runs at memory speed. The leader
 * dumps the store it has applied (index A), which is at or past the Raft
 * snapshot index S it told the member about; the member installs it and
 * then restores Raft at A with that meta, so the leader goes on from A+1.
 * Without the meta (or from a "METADSN1" file, which ends at the index) it
 * restores Raft at S, and the entries S+1..A it is sent later are stored in
 * its log and skipped by apply, as any entry at or below the consistent
 * index is: correct, but at a 1M-key store that is a second's work.
 *
 * The member loads the records into a new generation of its state tables
 * while they arrive (bulk loads, beside the live tables, which go on
 * serving), checks the hash at the end, makes the load durable, and then
 * switches generations in one synced write: the store is the old one or the
 * new one, never a mix, so a crash at any point needs nothing redone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <xxhash.h>

#include "core/bytes.h"
#include "core/core_internal.h"
#include "core/alarm_internal.h"
#include "core/auth_internal.h"
#include "core/lease_internal.h"
#include "core/snapshot.h"
#include "storage/raftlog.h"
#include "storage/snapshot.h"

#define MAGIC "METADSN3"
#define MAGIC_V2 "METADSN2" /* SHA-256: loaded, never made */
#define MAGIC_V1 "METADSN1" /* no meta, SHA-256: loaded, never made */
#define HEAD_BYTES 16
#define META_CAP (64 + 2 * RAFT_MAX_MEMBERS * 11) /* node_save_snapshot_meta's bound */
#define SUM_BYTES 16 /* XXH128 */
#define SHA_BYTES 32
#define TAIL_BYTES_V1 (8 + SHA_BYTES)
#define TAIL_BYTES_V2 (8 + 4 + META_CAP + SHA_BYTES)
#define TAIL_BYTES (8 + 4 + META_CAP + SUM_BYTES)
#define INSTALL_BLOB "snap_install" /* raft_state: an older binary's install under way */
#define INSTALL_FILE "install.snap" /* ... and its file */
#define IO_BUF (1u << 20)

static const char *const dumped_blobs[] = {"members"};

int snap_dir(struct core *c, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/snap", c->cfg.data_dir);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* ---- making (leader) ---- */

/* Dump bytes gathered into IO_BUF pieces: the dump hands over each field
 * of each row, and hashing or writing a few bytes at a time costs more
 * than the bytes. */
struct writer_ctx {
	struct core *c;
	int fd;
	XXH3_state_t *sum;
	uint8_t *buf;
	size_t len;
	const char *dir;
	char tmp[4200], making[4200];
	const uint64_t *ci;
	snap_named_fn named;
	void *named_arg;
	uint8_t meta[4 + META_CAP]; /* the trailer's meta block */
};

static int flush_out(struct writer_ctx *w)
{
	if (w->len == 0)
		return 0;
	if (XXH3_128bits_update(w->sum, w->buf, w->len) != XXH_OK)
		return -1;
	for (size_t off = 0; off < w->len;) {
		ssize_t n = write(w->fd, w->buf + off, w->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	w->len = 0;
	return 0;
}

/* The index is known: the file gets its name, and a sender may start.
 * Raft's meta for the index is looked up now, while the writer still
 * remembers it (the dump of a large store takes seconds). */
static int name_it(struct writer_ctx *w)
{
	struct raft_snapshot_meta m;
	size_t len = 0;
	if (!snap_serve_meta(w->c, *w->ci, &m) ||
	    raft_snapshot_meta_encode(&m, w->meta + 4, META_CAP, &len) != 0)
		len = 0;
	core_put_be32(w->meta, (uint32_t)len);
	snprintf(w->making, sizeof(w->making), "%s/%016llx-%016llx.making", w->dir,
		 (unsigned long long)w->c->member_id, (unsigned long long)*w->ci);
	if (flush_out(w) != 0 || rename(w->tmp, w->making) != 0)
		return -1;
	w->tmp[0] = 0;
	if (w->named)
		w->named(w->named_arg, w->making, *w->ci);
	return 0;
}

static int write_out(void *arg, const void *buf, size_t len)
{
	struct writer_ctx *w = arg;
	if (atomic_load(&w->c->fetch_stop))
		return -1; /* closing */
	if (buf == NULL)
		return name_it(w);
	const uint8_t *p = buf;
	while (len > 0) {
		if (w->len == IO_BUF && flush_out(w) != 0)
			return -1;
		size_t take = IO_BUF - w->len < len ? IO_BUF - w->len : len;
		memcpy(w->buf + w->len, p, take);
		w->len += take;
		p += take;
		len -= take;
	}
	return 0;
}

int snap_make(struct core *c, struct db_session *s, snap_named_fn named, void *arg, char *path,
	      size_t cap, uint64_t *index)
{
	char dir[4096];
	if (snap_dir(c, dir, sizeof(dir)) != 0)
		return -1;
	uint64_t ci = 0;
	struct writer_ctx w = {.c = c, .sum = XXH3_createState(), .buf = malloc(IO_BUF), .dir = dir,
			       .ci = &ci, .named = named, .named_arg = arg};
	snprintf(w.tmp, sizeof(w.tmp), "%s/make.tmp", dir);
	w.fd = open(w.tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int rv = w.fd >= 0 && w.sum && w.buf && XXH3_128bits_reset(w.sum) == XXH_OK ? 0 : -1;
	uint8_t head[HEAD_BYTES];
	memcpy(head, MAGIC, 8);
	core_put_be64(head + 8, c->cluster_id);
	if (rv == 0)
		rv = write_out(&w, head, sizeof(head));
	if (rv == 0)
		rv = snap_dump(s, dumped_blobs, sizeof(dumped_blobs) / sizeof(dumped_blobs[0]),
			       write_out, &w, &ci) == DB_OK ? 0 : -1;
	uint8_t tail[TAIL_BYTES];
	core_put_be64(tail, ci);
	memcpy(tail + 8, w.meta, sizeof(w.meta));
	XXH128_canonical_t sum;
	if (rv == 0 && (write_out(&w, tail, TAIL_BYTES - SUM_BYTES) != 0 || flush_out(&w) != 0))
		rv = -1;
	if (rv == 0) {
		XXH128_canonicalFromHash(&sum, XXH3_128bits_digest(w.sum));
		rv = write(w.fd, sum.digest, SUM_BYTES) == SUM_BYTES ? 0 : -1;
	}
	if (w.fd >= 0 && close(w.fd) != 0)
		rv = -1;
	XXH3_freeState(w.sum);
	free(w.buf);
	int n = snprintf(path, cap, "%s/%016llx-%016llx.snap", dir, (unsigned long long)c->member_id,
			 (unsigned long long)ci);
	/* Whole: the name a sender of the growing file waits for. */
	if (rv == 0 && (n < 0 || (size_t)n >= cap || w.making[0] == 0 || rename(w.making, path) != 0))
		rv = -1;
	if (rv != 0) {
		unlink(w.tmp[0] ? w.tmp : w.making);
		return -1;
	}
	*index = ci;
	return 0;
}

/* ---- loading (member) ---- */

struct snap_stream {
	struct core *c;
	struct snap_load *load;
	XXH3_state_t *sum; /* by the head's magic: this, */
	EVP_MD_CTX *md;    /* or an older binary's SHA-256 */
	uint8_t head[HEAD_BYTES], tail[TAIL_BYTES_V2];
	size_t headn, tailn;
	size_t tail_bytes, sum_bytes; /* by the head's magic */
	bool ended; /* the dump's end record was fed: the trailer follows */
	bool bad;
};

struct snap_stream *snap_stream_new(struct core *c)
{
	struct snap_stream *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->c = c;
	if (snap_load_begin(c->db, &st->load) != DB_OK) {
		snap_stream_free(st);
		return NULL;
	}
	return st;
}

static bool sum_update(struct snap_stream *st, const void *p, size_t len)
{
	return st->md ? EVP_DigestUpdate(st->md, p, len) == 1
		      : XXH3_128bits_update(st->sum, p, len) == XXH_OK;
}

/* The head is in: its magic says the trailer's size and the hash. */
static bool head_ok(struct snap_stream *st)
{
	static const struct {
		const char *magic;
		size_t tail, sum;
	} kinds[] = {
		{MAGIC, TAIL_BYTES, SUM_BYTES},
		{MAGIC_V2, TAIL_BYTES_V2, SHA_BYTES},
		{MAGIC_V1, TAIL_BYTES_V1, SHA_BYTES},
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (memcmp(st->head, kinds[i].magic, 8) == 0) {
			st->tail_bytes = kinds[i].tail;
			st->sum_bytes = kinds[i].sum;
		}
	}
	if (st->tail_bytes == 0 || core_get_be64(st->head + 8) != st->c->cluster_id)
		return false;
	if (st->sum_bytes == SHA_BYTES) {
		st->md = EVP_MD_CTX_new();
		if (st->md == NULL || EVP_DigestInit_ex(st->md, EVP_sha256(), NULL) != 1)
			return false;
	} else if ((st->sum = XXH3_createState()) == NULL || XXH3_128bits_reset(st->sum) != XXH_OK) {
		return false;
	}
	return sum_update(st, st->head, HEAD_BYTES);
}

int snap_stream_feed(struct snap_stream *st, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (!st->bad && len > 0) {
		size_t take;
		if (st->headn < HEAD_BYTES) {
			take = HEAD_BYTES - st->headn < len ? HEAD_BYTES - st->headn : len;
			memcpy(st->head + st->headn, p, take);
			st->headn += take;
			if (st->headn == HEAD_BYTES)
				st->bad = !head_ok(st);
		} else if (!st->ended) {
			int done = 0;
			st->bad = snap_load_feed(st->load, p, len, &take, &done) != DB_OK ||
				  !sum_update(st, p, take);
			st->ended = done;
		} else {
			/* The trailer, and nothing after it. */
			take = st->tail_bytes - st->tailn < len ? st->tail_bytes - st->tailn : len;
			memcpy(st->tail + st->tailn, p, take);
			st->tailn += take;
			st->bad = take == 0;
		}
		p += take;
		len -= take;
	}
	return st->bad ? -1 : 0;
}

/* The trailer is in: the hash of everything before its sum, against it. */
static bool sum_ok(struct snap_stream *st, size_t body)
{
	uint8_t sum[SHA_BYTES];
	unsigned int mdlen = 0;
	if (!sum_update(st, st->tail, body))
		return false;
	if (st->md) {
		if (EVP_DigestFinal_ex(st->md, sum, &mdlen) != 1 || mdlen != SHA_BYTES)
			return false;
	} else {
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st->sum));
		memcpy(sum, c.digest, SUM_BYTES);
	}
	return CRYPTO_memcmp(sum, st->tail + body, st->sum_bytes) == 0;
}

int snap_stream_end(struct snap_stream *st, uint64_t *index, struct raft_snapshot_meta *meta)
{
	size_t body = st->tail_bytes - st->sum_bytes;
	if (st->bad || !st->ended || st->tail_bytes == 0 || st->tailn != st->tail_bytes ||
	    !sum_ok(st, body)) {
		st->bad = true;
		return -1;
	}
	*index = core_get_be64(st->tail);
	/* The meta is the leader's word for the index; any doubt and the
	 * member restores Raft at the message's own index instead. */
	memset(meta, 0, sizeof(*meta));
	size_t len = body == 8 ? 0 : core_get_be32(st->tail + 8);
	if (len > META_CAP || (len > 0 && raft_snapshot_meta_decode(st->tail + 12, len, meta) != 0) ||
	    meta->index != *index)
		memset(meta, 0, sizeof(*meta));
	/* Durable before the switch can name it. */
	return snap_load_finish(st->load) == DB_OK ? 0 : -1;
}

void snap_stream_free(struct snap_stream *st)
{
	if (st == NULL)
		return;
	snap_load_free(st->load);
	EVP_MD_CTX_free(st->md);
	XXH3_freeState(st->sum);
	free(st);
}

/* ---- installing (member, node thread) ---- */

int snap_stream_install(struct core *c, struct snap_stream *st)
{
	pthread_rwlock_wrlock(&c->install_lock);
	int64_t t0 = node_now_ns();
	int rv = snap_load_switch(st->load, c->mvcc, c->wsession);
	if (rv == DB_OK) /* the new tables were checkpointed before the switch */
		atomic_store(&c->durable_index, mvcc_consistent_index(c->mvcc));
	if (rv == DB_OK)
		rv = members_reload(&c->members, c->wsession);
	char err[256];
	if (rv == DB_OK && core_peers_sync(c, err, sizeof(err)) != 0)
		core_log("warn", "after installing a snapshot: %s", err);
	if (rv == DB_OK)
		rv = lessor_reload(c->lessor);
	if (rv == DB_OK)
		rv = auth_reload(c);
	if (rv == DB_OK)
		rv = alarm_reload(c); /* alarms live in meta (core/alarm.c) */
	if (rv == DB_OK)
		watch_store_replaced(c);
	pthread_rwlock_unlock(&c->install_lock);
	if (rv == DB_OK) {
		core_log("info", "switched to the restored store in %lld ms",
			 (long long)((node_now_ns() - t0) / 1000000));
		atomic_store(&c->db_size, db_size_bytes(c->db));
		compactor_request(c, NULL); /* the leader's compaction may be half done */
	}
	return rv;
}

static bool marker_set(struct core *c)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	if (rlog_load_blob(c->wsession, INSTALL_BLOB, &buf, &len) != DB_OK)
		return false;
	free(buf);
	return len == 8;
}

int snap_recover(struct core *c, char *err, size_t errlen)
{
	char dir[4096], path[4400];
	if (snap_dir(c, dir, sizeof(dir)) != 0) {
		snprintf(err, errlen, "cannot create %s/snap: %s", c->cfg.data_dir, strerror(errno));
		return -1;
	}
	/* Files being made when the process stopped are of no use, nor is the
	 * part file of a fetch an older binary kept; an install file is an
	 * older binary's (below). */
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, INSTALL_FILE) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	snprintf(path, sizeof(path), "%s/" INSTALL_FILE, dir);
	if (marker_set(c)) {
		/* metad before 2026-12-03 replaced the tables in place, and a
		 * crash cut it short: the tables are a mix this binary cannot
		 * finish. The member's data must be fetched again. */
		snprintf(err, errlen,
			 "the data dir holds a snapshot install an older metad did not finish; "
			 "remove the member (etcdctl member remove) and add it again with an empty data dir");
		return -1;
	}
	unlink(path);
	return 0;
}
