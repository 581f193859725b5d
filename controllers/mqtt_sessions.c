/*
 * controllers/mqtt_sessions.c — MQTT sessions when their broker dies
 * (expiry started on a fresh lease, will timers started), sessions that end
 * (subscriptions removed, the will fired), will timers that run out,
 * reconnections (the timer cancelled) and asynchronous topic deletion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controllers/mqtt_internal.h"

/* One lease per distinct TTL, shared by everything that starts now. */
struct leases {
	int64_t ttl[16], id[16];
	size_t n;
};

static int64_t lease_for(struct ctl *rt, struct leases *l, int64_t ttl)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->ttl[i] == ttl)
			return l->id[i];
	int64_t id = 0;
	if (ctl_lease_grant(rt, ttl, &id) != CORE_OK)
		return 0;
	if (l->n < 16) {
		l->ttl[l->n] = ttl;
		l->id[l->n++] = id;
	}
	return id;
}

static size_t key2(char *buf, size_t cap, const char *pfx, const char *tc)
{
	return ctl_key(buf, cap, "%s%s", pfx, tc);
}

/* Fire tc's will: will-fire gets its value, the will goes (one Txn). */
static void fire(struct ctl *rt, struct mctl *m, const char *tc, struct ctl_txn *t)
{
	struct mwill *w = strmap_get(&m->wills, tc, strlen(tc));
	char wk[320], fk[320];
	size_t wl = key2(wk, sizeof(wk), M_WILLS, tc), fl = key2(fk, sizeof(fk), M_FIRE, tc);
	if (w == NULL || wl == 0 || fl == 0)
		return;
	(void)rt;
	ctl_txn_cmp_mod(t, wk, wl, w->mod_rev);
	ctl_txn_put(t, fk, fl, w->value, w->len, 0);
	ctl_txn_del(t, wk, wl);
}

struct pending {
	char tc[2 * CTL_PART_MAX];
	int64_t expect, lease;
	bool drop; /* expiry 0: the session ends now */
};

static void build(struct ctl_txn *t, const struct pending *v, size_t n)
{
	ctl_txn_init(t);
	for (size_t i = 0; i < n; i++) {
		char k[320];
		size_t kl = key2(k, sizeof(k), M_SESSIONS, v[i].tc);
		ctl_txn_cmp_mod(t, k, kl, v[i].expect);
		if (v[i].drop)
			ctl_txn_del(t, k, kl);
		else
			ctl_txn_put_lease(t, k, kl, v[i].lease);
	}
}

/* One session again, from its current value: still without a lease? */
static void retry_session(struct ctl *rt, struct mctl *m, const struct pending *p)
{
	char k[320];
	size_t kl = key2(k, sizeof(k), M_SESSIONS, p->tc);
	struct core_reply *reply;
	const Etcdserverpb__RangeResponse *resp;
	if (ctl_range(rt, k, kl, NULL, 0, 0, &reply, &resp) != CORE_OK)
		return;
	bool still = resp->n_kvs == 1 && resp->kvs[0]->lease == 0;
	struct pending one = *p;
	one.expect = still ? resp->kvs[0]->mod_revision : 0;
	core_reply_free(reply);
	if (!still)
		return;
	struct ctl_txn t;
	build(&t, &one, 1);
	bool ok = false;
	int64_t rev = 0;
	ctl_txn_commit(rt, &t, &ok, &rev);
	ctl_txn_free(&t);
	struct msession *s = strmap_get(&m->sessions, p->tc, strlen(p->tc));
	if (ok && s != NULL) {
		s->lease = one.lease;
		s->mod_rev = rev;
	}
}

