/*
 * controllers/nodes.c — the heartbeat controller and the node registry.
 *
 * A node (broker, storage node, ...) registers /_meta/nodes/<kind>/<id>
 * bound to its own lease and keeps the lease alive; the key's
 * create_revision is the node's epoch. Failure detection is the lease:
 * when it expires core deletes the key and this controller sees the
 * DELETE. It keeps the registry the other controllers place work with, and
 * records each node's state in /_meta/status/nodes/<kind>/<id>
 * ({"state":"up"|"lost"|"decommissioned","epoch":E}), each write guarded by
 * the node key (its create_revision, or its absence) and the status key's
 * mod_revision, so a repeated action by a new leader does nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controllers/ctl_internal.h"
#include "core/core.h"

struct nstate {
	struct ctl_node *v;
	size_t n, cap;
	/* per node, parallel to v: its status record as last seen */
	struct nstatus {
		int64_t mod_rev;
		int64_t epoch;
		char state[16];
	} *st;
};

static const char *const NODES = CTL_PREFIX "nodes/";
static const char *const DECOM = CTL_PREFIX "decommission/";
static const char *const STATUS = CTL_PREFIX "status/nodes/";

static bool has_prefix(const struct ctl_kv *kv, const char *p)
{
	size_t n = strlen(p);
	return kv->key_len >= n && memcmp(kv->key, p, n) == 0;
}

static size_t find(struct nstate *s, const char *kind, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].kind, kind) == 0 && strcmp(s->v[i].id, id) == 0)
			return i;
	return s->n;
}

/* The entry for kind/id, made if missing; NULL when out of memory. */
static struct ctl_node *get(struct nstate *s, const char *kind, const char *id, size_t *idx)
{
	size_t i = find(s, kind, id);
	if (i == s->n) {
		if (strlen(kind) >= sizeof(s->v[0].kind) || strlen(id) >= sizeof(s->v[0].id))
			return NULL;
		if (s->n == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 16;
			struct ctl_node *v = realloc(s->v, nc * sizeof(*v));
			if (v == NULL)
				return NULL;
			s->v = v;
			struct nstatus *st = realloc(s->st, nc * sizeof(*st));
			if (st == NULL)
				return NULL;
			s->st = st;
			s->cap = nc;
		}
		memset(&s->v[i], 0, sizeof(s->v[i]));
		memset(&s->st[i], 0, sizeof(s->st[i]));
		strcpy(s->v[i].kind, kind);
		strcpy(s->v[i].id, id);
		s->n++;
	}
	*idx = i;
	return &s->v[i];
}

/* Record state for node i, guarded as the file comment says. */
static void write_status(struct ctl *rt, struct nstate *s, size_t i, const char *state)
{
	struct ctl_node *n = &s->v[i];
	struct nstatus *st = &s->st[i];
	if (strcmp(st->state, state) == 0 && st->epoch == n->epoch)
		return;
	char nkey[256], skey[256];
	size_t nlen = ctl_key(nkey, sizeof(nkey), "%s%s/%s", NODES, n->kind, n->id);
	size_t slen = ctl_key(skey, sizeof(skey), "%s%s/%s", STATUS, n->kind, n->id);
	json_t *v = json_pack("{s:s,s:I}", "state", state, "epoch", (json_int_t)n->epoch);
	char *val = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(v);
	if (nlen == 0 || slen == 0 || val == NULL) {
		free(val);
		return;
	}
	struct ctl_txn t;
	ctl_txn_init(&t);
	if (strcmp(state, "up") == 0)
		ctl_txn_cmp_create(&t, nkey, nlen, n->epoch);
	else
		ctl_txn_cmp_mod(&t, nkey, nlen, 0);
	ctl_txn_cmp_mod(&t, skey, slen, st->mod_rev);
	ctl_txn_put(&t, skey, slen, val, strlen(val), 0);
	bool ok;
	int64_t rev;
	int err = ctl_txn_commit(rt, &t, &ok, &rev);
	ctl_txn_free(&t);
	free(val);
	if (err == CORE_OK && ok) {
		st->mod_rev = rev;
		st->epoch = n->epoch;
		snprintf(st->state, sizeof(st->state), "%s", state);
		core_log("info", "controllers: node %s/%s %s (epoch %lld)", n->kind, n->id, state,
			 (long long)n->epoch);
	}
}

static const char *down_state(const struct ctl_node *n)
{
	return n->decommission ? "decommissioned" : "lost";
}

static void on_node(struct ctl *rt, struct nstate *s, const struct ctl_event *ev)
{
	char parts[2][CTL_PART_MAX];
	if (ctl_key_split(ev->kv.key, ev->kv.key_len, strlen(NODES), parts, 2) != 2)
		return;
	size_t i;
	struct ctl_node *n = get(s, parts[0], parts[1], &i);
	if (n == NULL)
		return;
	if (ev->type == CTL_PUT) {
		bool fresh = !n->alive || n->epoch != ev->kv.create_rev;
		n->alive = true;
		n->epoch = ev->kv.create_rev;
		n->lease = ev->kv.lease;
		if (fresh && ctl_synced(rt)) {
			write_status(rt, s, i, "up");
			ctl_notify_node(rt, &s->v[i], CTL_NODE_UP);
		}
		return;
	}
	if (!n->alive)
		return;
	n->alive = false;
	n->lost_ms = ctl_now(rt);
	write_status(rt, s, i, down_state(n));
	ctl_notify_node(rt, &s->v[i], CTL_NODE_DOWN);
}

