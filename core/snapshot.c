/*
 * core/snapshot.c — the store as a file: made by the leader for a member
 * too far behind its log, verified and installed by that member.
 *
 * File: "METADSN1" | BE64 cluster id | dump records (storage/snapshot.h) |
 * BE64 consistent index | SHA-256 of every byte before it. The leader dumps
 * the store it has applied (index A), which is at or past the Raft snapshot
 * index S it told the member about; the member installs it and then takes
 * the Raft snapshot at S, and the entries S+1..A it is sent later are
 * skipped by apply, as any entry at or below the consistent index is.
 *
 * Install replaces the state tables in bounded transactions, so it is
 * marked first (a raft_state blob, synced) and the verified file is kept
 * under a fixed name until a checkpoint holds the result: a crash in
 * between redoes the install at start-up (snap_recover).
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

#include "core/core_internal.h"
#include "core/alarm_internal.h"
#include "core/auth_internal.h"
#include "core/lease_internal.h"
#include "core/snapshot.h"
#include "storage/raftlog.h"
#include "storage/snapshot.h"

#define MAGIC "METADSN1"
#define HEAD_BYTES 16
#define TAIL_BYTES (8 + 32)
#define INSTALL_BLOB "snap_install" /* raft_state: an install under way */
#define INSTALL_FILE "install.snap"
#define IO_BUF (1u << 20)

static const char *const dumped_blobs[] = {"members"};

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

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

struct writer_ctx {
	FILE *f;
	EVP_MD_CTX *md;
};

static int write_out(void *arg, const void *buf, size_t len)
{
	struct writer_ctx *w = arg;
	if (fwrite(buf, 1, len, w->f) != len)
		return -1;
	return EVP_DigestUpdate(w->md, buf, len) == 1 ? 0 : -1;
}

int snap_make(struct core *c, char *path, size_t cap, uint64_t *index)
{
	char dir[4096], tmp[4200];
	struct db_session *s = core_session(c);
	if (s == NULL || snap_dir(c, dir, sizeof(dir)) != 0)
		return -1;
	snprintf(tmp, sizeof(tmp), "%s/make.tmp", dir);
	struct writer_ctx w = {fopen(tmp, "w"), EVP_MD_CTX_new()};
	int rv = w.f && w.md && EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) == 1 ? 0 : -1;
	if (rv == 0)
		setvbuf(w.f, NULL, _IOFBF, IO_BUF);
	uint8_t head[HEAD_BYTES];
	memcpy(head, MAGIC, 8);
	be64(head + 8, c->cluster_id);
	if (rv == 0)
		rv = write_out(&w, head, sizeof(head));
	uint64_t ci = 0;
	if (rv == 0)
		rv = snap_dump(s, dumped_blobs, sizeof(dumped_blobs) / sizeof(dumped_blobs[0]),
			       write_out, &w, &ci) == DB_OK ? 0 : -1;
	uint8_t tail[TAIL_BYTES];
	unsigned int mdlen = 0;
	be64(tail, ci);
	if (rv == 0)
		rv = EVP_DigestUpdate(w.md, tail, 8) == 1 && EVP_DigestFinal_ex(w.md, tail + 8, &mdlen) == 1 &&
			     mdlen == 32 && fwrite(tail, 1, sizeof(tail), w.f) == sizeof(tail)
			     ? 0 : -1;
	if (w.f != NULL && fclose(w.f) != 0)
		rv = -1;
	EVP_MD_CTX_free(w.md);
	int n = snprintf(path, cap, "%s/%016llx-%016llx.snap", dir, (unsigned long long)c->member_id,
			 (unsigned long long)ci);
	if (rv == 0 && (n < 0 || (size_t)n >= cap || rename(tmp, path) != 0))
		rv = -1;
	if (rv != 0) {
		unlink(tmp);
		return -1;
	}
	*index = ci;
	return 0;
}

/* ---- verifying (member) ---- */

int snap_verify(struct core *c, const char *path, uint64_t *index)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	struct stat st;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = malloc(IO_BUF);
	uint8_t head[HEAD_BYTES], tail[TAIL_BYTES];
	int rv = md && buf && fstat(fd, &st) == 0 && st.st_size > HEAD_BYTES + TAIL_BYTES &&
			 pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
			 pread(fd, tail, sizeof(tail), st.st_size - TAIL_BYTES) == (ssize_t)sizeof(tail) &&
			 memcmp(head, MAGIC, 8) == 0 && get_be64(head + 8) == c->cluster_id &&
			 EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
		 ? 0 : -1;
	/* Everything but the hash itself is hashed. */
	uint64_t left = rv == 0 ? (uint64_t)st.st_size - 32 : 0;
	while (rv == 0 && left > 0) {
		size_t want = left < IO_BUF ? (size_t)left : IO_BUF;
		ssize_t got = read(fd, buf, want);
		if (got <= 0 || EVP_DigestUpdate(md, buf, (size_t)got) != 1)
			rv = -1;
		else
			left -= (uint64_t)got;
	}
	uint8_t sum[32];
	unsigned int mdlen = 0;
	if (rv == 0 && (EVP_DigestFinal_ex(md, sum, &mdlen) != 1 || mdlen != 32 ||
			CRYPTO_memcmp(sum, tail + 8, 32) != 0))
		rv = -1;
	if (rv == 0)
		*index = get_be64(tail);
	EVP_MD_CTX_free(md);
	free(buf);
	close(fd);
	return rv;
}

