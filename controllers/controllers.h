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

#include <stdbool.h>
#include <stddef.h>
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

/* Whether a client's write of [key, end) (etcd's range rules: end_len 0 is
 * key alone, end "\0" every key >= key; del: a delete rather than a put)
 * would change a key that only the controllers write (docs/controllers.md,
 * "Who may write"). Pure and thread-safe: core calls it for every client
 * write (struct core_config's reserved hook). */
bool controllers_owned(const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
		       bool del);

#endif
