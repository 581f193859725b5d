/*
 * controllers/strmap.c — string-keyed hash map (see strmap.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controllers/strmap.h"

static uint64_t hash(const char *k, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)k[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
}

void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	strmap_init(m);
}

/* The slot holding key, or the first free one on its probe path. */
static struct strmap_slot *probe(const struct strmap *m, const char *key, size_t len, bool *found)
{
	size_t mask = m->cap - 1, i = (size_t)hash(key, len) & mask;
	struct strmap_slot *tomb = NULL;
	for (;;) {
		struct strmap_slot *s = &m->slots[i];
		if (s->key == NULL) {
			*found = false;
			return tomb != NULL ? tomb : s;
		}
		if (s->dead) {
			if (tomb == NULL)
				tomb = s;
		} else if (s->len == len && memcmp(s->key, key, len) == 0) {
			*found = true;
			return s;
		}
		i = (i + 1) & mask;
	}
}

static bool grow(struct strmap *m)
{
	size_t nc = m->cap ? m->cap * 2 : 64;
	if (m->live * 2 < m->cap)
		nc = m->cap; /* mostly tombstones: rehash in place size */
	struct strmap_slot *old = m->slots;
	size_t ocap = m->cap;
	m->slots = calloc(nc, sizeof(*m->slots));
	if (m->slots == NULL) {
		m->slots = old;
		return false;
	}
	m->cap = nc;
	m->used = m->live = 0;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].key == NULL)
			continue;
		if (old[i].dead) {
			free(old[i].key);
			continue;
		}
		bool found;
		struct strmap_slot *s = probe(m, old[i].key, old[i].len, &found);
		*s = old[i];
		m->used++;
		m->live++;
	}
	free(old);
	return true;
}

void *strmap_get(const struct strmap *m, const char *key, size_t len)
{
	if (m->cap == 0)
		return NULL;
	bool found;
	struct strmap_slot *s = probe(m, key, len, &found);
	return found ? s->val : NULL;
}

bool strmap_put(struct strmap *m, const char *key, size_t len, void *val, void **old)
{
	if (old != NULL)
		*old = NULL;
	if ((m->used + 1) * 4 > m->cap * 3 && !grow(m))
		return false;
	bool found;
	struct strmap_slot *s = probe(m, key, len, &found);
	if (found) {
		if (old != NULL)
			*old = s->val;
		s->val = val;
		return true;
	}
	char *k = malloc(len + 1);
	if (k == NULL)
		return false;
	memcpy(k, key, len);
	k[len] = 0;
	if (s->key == NULL)
		m->used++;
	else
		free(s->key); /* a tombstone's */
	s->key = k;
	s->len = len;
	s->val = val;
	s->dead = false;
	m->live++;
	return true;
}

void *strmap_del(struct strmap *m, const char *key, size_t len)
{
	if (m->cap == 0)
		return NULL;
	bool found;
	struct strmap_slot *s = probe(m, key, len, &found);
	if (!found)
		return NULL;
	void *v = s->val;
	s->dead = true;
	s->val = NULL;
	m->live--;
	return v;
}

struct strmap_slot *strmap_next(const struct strmap *m, size_t *i)
{
	while (*i < m->cap) {
		struct strmap_slot *s = &m->slots[(*i)++];
		if (s->key != NULL && !s->dead)
			return s;
	}
	return NULL;
}
