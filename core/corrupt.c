/*
 * core/corrupt.c — etcd's corruption checks: members compare HashKV.
 *
 * ETCD-COMPAT (etcd 3.4 etcdserver/corrupt.go, messages in its words):
 * - --experimental-initial-corrupt-check: a member restarting with data
 *   asks every peer for HashKV at its own current revision before it
 *   serves; a peer with the same compact revision and another hash is a
 *   mismatch, and the member refuses to start ("<id> found data
 *   inconsistency with peers"). A new member has nothing to compare.
 * - --experimental-corrupt-check-time: every interval the leader hashes
 *   its store, asks the followers for HashKV at that revision, confirms a
 *   linearizable read, hashes again; a follower ahead of the leader, or
 *   one with the leader's compact revision and another hash, gets the
 *   CORRUPT alarm (through the log; every write is then refused). Unlike
 *   etcd 3.4, whose peer handler leaves the member id out of its answer
 *   (the alarm then names member 0), the alarm names the member asked.
 * A member alone has no peer: both checks then pass at once, with a line.
 */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alarm.h"
#include "core/autocompact.h" /* ac_format_duration */
#include "core/core_internal.h"
#include "core/members.h"
#include "core/peer.h"

struct corrupt {
	struct core *c;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	_Atomic bool stopping;
};

/* One peer's answer (ok), or why there is none (err). */
struct peer_hash {
	uint64_t id;
	bool ok;
	uint32_t hash;
	int64_t revision, compact_rev;
	char err[256];
};

static void hex_id(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIx64, id);
}

/* etcd's request timeout: 5 s plus two election timeouts. */
static int64_t req_timeout_ms(const struct core *c)
{
	return 5000 + 2 * c->cfg.election_ms;
}

