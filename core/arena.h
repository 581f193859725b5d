/*
 * core/arena.h — a bump allocator for one reply's response messages, and for
 * the requests one apply batch unpacks. Everything is freed at once;
 * nothing is freed singly.
 */
#ifndef METAD_CORE_ARENA_H
#define METAD_CORE_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used; /* bytes used in head */
	size_t cap;  /* capacity of head */
};

void arena_init(struct arena *a);
void arena_free(struct arena *a);
/* Zeroed, 16-byte aligned memory; NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t n);
/* The same, not zeroed. */
void *arena_alloc_raw(struct arena *a, size_t n);
/* Copy of n bytes (NULL if n == 0 or out of memory). */
void *arena_dup(struct arena *a, const void *p, size_t n);

#endif
