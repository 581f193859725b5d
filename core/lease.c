/*
 * core/lease.c — the lessor: leases in memory, grant/revoke applied from the
 * log, renewals, and the expiry thread.
 *
 * Expiry is decided here, on the (single) leader, but acted on through the
 * write path: an expired lease becomes a LeaseRevoke proposal, so a future
 * Raft cluster revokes it at the same log position everywhere. Revocations
 * are paced at etcd's rate so a mass expiry cannot flood the log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_internal.h"
#include "core/deadline.h"
#include "core/lease_internal.h"
#include "storage/lease.h"

#define EXPIRY_TICK_MS 500     /* etcd checks for expired leases twice a second */
#define REVOKE_RETRY_NS (3000000000LL) /* re-propose a revoke that got lost after 3 s */

struct lease_ent {
	struct lease_ent *next; /* hash chain */
	int64_t id;
	int64_t ttl;       /* granted TTL (s), raised to the minimum */
	int64_t expiry;    /* CLOCK_MONOTONIC ns */
	int64_t revoke_at; /* when a revoke was proposed; 0 = none */
	int64_t remaining; /* last checkpointed remaining TTL (s); 0 = none */
};

struct lessor {
	struct core *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct lease_ent **tab;
	size_t nbuckets;
	size_t n;
	bool stopping;
	bool started;
	pthread_t thread;
	uint64_t id_next; /* server-chosen ids */
	int64_t next_checkpoint; /* leader: when to checkpoint remaining TTLs */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t bucket(const struct lessor *l, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 17) & (l->nbuckets - 1);
}

static struct lease_ent *find(struct lessor *l, int64_t id)
{
	for (struct lease_ent *e = l->tab[bucket(l, id)]; e; e = e->next)
		if (e->id == id)
			return e;
	return NULL;
}

static int grow(struct lessor *l)
{
	size_t nb = l->nbuckets * 2;
	struct lease_ent **t = calloc(nb, sizeof(*t));
	if (t == NULL)
		return CORE_ENOMEM;
	struct lease_ent **old = l->tab;
	size_t onb = l->nbuckets;
	l->tab = t;
	l->nbuckets = nb;
	for (size_t i = 0; i < onb; i++)
		while (old[i]) {
			struct lease_ent *e = old[i];
			old[i] = e->next;
			size_t b = bucket(l, e->id);
			e->next = t[b];
			t[b] = e;
		}
	free(old);
	return CORE_OK;
}

/* Insert (caller holds mu and checked absence). */
static int insert(struct lessor *l, int64_t id, int64_t ttl)
{
	if (l->n + 1 > l->nbuckets && grow(l) != CORE_OK)
		return CORE_ENOMEM;
	struct lease_ent *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return CORE_ENOMEM;
	e->id = id;
	e->ttl = ttl;
	e->expiry = now_ns() + ttl * 1000000000LL;
	size_t b = bucket(l, id);
	e->next = l->tab[b];
	l->tab[b] = e;
	l->n++;
	return CORE_OK;
}

static void erase(struct lessor *l, int64_t id)
{
	for (struct lease_ent **pp = &l->tab[bucket(l, id)]; *pp; pp = &(*pp)->next)
		if ((*pp)->id == id) {
			struct lease_ent *e = *pp;
			*pp = e->next;
			free(e);
			l->n--;
			return;
		}
}

static int load_one(void *arg, int64_t id, int64_t ttl)
{
	/* A fresh TTL from now: etcd's Promote after a leader (re)start. */
	return insert(arg, id, ttl) == CORE_OK ? 0 : DB_NOMEM;
}

