/*
 * core/log.c — one JSON line per event on stderr, in zap's shape and etcd's
 * words (operators' scripts and test harnesses wait for those lines).
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "core/core.h"

void core_log(const char *level, const char *fmt, ...)
{
	char ts[64], msg[512];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* The formatted text is ours (ids, numbers, URLs): no quotes to escape. */
	fprintf(stderr, "{\"level\":\"%s\",\"ts\":\"%s.%03ldZ\",\"msg\":\"%s\"}\n", level, ts,
		now.tv_nsec / 1000000, msg);
	fflush(stderr);
}

void core_log_fields(const char *level, const char *msg, const char *fields)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "{\"level\":\"%s\",\"ts\":\"%s.%03ldZ\",\"msg\":\"%s\"%s%s}\n", level, ts,
		now.tv_nsec / 1000000, msg, fields[0] ? "," : "", fields);
	fflush(stderr);
}
