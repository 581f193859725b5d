/*
 * controllers/mqtt.c — the MQTT controller (docs/controllers.md, "MQTT"):
 * its mirror of /_meta/mqtt/ and what each event or broker change
 * triggers. The actions are in mqtt_sessions.c and mqtt_groups.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controllers/mqtt_internal.h"

bool m_broker_alive(struct ctl *rt, const char *id)
{
	struct ctl_node *n = ctl_nodes_find(ctl_nodes_state(rt), M_KIND, id);
	return n != NULL && n->alive;
}

static bool starts(const struct ctl_kv *kv, const char *p)
{
	size_t n = strlen(p);
	return kv->key_len >= n && memcmp(kv->key, p, n) == 0;
}

/* "<tenant>/<name>" of a key with exactly two segments after pfx. */
static bool two(const struct ctl_kv *kv, const char *pfx, char *out, size_t cap)
{
	char p[2][CTL_PART_MAX];
	return ctl_key_split(kv->key, kv->key_len, strlen(pfx), p, 2) == 2 &&
	       ctl_key(out, cap, "%s/%s", p[0], p[1]) != 0;
}

static void on_session(struct ctl *rt, struct mctl *m, const struct ctl_event *ev, const char *tc)
{
	size_t len = strlen(tc);
	if (ev->type == CTL_DELETE) {
		free(strmap_del(&m->sessions, tc, len));
		if (strmap_del(&m->reaped, tc, len) != NULL)
			return; /* reaped by us with its subscriptions and will */
		if (ctl_synced(rt))
			m_session_gone(rt, m, tc);
		return;
	}
	struct msession *s = strmap_get(&m->sessions, tc, len);
	if (s != NULL && s->mod_rev >= ev->kv.mod_rev)
		return;
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL || !strmap_put(&m->sessions, tc, len, s, NULL)) {
			free(s);
			return;
		}
	}
	s->mod_rev = ev->kv.mod_rev;
	s->lease = ev->kv.lease;
	json_t *v = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
	const char *broker = "";
	json_int_t expiry = 0;
	json_unpack(v, "{s?s,s?I}", "broker", &broker, "expiry_s", &expiry);
	snprintf(s->broker, sizeof(s->broker), "%s", broker);
	s->expiry_s = expiry;
	json_decref(v);
}

static void on_presence(struct ctl *rt, struct mctl *m, const struct ctl_event *ev, const char *tc)
{
	size_t len = strlen(tc);
	if (ev->type == CTL_DELETE) {
		free(strmap_del(&m->presence, tc, len));
		return;
	}
	json_t *v = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
	const char *broker = "";
	json_unpack(v, "{s?s}", "broker", &broker);
	char *b = strdup(broker);
	json_decref(v);
	void *old = NULL;
	if (b == NULL || !strmap_put(&m->presence, tc, len, b, &old)) {
		free(b);
		return;
	}
	free(old);
	if (ctl_synced(rt))
		m_reconnected(rt, m, tc);
}

static void on_will(struct mctl *m, const struct ctl_event *ev, const char *tc)
{
	size_t len = strlen(tc);
	struct mwill *w = ev->type == CTL_DELETE ? strmap_del(&m->wills, tc, len)
						  : strmap_get(&m->wills, tc, len);
	if (ev->type == CTL_DELETE || (w != NULL && w->mod_rev >= ev->kv.mod_rev)) {
		if (ev->type == CTL_DELETE && w != NULL) {
			free(w->value);
			free(w);
		}
		return;
	}
	if (w == NULL) {
		w = calloc(1, sizeof(*w));
		if (w == NULL || !strmap_put(&m->wills, tc, len, w, NULL)) {
			free(w);
			return;
		}
	}
	free(w->value);
	w->value = malloc(ev->kv.value_len + 1);
	w->len = w->value != NULL ? ev->kv.value_len : 0;
	if (w->value != NULL)
		memcpy(w->value, ev->kv.value, ev->kv.value_len);
	w->mod_rev = ev->kv.mod_rev;
	json_t *v = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
	json_int_t delay = 0;
	json_unpack(v, "{s?I}", "delay_s", &delay);
	w->delay_s = delay;
	json_decref(v);
}

static void on_timer(struct ctl *rt, struct mctl *m, const struct ctl_event *ev, const char *tc)
{
	size_t len = strlen(tc);
	if (ev->type == CTL_PUT) {
		strmap_put(&m->timers, tc, len, (void *)1, NULL);
		return;
	}
	strmap_del(&m->timers, tc, len);
	if (ctl_synced(rt))
		m_timer_gone(rt, m, tc);
}

