/*
 * controllers/journal_actions.c — the journal controller's Txns: batched
 * segment changes, shard creation and placement, requests (roll, state
 * edges, ISR compare-and-swap) and garbage collection. Each is one Txn
 * guarded by the mod_revisions it read (docs/controllers.md, "Journal").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controllers/journal_internal.h"

static size_t node_key(char *buf, size_t cap, const char *id)
{
	return ctl_key(buf, cap, CTL_PREFIX "nodes/" J_KIND "/%s", id);
}

static bool put_seg(struct ctl_txn *t, const char *key, size_t klen, const struct jseg *s)
{
	char *val = jseg_dump(s);
	if (val == NULL)
		return false;
	ctl_txn_put(t, key, klen, val, strlen(val), 0);
	free(val);
	return true;
}

/* Re-read one segment and apply redo to it until its guard holds. */
static void retry_one(struct ctl *rt, struct jctl *j, const struct jchange *c, j_redo_fn redo,
		      void *arg)
{
	for (int attempt = 0; attempt < 3 && ctl_leading(rt); attempt++) {
		struct core_reply *reply;
		const Etcdserverpb__RangeResponse *resp;
		if (ctl_range(rt, c->key, c->klen, NULL, 0, 0, &reply, &resp) != CORE_OK)
			return;
		if (resp->n_kvs == 0) {
			core_reply_free(reply);
			j_seg_del(rt, j, c->key, c->klen);
			return;
		}
		struct jseg s;
		int64_t mod = resp->kvs[0]->mod_revision;
		int bad = jseg_parse((const char *)resp->kvs[0]->value.data, resp->kvs[0]->value.len, &s);
		core_reply_free(reply);
		if (bad)
			return;
		j_seg_set(rt, j, c->key, c->klen, &s, mod);
		if (!redo(rt, c->key, c->klen, &s, arg))
			return;
		struct ctl_txn t;
		ctl_txn_init(&t);
		ctl_txn_cmp_mod(&t, c->key, c->klen, mod);
		bool ok = false;
		int64_t rev = 0;
		if (put_seg(&t, c->key, c->klen, &s) && ctl_txn_commit(rt, &t, &ok, &rev) == CORE_OK &&
		    ok)
			j_seg_set(rt, j, c->key, c->klen, &s, rev);
		ctl_txn_free(&t);
		if (ok)
			return;
	}
}

void j_commit(struct ctl *rt, struct jctl *j, struct jchange *v, size_t n, j_redo_fn redo,
	      void *arg)
{
	size_t nt = (n + J_BATCH - 1) / J_BATCH;
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
		for (size_t i = b * J_BATCH; i < n && i < (b + 1) * J_BATCH; i++) {
			ctl_txn_cmp_mod(&t[b], v[i].key, v[i].klen, v[i].expect);
			if (!put_seg(&t[b], v[i].key, v[i].klen, &v[i].s))
				t[b].oom = true;
		}
	}
	ctl_txn_many(rt, t, nt, ok, rev);
	for (size_t i = 0; i < n; i++) {
		size_t b = i / J_BATCH;
		if (ok[b])
			j_seg_set(rt, j, v[i].key, v[i].klen, &v[i].s, rev[b]);
		else /* someone changed one of them: each on its own, from its fresh value */
			retry_one(rt, j, &v[i], redo, arg);
	}
	for (size_t b = 0; b < nt; b++)
		ctl_txn_free(&t[b]);
	free(t);
	free(ok);
	free(rev);
}

