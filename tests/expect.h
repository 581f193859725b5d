/*
 * tests/expect.h — EXPECT for the unit tests outside raft and storage
 * (those keep their own CHECK helpers): reports file:line and keeps going,
 * so one run shows every failure; a test exits non-zero if failures > 0.
 */
#ifndef METAD_TESTS_EXPECT_H
#define METAD_TESTS_EXPECT_H

#include <stdio.h>

static int failures;

#define EXPECT(cond)                                                                  \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                   \
		}                                                                     \
	} while (0)

#endif