int corrupt_serve_hash(void *arg, const uint8_t *req, size_t len, uint8_t **resp,
		       size_t *resp_len, char *err, size_t errlen)
{
	struct core *c = arg;
	Etcdserverpb__HashKVRequest *q = etcdserverpb__hash_kvrequest__unpack(NULL, len, req);
	if (q == NULL) {
		snprintf(err, errlen, "error unmarshalling request");
		return -1;
	}
	int64_t at = q->revision;
	etcdserverpb__hash_kvrequest__free_unpacked(q, NULL);
	int64_t current = mvcc_rev(c->mvcc), crev = 0, hrev = 0;
	uint32_t hash = 0;
	int rv = core_hash_kv(c, at, &hash, &crev, &hrev);
	if (rv != CORE_OK) {
		snprintf(err, errlen, "%s", core_strerror(rv));
		return -1;
	}
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	h.cluster_id = c->cluster_id;
	h.member_id = c->member_id;
	h.revision = current; /* etcd's HashByRev: the store's current revision */
	Etcdserverpb__HashKVResponse r = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
	r.header = &h;
	r.hash = hash;
	r.compact_revision = crev;
	*resp_len = etcdserverpb__hash_kvresponse__get_packed_size(&r);
	if ((*resp = malloc(*resp_len ? *resp_len : 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	etcdserverpb__hash_kvresponse__pack(&r, *resp);
	return 0;
}

/* Ask member id (each of its peer URLs in turn) for HashKV at rev. */
static void ask(struct core *c, uint64_t id, int64_t rev, const _Atomic bool *stop,
	       struct peer_hash *out)
{
	memset(out, 0, sizeof(*out));
	out->id = id;
	snprintf(out->err, sizeof(out->err), "no peer URL");
	Etcdserverpb__HashKVRequest q = ETCDSERVERPB__HASH_KVREQUEST__INIT;
	q.revision = rev;
	uint8_t req[32];
	size_t len = etcdserverpb__hash_kvrequest__pack(&q, req);
	size_t n = 0;
	char **urls = members_peer_urls(&c->members, id, &n);
	char me[24];
	hex_id(c->member_id, me, sizeof(me));
	for (size_t i = 0; i < n && !out->ok && !(stop && atomic_load(stop)); i++) {
		uint8_t *buf = NULL;
		size_t blen = 0;
		if (peer_fetch_hash(c->peers, urls[i], req, len, req_timeout_ms(c), stop, &buf, &blen,
				    out->err, sizeof(out->err)) != 0) {
			core_log_kv("warn", "failed hash kv request", "{s:s,s:I,s:s,s:s}",
				    "local-member-id", me, "requested-revision", (json_int_t)rev,
				    "remote-peer-endpoint", urls[i], "error", out->err);
			continue;
		}
		Etcdserverpb__HashKVResponse *r = etcdserverpb__hash_kvresponse__unpack(NULL, blen, buf);
		free(buf);
		if (r == NULL) {
			snprintf(out->err, sizeof(out->err), "bad HashKV answer");
			continue;
		}
		out->ok = true;
		out->hash = r->hash;
		out->compact_rev = r->compact_revision;
		out->revision = r->header ? r->header->revision : 0;
		etcdserverpb__hash_kvresponse__free_unpacked(r, NULL);
	}
	members_free_urls(urls, n);
}

/* Every other member's answer; *n set. NULL when out of memory. */
static struct peer_hash *ask_all(struct core *c, int64_t rev, const _Atomic bool *stop, size_t *n)
{
	uint64_t ids[MEMBERS_MAX];
	bool learner[MEMBERS_MAX];
	size_t m = members_ids(&c->members, ids, learner, MEMBERS_MAX);
	struct peer_hash *out = calloc(m ? m : 1, sizeof(*out));
	*n = 0;
	for (size_t i = 0; out != NULL && i < m; i++)
		if (ids[i] != c->member_id && c->peers != NULL)
			ask(c, ids[i], rev, stop, &out[(*n)++]);
	return out;
}

int corrupt_initial_check(struct core *c, char *err, size_t errlen)
{
	if (!c->cfg.initial_corrupt_check)
		return 0;
	char me[24], peer[24], timeout[32];
	hex_id(c->member_id, me, sizeof(me));
	if (mvcc_consistent_index(c->mvcc) == 0) { /* etcd: only a member that has data */
		core_log_kv("info", "skipped initial corruption check: a new member has no data yet",
			    "{s:s}", "local-member-id", me);
		return 0;
	}
	ac_format_duration(req_timeout_ms(c) * 1000000, timeout, sizeof(timeout));
	core_log_kv("info", "starting initial corruption check", "{s:s,s:s}", "local-member-id", me,
		    "timeout", timeout);
	uint32_t h;
	int64_t rev, crev;
	int rv = core_hash_kv(c, 0, &h, &crev, &rev);
	if (rv != CORE_OK) {
		snprintf(err, errlen, "%s failed to fetch hash (%s)", me, core_strerror(rv));
		return -1;
	}
	size_t n;
	struct peer_hash *ph = ask_all(c, rev, NULL, &n);
	if (ph == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int mismatch = 0;
	for (size_t i = 0; i < n; i++) {
		hex_id(ph[i].id, peer, sizeof(peer));
		if (!ph[i].ok) {
			const char *msg =
				strcmp(ph[i].err, core_strerror(CORE_EFUTURE_REV)) == 0
					? "cannot fetch hash from slow remote peer"
				: strcmp(ph[i].err, core_strerror(CORE_ECOMPACTED)) == 0
					? "cannot fetch hash from remote peer; local member is behind"
					: NULL;
			if (msg != NULL)
				core_log_kv("warn", msg, "{s:s,s:I,s:I,s:I,s:s,s:s}", "local-member-id", me,
					    "local-member-revision", (json_int_t)rev,
					    "local-member-compact-revision", (json_int_t)crev,
					    "local-member-hash", (json_int_t)h, "remote-peer-id", peer,
					    "error", ph[i].err);
			continue;
		}
		if (ph[i].hash == h)
			continue;
		bool same_compact = ph[i].compact_rev == crev;
		mismatch += same_compact;
		core_log_kv("warn",
			    same_compact ? "found different hash values from remote peer"
					 : "found different compact revision values from remote peer",
			    "{s:s,s:I,s:I,s:I,s:s,s:I,s:I,s:I}", "local-member-id", me,
			    "local-member-revision", (json_int_t)rev, "local-member-compact-revision",
			    (json_int_t)crev, "local-member-hash", (json_int_t)h, "remote-peer-id", peer,
			    "remote-peer-revision", (json_int_t)ph[i].revision,
			    "remote-peer-compact-revision", (json_int_t)ph[i].compact_rev,
			    "remote-peer-hash", (json_int_t)ph[i].hash);
	}
	free(ph);
	if (mismatch > 0) {
		snprintf(err, errlen, "%s found data inconsistency with peers", me);
		return -1;
	}
	if (n == 0)
		core_log_kv("info", "initial corruption check: no peer to compare with", "{s:s}",
			    "local-member-id", me);
	core_log_kv("info", "initial corruption checking passed; no corruption", "{s:s}",
		    "local-member-id", me);
	return 0;
}

/* ---- the leader's periodic check ---- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int err;
};

static void read_done(void *arg, struct core_reply *reply)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->err = reply->err;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	core_reply_free(reply);
}

/* etcd's linearizableReadNotify: wait until this member has applied what
 * the cluster had committed when asked (a linearizable read). */
static int linearizable(struct core *c)
{
	struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, CORE_OK};
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key.data = (uint8_t *)"health";
	q.key.len = 6;
	q.count_only = 1;
	core_range(c, &q, read_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	return w.err;
}

static void raise_corrupt(struct core *c, uint64_t id)
{
	Etcdserverpb__AlarmRequest q = ETCDSERVERPB__ALARM_REQUEST__INIT;
	q.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
	q.memberid = id;
	q.alarm = ETCDSERVERPB__ALARM_TYPE__CORRUPT;
	core_alarm(c, &q, reply_drop, NULL);
}

static int check_once(struct corrupt *k)
{
	struct core *c = k->c;
	uint32_t h, h2;
	int64_t rev, crev, rev2, crev2;
	int rv = core_hash_kv(c, 0, &h, &crev, &rev);
	if (rv != CORE_OK)
		return rv;
	size_t n;
	struct peer_hash *ph = ask_all(c, rev, &k->stopping, &n);
	if (ph == NULL)
		return CORE_ENOMEM;
	if ((rv = linearizable(c)) == CORE_OK)
		rv = core_hash_kv(c, 0, &h2, &crev2, &rev2);
	if (rv != CORE_OK) {
		free(ph);
		return rv;
	}
	bool alarmed = false; /* one alarm per pass, as etcd */
	if (h2 != h && rev2 == rev && crev == crev2) {
		core_log_kv("warn", "found hash mismatch", "{s:I,s:I,s:I,s:I,s:I,s:I}", "revision-1",
			    (json_int_t)rev, "compact-revision-1", (json_int_t)crev, "hash-1",
			    (json_int_t)h, "revision-2", (json_int_t)rev2, "compact-revision-2",
			    (json_int_t)crev2, "hash-2", (json_int_t)h2);
		raise_corrupt(c, c->member_id);
		alarmed = true;
	}
	int checked = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ph[i].ok)
			continue;
		checked++;
		char peer[24];
		hex_id(ph[i].id, peer, sizeof(peer));
		bool bad = false;
		if (ph[i].revision > rev2) {
			core_log_kv("warn", "revision from follower must be less than or equal to leader's",
				    "{s:I,s:I,s:s}", "leader-revision", (json_int_t)rev2,
				    "follower-revision", (json_int_t)ph[i].revision, "follower-peer-id", peer);
			bad = true;
		}
		if (ph[i].compact_rev > crev2) {
			core_log_kv("warn",
				    "compact revision from follower must be less than or equal to leader's",
				    "{s:I,s:I,s:s}", "leader-compact-revision", (json_int_t)crev2,
				    "follower-compact-revision", (json_int_t)ph[i].compact_rev,
				    "follower-peer-id", peer);
			bad = true;
		}
		if (ph[i].compact_rev == crev && ph[i].hash != h) {
			core_log_kv("warn", "same compact revision then hashes must match",
				    "{s:I,s:I,s:I,s:I,s:s}", "leader-compact-revision", (json_int_t)crev2,
				    "leader-hash", (json_int_t)h, "follower-compact-revision",
				    (json_int_t)ph[i].compact_rev, "follower-hash", (json_int_t)ph[i].hash,
				    "follower-peer-id", peer);
			bad = true;
		}
		if (bad && !alarmed) {
			raise_corrupt(c, ph[i].id);
			alarmed = true;
		}
	}
	free(ph);
	core_log_kv("info", "finished peer corruption check", "{s:i}", "number-of-peers-checked",
		    checked);
	return CORE_OK;
}

static void *monitor(void *arg)
{
	struct corrupt *k = arg;
	struct core *c = k->c;
	pthread_setname_np(pthread_self(), "metad-corrupt");
	int64_t ms = c->cfg.corrupt_check_ms;
	pthread_mutex_lock(&k->mu);
	while (!atomic_load(&k->stopping)) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		int64_t ns = until.tv_nsec + ms % 1000 * 1000000;
		until.tv_sec += ms / 1000 + ns / 1000000000;
		until.tv_nsec = ns % 1000000000;
		while (!atomic_load(&k->stopping) &&
		       pthread_cond_timedwait(&k->cv, &k->mu, &until) == 0)
			;
		if (atomic_load(&k->stopping))
			break;
		pthread_mutex_unlock(&k->mu);
		struct core_status st;
		core_status(c, &st);
		if (st.leader == c->member_id) { /* etcd: the leader checks */
			int rv = check_once(k);
			if (rv != CORE_OK)
				core_log_kv("warn", "failed to check hash KV", "{s:s}", "error",
					    core_strerror(rv));
		}
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

int corrupt_monitor_start(struct core *c)
{
	if (c->cfg.corrupt_check_ms <= 0)
		return CORE_OK;
	struct corrupt *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return CORE_ENOMEM;
	k->c = c;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->corrupt = k;
	char me[24], interval[32];
	hex_id(c->member_id, me, sizeof(me));
	ac_format_duration(c->cfg.corrupt_check_ms * 1000000, interval, sizeof(interval));
	core_log_kv("info", "enabled corruption checking", "{s:s,s:s}", "local-member-id", me,
		    "interval", interval);
	uint64_t ids[MEMBERS_MAX];
	bool learner[MEMBERS_MAX];
	if (members_ids(&c->members, ids, learner, MEMBERS_MAX) <= 1)
		core_log_kv("info", "corruption checking: a single member has no peer to compare with",
			    "{s:s}", "local-member-id", me);
	if (pthread_create(&k->thread, NULL, monitor, k) != 0)
		return CORE_ENOMEM;
	k->started = true;
	return CORE_OK;
}

void corrupt_monitor_stop(struct core *c)
{
	struct corrupt *k = c->corrupt;
	if (k == NULL)
		return;
	pthread_mutex_lock(&k->mu);
	atomic_store(&k->stopping, true);
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
	if (k->started)
		pthread_join(k->thread, NULL);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
	c->corrupt = NULL;
}