size_t j_place(struct ctl *rt, int n, struct jseg *s)
{
	memset(s, 0, sizeof(*s));
	s->leader = s->preferred = -1;
	if (n <= 0 || n > JSEG_MAX_REPLICAS)
		return 0;
	void *nodes = ctl_nodes_state(rt);
	const char *skip[JSEG_MAX_REPLICAS];
	for (int i = 0; i < n; i++) {
		struct ctl_node *nd = ctl_nodes_pick(nodes, J_KIND, skip, s->n_rep, false);
		if (nd == NULL)
			return 0;
		snprintf(s->rep[s->n_rep], JSEG_ID_MAX, "%s", nd->id);
		s->epoch[s->n_rep] = nd->epoch;
		s->isr[s->n_isr++] = (uint8_t)s->n_rep;
		skip[s->n_rep] = s->rep[s->n_rep];
		s->n_rep++;
	}
	/* Leader: the least leader-loaded of them (ties: smallest id). */
	int best = -1;
	int64_t best_load = 0;
	for (size_t i = 0; i < s->n_rep; i++) {
		struct ctl_node *nd = ctl_nodes_find(nodes, J_KIND, s->rep[i]);
		int64_t l = nd != NULL ? nd->lead_load : 0;
		if (best < 0 || l < best_load || (l == best_load && strcmp(s->rep[i], s->rep[best]) < 0)) {
			best = (int)i;
			best_load = l;
		}
	}
	s->leader = s->preferred = best;
	s->state = JS_WRITE;
	return s->n_rep;
}

/* The node keys of s's replicas still at their recorded epochs. */
static void fence(struct ctl_txn *t, const struct jseg *s)
{
	for (size_t i = 0; i < s->n_rep; i++) {
		char nk[256];
		size_t nl = node_key(nk, sizeof(nk), s->rep[i]);
		if (nl != 0)
			ctl_txn_cmp_create(t, nk, nl, s->epoch[i]);
	}
}

static char *shard_value(const char *status, int replicas, int64_t active, const char *reason)
{
	json_t *v = reason != NULL
			    ? json_pack("{s:s,s:i,s:s}", "status", status, "replicas", replicas,
					"reason", reason)
			    : json_pack("{s:s,s:i,s:I}", "status", status, "replicas", replicas,
					"active_segment", (json_int_t)active);
	char *out = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(v);
	return out;
}

void j_create(struct ctl *rt, struct jctl *j, const char *ns, const char *shard, int replicas)
{
	char sk[256], gk[256];
	size_t sl = ctl_key(sk, sizeof(sk), J_SHARDS "%s/%s", ns, shard);
	size_t gl = ctl_key(gk, sizeof(gk), J_SEGS "%s/%s/%010d", ns, shard, 0);
	if (sl == 0 || gl == 0)
		return;
	struct jshard *sh = strmap_get(&j->shards, sk, sl);
	if (sh != NULL && sh->active)
		return;
	struct jseg s;
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, sk, sl, sh != NULL ? sh->mod_rev : 0);
	struct jshard nsh = {.replicas = replicas};
	char *val;
	bool placed = replicas >= 1 && j_place(rt, replicas, &s) == (size_t)replicas;
	if (placed) {
		ctl_txn_cmp_mod(&t, gk, gl, 0);
		fence(&t, &s);
		put_seg(&t, gk, gl, &s);
		val = shard_value("active", replicas, 0, NULL);
		nsh.active = true;
	} else {
		snprintf(nsh.reason, sizeof(nsh.reason), "%zu of %d storage nodes alive",
			 ctl_nodes_alive(ctl_nodes_state(rt), J_KIND), replicas);
		if (replicas < 1 || replicas > JSEG_MAX_REPLICAS)
			snprintf(nsh.reason, sizeof(nsh.reason), "replicas must be 1 to %d",
				 JSEG_MAX_REPLICAS);
		if (sh != NULL && strcmp(sh->reason, nsh.reason) == 0) {
			ctl_txn_free(&t);
			return; /* already refused for this reason */
		}
		val = shard_value("refused", replicas, 0, nsh.reason);
	}
	if (val != NULL)
		ctl_txn_put(&t, sk, sl, val, strlen(val), 0);
	bool ok = false;
	int64_t rev = 0;
	if (val != NULL && ctl_txn_commit(rt, &t, &ok, &rev) == CORE_OK && ok) {
		nsh.mod_rev = rev;
		j_shard_set(j, sk, sl, &nsh);
		if (placed)
			j_seg_set(rt, j, gk, gl, &s, rev);
		core_log("info", "controllers: journal: shard %s/%s %s", ns, shard,
			 placed ? "created" : nsh.reason);
	}
	free(val);
	ctl_txn_free(&t);
}