int lessor_open(struct core *c, struct lessor **out)
{
	struct lessor *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return DB_NOMEM;
	l->c = c;
	l->nbuckets = 1024;
	l->tab = calloc(l->nbuckets, sizeof(*l->tab));
	if (l->tab == NULL) {
		free(l);
		return DB_NOMEM;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	/* Server-chosen ids as etcd's idutil: member bits, then time, then a
	 * counter, so ids from different members or restarts do not collide. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	l->id_next = ((c->member_id & 0xffff) << 48) | ((ms & 0xffffffffffULL) << 8);
	int rv = lease_store_load(c->wsession, load_one, l);
	if (rv != DB_OK) {
		lessor_free(l);
		return rv;
	}
	*out = l;
	return DB_OK;
}

int lessor_reload(struct lessor *l)
{
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->nbuckets; i++)
		while (l->tab[i]) {
			struct lease_ent *e = l->tab[i];
			l->tab[i] = e->next;
			free(e);
		}
	l->n = 0;
	int rv = lease_store_load(l->c->wsession, load_one, l);
	pthread_mutex_unlock(&l->mu);
	return rv;
}

void lessor_free(struct lessor *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nbuckets; i++)
		while (l->tab[i]) {
			struct lease_ent *e = l->tab[i];
			l->tab[i] = e->next;
			free(e);
		}
	free(l->tab);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

void lessor_promote(struct lessor *l)
{
	/* etcd's Promote: a new leader gives every lease its full TTL again,
	 * so a leader change never expires a lease early. */
	int64_t now = now_ns();
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < l->nbuckets; i++)
		for (struct lease_ent *e = l->tab[i]; e; e = e->next) {
			/* A checkpointed lease keeps what it had left (etcd's
			 * lease checkpointing): a leader change never lengthens
			 * it to a full TTL again, nor shortens it. */
			int64_t left = e->remaining > 0 ? e->remaining : e->ttl;
			e->expiry = now + left * 1000000000LL;
			e->revoke_at = 0;
		}
	pthread_mutex_unlock(&l->mu);
}

int apply_lease_checkpoint(struct core *c, const Metadpb__LeaseCheckpoints *cps)
{
	struct lessor *l = c->lessor;
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < cps->n_checkpoints; i++) {
		struct lease_ent *e = find(l, cps->checkpoints[i]->id);
		if (e != NULL)
			e->remaining = cps->checkpoints[i]->remaining_ttl;
	}
	pthread_mutex_unlock(&l->mu);
	return CORE_OK;
}

/* Leader: record remaining TTLs (or, with ids alone, their reset) in the
 * log, in etcd's batches of at most 1,000. */
static void checkpoint_propose(struct core *c, const int64_t *ids, const int64_t *left, size_t n)
{
	for (size_t at = 0; at < n; at += LEASE_CHECKPOINT_BATCH) {
		size_t k = n - at < LEASE_CHECKPOINT_BATCH ? n - at : LEASE_CHECKPOINT_BATCH;
		Metadpb__LeaseCheckpoint *cp = calloc(k, sizeof(*cp));
		Metadpb__LeaseCheckpoint **v = calloc(k, sizeof(*v));
		if (cp == NULL || v == NULL) {
			free(cp);
			free(v);
			return;
		}
		for (size_t i = 0; i < k; i++) {
			metadpb__lease_checkpoint__init(&cp[i]);
			cp[i].id = ids[at + i];
			cp[i].remaining_ttl = left ? left[at + i] : 0;
			v[i] = &cp[i];
		}
		Metadpb__LeaseCheckpoints cps = METADPB__LEASE_CHECKPOINTS__INIT;
		cps.n_checkpoints = k;
		cps.checkpoints = v;
		Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
		ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT;
		ir.lease_checkpoint = &cps;
		writer_submit(c, &ir, reply_drop, NULL);
		free(cp);
		free(v);
	}
}

/* Every checkpoint interval, the leader checkpoints every lease that is
 * not about to expire anyway. Called by the expiry thread with mu held;
 * returns with it held. */
static void checkpoint_all_locked(struct lessor *l, int64_t now)
{
	size_t cap = l->n, n = 0;
	int64_t *ids = malloc((cap ? cap : 1) * sizeof(*ids));
	int64_t *left = malloc((cap ? cap : 1) * sizeof(*left));
	for (size_t i = 0; ids && left && i < l->nbuckets; i++)
		for (struct lease_ent *e = l->tab[i]; e && n < cap; e = e->next) {
			int64_t s = (e->expiry - now) / 1000000000LL;
			if (s > 0) {
				ids[n] = e->id;
				left[n++] = s;
				e->remaining = s;
			}
		}
	pthread_mutex_unlock(&l->mu);
	if (ids && left)
		checkpoint_propose(l->c, ids, left, n);
	free(ids);
	free(left);
	pthread_mutex_lock(&l->mu);
}

bool lessor_exists(struct lessor *l, int64_t id)
{
	pthread_mutex_lock(&l->mu);
	bool ok = find(l, id) != NULL;
	pthread_mutex_unlock(&l->mu);
	return ok;
}

bool core_lease_exists(struct core *c, int64_t id)
{
	return id == 0 || lessor_exists(c->lessor, id);
}

/* ---- apply (writer thread, inside the batch transaction) ---- */