static void on_expiring(struct ctl *rt, struct mctl *m, const struct ctl_event *ev)
{
	char p[3][CTL_PART_MAX], bee[3 * CTL_PART_MAX];
	if (ctl_key_split(ev->kv.key, ev->kv.key_len, strlen(M_EXPIRING), p, 3) != 3)
		return;
	snprintf(bee, sizeof(bee), "%s/%s/%s", p[0], p[1], p[2]);
	if (ev->type == CTL_PUT) {
		strmap_put(&m->expiring, bee, strlen(bee), (void *)(intptr_t)ev->kv.create_rev, NULL);
		return;
	}
	int64_t since = (int64_t)(intptr_t)strmap_del(&m->expiring, bee, strlen(bee));
	if (since != 0 && ctl_synced(rt))
		m_expiring_gone(rt, m, bee, since);
}

static struct mgroup *group(struct mctl *m, const char *tg)
{
	struct mgroup *g = strmap_get(&m->groups, tg, strlen(tg));
	if (g == NULL) {
		g = calloc(1, sizeof(*g));
		if (g == NULL || !strmap_put(&m->groups, tg, strlen(tg), g, NULL)) {
			free(g);
			return NULL;
		}
	}
	return g;
}

static void on_share(struct ctl *rt, struct mctl *m, const struct ctl_event *ev)
{
	char p[4][CTL_PART_MAX], tg[2 * CTL_PART_MAX];
	bool member = ctl_key_split(ev->kv.key, ev->kv.key_len, strlen(M_SHARE), p, 4) == 4 &&
		      strcmp(p[2], "members") == 0;
	if (!member && (ctl_key_split(ev->kv.key, ev->kv.key_len, strlen(M_SHARE), p, 3) != 3 ||
			strcmp(p[2], "leader") != 0))
		return;
	snprintf(tg, sizeof(tg), "%s/%s", p[0], p[1]);
	struct mgroup *g = group(m, tg);
	if (g == NULL)
		return;
	if (member) {
		size_t i = 0;
		while (i < g->n_members && strcmp(g->members[i], p[3]) != 0)
			i++;
		if (ev->type == CTL_PUT && i == g->n_members) {
			char(*nm)[M_ID_MAX] = realloc(g->members, (g->n_members + 1) * sizeof(*nm));
			if (nm == NULL)
				return;
			g->members = nm;
			snprintf(g->members[g->n_members++], M_ID_MAX, "%s", p[3]);
		} else if (ev->type == CTL_DELETE && i < g->n_members) {
			memmove(g->members[i], g->members[i + 1],
				(g->n_members - i - 1) * sizeof(g->members[0]));
			g->n_members--;
		}
	} else if (ev->type == CTL_DELETE) {
		g->leader_rev = 0;
		g->leader[0] = 0;
	} else if (ev->kv.mod_rev > g->leader_rev) {
		json_t *v = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
		const char *b = "";
		json_unpack(v, "{s?s}", "broker", &b);
		snprintf(g->leader, sizeof(g->leader), "%s", b);
		g->leader_rev = ev->kv.mod_rev;
		json_decref(v);
	}
	if (ctl_synced(rt))
		strmap_put(&m->dirty_groups, tg, strlen(tg), (void *)1, NULL);
}

static void on_connector(struct ctl *rt, struct mctl *m, const struct ctl_event *ev, const char *tn,
			 bool assign)
{
	size_t len = strlen(tn);
	struct mconnector *c = strmap_get(&m->connectors, tn, len);
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL || !strmap_put(&m->connectors, tn, len, c, NULL)) {
			free(c);
			return;
		}
	}
	if (!assign) {
		c->spec = ev->type == CTL_PUT;
	} else if (ev->type == CTL_DELETE) {
		c->assign_rev = 0;
		c->broker[0] = 0;
	} else if (ev->kv.mod_rev > c->assign_rev) {
		json_t *v = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
		const char *b = "";
		json_unpack(v, "{s?s}", "broker", &b);
		snprintf(c->broker, sizeof(c->broker), "%s", b);
		c->assign_rev = ev->kv.mod_rev;
		json_decref(v);
	}
	if (ctl_synced(rt))
		strmap_put(&m->dirty_connectors, tn, len, (void *)1, NULL);
}

static void mqtt_event(struct ctl *rt, void *state, const struct ctl_event *ev)
{
	struct mctl *m = state;
	char tc[2 * CTL_PART_MAX];
	if (starts(&ev->kv, M_SESSIONS)) {
		if (two(&ev->kv, M_SESSIONS, tc, sizeof(tc)))
			on_session(rt, m, ev, tc);
	} else if (starts(&ev->kv, M_PRESENCE)) {
		if (two(&ev->kv, M_PRESENCE, tc, sizeof(tc)))
			on_presence(rt, m, ev, tc);
	} else if (starts(&ev->kv, M_WILLS)) {
		if (two(&ev->kv, M_WILLS, tc, sizeof(tc)))
			on_will(m, ev, tc);
	} else if (starts(&ev->kv, M_TIMERS)) {
		if (two(&ev->kv, M_TIMERS, tc, sizeof(tc)))
			on_timer(rt, m, ev, tc);
	} else if (starts(&ev->kv, M_EXPIRING)) {
		on_expiring(rt, m, ev);
	} else if (starts(&ev->kv, M_SHARE)) {
		on_share(rt, m, ev);
	} else if (starts(&ev->kv, M_CONNECTORS)) {
		if (two(&ev->kv, M_CONNECTORS, tc, sizeof(tc)))
			on_connector(rt, m, ev, tc, false);
	} else if (starts(&ev->kv, M_ASSIGN)) {
		if (two(&ev->kv, M_ASSIGN, tc, sizeof(tc)))
			on_connector(rt, m, ev, tc, true);
	} else if (starts(&ev->kv, M_DELETE_TOPIC) && ev->type == CTL_PUT && ctl_synced(rt)) {
		m_delete_topic(rt, &ev->kv);
	}
}