/* Rewrite a request key with status refused and a reason. */
static void refuse(struct ctl *rt, const struct ctl_kv *kv, json_t *req, const char *reason)
{
	json_object_set_new(req, "status", json_string("refused"));
	json_object_set_new(req, "reason", json_string(reason));
	char *val = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
	if (val == NULL)
		return;
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, kv->key, kv->key_len, kv->mod_rev);
	ctl_txn_put(&t, kv->key, kv->key_len, val, strlen(val), 0);
	bool ok;
	ctl_txn_commit(rt, &t, &ok, NULL);
	ctl_txn_free(&t);
	free(val);
	core_log("info", "controllers: journal: refused %.*s: %s", (int)kv->key_len, kv->key, reason);
}

static void roll(struct ctl *rt, struct jctl *j, const struct ctl_kv *kv, json_t *req)
{
	char p[2][CTL_PART_MAX], sk[256], ok_key[256], nk[256];
	if (ctl_key_split(kv->key, kv->key_len, strlen(J_REQ "roll/"), p, 2) != 2)
		return;
	size_t sl = ctl_key(sk, sizeof(sk), J_SHARDS "%s/%s", p[0], p[1]);
	struct jshard *sh = sl != 0 ? strmap_get(&j->shards, sk, sl) : NULL;
	if (sh == NULL || !sh->active) {
		refuse(rt, kv, req, "no such active shard");
		return;
	}
	json_t *segv = json_object_get(req, "segment");
	if (segv != NULL && (!json_is_integer(segv) || json_integer_value(segv) != sh->active_seg)) {
		refuse(rt, kv, req, "not the active segment");
		return;
	}
	int64_t n = sh->active_seg;
	size_t ol = ctl_key(ok_key, sizeof(ok_key), J_SEGS "%s/%s/%010lld", p[0], p[1], (long long)n);
	size_t nl = ctl_key(nk, sizeof(nk), J_SEGS "%s/%s/%010lld", p[0], p[1], (long long)n + 1);
	struct jentry *old = ol != 0 ? strmap_get(&j->segs, ok_key, ol) : NULL;
	if (old == NULL || nl == 0 || old->s.state != JS_WRITE) {
		refuse(rt, kv, req, "the active segment is not in Write");
		return;
	}
	struct jseg next, sealed = old->s;
	if (j_place(rt, (int)old->s.n_rep, &next) != old->s.n_rep) {
		refuse(rt, kv, req, "too few storage nodes alive");
		return;
	}
	sealed.state = JS_PRESEALUP;
	char *shv = shard_value("active", sh->replicas, n + 1, NULL);
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, sk, sl, sh->mod_rev);
	ctl_txn_cmp_mod(&t, ok_key, ol, old->mod_rev);
	ctl_txn_cmp_mod(&t, nk, nl, 0);
	ctl_txn_cmp_mod(&t, kv->key, kv->key_len, kv->mod_rev);
	fence(&t, &next);
	put_seg(&t, nk, nl, &next);
	put_seg(&t, ok_key, ol, &sealed);
	if (shv != NULL)
		ctl_txn_put(&t, sk, sl, shv, strlen(shv), 0);
	ctl_txn_del(&t, kv->key, kv->key_len);
	bool ok = false;
	int64_t rev = 0;
	if (shv != NULL && ctl_txn_commit(rt, &t, &ok, &rev) == CORE_OK && ok) {
		struct jshard nsh = *sh;
		nsh.active_seg = n + 1;
		nsh.mod_rev = rev;
		j_shard_set(j, sk, sl, &nsh);
		j_seg_set(rt, j, ok_key, ol, &sealed, rev);
		j_seg_set(rt, j, nk, nl, &next, rev);
		core_log("info", "controllers: journal: %s/%s rolled to segment %lld", p[0], p[1],
			 (long long)n + 1);
	}
	free(shv);
	ctl_txn_free(&t);
}

