/*
 * tests/storage/test_mvcc_span.c — the bounds of the keys written since the
 * last take (what the watch hub uses to skip revisions nobody watches):
 * puts and deletes widen them, a take moves them out and starts afresh, and
 * the overlap test is exact at the edges of a half-open range.
 */
#include "tests/storage/fixture.h"

static void check_span(const struct mvcc_span *sp, int64_t first, const char *lo, const char *hi)
{
	CHECK(sp->any && !sp->all);
	CHECK_EQ(sp->first_rev, first);
	CHECK_BYTES(sp->lo, sp->lo_len, lo);
	CHECK_BYTES(sp->hi, sp->hi_len, hi);
}

static struct mvcc_span span_of(const char *lo, const char *hi)
{
	struct mvcc_span sp = {0};
	REQUIRE(mvcc_span_add(&sp, 1, (const uint8_t *)lo, strlen(lo)) == DB_OK);
	REQUIRE(mvcc_span_add(&sp, 1, (const uint8_t *)hi, strlen(hi)) == DB_OK);
	return sp;
}

static void overlap_rules(void)
{
	/* want: [m, p) */
	struct mvcc_span want = span_of("m", "p"), none = {0};
	struct mvcc_span below = span_of("a", "l"), touch_lo = span_of("a", "m");
	struct mvcc_span at_end = span_of("p", "z"), inside = span_of("n", "n");
	struct mvcc_span around = span_of("a", "z"), just_below_end = span_of("o", "ozz");
	CHECK(!mvcc_span_meets(&below, &want, 0));
	CHECK(mvcc_span_meets(&touch_lo, &want, 0));
	CHECK(!mvcc_span_meets(&at_end, &want, 0)); /* the end is excluded */
	CHECK(mvcc_span_meets(&at_end, &want, 1));  /* ... unless the range is open */
	CHECK(mvcc_span_meets(&inside, &want, 0));
	CHECK(mvcc_span_meets(&around, &want, 0));
	CHECK(mvcc_span_meets(&just_below_end, &want, 0));
	CHECK(!mvcc_span_meets(&none, &want, 0));   /* nothing written */
	CHECK(!mvcc_span_meets(&inside, &none, 1)); /* nobody watching */
	struct mvcc_span far = span_of("x", "y");
	inside.all = 1; /* bounds lost (out of memory): meets anything */
	CHECK(mvcc_span_meets(&inside, &far, 0));
	struct mvcc_span *all[] = {&want, &below, &touch_lo, &at_end, &inside, &around,
				   &just_below_end, &far};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		mvcc_span_free(all[i]);
}

int main(void)
{
	overlap_rules();

	struct fx f;
	fx_open(&f);
	struct mvcc_span sp = {0};
	mvcc_span_take(f.m, &sp);
	CHECK(!sp.any); /* nothing written yet */

	int64_t r1 = fx_put(&f, "k/5", "v", 0);
	fx_put(&f, "k/2", "v", 0);
	fx_put(&f, "k/9", "v", 0);
	fx_put(&f, "k/3", "v", 0);
	mvcc_span_take(f.m, &sp);
	check_span(&sp, r1, "k/2", "k/9");

	/* A take starts afresh: a delete range counts every key it deleted. */
	int64_t r2 = fx_put(&f, "m", "v", 0);
	fx_del(&f, "k/", "k0");
	mvcc_span_take(f.m, &sp);
	check_span(&sp, r2, "k/2", "m");
	/* Deleting nothing writes nothing. */
	fx_del(&f, "absent", NULL);
	mvcc_span_take(f.m, &sp);
	CHECK(!sp.any);

	/* The buffers handed back are reused, so a key longer than either grows them. */
	char longkey[3000];
	memset(longkey, 'z', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	int64_t r3 = fx_put(&f, "a", "v", 0);
	fx_put(&f, longkey, "v", 0);
	mvcc_span_take(f.m, &sp);
	check_span(&sp, r3, "a", longkey);

	mvcc_span_free(&sp);
	fx_close(&f);
	return check_done("test_mvcc_span");
}
