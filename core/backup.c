/*
 * core/backup.c — the store in etcd's backend layout (see backup.h),
 * packed with etcd's messages and written by storage/bbolt.c.
 *
 * ETCD-COMPAT: etcd's key bucket keys are the revision, 8 bytes big-endian
 * main, '_', 8 bytes sub, plus 't' for a delete, whose value is a KeyValue
 * holding the key only; meta's compaction marks are the same 17-byte
 * revision encoding; lease values are leasepb.Lease.
 * The auth buckets hold what etcd's auth store keeps: "auth" (authEnabled,
 * one byte; authRevision, 8 bytes big-endian), "authUsers" and
 * "authRoles" (name -> authpb.User / authpb.Role, the bytes metad stores
 * them as), so a restored etcd has the same users, roles and switch.
 * Not written: the cluster version.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bytes.h"
#include "core/alarm.h"
#include "core/core_internal.h"
#include "core/backup.h"
#include "core/hugearena.h"
#include "lease.pb-c.h"
#include "storage/auth.h"
#include "storage/bbolt.h"
#include "storage/lease.h"

static void rev_bytes(uint8_t *p, int64_t main, int64_t sub)
{
	core_put_be64(p, (uint64_t)main);
	p[8] = '_';
	core_put_be64(p + 9, (uint64_t)sub);
}

struct kv_scan {
	struct bbolt_writer *w;
	bool dry;
	int64_t split; /* a leaf ends before the first revision above it */
	bool broke;
	uint8_t *buf;
	size_t cap;
	int64_t n; /* entries put */
	int rv;
};

static int put_change(void *arg, const struct mvcc_change *ch)
{
	struct kv_scan *sc = arg;
	sc->n++;
	if (!sc->broke && ch->kv.mod_revision > sc->split) {
		sc->broke = true;
		if ((sc->rv = bbolt_leaf_break(sc->w)) != DB_OK)
			return sc->rv;
	}
	Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT;
	kv.key.data = (uint8_t *)ch->kv.key;
	kv.key.len = ch->kv.key_len;
	if (!ch->tombstone) {
		kv.value.data = (uint8_t *)ch->kv.value;
		kv.value.len = ch->kv.value_len;
		kv.create_revision = ch->kv.create_revision;
		kv.mod_revision = ch->kv.mod_revision;
		kv.version = ch->kv.version;
		kv.lease = ch->kv.lease;
	}
	size_t len = mvccpb__key_value__get_packed_size(&kv);
	uint8_t key[18];
	rev_bytes(key, ch->kv.mod_revision, ch->sub);
	key[17] = 't';
	if (sc->dry) { /* the layout needs sizes only */
		int rv = bbolt_put(sc->w, key, ch->tombstone ? 18 : 17, NULL, len);
		return rv != DB_OK ? (sc->rv = rv) : 0;
	}
	if (len > sc->cap) {
		uint8_t *nb = realloc(sc->buf, len * 2);
		if (nb == NULL)
			return sc->rv = DB_NOMEM;
		sc->buf = nb;
		sc->cap = len * 2;
	}
	mvccpb__key_value__pack(&kv, sc->buf);
	int rv = bbolt_put(sc->w, key, ch->tombstone ? 18 : 17, sc->buf, len);
	return rv != DB_OK ? (sc->rv = rv) : 0;
}

static int put_lease(void *arg, int64_t id, int64_t ttl)
{
	struct bbolt_writer *w = arg;
	uint8_t key[8], val[32];
	core_put_be64(key, (uint64_t)id);
	Leasepb__Lease l = LEASEPB__LEASE__INIT;
	l.id = id;
	l.ttl = ttl;
	size_t n = leasepb__lease__pack(&l, val);
	return bbolt_put(w, key, 8, val, n);
}

static int write_alarms(const struct core_alarm *al, size_t n, struct bbolt_writer *w)
{
	/* keys must ascend: pack, then sort by bytes */
	uint8_t keys[64][32];
	size_t lens[64];
	for (size_t i = 0; i < n; i++) {
		Etcdserverpb__AlarmMember m = ETCDSERVERPB__ALARM_MEMBER__INIT;
		m.memberid = al[i].member;
		m.alarm = (Etcdserverpb__AlarmType)al[i].type;
		lens[i] = etcdserverpb__alarm_member__pack(&m, keys[i]);
	}
	for (size_t i = 1; i < n; i++) /* few: insertion sort */
		for (size_t j = i; j > 0; j--) {
			size_t m = lens[j] < lens[j - 1] ? lens[j] : lens[j - 1];
			int cmp = memcmp(keys[j], keys[j - 1], m);
			if (cmp > 0 || (cmp == 0 && lens[j] >= lens[j - 1]))
				break;
			uint8_t t[32];
			memcpy(t, keys[j], 32);
			memcpy(keys[j], keys[j - 1], 32);
			memcpy(keys[j - 1], t, 32);
			size_t tl = lens[j];
			lens[j] = lens[j - 1];
			lens[j - 1] = tl;
		}
	int rv = DB_OK;
	for (size_t i = 0; i < n && rv == DB_OK; i++)
		if (i == 0 || lens[i] != lens[i - 1] || memcmp(keys[i], keys[i - 1], lens[i]) != 0)
			rv = bbolt_put(w, keys[i], lens[i], NULL, 0);
	return rv;
}