/* All of v, M_BATCH sessions per Txn, the Txns pipelined. */
static void commit_sessions(struct ctl *rt, struct mctl *m, struct pending *v, size_t n)
{
	size_t nt = (n + M_BATCH - 1) / M_BATCH;
	struct ctl_txn *t = calloc(nt ? nt : 1, sizeof(*t));
	bool *ok = calloc(nt ? nt : 1, sizeof(*ok));
	int64_t *rev = calloc(nt ? nt : 1, sizeof(*rev));
	if (t == NULL || ok == NULL || rev == NULL) {
		free(t);
		free(ok);
		free(rev);
		return;
	}
	for (size_t i = 0; i < nt; i++)
		build(&t[i], v + i * M_BATCH, n - i * M_BATCH < M_BATCH ? n - i * M_BATCH : M_BATCH);
	ctl_txn_many(rt, t, nt, ok, rev);
	for (size_t i = 0; i < n; i++) {
		size_t b = i / M_BATCH;
		struct msession *s = strmap_get(&m->sessions, v[i].tc, strlen(v[i].tc));
		if (ok[b] && s != NULL) {
			s->lease = v[i].lease;
			s->mod_rev = rev[b];
		} else if (!ok[b]) {
			retry_session(rt, m, &v[i]); /* one of its batch changed meanwhile */
		}
	}
	for (size_t i = 0; i < nt; i++)
		ctl_txn_free(&t[i]);
	free(t);
	free(ok);
	free(rev);
}

static void start_wills(struct ctl *rt, struct mctl *m, struct pending *v, size_t n,
			struct leases *l)
{
	for (size_t i = 0; i < n; i++) {
		struct mwill *w = strmap_get(&m->wills, v[i].tc, strlen(v[i].tc));
		if (w == NULL || strmap_get(&m->timers, v[i].tc, strlen(v[i].tc)) != NULL)
			continue;
		struct ctl_txn t;
		ctl_txn_init(&t);
		char wk[320], tk[320];
		size_t wl = key2(wk, sizeof(wk), M_WILLS, v[i].tc);
		size_t tl = key2(tk, sizeof(tk), M_TIMERS, v[i].tc);
		if (w->delay_s <= 0) {
			fire(rt, m, v[i].tc, &t);
		} else {
			int64_t lease = lease_for(rt, l, w->delay_s);
			ctl_txn_cmp_mod(&t, wk, wl, w->mod_rev);
			ctl_txn_cmp_mod(&t, tk, tl, 0);
			ctl_txn_put(&t, tk, tl, "{}", 2, lease);
		}
		bool ok = false;
		ctl_txn_commit(rt, &t, &ok, NULL);
		ctl_txn_free(&t);
		if (ok && w->delay_s > 0)
			strmap_put(&m->timers, v[i].tc, strlen(v[i].tc), (void *)1, NULL);
	}
}

void m_broker_down(struct ctl *rt, struct mctl *m, const char *broker)
{
	int64_t t0 = ctl_now(rt);
	struct leases l = {.n = 0};
	struct pending *v = NULL;
	size_t n = 0, cap = 0, it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->sessions, &it)) != NULL) {
		struct msession *s = sl->val;
		if (s->lease != 0 || strcmp(s->broker, broker) != 0 || sl->len >= sizeof(v->tc))
			continue;
		const char *owner = strmap_get(&m->presence, sl->key, sl->len);
		if (owner != NULL && strcmp(owner, broker) != 0)
			continue; /* reconnected to another broker */
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct pending *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL)
				break;
			v = nv;
			cap = nc;
		}
		memcpy(v[n].tc, sl->key, sl->len + 1);
		v[n].expect = s->mod_rev;
		v[n].drop = s->expiry_s <= 0;
		v[n].lease = v[n].drop ? 0 : lease_for(rt, &l, s->expiry_s);
		if (!v[n].drop && v[n].lease == 0)
			continue;
		n++;
	}
	commit_sessions(rt, m, v, n);
	start_wills(rt, m, v, n, &l);
	free(v);
	if (n > 0)
		core_log("info", "controllers: mqtt: broker %s gone: %zu sessions started expiry in %lld ms",
			 broker, n, (long long)(ctl_now(rt) - t0));
}

void m_session_gone(struct ctl *rt, struct mctl *m, const char *tc)
{
	char sk[320], pk[320], tk[320], end[320];
	size_t sl = key2(sk, sizeof(sk), M_SESSIONS, tc);
	size_t pl = ctl_key(pk, sizeof(pk), M_SUBS "%s/", tc);
	size_t tl = key2(tk, sizeof(tk), M_TIMERS, tc);
	if (sl == 0 || pl == 0 || tl == 0)
		return;
	size_t el = ctl_prefix_end(pk, pl, end);
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, sk, sl, 0); /* not started again meanwhile */
	ctl_txn_del_range(&t, pk, pl, end, el);
	ctl_txn_del(&t, tk, tl);
	bool had_will = strmap_get(&m->wills, tc, strlen(tc)) != NULL &&
			strmap_get(&m->presence, tc, strlen(tc)) == NULL;
	if (had_will)
		fire(rt, m, tc, &t);
	bool ok = false;
	ctl_txn_commit(rt, &t, &ok, NULL);
	ctl_txn_free(&t);
	if (ok && had_will) {
		struct mwill *w = strmap_del(&m->wills, tc, strlen(tc));
		if (w != NULL) {
			free(w->value);
			free(w);
		}
	}
}

