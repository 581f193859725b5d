/*
 * tools/bench/hist.h — a log-linear latency histogram with fixed memory.
 *
 * Values (nanoseconds) are binned by their power of two and, inside it, by
 * the next BENCH_HIST_SUB_BITS bits, so every bin is within 1/64 (1.6%) of
 * its value whatever the range, and recording is a few instructions with no
 * allocation: the hot path of every completed request goes through here.
 * One histogram per CQ thread, merged at the end, so no locks and no atomics.
 */
#ifndef METAD_BENCH_HIST_H
#define METAD_BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 6
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_BINS ((64 - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t sum;   /* of values, for the average */
	uint64_t min;
	uint64_t max;
	uint64_t bins[BENCH_HIST_BINS];
};

/* Empty histogram (min starts at UINT64_MAX). */
void bench_hist_init(struct bench_hist *h);

void bench_hist_record(struct bench_hist *h, uint64_t v);

/* Adds every sample of src into dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* The value at quantile q (0..1): the midpoint of the bin holding it, clamped
 * to [min, max]. 0 when the histogram is empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

/* Number of samples in [lo, hi). */
uint64_t bench_hist_count_between(const struct bench_hist *h, uint64_t lo, uint64_t hi);

#endif