static void state_change(struct ctl *rt, struct jctl *j, const struct ctl_kv *kv, json_t *req)
{
	char p[3][CTL_PART_MAX], gk[256];
	if (ctl_key_split(kv->key, kv->key_len, strlen(J_REQ "state/"), p, 3) != 3)
		return;
	size_t gl = ctl_key(gk, sizeof(gk), J_SEGS "%s/%s/%s", p[0], p[1], p[2]);
	struct jentry *e = gl != 0 ? strmap_get(&j->segs, gk, gl) : NULL;
	const char *to = json_string_value(json_object_get(req, "to"));
	if (e == NULL || to == NULL) {
		refuse(rt, kv, req, e == NULL ? "no such segment" : "no target state");
		return;
	}
	enum jstate ts = jstate_parse(to);
	if (!jstate_edge_ok(e->s.state, ts)) {
		char why[96];
		snprintf(why, sizeof(why), "invalid transition %s -> %s", jstate_name(e->s.state), to);
		refuse(rt, kv, req, why);
		return;
	}
	struct jseg s = e->s;
	s.state = ts;
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, gk, gl, e->mod_rev);
	ctl_txn_cmp_mod(&t, kv->key, kv->key_len, kv->mod_rev);
	put_seg(&t, gk, gl, &s);
	ctl_txn_del(&t, kv->key, kv->key_len);
	bool ok = false;
	int64_t rev = 0;
	if (ctl_txn_commit(rt, &t, &ok, &rev) == CORE_OK && ok) {
		j_seg_set(rt, j, gk, gl, &s, rev);
		if (ts == JS_DELETING)
			j_gc(rt, j, gk, gl);
	}
	ctl_txn_free(&t);
}

static void isr_change(struct ctl *rt, struct jctl *j, const struct ctl_kv *kv, json_t *req)
{
	char p[3][CTL_PART_MAX], gk[256], nk[256];
	if (ctl_key_split(kv->key, kv->key_len, strlen(J_REQ "isr/"), p, 3) != 3)
		return;
	size_t gl = ctl_key(gk, sizeof(gk), J_SEGS "%s/%s/%s", p[0], p[1], p[2]);
	struct jentry *e = gl != 0 ? strmap_get(&j->segs, gk, gl) : NULL;
	const char *leader = NULL;
	json_int_t epoch = 0, seg_rev = 0;
	json_t *isr = NULL;
	if (e == NULL || json_unpack(req, "{s:s,s:I,s:o,s:I}", "leader", &leader, "epoch", &epoch,
				     "isr", &isr, "segment_rev", &seg_rev) != 0 ||
	    !json_is_array(isr) || json_array_size(isr) > JSEG_MAX_REPLICAS) {
		refuse(rt, kv, req, e == NULL ? "no such segment" : "malformed request");
		return;
	}
	const char *ids[JSEG_MAX_REPLICAS];
	size_t n = json_array_size(isr);
	for (size_t i = 0; i < n; i++)
		ids[i] = json_string_value(json_array_get(isr, i));
	for (size_t i = 0; i < n; i++)
		if (ids[i] == NULL) {
			refuse(rt, kv, req, "malformed request");
			return;
		}
	struct jseg s = e->s;
	uint8_t idx[JSEG_MAX_REPLICAS];
	if (s.leader < 0 || strcmp(s.rep[s.leader], leader) != 0 ||
	    !jseg_isr_ok(&s, leader, ids, n, idx)) {
		refuse(rt, kv, req, "not the leader, or not a subset of the replicas with the leader");
		return;
	}
	/* A replica (re)joining the ISR joins as the incarnation alive now. */
	for (size_t i = 0; i < n; i++) {
		struct ctl_node *nd = ctl_nodes_find(ctl_nodes_state(rt), J_KIND, s.rep[idx[i]]);
		if (!jseg_in_isr(&e->s, idx[i]) && nd != NULL && nd->alive)
			s.epoch[idx[i]] = nd->epoch;
	}
	memcpy(s.isr, idx, n);
	s.n_isr = n;
	size_t nl = node_key(nk, sizeof(nk), leader);
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, gk, gl, seg_rev);
	ctl_txn_cmp_create(&t, nk, nl, epoch);
	ctl_txn_cmp_mod(&t, kv->key, kv->key_len, kv->mod_rev);
	put_seg(&t, gk, gl, &s);
	ctl_txn_del(&t, kv->key, kv->key_len);
	bool ok = false;
	int64_t rev = 0;
	int err = ctl_txn_commit(rt, &t, &ok, &rev);
	ctl_txn_free(&t);
	if (err == CORE_OK && ok)
		j_seg_set(rt, j, gk, gl, &s, rev);
	else if (err == CORE_OK)
		refuse(rt, kv, req, "stale segment_rev or epoch");
}

