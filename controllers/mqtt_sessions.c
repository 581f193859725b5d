/*
 * controllers/mqtt_sessions.c — MQTT sessions when their broker dies
 * (expiry started on a fresh lease, will timers started), sessions that end
 * (subscriptions removed, the will fired), will timers that run out,
 * reconnections (the timer cancelled) and asynchronous topic deletion.
 */
#include <stdint.h>
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
	int64_t expect;
};

/* Delete session p with its subscriptions and will timer, firing its will
 * (if any and the client is not present), guarded by its mod_revision. */
static void reap_ops(struct ctl *rt, struct mctl *m, struct ctl_txn *t, const struct pending *p)
{
	char sk[320], pk[320], tk[320], end[320];
	size_t sl = key2(sk, sizeof(sk), M_SESSIONS, p->tc);
	size_t pl = ctl_key(pk, sizeof(pk), M_SUBS "%s/", p->tc);
	size_t tl = key2(tk, sizeof(tk), M_TIMERS, p->tc);
	if (sl == 0 || pl == 0 || tl == 0) {
		t->oom = true;
		return;
	}
	size_t el = ctl_prefix_end(pk, pl, end);
	ctl_txn_cmp_mod(t, sk, sl, p->expect);
	ctl_txn_del(t, sk, sl);
	ctl_txn_del_range(t, pk, pl, end, el);
	if (strmap_get(&m->timers, p->tc, strlen(p->tc)) != NULL)
		ctl_txn_del(t, tk, tl);
	if (strmap_get(&m->presence, p->tc, strlen(p->tc)) == NULL)
		fire(rt, m, p->tc, t);
}

static void reaped(struct mctl *m, const char *tc)
{
	strmap_put(&m->reaped, tc, strlen(tc), (void *)1, NULL);
	struct mwill *w = strmap_del(&m->wills, tc, strlen(tc));
	if (w != NULL) {
		free(w->value);
		free(w);
	}
}

/* Reap v[0..n), M_BATCH per Txn, pipelined; a batch whose guard fails is
 * redone one by one from fresh values (a session rewritten after since is
 * left alone: its client came back). */
static void reap(struct ctl *rt, struct mctl *m, struct pending *v, size_t n, int64_t since)
{
	size_t nt = (n + M_BATCH - 1) / M_BATCH;
	if (nt == 0)
		return;
	struct ctl_txn *t = calloc(nt, sizeof(*t));
	bool *ok = calloc(nt, sizeof(*ok));
	int64_t *rev = calloc(nt, sizeof(*rev));
	if (t == NULL || ok == NULL || rev == NULL) {
		free(t);
		free(ok);
		free(rev);
		return;
	}
	for (size_t b = 0; b < nt; b++) {
		ctl_txn_init(&t[b]);
		for (size_t i = b * M_BATCH; i < n && i < (b + 1) * M_BATCH; i++)
			reap_ops(rt, m, &t[b], &v[i]);
	}
	ctl_txn_many(rt, t, nt, ok, rev);
	for (size_t i = 0; i < n; i++) {
		if (ok[i / M_BATCH]) {
			reaped(m, v[i].tc);
			continue;
		}
		if (!ctl_leading(rt))
			break;
		char sk[320];
		size_t sl = key2(sk, sizeof(sk), M_SESSIONS, v[i].tc);
		struct core_reply *reply;
		const Etcdserverpb__RangeResponse *resp;
		if (ctl_range(rt, sk, sl, NULL, 0, 0, &reply, &resp) != CORE_OK)
			continue;
		struct pending one = v[i];
		bool still = resp->n_kvs == 1 && resp->kvs[0]->lease == 0 &&
			     resp->kvs[0]->mod_revision < since;
		one.expect = still ? resp->kvs[0]->mod_revision : 0;
		core_reply_free(reply);
		if (!still)
			continue;
		struct ctl_txn t1;
		ctl_txn_init(&t1);
		reap_ops(rt, m, &t1, &one);
		bool ok1 = false;
		ctl_txn_commit(rt, &t1, &ok1, NULL);
		ctl_txn_free(&t1);
		if (ok1)
			reaped(m, v[i].tc);
	}
	for (size_t b = 0; b < nt; b++)
		ctl_txn_free(&t[b]);
	free(t);
	free(ok);
	free(rev);
}