/* One kind of auth record into the open bucket (records come in name
 * order, as bbolt wants its keys). */
struct auth_scan {
	struct bbolt_writer *w;
	int kind;
	bool enabled;
	uint8_t revision[8];
	bool have_revision;
};

static int put_auth(void *arg, int kind, const char *name, size_t name_len, const uint8_t *val,
		    size_t val_len)
{
	struct auth_scan *a = arg;
	if (kind == AUTH_REC_META && a->kind == AUTH_REC_META) {
		if (name_len == 7 && memcmp(name, "enabled", 7) == 0 && val_len == 1)
			a->enabled = val[0] != 0;
		else if (name_len == 8 && memcmp(name, "revision", 8) == 0 && val_len == 8) {
			memcpy(a->revision, val, 8);
			a->have_revision = true;
		}
		return DB_OK;
	}
	if (kind != a->kind)
		return DB_OK;
	return bbolt_put(a->w, (const uint8_t *)name, name_len, val, val_len);
}

static int write_auth(struct db_session *s, struct bbolt_writer *w)
{
	/* etcd's names; its store starts at revision 1 */
	static const struct {
		const char *bucket;
		int kind;
	} b[] = {{"auth", AUTH_REC_META}, {"authRoles", AUTH_REC_ROLE}, {"authUsers", AUTH_REC_USER}};
	int rv = DB_OK;
	for (size_t i = 0; i < 3 && rv == DB_OK; i++) {
		struct auth_scan a = {.w = w, .kind = b[i].kind, .revision = {0, 0, 0, 0, 0, 0, 0, 1}};
		if ((rv = bbolt_bucket_begin(w, b[i].bucket)) != DB_OK)
			break;
		rv = auth_store_load(s, put_auth, &a);
		if (rv == DB_OK && b[i].kind == AUTH_REC_META) {
			uint8_t on = a.enabled;
			rv = bbolt_put(w, (const uint8_t *)"authEnabled", 11, &on, 1);
			if (rv == DB_OK)
				rv = bbolt_put(w, (const uint8_t *)"authRevision", 12, a.revision, 8);
		}
		if (rv == DB_OK)
			rv = bbolt_bucket_end(w);
	}
	return rv;
}

/* What the two runs over the store share: one storage snapshot, and the
 * alarms as they were when it was taken. */
struct core_backup {
	struct core *c;
	struct db_session *s; /* its own: the threads that back up come and go */
	int64_t head, compact, split;
	uint64_t ci, size;
	struct core_alarm alarms[64];
	size_t n_alarms;
	uint8_t first[BBOLT_HEAD_BYTES];
	bool boosted;
};

/*
 * The two runs read the whole store; with the cache at its usual size the
 * second reads every page again from the files (decompressing it) and
 * both keep WiredTiger's eviction busy: measured with 1M keys (344 MB
 * file), 1.5-1.9 s of server CPU per `snapshot save` at 96 MiB against
 * 0.9-1.3 s with the store in cache. So the cache may grow by up to 1 GiB
 * (an eighth of the machine's memory at most) for a backup: a ceiling,
 * filled only by the pages the runs read. A store too large for it gives
 * the memory back after the first run, as the second would not find its
 * pages anyway; otherwise the last backup to end does. In a container the
 * machine's memory is its cgroup's limit, when that is lower.
 */
#define BOOST_MAX_MB 1024u

/* A cgroup memory limit file's number (v2 "max" or unreadable: none). */
static uint64_t limit_in(const char *path, uint64_t cur)
{
	FILE *f = fopen(path, "r");
	unsigned long long v = 0;
	if (f != NULL) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v > 0 && v < cur ? (uint64_t)v : cur;
}