/* ---- installing (member) ---- */

struct reader_ctx {
	FILE *f;
	uint64_t left; /* record bytes not yet read (the trailer is not theirs) */
};

static int read_in(void *arg, void *buf, size_t len)
{
	struct reader_ctx *r = arg;
	if (len > r->left || fread(buf, 1, len, r->f) != len)
		return -1;
	r->left -= len;
	return 0;
}

static int restore_file(struct core *c, const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return DB_IO;
	setvbuf(f, NULL, _IOFBF, IO_BUF);
	struct stat st;
	int rv = fstat(fileno(f), &st) == 0 && st.st_size > HEAD_BYTES + TAIL_BYTES &&
			 fseek(f, HEAD_BYTES, SEEK_SET) == 0
		 ? DB_OK : DB_IO;
	struct reader_ctx r = {f, rv == DB_OK ? (uint64_t)st.st_size - HEAD_BYTES - TAIL_BYTES : 0};
	if (rv == DB_OK)
		rv = snap_restore(c->mvcc, c->wsession, read_in, &r);
	fclose(f);
	return rv;
}

static int set_marker(struct core *c, uint64_t index, bool on)
{
	uint8_t v[8];
	be64(v, index);
	int rv = db_txn_begin(c->wsession);
	if (rv == DB_OK)
		rv = on ? rlog_save_blob(c->wsession, INSTALL_BLOB, v, 8)
			: rlog_save_blob(c->wsession, INSTALL_BLOB, NULL, 0);
	if (rv == DB_OK)
		return db_txn_commit(c->wsession, 1);
	db_txn_abort(c->wsession);
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

/* The restored rows are on disk, then the mark goes. */
static int finish(struct core *c, const char *path)
{
	int rv = db_checkpoint(c->wsession);
	if (rv == DB_OK)
		atomic_store(&c->durable_index, mvcc_consistent_index(c->mvcc));
	if (rv == DB_OK)
		rv = set_marker(c, 0, false);
	if (rv == DB_OK)
		unlink(path);
	return rv;
}

int snap_install(struct core *c, const char *path, uint64_t index)
{
	char dir[4096], dst[4200];
	if (snap_dir(c, dir, sizeof(dir)) != 0)
		return DB_IO;
	snprintf(dst, sizeof(dst), "%s/" INSTALL_FILE, dir);
	if (strcmp(path, dst) != 0 && rename(path, dst) != 0)
		return DB_IO;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	int rv = set_marker(c, index, true);
	if (rv != DB_OK)
		return rv;
	pthread_rwlock_wrlock(&c->install_lock);
	int64_t t0 = node_now_ns();
	rv = restore_file(c, dst);
	int64_t t1 = node_now_ns();
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
	if (rv == DB_OK)
		rv = finish(c, dst);
	if (rv == DB_OK) {
		/* Where an install's time goes (the load, or the checkpoint that
		 * makes it durable). */
		core_log("info", "restored the store in %lld ms, made it durable in %lld ms",
			 (long long)((t1 - t0) / 1000000), (long long)((node_now_ns() - t1) / 1000000));
		atomic_store(&c->db_size, db_size_bytes(c->db));
		compactor_request(c, NULL); /* the leader's compaction may be half done */
	}
	return rv;
}

int snap_recover(struct core *c, char *err, size_t errlen)
{
	char dir[4096], path[4400];
	if (snap_dir(c, dir, sizeof(dir)) != 0) {
		snprintf(err, errlen, "cannot create %s/snap: %s", c->cfg.data_dir, strerror(errno));
		return -1;
	}
	/* Files being made or fetched when the process stopped are of no use
	 * (a fetch starts again); only an install under way must finish. */
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.' || strcmp(e->d_name, INSTALL_FILE) == 0 ||
		    strncmp(e->d_name, "fetch", 5) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	if (!marker_set(c))
		return 0;
	snprintf(path, sizeof(path), "%s/" INSTALL_FILE, dir);
	core_log("warn", "finishing the installation of a snapshot interrupted by a restart");
	int rv = restore_file(c, path);
	if (rv == DB_OK)
		rv = finish(c, path);
	if (rv != DB_OK) {
		snprintf(err, errlen, "installing snapshot %s: %s", path, db_strerror(rv));
		return -1;
	}
	return 0;
}