static void mqtt_node(struct ctl *rt, void *state, const struct ctl_node *n,
		      enum ctl_node_change ch)
{
	struct mctl *m = state;
	if (strcmp(n->kind, M_KIND) != 0)
		return;
	char id[sizeof(n->id)];
	memcpy(id, n->id, sizeof(id));
	if (ch == CTL_NODE_DOWN) {
		m_groups_broker_down(rt, m, id); /* a few keys: first */
		m_broker_down(rt, m, id);
	} else {
		m_groups_synced(rt, m); /* leaderless groups, unassigned connectors */
	}
}

static void mqtt_synced(struct ctl *rt, void *state)
{
	struct mctl *m = state;
	m_account(rt, m);
	m_sessions_synced(rt, m);
	m_groups_synced(rt, m);
	char end[sizeof(M_DELETE_TOPIC)];
	size_t el = ctl_prefix_end(M_DELETE_TOPIC, strlen(M_DELETE_TOPIC), end);
	struct core_reply *reply;
	const Etcdserverpb__RangeResponse *resp;
	if (ctl_range(rt, M_DELETE_TOPIC, strlen(M_DELETE_TOPIC), end, el, 0, &reply, &resp) !=
	    CORE_OK)
		return;
	for (size_t i = 0; i < resp->n_kvs; i++) {
		const Mvccpb__KeyValue *kv = resp->kvs[i];
		struct ctl_kv k = {.key = (const char *)kv->key.data, .key_len = kv->key.len,
				   .mod_rev = kv->mod_revision};
		m_delete_topic(rt, &k);
	}
	core_reply_free(reply);
}

static void mqtt_flush(struct ctl *rt, void *state)
{
	struct mctl *m = state;
	size_t it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->dirty_groups, &it)) != NULL)
		m_group_check(rt, m, sl->key);
	it = 0;
	while ((sl = strmap_next(&m->dirty_connectors, &it)) != NULL)
		m_connector_check(rt, m, sl->key);
	if (m->dirty_groups.live != 0) {
		strmap_free(&m->dirty_groups);
		strmap_init(&m->dirty_groups);
	}
	if (m->dirty_connectors.live != 0) {
		strmap_free(&m->dirty_connectors);
		strmap_init(&m->dirty_connectors);
	}
}

static int mqtt_start(struct ctl *rt, void **state)
{
	(void)rt;
	struct mctl *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return -1;
	strmap_init(&m->sessions);
	strmap_init(&m->presence);
	strmap_init(&m->wills);
	strmap_init(&m->timers);
	strmap_init(&m->groups);
	strmap_init(&m->connectors);
	strmap_init(&m->dirty_groups);
	strmap_init(&m->dirty_connectors);
	strmap_init(&m->expiring);
	strmap_init(&m->reaped);
	*state = m;
	return 0;
}

static void mqtt_stop(struct ctl *rt, void *state)
{
	(void)rt;
	struct mctl *m = state;
	struct strmap *plain[] = {&m->sessions, &m->presence, &m->connectors};
	for (size_t k = 0; k < 3; k++) {
		size_t it = 0;
		struct strmap_slot *sl;
		while ((sl = strmap_next(plain[k], &it)) != NULL)
			free(sl->val);
		strmap_free(plain[k]);
	}
	size_t it = 0;
	struct strmap_slot *sl;
	while ((sl = strmap_next(&m->wills, &it)) != NULL) {
		struct mwill *w = sl->val;
		free(w->value);
		free(w);
	}
	strmap_free(&m->wills);
	it = 0;
	while ((sl = strmap_next(&m->groups, &it)) != NULL) {
		struct mgroup *g = sl->val;
		free(g->members);
		free(g);
	}
	strmap_free(&m->groups);
	strmap_free(&m->timers);
	strmap_free(&m->dirty_groups);
	strmap_free(&m->dirty_connectors);
	strmap_free(&m->expiring);
	strmap_free(&m->reaped);
	free(m);
}

const struct ctl_ops ctl_mqtt_ops = {
	.name = "mqtt",
	.prefixes = {"mqtt/", NULL},
	.start = mqtt_start,
	.event = mqtt_event,
	.synced = mqtt_synced,
	.node = mqtt_node,
	.flush = mqtt_flush,
	.stop = mqtt_stop,
};