static uint64_t boost_mb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t mem = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
	mem = limit_in("/sys/fs/cgroup/memory.max", mem);                   /* cgroup v2 */
	mem = limit_in("/sys/fs/cgroup/memory/memory.limit_in_bytes", mem); /* v1 */
	uint64_t cap = mem / 8 / (1u << 20);
	return cap < BOOST_MAX_MB ? cap : BOOST_MAX_MB;
}

/* The key bucket's entries with revisions from..to into w. */
static int put_changes(struct core_backup *b, struct db_session *s, struct bbolt_writer *w, bool dry,
		       int64_t from, int64_t to, int64_t *n)
{
	int64_t last = 0;
	struct kv_scan sc = {.w = w, .dry = dry, .split = b->split, .rv = DB_OK};
	int rv = mvcc_changes_any(b->c->mvcc, s, from, to, 0, put_change, &sc, &last);
	free(sc.buf);
	*n = sc.n;
	return sc.rv != DB_OK ? sc.rv : rv;
}

/*
 * Where the two layout threads split the key bucket: about half of its
 * entries on each side, estimated from counts at hand. A store never
 * compacted holds about one entry per revision: half the head. After a
 * compaction it holds about one per revision above the compacted one and,
 * below it, one per live key (its latest version); in a store much older
 * than its key count those lie just below the compacted revision, where
 * half the head would leave the first thread nearly nothing (a store of
 * 20,000 keys rewritten ten times and compacted near the head: 0 and
 * 21,000 entries; with this estimate 10,500 and 10,500). History that a
 * compaction still running has not removed yet counts as uncompacted.
 */
static int64_t split_at(int64_t head, int64_t compact, int64_t keys)
{
	if (compact <= 0 || compact > head || keys < 0)
		return head / 2;
	int64_t s = head - (head - compact + keys) / 2;
	return s > 0 ? s : 0;
}

/*
 * The layout of the key bucket's second half, made on a thread of its own
 * from a second session on the same snapshot while the caller lays out the
 * first: the wait before the first byte goes out is about halved (1M keys:
 * 0.3-0.5 s before, 0.1-0.4 s after). Both runs end a leaf at the split,
 * so the halves fit together as the stream's single run makes them.
 * Where to split: split_at.
 */
struct part {
	pthread_t tid;
	struct core_backup *b;
	struct db_session *s;
	struct bbolt_writer *w;
	int64_t n; /* entries laid out */
	int rv;
};

static void *part_main(void *arg)
{
	struct part *p = arg;
	pthread_setname_np(pthread_self(), "metad-snaplay");
	hugearena_enter(); /* the pages this run reads into the cache */
	p->rv = bbolt_writer_open_sink(NULL, NULL, &p->w);
	if (p->rv == DB_OK)
		p->rv = bbolt_bucket_begin(p->w, "key");
	if (p->rv == DB_OK)
		p->rv = put_changes(p->b, p->s, p->w, true, p->b->split + 1, p->b->head, &p->n);
	return NULL;
}

/* Every bucket, in etcd's layout, into w; the second half of the key
 * bucket from part when given (a dry run). */
static int write_all(struct core_backup *b, struct bbolt_writer *w, bool dry, struct part *part)
{
	/* key: every entry the store holds, in revision order */
	int64_t n = 0;
	int rv = bbolt_bucket_begin(w, "key");
	if (rv == DB_OK)
		rv = put_changes(b, b->s, w, dry, 1, part != NULL ? b->split : b->head, &n);
	if (part != NULL) {
		if (pthread_join(part->tid, NULL) == 0 && rv == DB_OK)
			rv = part->rv;
		if (rv == DB_OK)
			rv = bbolt_bucket_append(w, part->w);
		core_log("debug", "snapshot layout: key bucket split at revision %lld of %lld: "
			 "%lld and %lld entries", (long long)b->split, (long long)b->head,
			 (long long)n, (long long)part->n);
	}
	if (rv == DB_OK)
		rv = bbolt_bucket_end(w);
	if (rv == DB_OK && (rv = bbolt_bucket_begin(w, "meta")) == DB_OK) {
		uint8_t v[17];
		core_put_be64(v, b->ci);
		rv = bbolt_put(w, (const uint8_t *)"consistent_index", 16, v, 8);
		if (rv == DB_OK && b->compact > 0) {
			rev_bytes(v, b->compact, 0);
			rv = bbolt_put(w, (const uint8_t *)"finishedCompactRev", 18, v, 17);
			if (rv == DB_OK)
				rv = bbolt_put(w, (const uint8_t *)"scheduledCompactRev", 19, v, 17);
		}
		if (rv == DB_OK)
			rv = bbolt_bucket_end(w);
	}
	if (rv == DB_OK && (rv = bbolt_bucket_begin(w, "lease")) == DB_OK) {
		rv = lease_store_load(b->s, put_lease, w);
		if (rv == DB_OK)
			rv = bbolt_bucket_end(w);
	}
	if (rv == DB_OK && (rv = bbolt_bucket_begin(w, "alarm")) == DB_OK) {
		rv = write_alarms(b->alarms, b->n_alarms, w);
		if (rv == DB_OK)
			rv = bbolt_bucket_end(w);
	}
	if (rv == DB_OK)
		rv = write_auth(b->s, w);
	const char *empty[] = {"members", "members_removed"};
	for (size_t i = 0; i < 2 && rv == DB_OK; i++)
		if ((rv = bbolt_bucket_begin(w, empty[i])) == DB_OK)
			rv = bbolt_bucket_end(w);
	return rv;
}