void j_request(struct ctl *rt, struct jctl *j, const struct ctl_kv *kv)
{
	const char *rest = kv->key + strlen(J_REQ);
	size_t rl = kv->key_len - strlen(J_REQ);
	json_t *req = json_loadb(kv->value, kv->value_len, 0, NULL);
	if (req == NULL)
		req = json_object(); /* a malformed request is refused like a wrong one */
	if (req == NULL || !json_is_object(req) || json_object_get(req, "status") != NULL) {
		json_decref(req); /* already answered */
		return;
	}
	if (rl > 7 && memcmp(rest, "create/", 7) == 0) {
		char p[2][CTL_PART_MAX];
		json_t *r = json_object_get(req, "replicas");
		int replicas = json_is_integer(r) ? (int)json_integer_value(r) : 3;
		if (ctl_key_split(kv->key, kv->key_len, strlen(J_REQ "create/"), p, 2) == 2)
			j_create(rt, j, p[0], p[1], replicas);
	} else if (rl > 5 && memcmp(rest, "roll/", 5) == 0) {
		roll(rt, j, kv, req);
	} else if (rl > 6 && memcmp(rest, "state/", 6) == 0) {
		state_change(rt, j, kv, req);
	} else if (rl > 4 && memcmp(rest, "isr/", 4) == 0) {
		isr_change(rt, j, kv, req);
	}
	json_decref(req);
}

void j_gc(struct ctl *rt, struct jctl *j, const char *seg_key, size_t klen)
{
	struct jentry *e = strmap_get(&j->segs, seg_key, klen);
	char p[3][CTL_PART_MAX], pfx[256], end[256];
	if (e == NULL || e->s.state != JS_DELETING ||
	    ctl_key_split(seg_key, klen, strlen(J_SEGS), p, 3) != 3)
		return;
	size_t pl = ctl_key(pfx, sizeof(pfx), J_DELETED "%s/%s/%s/", p[0], p[1], p[2]);
	if (pl == 0)
		return;
	size_t el = ctl_prefix_end(pfx, pl, end);
	struct core_reply *reply;
	const Etcdserverpb__RangeResponse *resp;
	if (ctl_range(rt, pfx, pl, end, el, 0, &reply, &resp) != CORE_OK)
		return;
	bool acked[JSEG_MAX_REPLICAS] = {false};
	for (size_t i = 0; i < resp->n_kvs; i++) {
		const Mvccpb__KeyValue *kv = resp->kvs[i];
		for (size_t r = 0; r < e->s.n_rep; r++)
			if (kv->key.len == pl + strlen(e->s.rep[r]) &&
			    memcmp(kv->key.data + pl, e->s.rep[r], kv->key.len - pl) == 0)
				acked[r] = true;
	}
	bool all = true;
	for (size_t r = 0; r < e->s.n_rep; r++)
		all = all && acked[r];
	if (all) {
		struct ctl_txn t;
		ctl_txn_init(&t);
		ctl_txn_cmp_mod(&t, seg_key, klen, e->mod_rev);
		ctl_txn_del(&t, seg_key, klen);
		for (size_t i = 0; i < resp->n_kvs; i++)
			ctl_txn_del(&t, (const char *)resp->kvs[i]->key.data, resp->kvs[i]->key.len);
		bool ok = false;
		if (ctl_txn_commit(rt, &t, &ok, NULL) == CORE_OK && ok) {
			core_log("info", "controllers: journal: %.*s collected", (int)klen, seg_key);
			j_seg_del(rt, j, seg_key, klen);
		}
		ctl_txn_free(&t);
	}
	core_reply_free(reply);
}