static void on_decommission(struct ctl *rt, struct nstate *s, const struct ctl_event *ev)
{
	char parts[2][CTL_PART_MAX];
	if (ctl_key_split(ev->kv.key, ev->kv.key_len, strlen(DECOM), parts, 2) != 2)
		return;
	size_t i;
	struct ctl_node *n = get(s, parts[0], parts[1], &i);
	if (n == NULL)
		return;
	bool was = n->decommission;
	n->decommission = ev->type == CTL_PUT;
	if (n->decommission && !was && ctl_synced(rt)) {
		if (!n->alive && strcmp(s->st[i].state, "lost") == 0)
			write_status(rt, s, i, "decommissioned");
		ctl_notify_node(rt, &s->v[i], CTL_NODE_DECOMMISSION);
	}
}

static void on_status(struct nstate *s, const struct ctl_event *ev)
{
	char parts[2][CTL_PART_MAX];
	if (ctl_key_split(ev->kv.key, ev->kv.key_len, strlen(STATUS), parts, 2) != 2)
		return;
	size_t i;
	if (get(s, parts[0], parts[1], &i) == NULL)
		return;
	struct nstatus *st = &s->st[i];
	if (ev->type == CTL_DELETE) {
		memset(st, 0, sizeof(*st));
		return;
	}
	if (ev->kv.mod_rev < st->mod_rev)
		return; /* our own newer write is already recorded */
	st->mod_rev = ev->kv.mod_rev;
	json_t *v = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
	const char *state = NULL;
	json_int_t epoch = 0;
	if (v != NULL && json_unpack(v, "{s:s,s:I}", "state", &state, "epoch", &epoch) == 0) {
		snprintf(st->state, sizeof(st->state), "%s", state);
		st->epoch = epoch;
	} else {
		st->state[0] = 0;
		st->epoch = 0;
	}
	json_decref(v);
}

static void nodes_event(struct ctl *rt, void *state, const struct ctl_event *ev)
{
	struct nstate *s = state;
	if (has_prefix(&ev->kv, NODES))
		on_node(rt, s, ev);
	else if (has_prefix(&ev->kv, DECOM))
		on_decommission(rt, s, ev);
	else if (has_prefix(&ev->kv, STATUS))
		on_status(s, ev);
}

/* After the listing: bring every status record in line with the keys. */
static void nodes_synced(struct ctl *rt, void *state)
{
	struct nstate *s = state;
	int64_t now = ctl_now(rt);
	for (size_t i = 0; i < s->n; i++) {
		struct ctl_node *n = &s->v[i];
		if (n->alive) {
			write_status(rt, s, i, "up");
		} else if (s->st[i].state[0] != 0) {
			n->epoch = s->st[i].epoch;
			if (strcmp(s->st[i].state, "up") == 0)
				n->lost_ms = now;
			write_status(rt, s, i, down_state(n));
		}
	}
}

static int nodes_start(struct ctl *rt, void **state)
{
	(void)rt;
	*state = calloc(1, sizeof(struct nstate));
	return *state != NULL ? 0 : -1;
}

static void nodes_stop(struct ctl *rt, void *state)
{
	(void)rt;
	struct nstate *s = state;
	free(s->v);
	free(s->st);
	free(s);
}

const struct ctl_ops ctl_nodes_ops = {
	.name = "nodes",
	.prefixes = {"nodes/", "decommission/", "status/nodes/", NULL},
	.start = nodes_start,
	.event = nodes_event,
	.synced = nodes_synced,
	.stop = nodes_stop,
};

/* ---- the registry, for the other controllers ---- */

struct ctl_node *ctl_nodes_find(void *nodes, const char *kind, const char *id)
{
	struct nstate *s = nodes;
	size_t i = find(s, kind, id);
	return i < s->n ? &s->v[i] : NULL;
}

size_t ctl_nodes_alive(void *nodes, const char *kind)
{
	struct nstate *s = nodes;
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++)
		k += s->v[i].alive && strcmp(s->v[i].kind, kind) == 0;
	return k;
}

struct ctl_node *ctl_nodes_pick(void *nodes, const char *kind, const char *const *skip,
				size_t n_skip, bool by_lead_load)
{
	struct nstate *s = nodes;
	struct ctl_node *best = NULL;
	for (size_t i = 0; i < s->n; i++) {
		struct ctl_node *n = &s->v[i];
		if (!n->alive || n->decommission || strcmp(n->kind, kind) != 0)
			continue;
		bool skipped = false;
		for (size_t k = 0; k < n_skip && !skipped; k++)
			skipped = strcmp(skip[k], n->id) == 0;
		if (skipped)
			continue;
		int64_t l = by_lead_load ? n->lead_load : n->load;
		int64_t bl = best == NULL ? 0 : by_lead_load ? best->lead_load : best->load;
		if (best == NULL || l < bl || (l == bl && strcmp(n->id, best->id) < 0))
			best = n;
	}
	return best;
}
