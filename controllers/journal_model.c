/*
 * controllers/journal_model.c — segment values, state edges, failover,
 * recovery and the rebalance token bucket (see journal_model.h).
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "controllers/journal_model.h"

static const char *const NAMES[] = {
	[JS_NONE] = "", [JS_WRITE] = "Write", [JS_PRESEALUP] = "PreSealUp",
	[JS_SEALUP] = "SealUp", [JS_PREDELETE] = "PreDelete", [JS_DELETING] = "Deleting",
	[JS_UNAVAILABLE] = "Unavailable",
};

const char *jstate_name(enum jstate s)
{
	return (size_t)s < sizeof(NAMES) / sizeof(NAMES[0]) ? NAMES[s] : "";
}

enum jstate jstate_parse(const char *name)
{
	for (size_t i = 1; i < sizeof(NAMES) / sizeof(NAMES[0]); i++)
		if (strcmp(NAMES[i], name) == 0)
			return (enum jstate)i;
	return JS_NONE;
}

bool jstate_edge_ok(enum jstate from, enum jstate to)
{
	return (from == JS_WRITE && to == JS_PRESEALUP) || (from == JS_PRESEALUP && to == JS_SEALUP) ||
	       (from == JS_SEALUP && to == JS_PREDELETE) || (from == JS_PREDELETE && to == JS_DELETING);
}

int jseg_find(const struct jseg *s, const char *id)
{
	for (size_t i = 0; i < s->n_rep; i++)
		if (strcmp(s->rep[i], id) == 0)
			return (int)i;
	return -1;
}

bool jseg_in_isr(const struct jseg *s, int rep)
{
	for (size_t i = 0; i < s->n_isr; i++)
		if (s->isr[i] == rep)
			return true;
	return false;
}

int jseg_parse(const char *json, size_t len, struct jseg *out)
{
	memset(out, 0, sizeof(*out));
	out->leader = out->preferred = -1;
	json_t *v = json_loadb(json, len, 0, NULL);
	if (v == NULL)
		return -1;
	int rv = -1;
	const char *state = NULL, *leader = "", *preferred = "", *prev = "";
	json_t *reps = NULL, *epochs = NULL, *isr = NULL;
	if (json_unpack(v, "{s:s,s:o,s:o,s:o,s?s,s?s,s?s}", "state", &state, "replicas", &reps,
			"epochs", &epochs, "isr", &isr, "leader", &leader, "preferred", &preferred,
			"prev_state", &prev) != 0)
		goto out;
	out->state = jstate_parse(state);
	out->prev_state = jstate_parse(prev);
	if (out->state == JS_NONE || !json_is_array(reps) || !json_is_object(epochs) ||
	    !json_is_array(isr) || json_array_size(reps) > JSEG_MAX_REPLICAS ||
	    json_array_size(isr) > json_array_size(reps))
		goto out;
	size_t i;
	json_t *e;
	json_array_foreach(reps, i, e)
	{
		const char *id = json_string_value(e);
		if (id == NULL || id[0] == 0 || strlen(id) >= JSEG_ID_MAX || jseg_find(out, id) >= 0)
			goto out;
		strcpy(out->rep[out->n_rep], id);
		json_t *ep = json_object_get(epochs, id);
		out->epoch[out->n_rep++] = json_is_integer(ep) ? json_integer_value(ep) : 0;
	}
	json_array_foreach(isr, i, e)
	{
		const char *id = json_string_value(e);
		int k = id != NULL ? jseg_find(out, id) : -1;
		if (k < 0 || jseg_in_isr(out, k))
			goto out;
		out->isr[out->n_isr++] = (uint8_t)k;
	}
	out->leader = leader[0] ? jseg_find(out, leader) : -1;
	out->preferred = preferred[0] ? jseg_find(out, preferred) : -1;
	rv = 0;
out:
	json_decref(v);
	return rv;
}

char *jseg_dump(const struct jseg *s)
{
	json_t *reps = json_array(), *epochs = json_object(), *isr = json_array();
	json_t *v = NULL;
	char *out = NULL;
	if (reps == NULL || epochs == NULL || isr == NULL)
		goto out;
	for (size_t i = 0; i < s->n_rep; i++) {
		json_array_append_new(reps, json_string(s->rep[i]));
		json_object_set_new(epochs, s->rep[i], json_integer(s->epoch[i]));
	}
	for (size_t i = 0; i < s->n_isr; i++)
		json_array_append_new(isr, json_string(s->rep[s->isr[i]]));
	v = json_pack("{s:s,s:O,s:O,s:O,s:s,s:s}", "state", jstate_name(s->state), "replicas", reps,
		      "epochs", epochs, "isr", isr, "leader", s->leader >= 0 ? s->rep[s->leader] : "",
		      "preferred", s->preferred >= 0 ? s->rep[s->preferred] : "");
	if (v == NULL)
		goto out;
	if (s->state == JS_UNAVAILABLE)
		json_object_set_new(v, "prev_state", json_string(jstate_name(s->prev_state)));
	out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(v);
	json_decref(reps);
	json_decref(epochs);
	json_decref(isr);
	return out;
}

bool jseg_fail_node(struct jseg *s, const char *id, jalive_fn alive, void *arg)
{
	int k = jseg_find(s, id);
	if (k < 0 || (!jseg_in_isr(s, k) && s->leader != k))
		return false;
	size_t w = 0;
	for (size_t i = 0; i < s->n_isr; i++)
		if (s->isr[i] != k)
			s->isr[w++] = s->isr[i];
	s->n_isr = w;
	if (s->leader != k)
		return true;
	s->leader = -1;
	for (size_t i = 0; i < s->n_isr; i++)
		if (alive(arg, s->rep[s->isr[i]], s->epoch[s->isr[i]])) {
			s->leader = s->isr[i];
			return true;
		}
	if (s->state != JS_UNAVAILABLE) {
		s->prev_state = s->state;
		s->state = JS_UNAVAILABLE;
	}
	return true;
}

bool jseg_recover(struct jseg *s, const int64_t *leo, jalive_fn alive, void *arg)
{
	if (s->state != JS_UNAVAILABLE)
		return false;
	int best = -1;
	for (size_t i = 0; i < s->n_rep; i++)
		if (alive(arg, s->rep[i], 0) && (best < 0 || leo[i] > leo[best]))
			best = (int)i;
	if (best < 0)
		return false;
	s->leader = best;
	s->isr[0] = (uint8_t)best;
	s->n_isr = 1;
	s->state = s->prev_state != JS_NONE && s->prev_state != JS_UNAVAILABLE ? s->prev_state
										: JS_WRITE;
	s->prev_state = JS_NONE;
	return true;
}

bool jseg_prefer(struct jseg *s, jalive_fn alive, void *arg)
{
	int p = s->preferred;
	if (p < 0 || p == s->leader || s->state == JS_UNAVAILABLE || !jseg_in_isr(s, p) ||
	    !alive(arg, s->rep[p], s->epoch[p]))
		return false;
	s->leader = p;
	return true;
}

bool jseg_isr_ok(const struct jseg *s, const char *leader, const char *const *isr, size_t n,
		 uint8_t *idx)
{
	if (n == 0 || n > s->n_rep)
		return false;
	bool has_leader = false;
	for (size_t i = 0; i < n; i++) {
		int k = jseg_find(s, isr[i]);
		if (k < 0)
			return false;
		for (size_t j = 0; j < i; j++)
			if (idx[j] == k)
				return false;
		idx[i] = (uint8_t)k;
		has_leader = has_leader || strcmp(isr[i], leader) == 0;
	}
	return has_leader;
}

bool jbucket_take(struct jbucket *b, int64_t now_ms, int per_minute)
{
	if (!b->started) {
		b->started = true;
		b->tokens = per_minute;
		b->last_ms = now_ms;
	}
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * per_minute / 60000.0;
		if (b->tokens > per_minute)
			b->tokens = per_minute;
		b->last_ms = now_ms;
	}
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}
