/*
 * tools/bench/stats.c — per-thread counters and the shared first error.
 */
#include "stats.h"

#include <string.h>

void bench_stats_init(struct bench_stats *s)
{
	memset(s, 0, sizeof(*s));
	for (int k = 0; k < BENCH_KIND__N; k++)
		bench_hist_init(&s->lat[k]);
}

void bench_stats_merge(struct bench_stats *dst, const struct bench_stats *src)
{
	dst->ok += src->ok;
	dst->errors += src->errors;
	dst->events += src->events;
	for (int i = 0; i < BENCH_STATUS_CODES; i++)
		dst->err_by_code[i] += src->err_by_code[i];
	for (int k = 0; k < BENCH_KIND__N; k++) {
		dst->kind_ok[k] += src->kind_ok[k];
		bench_hist_merge(&dst->lat[k], &src->lat[k]);
	}
}

void bench_stats_error(struct bench_stats *s, struct bench_first_error *fe,
		       grpc_status_code code, const char *msg, size_t msglen)
{
	s->errors++;
	if ((unsigned)code < BENCH_STATUS_CODES)
		s->err_by_code[code]++;
	else
		s->err_by_code[GRPC_STATUS_UNKNOWN]++;
	pthread_mutex_lock(&fe->mu);
	if (!fe->have) {
		fe->have = 1;
		fe->code = code;
		if (msglen >= sizeof(fe->msg))
			msglen = sizeof(fe->msg) - 1;
		memcpy(fe->msg, msg, msglen);
		fe->msg[msglen] = 0;
	}
	pthread_mutex_unlock(&fe->mu);
}

const char *bench_status_name(grpc_status_code code)
{
	static const char *const names[BENCH_STATUS_CODES] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	if ((unsigned)code < BENCH_STATUS_CODES)
		return names[code];
	return "UNKNOWN";
}
