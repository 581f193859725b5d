/*
 * server/import.c — starting from etcd's data (see core/import.h):
 * --import-etcd-snapshot FILE (a file from `etcdctl snapshot save`, its
 * SHA-256 trailer checked as `etcdctl snapshot restore` checks it, or a
 * bare backend file), or a data dir that holds an etcd member
 * (member/snap/db, e.g. made by `etcdctl snapshot restore`) and no metad
 * store yet.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/import.h"
#include "server/import.h"

/* A snapshot file's size is pages + 32: check its SHA-256 trailer and give
 * the database's length; a bare backend file is taken whole (0). */
static int snapshot_len(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "stat %s: no such file or directory", path);
		return -1;
	}
	*len = 0;
	if (st.st_size % 512 != 32)
		return 0;
	FILE *f = fopen(path, "rb");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rv = -1;
	if (f == NULL || md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		snprintf(err, errlen, "cannot read %s", path);
		goto out;
	}
	size_t left = (size_t)st.st_size - 32;
	unsigned char buf[65536], want[32], got[EVP_MAX_MD_SIZE];
	while (left > 0) {
		size_t n = fread(buf, 1, left < sizeof(buf) ? left : sizeof(buf), f);
		if (n == 0) {
			snprintf(err, errlen, "cannot read %s", path);
			goto out;
		}
		EVP_DigestUpdate(md, buf, n);
		left -= n;
	}
	unsigned gl = 0;
	if (fread(want, 1, 32, f) != 32 || EVP_DigestFinal_ex(md, got, &gl) != 1 || gl != 32) {
		snprintf(err, errlen, "cannot read %s", path);
		goto out;
	}
	if (memcmp(want, got, 32) != 0) {
		snprintf(err, errlen, "expected sha256 %02x%02x%02x%02x..., got %02x%02x%02x%02x...",
			 want[0], want[1], want[2], want[3], got[0], got[1], got[2], got[3]);
		goto out;
	}
	*len = (size_t)st.st_size - 32;
	rv = 0;
out:
	EVP_MD_CTX_free(md);
	if (f != NULL)
		fclose(f);
	return rv;
}

static void log_import(const char *from, const struct core_import_stats *st)
{
	core_log("info",
		 "imported etcd data from %s: revision %lld, compacted revision %lld, %llu history "
		 "entries, %llu leases, %llu users, %llu roles, auth %s",
		 from, (long long)st->revision, (long long)st->compact_revision,
		 (unsigned long long)st->entries, (unsigned long long)st->leases,
		 (unsigned long long)st->users, (unsigned long long)st->roles,
		 st->auth_enabled ? "enabled" : "disabled");
}

int server_import_etcd(const char *data_dir, const char *wal_dir, const char *snapshot,
		       uint64_t cache_mb, char *err, size_t errlen)
{
	struct core_import_stats st;
	if (snapshot != NULL && snapshot[0]) {
		size_t len = 0;
		if (snapshot_len(snapshot, &len, err, errlen) != 0)
			return -1;
		if (core_import_etcd(data_dir, wal_dir, snapshot, len, cache_mb, &st, err, errlen) != 0)
			return -1;
		log_import(snapshot, &st);
		return 0;
	}
	char db[4200], wt[4200];
	snprintf(db, sizeof(db), "%s/member/snap/db", data_dir);
	snprintf(wt, sizeof(wt), "%s/WiredTiger", data_dir);
	if (access(db, R_OK) != 0 || access(wt, F_OK) == 0)
		return 0; /* not an etcd member's dir, or already imported */
	if (core_import_etcd(data_dir, wal_dir, db, 0, cache_mb, &st, err, errlen) != 0)
		return -1;
	log_import(db, &st);
	return 0;
}