int apply_lease_grant(struct core *c, struct db_session *s, struct reply *r,
		      const Etcdserverpb__LeaseGrantRequest *q, ProtobufCMessage **msg)
{
	struct lessor *l = c->lessor;
	if (q->ttl > LEASE_MAX_TTL)
		return CORE_ELEASE_TTL_TOO_LARGE;
	int64_t ttl = q->ttl < LEASE_MIN_TTL ? LEASE_MIN_TTL : q->ttl;
	Etcdserverpb__LeaseGrantResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	if (resp == NULL)
		return CORE_ENOMEM;
	etcdserverpb__lease_grant_response__init(resp);
	pthread_mutex_lock(&l->mu);
	bool exists = find(l, q->id) != NULL;
	pthread_mutex_unlock(&l->mu);
	if (exists)
		return CORE_ELEASE_EXISTS;
	int rv = lease_store_put(s, q->id, ttl);
	if (rv != DB_OK)
		return core_db_err(rv);
	pthread_mutex_lock(&l->mu);
	int err = insert(l, q->id, ttl);
	pthread_mutex_unlock(&l->mu);
	if (err != CORE_OK)
		return err;
	if ((resp->header = reply_header(c, r, 0)) == NULL)
		return CORE_ENOMEM;
	resp->id = q->id;
	resp->ttl = ttl;
	*msg = &resp->base;
	return CORE_OK;
}

int apply_lease_revoke(struct core *c, struct db_session *s, struct reply *r,
		       const Etcdserverpb__LeaseRevokeRequest *q, ProtobufCMessage **msg)
{
	struct lessor *l = c->lessor;
	if (!lessor_exists(l, q->id))
		return CORE_ELEASE_NOT_FOUND;
	Etcdserverpb__LeaseRevokeResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	struct mvcc_kvlist keys;
	mvcc_kvlist_init(&keys);
	if (resp == NULL)
		return CORE_ENOMEM;
	etcdserverpb__lease_revoke_response__init(resp);
	int rv = mvcc_lease_keys(c->mvcc, s, q->id, &keys);
	/* Every attached key goes in one revision, as etcd's revoke txn. */
	mvcc_req_begin(c->mvcc, s);
	for (size_t i = 0; rv == DB_OK && i < keys.n; i++) {
		int64_t deleted = 0;
		rv = mvcc_delete_range(c->mvcc, s, keys.kvs[i].key, keys.kvs[i].key_len, NULL, 0,
				       &deleted, NULL);
	}
	int64_t rev = mvcc_req_end(c->mvcc, s);
	mvcc_kvlist_free(&keys);
	if (rv == DB_OK)
		rv = lease_store_delete(s, q->id);
	if (rv != DB_OK)
		return core_db_err(rv);
	pthread_mutex_lock(&l->mu);
	erase(l, q->id);
	pthread_mutex_unlock(&l->mu);
	if ((resp->header = reply_header(c, r, rev)) == NULL)
		return CORE_ENOMEM;
	*msg = &resp->base;
	return CORE_OK;
}

/* ---- client calls ---- */

void core_lease_grant(struct core *c, const Etcdserverpb__LeaseGrantRequest *req, core_done_fn cb,
		      void *arg)
{
	if (req->ttl > LEASE_MAX_TTL) {
		reply_fail(cb, arg, CORE_ELEASE_TTL_TOO_LARGE);
		return;
	}
	Etcdserverpb__LeaseGrantRequest q = *req;
	if (q.id == 0) {
		/* The id is fixed before the log, as etcd does, so every
		 * replica applies the same one. */
		struct lessor *l = c->lessor;
		pthread_mutex_lock(&l->mu);
		do
			q.id = (int64_t)(++l->id_next & (uint64_t)INT64_MAX);
		while (q.id == 0 || find(l, q.id) != NULL);
		pthread_mutex_unlock(&l->mu);
	}
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_LEASE_GRANT;
	ir.lease_grant = &q;
	writer_submit(c, &ir, cb, arg);
}

void core_lease_revoke(struct core *c, const Etcdserverpb__LeaseRevokeRequest *req,
		       core_done_fn cb, void *arg)
{
	Metadpb__InternalRequest ir = METADPB__INTERNAL_REQUEST__INIT;
	ir.request_case = METADPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
	ir.lease_revoke = (Etcdserverpb__LeaseRevokeRequest *)req;
	writer_submit(c, &ir, cb, arg);
}

int64_t core_lease_renew(struct core *c, int64_t id)
{
	struct lessor *l = c->lessor;
	int64_t ttl = 0, now = now_ns();
	pthread_mutex_lock(&l->mu);
	struct lease_ent *e = find(l, id);
	/* An expired lease is as good as gone: its revoke is on the way. */
	bool reset = false;
	if (e != NULL && e->expiry > now) {
		e->expiry = now + e->ttl * 1000000000LL;
		ttl = e->ttl;
		/* etcd: a renewed lease's checkpoint no longer holds; clear it
		 * everywhere, or a new leader would cut the renewal short. */
		reset = e->remaining > 0;
		e->remaining = 0;
	}
	pthread_mutex_unlock(&l->mu);
	if (reset)
		checkpoint_propose(c, &id, NULL, 1);
	return ttl;
}

