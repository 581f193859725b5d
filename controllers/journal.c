/*
 * controllers/journal.c — the journal controller: storage shards and their
 * segments (docs/controllers.md, "Journal"). This file keeps the mirror of
 * segments and shards, and reacts to storage nodes coming, going and being
 * decommissioned, and to the rebalance timer; journal_actions.c holds the
 * Txns for requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controllers/journal_internal.h"

static bool starts(const struct ctl_kv *kv, const char *p)
{
	size_t n = strlen(p);
	return kv->key_len >= n && memcmp(kv->key, p, n) == 0;
}

bool j_alive(void *arg, const char *id, int64_t epoch)
{
	struct ctl *rt = arg;
	struct ctl_node *n = ctl_nodes_find(ctl_nodes_state(rt), J_KIND, id);
	return n != NULL && n->alive && (epoch == 0 || n->epoch == epoch);
}

/* Add (sign 1) or remove (-1) a segment's weight on its nodes' loads. */
static void account(struct ctl *rt, const struct jseg *s, int sign)
{
	if (!ctl_synced(rt))
		return; /* counted once the listing is complete */
	void *nodes = ctl_nodes_state(rt);
	for (size_t i = 0; i < s->n_rep; i++) {
		struct ctl_node *n = ctl_nodes_find(nodes, J_KIND, s->rep[i]);
		if (n == NULL)
			continue;
		n->load += sign;
		if ((int)i == s->leader)
			n->lead_load += sign;
	}
}

void j_seg_set(struct ctl *rt, struct jctl *j, const char *key, size_t klen, const struct jseg *s,
	       int64_t mod_rev)
{
	struct jentry *e = strmap_get(&j->segs, key, klen);
	if (e == NULL) {
		e = malloc(sizeof(*e));
		if (e == NULL || !strmap_put(&j->segs, key, klen, e, NULL)) {
			free(e);
			return;
		}
	} else {
		account(rt, &e->s, -1);
	}
	e->s = *s;
	e->mod_rev = mod_rev;
	account(rt, &e->s, 1);
}

void j_seg_del(struct ctl *rt, struct jctl *j, const char *key, size_t klen)
{
	struct jentry *e = strmap_del(&j->segs, key, klen);
	if (e != NULL)
		account(rt, &e->s, -1);
	free(e);
}

void j_shard_set(struct jctl *j, const char *key, size_t klen, const struct jshard *sh)
{
	struct jshard *e = strmap_get(&j->shards, key, klen);
	if (e == NULL) {
		e = malloc(sizeof(*e));
		if (e == NULL || !strmap_put(&j->shards, key, klen, e, NULL)) {
			free(e);
			return;
		}
	}
	*e = *sh;
}

static void on_segment(struct ctl *rt, struct jctl *j, const struct ctl_event *ev)
{
	if (ev->type == CTL_DELETE) {
		j_seg_del(rt, j, ev->kv.key, ev->kv.key_len);
		return;
	}
	struct jentry *e = strmap_get(&j->segs, ev->kv.key, ev->kv.key_len);
	if (e != NULL && e->mod_rev >= ev->kv.mod_rev)
		return; /* our own write, already in the mirror */
	struct jseg s;
	if (jseg_parse(ev->kv.value, ev->kv.value_len, &s) != 0) {
		core_log("warn", "controllers: journal: ignoring malformed %.*s", (int)ev->kv.key_len,
			 ev->kv.key);
		return;
	}
	j_seg_set(rt, j, ev->kv.key, ev->kv.key_len, &s, ev->kv.mod_rev);
	if (s.state == JS_DELETING && ctl_synced(rt))
		j_gc(rt, j, ev->kv.key, ev->kv.key_len);
}

static void on_shard(struct jctl *j, const struct ctl_event *ev)
{
	if (ev->type == CTL_DELETE) {
		free(strmap_del(&j->shards, ev->kv.key, ev->kv.key_len));
		return;
	}
	struct jshard *old = strmap_get(&j->shards, ev->kv.key, ev->kv.key_len);
	if (old != NULL && old->mod_rev >= ev->kv.mod_rev)
		return;
	struct jshard sh = {.mod_rev = ev->kv.mod_rev};
	json_t *v = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
	const char *status = "", *reason = "";
	json_int_t active = 0, replicas = 0;
	if (v != NULL && json_unpack(v, "{s:s,s?I,s?I,s?s}", "status", &status, "active_segment",
				     &active, "replicas", &replicas, "reason", &reason) == 0) {
		sh.active = strcmp(status, "active") == 0;
		sh.active_seg = active;
		sh.replicas = (int)replicas;
		snprintf(sh.reason, sizeof(sh.reason), "%s", reason);
	}
	json_decref(v);
	j_shard_set(j, ev->kv.key, ev->kv.key_len, &sh);
}

