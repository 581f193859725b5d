/*
 * core/autocompact.h — etcd 3.4's auto-compaction (--auto-compaction-mode,
 * --auto-compaction-retention), as a schedule driven through injected
 * functions (clock, revision, leadership, compact, log), so a test can run
 * it tick by tick on a fake clock. Not for callers outside core/.
 *
 * Periodic mode (retention R, a duration): every I = min(R, 1 h)/10 the
 * current revision is sampled into a window of R/I + 1 samples. The first
 * compaction comes once R has passed since start, then one every
 * min(R, 1 h) after the last success, each at the oldest sample of the
 * window; a failure is retried at the next tick.
 * Revision mode (retention N, a count): every 5 minutes, compact at the
 * current revision - N, unless that is <= 0 or what the last one did.
 * Either mode compacts only while this member leads (etcd pauses its
 * compactor on followers); periodic sampling goes on meanwhile.
 */
#ifndef METAD_CORE_AUTOCOMPACT_H
#define METAD_CORE_AUTOCOMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t; /* jansson's */

#define AC_SECOND_NS INT64_C(1000000000)
#define AC_HOUR_NS (3600 * AC_SECOND_NS)
#define AC_REVISION_INTERVAL_NS (5 * 60 * AC_SECOND_NS) /* etcd's revInterval */

/* The world the schedule sees. compact returns CORE_OK, CORE_ECOMPACTED
 * (counted as done, as etcd) or another CORE_E* code (retried). log gets
 * etcd's message and its fields (a JSON object, borrowed; NULL when out of
 * memory). */
struct ac_env {
	int64_t (*now_ns)(void *arg); /* monotonic */
	int64_t (*rev)(void *arg);
	bool (*leader)(void *arg);
	int (*compact)(void *arg, int64_t rev);
	void (*log)(void *arg, const char *level, const char *msg, struct json_t *fields);
	void *arg;
};

struct ac_sched {
	struct ac_env env;
	int mode;          /* CORE_AUTOCOMPACT_PERIODIC or _REVISION */
	int64_t retention; /* periodic: ns; revision: revisions */
	int64_t interval_ns; /* between ticks */
	int64_t compact_ns;  /* periodic: min(retention, 1 h) */
	int64_t base_ns;     /* periodic: retention until the first attempt, then compact_ns */
	int64_t last_ok_ns;  /* periodic: start or the last success */
	int64_t *revs;       /* periodic: sampled revisions, oldest first */
	size_t n_revs, max_revs;
	int64_t prev; /* revision: the last revision compacted */
};

/* Start the schedule at env->now_ns() (periodic: takes the first sample).
 * retention must be > 0. Returns CORE_OK or CORE_ENOMEM. env is copied. */
int ac_sched_init(struct ac_sched *s, int mode, int64_t retention, const struct ac_env *env);
void ac_sched_free(struct ac_sched *s);
/* When the first tick is due. */
int64_t ac_sched_first(const struct ac_sched *s);
/* Run one tick (due now): maybe compact, then sample. Returns when the next
 * tick is due. */
int64_t ac_sched_step(struct ac_sched *s);

/* A Go duration string ("2s", "1h0m0s", "1.5s", "200ms") into buf. */
void ac_format_duration(int64_t ns, char *buf, size_t len);

struct core;
/* The thread that runs the schedule for core (core.c's hooks). start does
 * nothing when cfg.auto_compaction_retention is 0. stop joins the thread;
 * free releases what a compaction still in flight may answer into: call it
 * once the write path has answered everything (after the writer and the
 * responder stopped). */
int autocompact_start(struct core *c);
void autocompact_stop(struct core *c);
void autocompact_free(struct core *c);

#endif