/* Start the will of each client in v that has one and no timer yet: a
 * timer on a lease of its delay_s (shared per delay), or fired at once
 * with delay_s 0. M_BATCH wills per Txn, pipelined; a failed batch is
 * redone one by one. */
static bool will_ops(struct ctl *rt, struct mctl *m, struct ctl_txn *t, const char *tc,
		     struct leases *l)
{
	struct mwill *w = strmap_get(&m->wills, tc, strlen(tc));
	if (w == NULL || strmap_get(&m->timers, tc, strlen(tc)) != NULL)
		return false;
	if (w->delay_s <= 0) {
		fire(rt, m, tc, t);
		return true;
	}
	char wk[320], tk[320];
	size_t wl = key2(wk, sizeof(wk), M_WILLS, tc);
	size_t tl = key2(tk, sizeof(tk), M_TIMERS, tc);
	int64_t lease = lease_for(rt, l, w->delay_s);
	if (wl == 0 || tl == 0 || lease == 0)
		return false;
	ctl_txn_cmp_mod(t, wk, wl, w->mod_rev);
	ctl_txn_cmp_mod(t, tk, tl, 0);
	ctl_txn_put(t, tk, tl, "{}", 2, lease);
	return true;
}

static void will_done(struct mctl *m, const char *tc)
{
	struct mwill *w = strmap_get(&m->wills, tc, strlen(tc));
	if (w == NULL)
		return;
	if (w->delay_s > 0) {
		strmap_put(&m->timers, tc, strlen(tc), (void *)1, NULL);
		return;
	}
	strmap_del(&m->wills, tc, strlen(tc));
	free(w->value);
	free(w);
}

static void start_wills(struct ctl *rt, struct mctl *m, struct pending *v, size_t n,
			struct leases *l)
{
	const char **tc = malloc((n ? n : 1) * sizeof(*tc));
	size_t k = 0;
	for (size_t i = 0; i < n && tc != NULL; i++) {
		struct mwill *w = strmap_get(&m->wills, v[i].tc, strlen(v[i].tc));
		if (w != NULL && strmap_get(&m->timers, v[i].tc, strlen(v[i].tc)) == NULL)
			tc[k++] = v[i].tc;
	}
	size_t nt = (k + M_BATCH - 1) / M_BATCH;
	struct ctl_txn *t = calloc(nt ? nt : 1, sizeof(*t));
	bool *ok = calloc(nt ? nt : 1, sizeof(*ok));
	int64_t *rev = calloc(nt ? nt : 1, sizeof(*rev));
	if (tc == NULL || t == NULL || ok == NULL || rev == NULL)
		goto out;
	for (size_t b = 0; b < nt; b++) {
		ctl_txn_init(&t[b]);
		for (size_t i = b * M_BATCH; i < k && i < (b + 1) * M_BATCH; i++)
			will_ops(rt, m, &t[b], tc[i], l);
	}
	ctl_txn_many(rt, t, nt, ok, rev);
	for (size_t i = 0; i < k; i++) {
		if (ok[i / M_BATCH]) {
			will_done(m, tc[i]);
			continue;
		}
		if (!ctl_leading(rt))
			break;
		struct ctl_txn one;
		ctl_txn_init(&one);
		bool ok1 = false;
		if (will_ops(rt, m, &one, tc[i], l))
			ctl_txn_commit(rt, &one, &ok1, NULL);
		ctl_txn_free(&one);
		if (ok1)
			will_done(m, tc[i]);
	}
	for (size_t b = 0; b < nt; b++)
		ctl_txn_free(&t[b]);
out:
	free(tc);
	free(t);
	free(ok);
	free(rev);
}