void m_timer_gone(struct ctl *rt, struct mctl *m, const char *tc)
{
	if (strmap_get(&m->presence, tc, strlen(tc)) != NULL ||
	    strmap_get(&m->wills, tc, strlen(tc)) == NULL)
		return; /* cancelled by a reconnection, or already fired */
	char pk[320];
	size_t pl = key2(pk, sizeof(pk), M_PRESENCE, tc);
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, pk, pl, 0);
	fire(rt, m, tc, &t);
	bool ok = false;
	ctl_txn_commit(rt, &t, &ok, NULL);
	ctl_txn_free(&t);
	if (ok) {
		struct mwill *w = strmap_del(&m->wills, tc, strlen(tc));
		if (w != NULL) {
			free(w->value);
			free(w);
		}
	}
}

void m_reconnected(struct ctl *rt, struct mctl *m, const char *tc)
{
	if (strmap_get(&m->timers, tc, strlen(tc)) == NULL)
		return;
	char tk[320];
	size_t tl = key2(tk, sizeof(tk), M_TIMERS, tc);
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_del(&t, tk, tl);
	bool ok = false;
	ctl_txn_commit(rt, &t, &ok, NULL);
	ctl_txn_free(&t);
}

void m_delete_topic(struct ctl *rt, const struct ctl_kv *kv)
{
	char p[2][CTL_PART_MAX], tk[320], rk[320];
	if (ctl_key_split(kv->key, kv->key_len, strlen(M_DELETE_TOPIC), p, 2) != 2)
		return;
	size_t tl = ctl_key(tk, sizeof(tk), M_TOPICS "%s/%s", p[0], p[1]);
	size_t rl = ctl_key(rk, sizeof(rk), M_RETAINED "%s/%s", p[0], p[1]);
	if (tl == 0 || rl == 0)
		return;
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, kv->key, kv->key_len, kv->mod_rev);
	ctl_txn_del(&t, tk, tl);
	ctl_txn_del(&t, rk, rl);
	ctl_txn_del(&t, kv->key, kv->key_len);
	bool ok = false;
	ctl_txn_commit(rt, &t, &ok, NULL);
	ctl_txn_free(&t);
	if (ok)
		core_log("info", "controllers: mqtt: topic %s/%s deleted", p[0], p[1]);
}

void m_sessions_synced(struct ctl *rt, struct mctl *m)
{
	/* Brokers that went while no controller ran, as if they went now. */
	char dead[64][M_ID_MAX];
	size_t n_dead = 0, it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->sessions, &it)) != NULL && n_dead < 64) {
		struct msession *s = sl->val;
		if (s->lease != 0 || s->broker[0] == 0 || m_broker_alive(rt, s->broker))
			continue;
		bool seen = false;
		for (size_t i = 0; i < n_dead && !seen; i++)
			seen = strcmp(dead[i], s->broker) == 0;
		if (!seen)
			snprintf(dead[n_dead++], M_ID_MAX, "%s", s->broker);
	}
	for (size_t i = 0; i < n_dead; i++)
		m_broker_down(rt, m, dead[i]);
	/* Wills whose session ended while no controller ran. */
	char (*orphan)[2 * CTL_PART_MAX] = NULL;
	size_t n = 0;
	it = 0;
	while ((sl = strmap_next(&m->wills, &it)) != NULL) {
		if (strmap_get(&m->sessions, sl->key, sl->len) != NULL ||
		    strmap_get(&m->presence, sl->key, sl->len) != NULL || sl->len >= sizeof(*orphan))
			continue;
		char(*no)[2 * CTL_PART_MAX] = realloc(orphan, (n + 1) * sizeof(*orphan));
		if (no == NULL)
			break;
		orphan = no;
		memcpy(orphan[n++], sl->key, sl->len + 1);
	}
	for (size_t i = 0; i < n; i++)
		m_session_gone(rt, m, orphan[i]);
	free(orphan);
}
