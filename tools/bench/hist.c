/*
 * tools/bench/hist.c — log-linear histogram (see hist.h for the layout).
 *
 * Bin index: values below 2^SUB_BITS are exact; above, the exponent picks a
 * group of SUB bins and the bits just below the leading one pick the bin.
 */
#include "hist.h"

#include <string.h>

static unsigned bin_of(uint64_t v)
{
	if (v < BENCH_HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
	unsigned sub = (unsigned)(v >> (e - BENCH_HIST_SUB_BITS)) & (BENCH_HIST_SUB - 1);
	return (e - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB + sub;
}

/* Lowest value of bin i, and the width of the bin. */
static uint64_t bin_low(unsigned i, uint64_t *width)
{
	if (i < BENCH_HIST_SUB) {
		*width = 1;
		return i;
	}
	unsigned group = i / BENCH_HIST_SUB, sub = i % BENCH_HIST_SUB;
	unsigned e = group + BENCH_HIST_SUB_BITS - 1;
	unsigned shift = e - BENCH_HIST_SUB_BITS;
	*width = 1ull << shift;
	return ((uint64_t)(BENCH_HIST_SUB + sub)) << shift;
}

void bench_hist_init(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->bins[bin_of(v)]++;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	if (src->count == 0)
		return;
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	for (unsigned i = 0; i < BENCH_HIST_BINS; i++)
		dst->bins[i] += src->bins[i];
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	/* The rank of the sample at q, 1-based, rounded up as HDR does. */
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count || rank == 0)
		rank++;
	uint64_t seen = 0;
	for (unsigned i = 0; i < BENCH_HIST_BINS; i++) {
		seen += h->bins[i];
		if (seen >= rank) {
			uint64_t width, v = bin_low(i, &width);
			v += width / 2;
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

uint64_t bench_hist_count_between(const struct bench_hist *h, uint64_t lo, uint64_t hi)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < BENCH_HIST_BINS; i++) {
		uint64_t width, v = bin_low(i, &width);
		if (v >= lo && v < hi)
			n += h->bins[i];
	}
	return n;
}
