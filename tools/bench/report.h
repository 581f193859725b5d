/*
 * tools/bench/report.h — the result of a run, printed as text or JSON.
 */
#ifndef METAD_BENCH_REPORT_H
#define METAD_BENCH_REPORT_H

#include <grpc/grpc.h>
#include <stdint.h>

#include "stats.h"

struct bench_result {
	const char *workload;
	double seconds;                 /* first request sent .. last answer */
	struct bench_stats stats;
	int have_first_error;
	grpc_status_code first_code;
	char first_msg[256];
	double client_cpu_s;            /* this process's user+sys CPU during the run */
	/* watch / watch-latency only */
	int is_watch;
	uint64_t watchers;
	uint64_t puts;                  /* puts acknowledged */
	uint64_t events_expected;
	double event_seconds;           /* first put .. last event */
};

/* Prints r on stdout: the human summary, or one JSON object if json. */
void bench_report_print(const struct bench_result *r, int json);

#endif