static int core_err(int rv)
{
	return rv == DB_OK ? CORE_OK : rv == DB_NOMEM ? CORE_ENOMEM : CORE_EINTERNAL;
}

int core_backup_open(struct core *c, struct core_backup **out)
{
	struct core_backup *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return CORE_ENOMEM;
	b->c = c;
	hugearena_enter(); /* as part_main */
	uint64_t extra = boost_mb();
	b->boosted = extra > 0 && db_cache_boost(c->db, extra) == DB_OK;
	int rv = db_session_open(c->db, &b->s);
	if (rv == DB_OK)
		rv = db_txn_begin(b->s);
	if (rv != DB_OK) {
		core_backup_close(b);
		return core_err(rv);
	}
	b->n_alarms = core_alarms(c, b->alarms, 64);
	if (b->n_alarms > 64)
		b->n_alarms = 64;
	/* The first run lays the file out: its size and its first pages, which
	 * the second run's stream must begin with. */
	struct bbolt_writer *w = NULL;
	rv = mvcc_snapshot_state(c->mvcc, b->s, &b->head, &b->compact, &b->ci);
	if (rv == DB_OK)
		rv = bbolt_writer_open_sink(NULL, NULL, &w);
	/* The second half on a thread of its own, when one starts. */
	struct part part = {.b = b};
	int64_t removed = 0; /* history below a compaction still running is all there */
	if (rv == DB_OK && mvcc_compacted_rev(b->s, &removed) != DB_OK)
		removed = 0; /* the split only balances the threads' work */
	b->split = split_at(b->head, removed, mvcc_keys(c->mvcc));
	bool halves = rv == DB_OK && db_session_open(c->db, &part.s) == DB_OK &&
		      db_txn_begin_like(part.s, b->s) == DB_OK &&
		      pthread_create(&part.tid, NULL, part_main, &part) == 0;
	if (rv == DB_OK)
		rv = write_all(b, w, true, halves ? &part : NULL);
	db_session_close(part.s);
	bbolt_writer_free(part.w);
	if (rv == DB_OK)
		rv = bbolt_writer_finish(w, &b->size);
	if (rv == DB_OK)
		memcpy(b->first, bbolt_writer_head(w), BBOLT_HEAD_BYTES);
	bbolt_writer_free(w);
	if (rv != DB_OK) {
		core_backup_close(b);
		return core_err(rv);
	}
	if (b->boosted && b->size / (1u << 20) > extra) {
		db_cache_boost_end(c->db);
		b->boosted = false;
	}
	*out = b;
	return CORE_OK;
}

uint64_t core_backup_size(const struct core_backup *b)
{
	return b->size;
}

int core_backup_stream(struct core_backup *b, core_backup_emit_fn emit, void *arg)
{
	int rv = emit(arg, b->first, BBOLT_HEAD_BYTES);
	if (rv != 0)
		return rv;
	struct bbolt_writer *w = NULL;
	rv = bbolt_writer_open_sink(emit, arg, &w);
	if (rv != DB_OK)
		return core_err(rv);
	uint64_t size = 0;
	rv = write_all(b, w, false, NULL);
	if (rv == DB_OK)
		rv = bbolt_writer_finish(w, &size);
	/* Same snapshot, same layout: anything else is a bug. */
	if (rv == DB_OK && (size != b->size ||
			    memcmp(bbolt_writer_head(w), b->first, BBOLT_HEAD_BYTES) != 0))
		rv = DB_CORRUPT;
	bbolt_writer_free(w);
	return core_err(rv);
}

void core_backup_close(struct core_backup *b)
{
	if (b == NULL)
		return;
	db_session_close(b->s); /* ends its transaction */
	if (b->boosted)
		db_cache_boost_end(b->c->db);
	free(b);
}
