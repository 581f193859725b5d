/*
 * tests/controllers/test_strmap.c — the controllers' hash map against a
 * plain array model under random puts, replaces and deletes (tombstones,
 * growth and re-use), with iteration seeing each live key once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controllers/strmap.h"
#include "tests/expect.h"

#define KEYS 2000

int main(void)
{
	struct strmap m;
	strmap_init(&m);
	static long model[KEYS]; /* 0: absent, else the value */
	unsigned seed = 7;
	for (int step = 0; step < 200000; step++) {
		seed = seed * 1103515245u + 12345u;
		int k = (int)((seed >> 8) % KEYS);
		char key[32];
		int len = snprintf(key, sizeof(key), "/_meta/k/%d", k);
		if ((seed >> 20) % 3 == 0) {
			void *v = strmap_del(&m, key, (size_t)len);
			EXPECT((long)v == model[k]);
			model[k] = 0;
		} else {
			void *old;
			long val = step + 1;
			EXPECT(strmap_put(&m, key, (size_t)len, (void *)val, &old));
			EXPECT((long)old == model[k]);
			model[k] = val;
		}
		if (step % 20000 == 0) {
			size_t live = 0;
			for (int i = 0; i < KEYS; i++) {
				len = snprintf(key, sizeof(key), "/_meta/k/%d", i);
				EXPECT((long)strmap_get(&m, key, (size_t)len) == model[i]);
				live += model[i] != 0;
			}
			size_t it = 0, seen = 0;
			struct strmap_slot *s;
			while ((s = strmap_next(&m, &it)) != NULL)
				seen++;
			EXPECT(seen == live && m.live == live);
		}
	}
	EXPECT(strmap_get(&m, "/_meta/k/", 9) == NULL);
	strmap_free(&m);
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures != 0;
}