bool lessor_ttl(struct lessor *l, int64_t id, int64_t *ttl, int64_t *granted)
{
	pthread_mutex_lock(&l->mu);
	struct lease_ent *e = find(l, id);
	if (e != NULL) {
		int64_t left = e->expiry - now_ns();
		/* etcd truncates the remaining duration to whole seconds. */
		*ttl = left > 0 ? left / 1000000000LL : 0;
		*granted = e->ttl;
	}
	pthread_mutex_unlock(&l->mu);
	return e != NULL;
}

struct keepalive_fwd {
	core_keepalive_fn done;
	void *arg;
};

static void keepalive_answered(void *arg, const Metadpb__PeerReply *rep, int err)
{
	struct keepalive_fwd *k = arg;
	k->done(k->arg, rep ? rep->ttl : 0, err);
	free(k);
}

void core_lease_keepalive(struct core *c, int64_t id, core_keepalive_fn done, void *arg)
{
	if (atomic_load(&c->is_leader)) {
		done(arg, core_lease_renew(c, id), CORE_OK);
		return;
	}
	struct keepalive_fwd *k = malloc(sizeof(*k));
	if (k == NULL) {
		done(arg, 0, CORE_ENOMEM);
		return;
	}
	k->done = done;
	k->arg = arg;
	Metadpb__PeerCall call = METADPB__PEER_CALL__INIT;
	call.body_case = METADPB__PEER_CALL__BODY_KEEPALIVE;
	call.keepalive = id;
	int err = forward_call(c, &call, keepalive_answered, k);
	if (err != CORE_OK) {
		free(k);
		done(arg, 0, err);
	}
}

/* TimeToLive once the remaining and granted TTL are known (here on the
 * leader, or from it): keys come from this member's own store. */
