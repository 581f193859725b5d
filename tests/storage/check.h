/*
 * tests/storage/check.h — the few helpers every storage test uses: a CHECK
 * macro that reports file:line and keeps going (so one run shows every
 * failure), and a temporary data directory that is removed at the end.
 */
#ifndef METAD_TESTS_STORAGE_CHECK_H
#define METAD_TESTS_STORAGE_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

/* a == b for integers, printing both on failure. */
#define CHECK_EQ(a, b)                                                               \
	do {                                                                         \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);      \
		if (check_a_ != check_b_) {                                          \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);     \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

/* A byte string equals a C string. */
#define CHECK_BYTES(p, n, str)                                                       \
	do {                                                                         \
		size_t check_n_ = strlen(str);                                       \
		if ((size_t)(n) != check_n_ || memcmp((p), (str), check_n_) != 0) {  \
			fprintf(stderr, "%s:%d: CHECK_BYTES failed: %s is \"%.*s\", want \"%s\"\n", \
				__FILE__, __LINE__, #p, (int)(n), (const char *)(p), (str)); \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

/* Stop the test now (a failure that makes the rest meaningless). */
#define REQUIRE(cond)                                                                \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
			exit(1);                                                     \
		}                                                                    \
	} while (0)

static int check_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Make a fresh temporary directory; the path is written to buf. */
static inline void check_tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/metad-storage-test-XXXXXX");
	REQUIRE(mkdtemp(buf) != NULL);
}

static inline void check_rmdir(const char *dir)
{
	nftw(dir, check_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* End of main: report and return the exit status. */
static inline int check_done(const char *name)
{
	if (check_failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
		return 1;
	}
	printf("%s: ok\n", name);
	return 0;
}

#endif