static void journal_event(struct ctl *rt, void *state, const struct ctl_event *ev)
{
	struct jctl *j = state;
	if (starts(&ev->kv, J_SEGS))
		on_segment(rt, j, ev);
	else if (starts(&ev->kv, J_SHARDS))
		on_shard(j, ev);
	else if (ctl_synced(rt) && ev->type == CTL_PUT && starts(&ev->kv, J_REQ))
		j_request(rt, j, &ev->kv);
	else if (ctl_synced(rt) && ev->type == CTL_PUT && starts(&ev->kv, J_DELETED)) {
		char p[4][CTL_PART_MAX], key[256];
		if (ctl_key_split(ev->kv.key, ev->kv.key_len, strlen(J_DELETED), p, 4) != 4)
			return;
		size_t kl = ctl_key(key, sizeof(key), J_SEGS "%s/%s/%s", p[0], p[1], p[2]);
		if (kl != 0)
			j_gc(rt, j, key, kl);
	}
}

/* ---- storage nodes going and coming ---- */

static bool redo_fail(struct ctl *rt, const char *key, size_t klen, struct jseg *s, void *arg)
{
	(void)key;
	(void)klen;
	return jseg_fail_node(s, arg, j_alive, rt);
}

/* Append a segment's change to v (grown as needed); a key too long for a
 * change is skipped. false: out of memory (the caller commits what it has). */
static bool jchange_add(struct jchange **v, size_t *n, size_t *cap, const struct strmap_slot *sl,
			int64_t expect, const struct jseg *s)
{
	if (sl->len >= sizeof((*v)->key))
		return true;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct jchange *nv = realloc(*v, nc * sizeof(*nv));
		if (nv == NULL)
			return false;
		*v = nv;
		*cap = nc;
	}
	struct jchange *c = &(*v)[(*n)++];
	memcpy(c->key, sl->key, sl->len);
	c->klen = sl->len;
	c->expect = expect;
	c->s = *s;
	return true;
}

/* Every segment id is in: out of the ISR, its leadership handed on. Also
 * used at start for replicas whose node is gone (level-triggered). */
static void fail_node(struct ctl *rt, struct jctl *j, const char *id)
{
	struct jchange *v = NULL;
	size_t n = 0, cap = 0, it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&j->segs, &it)) != NULL) {
		struct jentry *e = sl->val;
		struct jseg s = e->s;
		if (!jseg_fail_node(&s, id, j_alive, rt))
			continue;
		if (!jchange_add(&v, &n, &cap, sl, e->mod_rev, &s))
			break;
	}
	if (n > 0)
		core_log("info", "controllers: journal: storage node %s gone: %zu segments changed", id,
			 n);
	j_commit(rt, j, v, n, redo_fail, (void *)id);
	free(v);
}

/* Log end offsets of s's replicas, from their offsets/ keys (-1: none). */
static void read_leo(struct ctl *rt, const char *seg_key, size_t klen, const struct jseg *s,
		     int64_t *leo)
{
	for (size_t i = 0; i < s->n_rep; i++)
		leo[i] = -1;
	char p[3][CTL_PART_MAX], pfx[256], end[256];
	if (ctl_key_split(seg_key, klen, strlen(J_SEGS), p, 3) != 3)
		return;
	size_t pl = ctl_key(pfx, sizeof(pfx), J_OFFSETS "%s/%s/%s/", p[0], p[1], p[2]);
	if (pl == 0)
		return;
	size_t el = ctl_prefix_end(pfx, pl, end);
	struct core_reply *reply;
	const Etcdserverpb__RangeResponse *resp;
	if (ctl_range(rt, pfx, pl, end, el, 0, &reply, &resp) != CORE_OK)
		return;
	for (size_t i = 0; i < resp->n_kvs; i++) {
		const Mvccpb__KeyValue *kv = resp->kvs[i];
		char id[JSEG_ID_MAX];
		size_t idl = kv->key.len - pl;
		if (idl == 0 || idl >= sizeof(id))
			continue;
		memcpy(id, kv->key.data + pl, idl);
		id[idl] = 0;
		int k = jseg_find(s, id);
		json_t *v = json_loadb((const char *)kv->value.data, kv->value.len, 0, NULL);
		json_int_t off = -1;
		if (k >= 0 && v != NULL && json_unpack(v, "{s:I}", "leo", &off) == 0)
			leo[k] = off;
		json_decref(v);
	}
	core_reply_free(reply);
}

