/*
 * controllers/controllers.h — the built-in controllers (docs/controllers.md).
 *
 * Controllers run on the member that is the Raft leader: they start when it
 * becomes leader and stop when it steps down. They are clients of core only
 * (range, txn, lease, watch), acting on keys under the reserved prefix
 * /_meta/; brokers and storage nodes are ordinary etcd clients.
 */
#ifndef METAD_CONTROLLERS_CONTROLLERS_H
#define METAD_CONTROLLERS_CONTROLLERS_H

#include <stdint.h>

struct core;
struct controllers;

/* Milliseconds on some monotonic scale; tests inject their own clock. */
struct ctl_clock {
	int64_t (*now_ms)(void *arg);
	void *arg;
};

struct ctl_config {
	struct ctl_clock clock;  /* NULL now_ms: CLOCK_MONOTONIC */
	int64_t poll_ms;         /* how often leadership and timers are checked; 0 = 20 */
};

/* Start the controllers' thread on c (borrowed; it must outlive the
 * controllers). Returns 0, or -1 when out of memory or no thread could be
 * started. */
int controllers_start(struct core *c, const struct ctl_config *cfg, struct controllers **out);
/* Stop every controller and the thread, free everything; NULL is a no-op.
 * Before core_close. */
void controllers_stop(struct controllers *ctl);

#endif