/* The sessions of broker that hold no lease and whose client is not
 * present elsewhere; with expiry >= 0 only those with that expiry_s (and
 * mod_revision below since). */
static size_t orphans(struct mctl *m, const char *broker, int64_t expiry, int64_t since,
		      struct pending **out)
{
	struct pending *v = NULL;
	size_t n = 0, cap = 0, it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->sessions, &it)) != NULL) {
		struct msession *s = sl->val;
		if (s->lease != 0 || strcmp(s->broker, broker) != 0 || sl->len >= sizeof(v->tc) ||
		    (expiry >= 0 && (s->expiry_s != expiry || s->mod_rev >= since)))
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
		n++;
	}
	*out = v;
	return n;
}

void m_broker_down(struct ctl *rt, struct mctl *m, const char *broker)
{
	int64_t t0 = ctl_now(rt);
	struct ctl_node *nd = ctl_nodes_find(ctl_nodes_state(rt), M_KIND, broker);
	int64_t epoch = nd != NULL ? nd->epoch : 0;
	struct pending *v = NULL;
	size_t n = orphans(m, broker, -1, 0, &v);
	/* One expiring record per distinct expiry_s starts all their expiries;
	 * sessions with expiry_s 0 end now. */
	struct leases l = {.n = 0};
	int64_t done[64];
	size_t n_done = 0, n_now = 0;
	struct pending *now = malloc((n ? n : 1) * sizeof(*now));
	for (size_t i = 0; i < n && now != NULL; i++) {
		struct msession *s = strmap_get(&m->sessions, v[i].tc, strlen(v[i].tc));
		if (s == NULL)
			continue;
		if (s->expiry_s <= 0) {
			now[n_now++] = v[i];
			continue;
		}
		bool seen = false;
		for (size_t k = 0; k < n_done && !seen; k++)
			seen = done[k] == s->expiry_s;
		if (seen || n_done == 64)
			continue;
		done[n_done++] = s->expiry_s;
		char key[320], val[320];
		size_t kl = ctl_key(key, sizeof(key), M_EXPIRING "%s/%lld/%lld", broker, (long long)epoch,
				    (long long)s->expiry_s);
		size_t vl = ctl_key(val, sizeof(val), "{\"broker\":\"%s\",\"epoch\":%lld,\"expiry_s\":%lld}",
				    broker, (long long)epoch, (long long)s->expiry_s);
		int64_t lease = lease_for(rt, &l, s->expiry_s);
		if (kl == 0 || vl == 0 || lease == 0)
			continue;
		struct ctl_txn t;
		ctl_txn_init(&t);
		ctl_txn_cmp_mod(&t, key, kl, 0);
		ctl_txn_put(&t, key, kl, val, vl, lease);
		bool ok = false;
		int64_t rev = 0;
		ctl_txn_commit(rt, &t, &ok, &rev);
		ctl_txn_free(&t);
		if (ok)
			strmap_put(&m->expiring, key + strlen(M_EXPIRING), kl - strlen(M_EXPIRING),
				   (void *)(intptr_t)rev, NULL);
	}
	if (now != NULL)
		reap(rt, m, now, n_now, INT64_MAX);
	free(now);
	start_wills(rt, m, v, n, &l);
	free(v);
	if (n > 0)
		core_log("info",
			 "controllers: mqtt: broker %s gone: %zu sessions started expiry (%zu records) "
			 "in %lld ms",
			 broker, n, n_done, (long long)(ctl_now(rt) - t0));
}

void m_expiring_gone(struct ctl *rt, struct mctl *m, const char *bee, int64_t since)
{
	char p[3][CTL_PART_MAX];
	if (ctl_key_split(bee, strlen(bee), 0, p, 3) != 3)
		return;
	struct pending *v = NULL;
	size_t n = orphans(m, p[0], strtoll(p[2], NULL, 10), since, &v);
	reap(rt, m, v, n, since);
	free(v);
	if (n > 0)
		core_log("info", "controllers: mqtt: %zu sessions of broker %s expired", n, p[0]);
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