static bool redo_recover(struct ctl *rt, const char *key, size_t klen, struct jseg *s, void *arg)
{
	(void)arg;
	int64_t leo[JSEG_MAX_REPLICAS];
	read_leo(rt, key, klen, s, leo);
	if (!jseg_recover(s, leo, j_alive, rt))
		return false;
	struct ctl_node *n = ctl_nodes_find(ctl_nodes_state(rt), J_KIND, s->rep[s->leader]);
	if (n != NULL)
		s->epoch[s->leader] = n->epoch; /* the incarnation that now leads */
	return true;
}

/* Unavailable segments with a live replica again: recover them. */
static void recover_all(struct ctl *rt, struct jctl *j)
{
	struct jchange *v = NULL;
	size_t n = 0, cap = 0, it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&j->segs, &it)) != NULL) {
		struct jentry *e = sl->val;
		if (e->s.state != JS_UNAVAILABLE || sl->len >= sizeof(v->key))
			continue;
		struct jseg s = e->s;
		if (!redo_recover(rt, sl->key, sl->len, &s, NULL))
			continue;
		if (!jchange_add(&v, &n, &cap, sl, e->mod_rev, &s))
			break;
	}
	if (n > 0)
		core_log("info", "controllers: journal: %zu unavailable segments recovered", n);
	j_commit(rt, j, v, n, redo_recover, NULL);
	free(v);
}

/* Refused shards: try again now that a node came. */
static void retry_refused(struct ctl *rt, struct jctl *j)
{
	size_t it = 0;
	struct strmap_slot *sl;
	char again[64][2][CTL_PART_MAX];
	int rep[64];
	size_t n = 0;
	while ((sl = strmap_next(&j->shards, &it)) != NULL && n < 64) {
		struct jshard *sh = sl->val;
		if (sh->active || ctl_key_split(sl->key, sl->len, strlen(J_SHARDS), again[n], 2) != 2)
			continue;
		rep[n++] = sh->replicas;
	}
	for (size_t i = 0; i < n; i++)
		j_create(rt, j, again[i][0], again[i][1], rep[i]);
}

struct decom_arg {
	const char *id;
};

/* Give id's replica slot to another live node (outside the ISR until the
 * leader adds it); hand its leadership on first. */
static bool redo_decommission(struct ctl *rt, const char *key, size_t klen, struct jseg *s,
			      void *arg)
{
	(void)key;
	(void)klen;
	const char *id = ((struct decom_arg *)arg)->id;
	int k = jseg_find(s, id);
	if (k < 0 || s->state == JS_DELETING)
		return false;
	jseg_fail_node(s, id, j_alive, rt);
	const char *skip[JSEG_MAX_REPLICAS];
	for (size_t i = 0; i < s->n_rep; i++)
		skip[i] = s->rep[i];
	struct ctl_node *n = ctl_nodes_pick(ctl_nodes_state(rt), J_KIND, skip, s->n_rep, false);
	if (n == NULL)
		return true; /* nowhere to go: it only left the ISR */
	snprintf(s->rep[k], sizeof(s->rep[k]), "%s", n->id);
	s->epoch[k] = n->epoch;
	if (s->preferred == k)
		s->preferred = s->leader;
	n->load++; /* so the next segment's pick sees it (recounted on commit) */
	return true;
}

static void decommission(struct ctl *rt, struct jctl *j, const char *id)
{
	size_t it = 0;
	struct strmap_slot *sl;
	struct decom_arg a = {id};
	struct jchange *v = NULL;
	size_t n = 0, cap = 0;
	while ((sl = strmap_next(&j->segs, &it)) != NULL) {
		struct jentry *e = sl->val;
		struct jseg s = e->s;
		if (!redo_decommission(rt, sl->key, sl->len, &s, &a) || sl->len >= sizeof(v->key))
			continue;
		if (!jchange_add(&v, &n, &cap, sl, e->mod_rev, &s))
			break;
	}
	j_commit(rt, j, v, n, redo_decommission, &a);
	free(v);
}

static void journal_node(struct ctl *rt, void *state, const struct ctl_node *n,
			 enum ctl_node_change ch)
{
	struct jctl *j = state;
	if (strcmp(n->kind, J_KIND) != 0)
		return;
	char id[sizeof(n->id)];
	memcpy(id, n->id, sizeof(id)); /* the registry may move while we act */
	if (ch == CTL_NODE_DOWN)
		fail_node(rt, j, id);
	else if (ch == CTL_NODE_DECOMMISSION)
		decommission(rt, j, id);
	else {
		recover_all(rt, j);
		retry_refused(rt, j);
	}
}

