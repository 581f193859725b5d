/*
 * core/import.c — an etcd backend file into metad's store (see import.h).
 *
 * ETCD-COMPAT: etcd's "key" bucket maps the revision (8 bytes big-endian
 * main, '_', 8 bytes sub, 't' for a delete) to an mvccpb.KeyValue; "lease"
 * maps the ID to a leasepb.Lease; "meta" holds finishedCompactRev and
 * scheduledCompactRev (a compaction etcd had not finished is finished by
 * metad's compactor after start); "auth" holds authEnabled (one byte) and
 * authRevision (8 bytes big-endian), "authUsers" and "authRoles" map names
 * to authpb.User / authpb.Role, which metad stores as they are (bcrypt
 * hashes included, so passwords keep working). Entries go to storage in
 * revision order in transactions of 10,000.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/bytes.h"
#include "core/auth_internal.h"
#include "core/core_internal.h"
#include "core/import.h"
#include "kv.pb-c.h"
#include "lease.pb-c.h"
#include "storage/auth.h"
#include "storage/bbolt.h"
#include "storage/db.h"
#include "storage/lease.h"
#include "storage/mvcc.h"
#include "storage/mvcc_import.h"

#define BATCH 10000

struct imp {
	struct db_session *s;
	uint64_t n;
	int64_t rev;
	int rv;
	char *err;
	size_t errlen;
	bool auth_on; /* etcd's authEnabled */
};

static int key_entry(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct imp *im = arg;
	bool tomb = kl == 18 && k[17] == 't';
	if ((kl != 17 && !tomb) || k[8] != '_') {
		snprintf(im->err, im->errlen, "etcd key bucket: unexpected revision key of %zu bytes", kl);
		return im->rv = DB_CORRUPT;
	}
	int64_t main = (int64_t)core_get_be64(k), sub = (int64_t)core_get_be64(k + 9);
	Mvccpb__KeyValue *kv = mvccpb__key_value__unpack(NULL, vl, v);
	if (kv == NULL || kv->key.len == 0) {
		if (kv != NULL)
			mvccpb__key_value__free_unpacked(kv, NULL);
		snprintf(im->err, im->errlen, "etcd key bucket: undecodable entry at revision %lld",
			 (long long)main);
		return im->rv = DB_CORRUPT;
	}
	struct mvcc_kv e = {
		.key = kv->key.data,
		.key_len = kv->key.len,
		.value = kv->value.data,
		.value_len = kv->value.len,
		.create_revision = kv->create_revision,
		.mod_revision = main,
		.version = kv->version,
		.lease = kv->lease,
	};
	int rv = mvcc_import_entry(im->s, &e, sub, tomb);
	mvccpb__key_value__free_unpacked(kv, NULL);
	if (rv != DB_OK) {
		snprintf(im->err, im->errlen, "import at revision %lld: %s", (long long)main,
			 db_strerror(rv));
		return im->rv = rv;
	}
	if (main > im->rev)
		im->rev = main;
	if (++im->n % BATCH == 0) {
		if ((rv = db_txn_commit(im->s, 0)) != DB_OK || (rv = db_txn_begin(im->s)) != DB_OK) {
			snprintf(im->err, im->errlen, "import commit: %s", db_strerror(rv));
			return im->rv = rv;
		}
	}
	return 0;
}

static int lease_entry(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	(void)k, (void)kl;
	struct imp *im = arg;
	Leasepb__Lease *l = leasepb__lease__unpack(NULL, vl, v);
	if (l == NULL) {
		snprintf(im->err, im->errlen, "etcd lease bucket: undecodable lease");
		return im->rv = DB_CORRUPT;
	}
	int rv = lease_store_put(im->s, l->id, l->ttl);
	leasepb__lease__free_unpacked(l, NULL);
	im->n++;
	return rv == DB_OK ? 0 : (im->rv = rv);
}

/* authUsers / authRoles: checked to decode, stored as they are. */
struct auth_imp {
	struct imp *im;
	int kind;
};

static int auth_entry(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct auth_imp *ai = arg;
	struct imp *im = ai->im;
	bool ok;
	if (ai->kind == AUTH_REC_USER) {
		struct auth_user *u = auth_user_unpack(v, vl);
		ok = u != NULL && strlen(u->name) == kl && memcmp(u->name, k, kl) == 0;
		auth_user_free(u);
	} else {
		struct auth_role *r = auth_role_unpack(v, vl);
		ok = r != NULL && strlen(r->name) == kl && memcmp(r->name, k, kl) == 0;
		auth_role_free(r);
	}
	if (!ok) {
		snprintf(im->err, im->errlen, "etcd %s bucket: undecodable entry",
			 ai->kind == AUTH_REC_USER ? "authUsers" : "authRoles");
		return im->rv = DB_CORRUPT;
	}
	int rv = auth_store_put(im->s, ai->kind, (const char *)k, kl, v, vl);
	im->n++;
	return rv == DB_OK ? 0 : (im->rv = rv);
}

/* auth: the switch and the revision, under metad's record names. */
static int auth_meta_entry(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct imp *im = arg;
	int rv = DB_OK;
	if (kl == 11 && memcmp(k, "authEnabled", 11) == 0 && vl == 1) {
		uint8_t on = v[0] == 1;
		im->auth_on = on;
		rv = auth_store_put(im->s, AUTH_REC_META, "enabled", 7, &on, 1);
	} else if (kl == 12 && memcmp(k, "authRevision", 12) == 0 && vl == 8) {
		rv = auth_store_put(im->s, AUTH_REC_META, "revision", 8, v, 8);
	}
	return rv == DB_OK ? 0 : (im->rv = rv);
}

