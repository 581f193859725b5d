/*
 * controllers/mqtt_groups.c — shared-subscription group leaders (the live
 * member broker leading fewest groups, re-picked when it goes) and
 * connector assignment (the live broker running fewest connectors,
 * reassigned when it goes). Loads live in the node registry: lead_load =
 * groups led, load = connectors run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controllers/mqtt_internal.h"

static struct ctl_node *broker(struct ctl *rt, const char *id)
{
	return id[0] ? ctl_nodes_find(ctl_nodes_state(rt), M_KIND, id) : NULL;
}

void m_account(struct ctl *rt, struct mctl *m)
{
	size_t it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->groups, &it)) != NULL) {
		struct ctl_node *n = broker(rt, ((struct mgroup *)sl->val)->leader);
		if (n != NULL)
			n->lead_load++;
	}
	it = 0;
	while ((sl = strmap_next(&m->connectors, &it)) != NULL) {
		struct ctl_node *n = broker(rt, ((struct mconnector *)sl->val)->broker);
		if (n != NULL)
			n->load++;
	}
}

static char *owner_value(const struct ctl_node *n)
{
	json_t *v = json_pack("{s:s,s:I}", "broker", n->id, "epoch", (json_int_t)n->epoch);
	char *out = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(v);
	return out;
}

/*
 * Point key (mod_revision *rev, owner cur) at n, or delete it when n is
 * NULL; fenced on n's epoch. Moves one unit of load (lead or not) from the
 * old owner to the new. Returns whether it changed.
 */
static bool set_owner(struct ctl *rt, const char *key, size_t klen, int64_t *rev, char *cur,
		      struct ctl_node *n, bool lead)
{
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, key, klen, *rev);
	char *val = NULL;
	if (n != NULL) {
		char nk[320];
		size_t nl = ctl_key(nk, sizeof(nk), CTL_PREFIX "nodes/" M_KIND "/%s", n->id);
		val = owner_value(n);
		if (val == NULL || nl == 0) {
			free(val);
			ctl_txn_free(&t);
			return false;
		}
		ctl_txn_cmp_create(&t, nk, nl, n->epoch);
		ctl_txn_put(&t, key, klen, val, strlen(val), 0);
	} else {
		ctl_txn_del(&t, key, klen);
	}
	bool ok = false;
	int64_t r = 0;
	ctl_txn_commit(rt, &t, &ok, &r);
	ctl_txn_free(&t);
	free(val);
	if (!ok)
		return false;
	struct ctl_node *old = broker(rt, cur);
	if (old != NULL)
		*(lead ? &old->lead_load : &old->load) -= 1;
	if (n != NULL)
		*(lead ? &n->lead_load : &n->load) += 1;
	*rev = n != NULL ? r : 0;
	snprintf(cur, M_ID_MAX, "%s", n != NULL ? n->id : "");
	return true;
}

void m_group_check(struct ctl *rt, struct mctl *m, const char *tg)
{
	struct mgroup *g = strmap_get(&m->groups, tg, strlen(tg));
	if (g == NULL)
		return;
	bool leader_member = false;
	for (size_t i = 0; i < g->n_members && !leader_member; i++)
		leader_member = strcmp(g->members[i], g->leader) == 0;
	if (leader_member && m_broker_alive(rt, g->leader))
		return;
	struct ctl_node *best = NULL;
	for (size_t i = 0; i < g->n_members; i++) {
		struct ctl_node *n = broker(rt, g->members[i]);
		if (n == NULL || !n->alive || n->decommission)
			continue;
		if (best == NULL || n->lead_load < best->lead_load ||
		    (n->lead_load == best->lead_load && strcmp(n->id, best->id) < 0))
			best = n;
	}
	if (best == NULL && g->leader_rev == 0)
		return;
	char p[2][CTL_PART_MAX], key[320];
	if (ctl_key_split(tg, strlen(tg), 0, p, 2) != 2)
		return;
	size_t kl = ctl_key(key, sizeof(key), M_SHARE "%s/%s/leader", p[0], p[1]);
	if (kl != 0 && set_owner(rt, key, kl, &g->leader_rev, g->leader, best, true))
		core_log("info", "controllers: mqtt: share group %s led by %s", tg,
			 best != NULL ? best->id : "nobody");
}

void m_connector_check(struct ctl *rt, struct mctl *m, const char *tn)
{
	struct mconnector *c = strmap_get(&m->connectors, tn, strlen(tn));
	if (c == NULL)
		return;
	struct ctl_node *to = NULL;
	if (c->spec) {
		if (c->assign_rev != 0 && m_broker_alive(rt, c->broker))
			return;
		to = ctl_nodes_pick(ctl_nodes_state(rt), M_KIND, NULL, 0, false);
		if (to == NULL && c->assign_rev == 0)
			return;
	} else if (c->assign_rev == 0) {
		return;
	}
	char p[2][CTL_PART_MAX], key[320];
	if (ctl_key_split(tn, strlen(tn), 0, p, 2) != 2)
		return;
	size_t kl = ctl_key(key, sizeof(key), M_ASSIGN "%s/%s", p[0], p[1]);
	if (kl != 0 && set_owner(rt, key, kl, &c->assign_rev, c->broker, to, false))
		core_log("info", "controllers: mqtt: connector %s on %s", tn,
			 to != NULL ? to->id : "nobody");
}

void m_groups_broker_down(struct ctl *rt, struct mctl *m, const char *id)
{
	size_t it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->groups, &it)) != NULL)
		if (strcmp(((struct mgroup *)sl->val)->leader, id) == 0)
			m_group_check(rt, m, sl->key);
	it = 0;
	while ((sl = strmap_next(&m->connectors, &it)) != NULL)
		if (strcmp(((struct mconnector *)sl->val)->broker, id) == 0)
			m_connector_check(rt, m, sl->key);
}

void m_groups_synced(struct ctl *rt, struct mctl *m)
{
	size_t it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->groups, &it)) != NULL)
		m_group_check(rt, m, sl->key);
	it = 0;
	while ((sl = strmap_next(&m->connectors, &it)) != NULL)
		m_connector_check(rt, m, sl->key);
}