static void journal_synced(struct ctl *rt, void *state)
{
	struct jctl *j = state;
	size_t it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&j->segs, &it)) != NULL)
		account(rt, &((struct jentry *)sl->val)->s, 1);
	/* Replicas whose node went while no controller was running. */
	char gone[256][JSEG_ID_MAX];
	size_t n_gone = 0;
	it = 0;
	while ((sl = strmap_next(&j->segs, &it)) != NULL) {
		const struct jseg *s = &((struct jentry *)sl->val)->s;
		for (size_t i = 0; i < s->n_isr && n_gone < 256; i++) {
			const char *id = s->rep[s->isr[i]];
			bool seen = false;
			for (size_t k = 0; k < n_gone && !seen; k++)
				seen = strcmp(gone[k], id) == 0;
			if (!seen && !j_alive(rt, id, s->epoch[s->isr[i]]))
				strcpy(gone[n_gone++], id);
		}
	}
	for (size_t k = 0; k < n_gone; k++)
		fail_node(rt, j, gone[k]);
	recover_all(rt, j);
	/* Requests made while no controller ran (or not yet acted on). */
	char end[sizeof(J_REQ)];
	size_t el = ctl_prefix_end(J_REQ, strlen(J_REQ), end);
	struct core_reply *reply;
	const Etcdserverpb__RangeResponse *resp;
	if (ctl_range(rt, J_REQ, strlen(J_REQ), end, el, 0, &reply, &resp) == CORE_OK) {
		for (size_t i = 0; i < resp->n_kvs; i++) {
			const Mvccpb__KeyValue *kv = resp->kvs[i];
			struct ctl_kv k = {(const char *)kv->key.data, kv->key.len,
					   (const char *)kv->value.data, kv->value.len,
					   kv->create_revision, kv->mod_revision, kv->version, kv->lease};
			j_request(rt, j, &k);
		}
		core_reply_free(reply);
	}
	/* Segments being deleted whose replicas all acknowledged meanwhile. */
	char (*del)[256] = NULL;
	size_t n_del = 0;
	it = 0;
	while ((sl = strmap_next(&j->segs, &it)) != NULL) {
		if (((struct jentry *)sl->val)->s.state != JS_DELETING || sl->len >= 256)
			continue;
		char(*nd)[256] = realloc(del, (n_del + 1) * sizeof(*del));
		if (nd == NULL)
			break;
		del = nd;
		memcpy(del[n_del], sl->key, sl->len);
		del[n_del++][sl->len] = 0;
	}
	for (size_t i = 0; i < n_del; i++)
		j_gc(rt, j, del[i], strlen(del[i]));
	free(del);
}

static bool redo_prefer(struct ctl *rt, const char *key, size_t klen, struct jseg *s, void *arg)
{
	(void)key;
	(void)klen;
	(void)arg;
	return jseg_prefer(s, j_alive, rt);
}

/* Preferred-leader rebalance, rate-limited on the injected clock. */
static void journal_tick(struct ctl *rt, void *state, int64_t now)
{
	struct jctl *j = state;
	if (now < j->next_rebalance)
		return;
	j->next_rebalance = now + J_REBALANCE_MS;
	struct jchange v[J_BATCH];
	size_t n = 0, it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&j->segs, &it)) != NULL && n < J_BATCH) {
		struct jentry *e = sl->val;
		struct jseg s = e->s;
		if (sl->len >= sizeof(v[0].key) || !jseg_prefer(&s, j_alive, rt))
			continue;
		if (!jbucket_take(&j->bucket, now, J_REBALANCE_PER_MIN))
			break;
		memcpy(v[n].key, sl->key, sl->len);
		v[n].klen = sl->len;
		v[n].expect = e->mod_rev;
		v[n].s = s;
		n++;
	}
	j_commit(rt, j, v, n, redo_prefer, NULL);
}

static int journal_start(struct ctl *rt, void **state)
{
	(void)rt;
	struct jctl *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -1;
	strmap_init(&j->segs);
	strmap_init(&j->shards);
	*state = j;
	return 0;
}

static void journal_stop(struct ctl *rt, void *state)
{
	(void)rt;
	struct jctl *j = state;
	size_t it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&j->segs, &it)) != NULL)
		free(sl->val);
	it = 0;
	while ((sl = strmap_next(&j->shards, &it)) != NULL)
		free(sl->val);
	strmap_free(&j->segs);
	strmap_free(&j->shards);
	free(j);
}

const struct ctl_ops ctl_journal_ops = {
	.name = "journal",
	.prefixes = {"journal/", NULL},
	.start = journal_start,
	.event = journal_event,
	.synced = journal_synced,
	.node = journal_node,
	.tick = journal_tick,
	.stop = journal_stop,
};