/* The three auth buckets; absent ones (an etcd that never ran auth) are
 * no error. */
static int import_auth(struct bbolt_reader *r, struct imp *im, struct core_import_stats *stats)
{
	struct auth_imp roles = {im, AUTH_REC_ROLE}, users = {im, AUTH_REC_USER};
	static const char *const names[] = {"auth", "authRoles", "authUsers"};
	for (size_t i = 0; i < 3; i++) {
		im->n = 0;
		uint64_t *count = i == 1 ? &stats->roles : i == 2 ? &stats->users : NULL;
		int rv = i == 0   ? bbolt_bucket_scan(r, names[i], auth_meta_entry, im)
			 : i == 1 ? bbolt_bucket_scan(r, names[i], auth_entry, &roles)
				  : bbolt_bucket_scan(r, names[i], auth_entry, &users);
		if (rv != DB_OK && rv != DB_NOTFOUND) {
			if (im->rv == DB_OK)
				snprintf(im->err, im->errlen, "etcd %s bucket: %s", names[i],
					 db_strerror(rv));
			return rv;
		}
		if (count != NULL)
			*count = im->n;
	}
	return DB_OK;
}

struct compact {
	int64_t finished, scheduled;
};

static int meta_entry(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct compact *c = arg;
	if (vl >= 8 && kl == 18 && memcmp(k, "finishedCompactRev", 18) == 0)
		c->finished = (int64_t)core_get_be64(v);
	else if (vl >= 8 && kl == 19 && memcmp(k, "scheduledCompactRev", 19) == 0)
		c->scheduled = (int64_t)core_get_be64(v);
	return 0;
}

int core_import_etcd(const char *data_dir, const char *wal_dir, const char *db_file, size_t db_len,
		     uint64_t cache_mb,
		     struct core_import_stats *stats, char *err, size_t errlen)
{
	memset(stats, 0, sizeof(*stats));
	struct bbolt_reader *r = NULL;
	int rv = bbolt_reader_open(db_file, db_len, &r);
	if (rv != DB_OK) {
		snprintf(err, errlen, "%s: not an etcd backend file (%s)", db_file, db_strerror(rv));
		return -1;
	}
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create data dir %s: %s", data_dir, strerror(errno));
		bbolt_reader_close(r);
		return -1;
	}
	struct db_options dbo = {.cache_mb = cache_mb, /* as core_open */
				 .unjournaled_state = 1,
				 .wal_dir = wal_dir,
				 .log = core_db_log};
	struct db *db = NULL;
	struct mvcc *m = NULL;
	struct db_session *s = NULL;
	int ret = -1;
	if (db_open(data_dir, &dbo, &db, err, errlen) != DB_OK)
		goto out;
	if ((rv = mvcc_open(db, &m)) != DB_OK || (rv = db_session_open(db, &s)) != DB_OK) {
		snprintf(err, errlen, "import: %s", db_strerror(rv));
		goto out;
	}
	if (mvcc_rev(m) > 1) {
		snprintf(err, errlen, "import: %s already holds a metad store (revision %lld)", data_dir,
			 (long long)mvcc_rev(m));
		goto out;
	}
	struct imp im = {.s = s, .rev = 1, .rv = DB_OK, .err = err, .errlen = errlen};
	if ((rv = db_txn_begin(s)) != DB_OK) {
		snprintf(err, errlen, "import: %s", db_strerror(rv));
		goto out;
	}
	rv = bbolt_bucket_scan(r, "key", key_entry, &im);
	if (rv != DB_OK && rv != DB_NOTFOUND) {
		if (im.rv == DB_OK)
			snprintf(err, errlen, "etcd key bucket: %s", db_strerror(rv));
		goto abort;
	}
	stats->entries = im.n;
	stats->revision = im.rev;
	im.n = 0;
	rv = bbolt_bucket_scan(r, "lease", lease_entry, &im);
	if (rv != DB_OK && rv != DB_NOTFOUND) {
		if (im.rv == DB_OK)
			snprintf(err, errlen, "etcd lease bucket: %s", db_strerror(rv));
		goto abort;
	}
	stats->leases = im.n;
	if ((rv = import_auth(r, &im, stats)) != DB_OK)
		goto abort;
	stats->auth_enabled = im.auth_on;
	struct compact cp = {0, 0};
	rv = bbolt_bucket_scan(r, "meta", meta_entry, &cp);
	if (rv != DB_OK && rv != DB_NOTFOUND) {
		snprintf(err, errlen, "etcd meta bucket: %s", db_strerror(rv));
		goto abort;
	}
	stats->compact_revision = cp.scheduled > cp.finished ? cp.scheduled : cp.finished;
	if ((rv = mvcc_import_finish(s, im.rev, stats->compact_revision)) != DB_OK ||
	    (rv = db_txn_commit(s, 1)) != DB_OK) {
		snprintf(err, errlen, "import: %s", db_strerror(rv));
		goto abort;
	}
	ret = 0;
	goto out;
abort:
	db_txn_abort(s);
out:
	db_session_close(s);
	mvcc_close(m);
	db_close(db);
	bbolt_reader_close(r);
	return ret;
}
