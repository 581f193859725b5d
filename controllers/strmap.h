/*
 * controllers/strmap.h — a string-keyed hash map (open addressing, FNV-1a)
 * for the controllers' in-memory mirrors of /_meta/ keys.
 */
#ifndef METAD_CONTROLLERS_STRMAP_H
#define METAD_CONTROLLERS_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap_slot {
	char *key;  /* owned; NULL = empty */
	size_t len;
	void *val;  /* the caller's */
	bool dead;  /* removed (a tombstone) */
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap, used, live; /* used counts tombstones too */
};

void strmap_init(struct strmap *m);
/* Frees the keys; values are the caller's (free them first with the iterator). */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key, size_t len);
/* Set key (copied) to val, replacing an old value (returned in *old, may be
 * NULL). Returns false when out of memory (the map is unchanged). */
bool strmap_put(struct strmap *m, const char *key, size_t len, void *val, void **old);
/* Remove key; returns its value or NULL. */
void *strmap_del(struct strmap *m, const char *key, size_t len);
/* Iterate: start with *i = 0; returns the next live slot or NULL. The map
 * must not change during the iteration except through strmap_del of the
 * returned slot. */
struct strmap_slot *strmap_next(const struct strmap *m, size_t *i);

#endif
