/*
 * core/deadline.h — an absolute time some nanoseconds from now, for
 * pthread_cond_timedwait (on clk: the condition variable's clock).
 */
#ifndef METAD_CORE_DEADLINE_H
#define METAD_CORE_DEADLINE_H

#include <stdint.h>
#include <time.h>

static inline struct timespec core_deadline_ns(clockid_t clk, int64_t ns)
{
	struct timespec t;
	clock_gettime(clk, &t);
	t.tv_sec += (time_t)(ns / 1000000000LL);
	t.tv_nsec += (long)(ns % 1000000000LL);
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

#endif
