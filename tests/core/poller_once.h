/*
 * tests/core/poller_once.h — the process's polling thread for tests that
 * start peer transports without core_open (which starts one).
 */
#ifndef METAD_TESTS_POLLER_ONCE_H
#define METAD_TESTS_POLLER_ONCE_H

#include <stdio.h>
#include <stdlib.h>

#include "core/poller.h"

static struct core_poller *poller(void)
{
	static struct core_poller *p;
	if (p == NULL && core_poller_start(&p) != 0) {
		fprintf(stderr, "cannot start the polling thread\n");
		exit(1);
	}
	return p;
}

#endif
