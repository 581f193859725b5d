/*
 * core/hugearena.c — see hugearena.h.
 *
 * Why: a backup's first run reads a store that is mostly not in the cache
 * (1M keys: ~90,000 pages of `kv`), and each page read allocates fresh
 * memory that the kernel then faults in 4 KiB at a time. On this machine
 * (a VM) a fault costs more than reading and decompressing the page: a
 * cold scan of 1M keys took 1.2-1.3 s with 93,700 faults, and 0.65-0.85 s
 * with the same memory in huge pages (~1,000 faults). jemalloc's thp:always
 * would do it for every allocation, which cost CPU on the put path when
 * tried; so only an arena of its own gets huge pages: jemalloc's default
 * extent hooks, with each new mapping 2 MiB-aligned and madvise'd
 * MADV_HUGEPAGE.
 *
 * mallctl is declared weak so that builds without jemalloc link and skip
 * this.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include "core/hugearena.h"

typedef struct extent_hooks_s extent_hooks_t;
typedef void *(extent_alloc_t)(extent_hooks_t *, void *, size_t, size_t, bool *, bool *, unsigned);
/* jemalloc 5's layout of the hooks: alloc first, then eight more. */
struct extent_hooks_s {
	extent_alloc_t *alloc;
	void *rest[8];
};

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
	__attribute__((weak));

#define HUGE_PAGE ((size_t)2 << 20)

static extent_hooks_t *defaults;
static extent_hooks_t hooks;
static unsigned arena;
static bool ready;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *huge_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment, bool *zero,
			bool *commit, unsigned arena_ind)
{
	(void)h;
	if (new_addr == NULL && size >= HUGE_PAGE && alignment < HUGE_PAGE)
		alignment = HUGE_PAGE;
	void *p = defaults->alloc(defaults, new_addr, size, alignment, zero, commit, arena_ind);
	if (p != NULL && ((uintptr_t)p & (HUGE_PAGE - 1)) == 0 && size >= HUGE_PAGE)
		(void)madvise(p, size & ~(HUGE_PAGE - 1), MADV_HUGEPAGE); /* a hint: may fail */
	return p;
}

static void make_arena(void)
{
	if (mallctl == NULL)
		return;
	size_t sz = sizeof(defaults);
	if (mallctl("arena.0.extent_hooks", &defaults, &sz, NULL, 0) != 0 || defaults == NULL ||
	    defaults->alloc == NULL)
		return;
	hooks = *defaults;
	hooks.alloc = huge_alloc;
	extent_hooks_t *mine = &hooks;
	sz = sizeof(arena);
	ready = mallctl("arenas.create", &arena, &sz, &mine, sizeof(mine)) == 0;
}

void hugearena_enter(void)
{
	pthread_once(&once, make_arena);
	if (ready)
		(void)mallctl("thread.arena", NULL, NULL, &arena, sizeof(arena));
}
