/*
 * tests/core/test_hugearena.c — a thread that entered core/hugearena.h's
 * arena gets its small allocations (a cache page's size) in transparent
 * huge pages; a thread that did not keeps 4 KiB pages where the kernel
 * gives huge pages only on request. Without jemalloc (sanitizer builds)
 * entering must be a harmless no-op; with THP off there is nothing to see.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hugearena.h"
#include "tests/expect.h"

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
	__attribute__((weak));

#define BLOCK 4096
#define BLOCKS (64 * 256) /* 64 MiB */

/* AnonHugePages of this process, in KiB. */
static long huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kb = -1;
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb;
}

/* "always", "madvise" or "never": the bracketed word. */
static void thp_mode(char *out, size_t cap)
{
	snprintf(out, cap, "never");
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128];
	if (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
		if (a != NULL && b != NULL && (size_t)(b - a) < cap) {
			memcpy(out, a + 1, (size_t)(b - a - 1));
			out[b - a - 1] = 0;
		}
	}
	if (f != NULL)
		fclose(f);
}

struct run {
	bool enter;
	long gained_kb; /* AnonHugePages grown while the blocks were held */
	int ok;
};

static void *fill(void *arg)
{
	struct run *r = arg;
	if (r->enter)
		hugearena_enter();
	static char *blocks[BLOCKS];
	long before = huge_kb();
	r->ok = 1;
	for (size_t i = 0; i < BLOCKS; i++) {
		blocks[i] = malloc(BLOCK);
		if (blocks[i] == NULL) {
			r->ok = 0;
			break;
		}
		memset(blocks[i], (int)i, BLOCK);
	}
	r->gained_kb = huge_kb() - before;
	for (size_t i = 0; i < BLOCKS; i++)
		free(blocks[i]);
	return NULL;
}

static struct run run_thread(bool enter)
{
	struct run r = {.enter = enter};
	pthread_t t;
	EXPECT(pthread_create(&t, NULL, fill, &r) == 0);
	pthread_join(t, NULL);
	return r;
}

int main(void)
{
	char mode[32];
	thp_mode(mode, sizeof(mode));
	struct run plain = run_thread(false);
	struct run huge = run_thread(true);
	EXPECT(plain.ok && huge.ok);
	if (mallctl == NULL || strcmp(mode, "never") == 0) {
		printf("no jemalloc or THP %s: entering is a no-op (%ld KiB)\n", mode, huge.gained_kb);
	} else {
		printf("THP %s: %ld KiB huge without the arena, %ld with\n", mode, plain.gained_kb,
		       huge.gained_kb);
		EXPECT(huge.gained_kb >= 32 * 1024); /* at least half of the 64 MiB */
		if (strcmp(mode, "madvise") == 0)
			EXPECT(plain.gained_kb < 8 * 1024);
	}
	return failures ? 1 : 0;
}