static void ttl_reply(struct core *c, const Etcdserverpb__LeaseTimeToLiveRequest *req, bool found,
		      int64_t ttl, int64_t granted, core_done_fn cb, void *arg)
{
	struct reply *r = reply_new();
	Etcdserverpb__LeaseTimeToLiveResponse *resp = r ? arena_alloc(&r->arena, sizeof(*resp)) : NULL;
	if (resp == NULL) {
		if (r)
			reply_done(r, CORE_ENOMEM, NULL, cb, arg);
		else
			reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	etcdserverpb__lease_time_to_live_response__init(resp);
	resp->header = reply_header(c, r, 0);
	resp->id = req->id;
	resp->ttl = ttl;
	resp->grantedttl = granted;
	int err = resp->header ? CORE_OK : CORE_ENOMEM;
	if (!found) {
		resp->ttl = -1; /* etcd: unknown lease is TTL -1, not an error */
	} else if (req->keys && err == CORE_OK) {
		struct mvcc_kvlist *keys = reply_kvlist(r);
		struct db_session *s = core_session(c);
		int rv = keys && s ? mvcc_lease_keys(c->mvcc, s, req->id, keys) : DB_NOMEM;
		if (rv != DB_OK)
			err = core_db_err(rv);
		else if (keys->n > 0) {
			resp->keys = arena_alloc(&r->arena, keys->n * sizeof(*resp->keys));
			if (resp->keys == NULL)
				err = CORE_ENOMEM;
			for (size_t i = 0; err == CORE_OK && i < keys->n; i++) {
				resp->keys[i].data = (uint8_t *)keys->kvs[i].key;
				resp->keys[i].len = keys->kvs[i].key_len;
			}
			resp->n_keys = err == CORE_OK ? keys->n : 0;
		}
	}
	reply_done(r, err, &resp->base, cb, arg);
}

struct ttl_fwd {
	struct core *c;
	core_done_fn cb;
	void *arg;
	Etcdserverpb__LeaseTimeToLiveRequest req;
};

static void ttl_answered(void *arg, const Metadpb__PeerReply *rep, int err)
{
	struct ttl_fwd *t = arg;
	if (err != CORE_OK)
		reply_fail(t->cb, t->arg, err);
	else
		ttl_reply(t->c, &t->req, rep->found, rep->ttl, rep->granted_ttl, t->cb, t->arg);
	free(t);
}

void core_lease_time_to_live(struct core *c, const Etcdserverpb__LeaseTimeToLiveRequest *req,
			     core_done_fn cb, void *arg)
{
	/* The leader's lessor knows the remaining TTL; etcd forwards. */
	if (!atomic_load(&c->is_leader)) {
		struct ttl_fwd *t = malloc(sizeof(*t));
		if (t == NULL) {
			reply_fail(cb, arg, CORE_ENOMEM);
			return;
		}
		*t = (struct ttl_fwd){c, cb, arg, *req};
		Metadpb__PeerCall call = METADPB__PEER_CALL__INIT;
		call.body_case = METADPB__PEER_CALL__BODY_TIME_TO_LIVE;
		call.time_to_live = req->id;
		int err = forward_call(c, &call, ttl_answered, t);
		if (err != CORE_OK) {
			free(t);
			reply_fail(cb, arg, err);
		}
		return;
	}
	int64_t ttl = 0, granted = 0;
	bool found = lessor_ttl(c->lessor, req->id, &ttl, &granted);
	ttl_reply(c, req, found, ttl, granted, cb, arg);
}

void core_lease_leases(struct core *c, core_done_fn cb, void *arg)
{
	struct lessor *l = c->lessor;
	struct reply *r = reply_new();
	Etcdserverpb__LeaseLeasesResponse *resp = r ? arena_alloc(&r->arena, sizeof(*resp)) : NULL;
	if (resp == NULL) {
		if (r)
			reply_done(r, CORE_ENOMEM, NULL, cb, arg);
		else
			reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	etcdserverpb__lease_leases_response__init(resp);
	resp->header = reply_header(c, r, 0);
	int err = resp->header ? CORE_OK : CORE_ENOMEM;
	pthread_mutex_lock(&l->mu);
	size_t n = l->n;
	Etcdserverpb__LeaseStatus *st = n ? arena_alloc(&r->arena, n * sizeof(*st)) : NULL;
	resp->leases = n ? arena_alloc(&r->arena, n * sizeof(*resp->leases)) : NULL;
	if (n && (st == NULL || resp->leases == NULL))
		err = CORE_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; err == CORE_OK && i < l->nbuckets; i++)
		for (struct lease_ent *e = l->tab[i]; e; e = e->next) {
			etcdserverpb__lease_status__init(&st[k]);
			st[k].id = e->id;
			resp->leases[k] = &st[k];
			k++;
		}
	pthread_mutex_unlock(&l->mu);
	resp->n_leases = k;
	reply_done(r, err, &resp->base, cb, arg);
}

/* ---- expiry ---- */

static void *expiry_main(void *arg)
{
	struct lessor *l = arg;
	pthread_setname_np(pthread_self(), "metad-lease");
	size_t per_tick = LEASE_REVOKE_RATE * EXPIRY_TICK_MS / 1000;
	int64_t *ids = malloc(per_tick * sizeof(*ids));
	pthread_mutex_lock(&l->mu);
	while (!l->stopping && ids != NULL) {
		struct timespec dl = core_deadline_ns(CLOCK_MONOTONIC, EXPIRY_TICK_MS * 1000000LL);
		pthread_cond_timedwait(&l->cv, &l->mu, &dl);
		if (l->stopping)
			break;
		int64_t now = now_ns();
		size_t n = 0;
		/* Only the leader decides expiry; followers learn of it through
		 * the revoke in the log. */
		if (!atomic_load(&l->c->is_leader))
			continue;
		int64_t every = l->c->cfg.lease_checkpoint_ms * 1000000LL;
		if (l->c->cfg.lease_checkpoint && every > 0 && now >= l->next_checkpoint) {
			if (l->next_checkpoint != 0)
				checkpoint_all_locked(l, now);
			l->next_checkpoint = now + every;
		}
		for (size_t i = 0; i < l->nbuckets && n < per_tick; i++)
			for (struct lease_ent *e = l->tab[i]; e && n < per_tick; e = e->next)
				if (e->expiry <= now &&
				    (e->revoke_at == 0 || now - e->revoke_at > REVOKE_RETRY_NS)) {
					e->revoke_at = now;
					ids[n++] = e->id;
				}
		pthread_mutex_unlock(&l->mu);
		for (size_t i = 0; i < n; i++) {
			Etcdserverpb__LeaseRevokeRequest q = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
			q.id = ids[i];
			core_lease_revoke(l->c, &q, reply_drop, NULL);
		}
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	free(ids);
	return NULL;
}

int lessor_start(struct lessor *l)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&l->cv);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&l->thread, NULL, expiry_main, l) != 0)
		return DB_NOMEM;
	l->started = true;
	return DB_OK;
}

void lessor_stop(struct lessor *l)
{
	if (l == NULL || !l->started)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	l->started = false;
}
