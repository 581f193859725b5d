/*
 * tests/core/test_autocompact.c — etcd 3.4's auto-compaction schedule on a
 * fake clock: when each compaction comes, at which revision, that only a
 * leader compacts, how failures are retried, and the log lines.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/autocompact.h"
#include "core/core.h"
#include "tests/expect.h"

#define MIN (60 * AC_SECOND_NS)
#define MAXC 64

struct world {
	int64_t now;
	int64_t rev;
	bool leader;
	int fail; /* the next compactions that fail (CORE_ETIMEOUT) */
	int64_t at[MAXC], when[MAXC]; /* compactions asked for */
	int n;
	char last_msg[64], last_fields[256], last_level[8];
	int logs;
};

static int64_t w_now(void *arg)
{
	return ((struct world *)arg)->now;
}

static int64_t w_rev(void *arg)
{
	return ((struct world *)arg)->rev;
}

static bool w_leader(void *arg)
{
	return ((struct world *)arg)->leader;
}

static int w_compact(void *arg, int64_t rev)
{
	struct world *w = arg;
	if (w->n < MAXC) {
		w->at[w->n] = rev;
		w->when[w->n] = w->now;
	}
	w->n++;
	if (w->fail > 0) {
		w->fail--;
		return CORE_ETIMEOUT;
	}
	return CORE_OK;
}

static void w_log(void *arg, const char *level, const char *msg, json_t *fields)
{
	struct world *w = arg;
	char *text = json_dumps(fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
	snprintf(w->last_level, sizeof(w->last_level), "%s", level);
	snprintf(w->last_msg, sizeof(w->last_msg), "%s", msg);
	snprintf(w->last_fields, sizeof(w->last_fields), "%s", text ? text : "");
	free(text);
	w->logs++;
}

static void start(struct world *w, struct ac_sched *s, int mode, int64_t retention)
{
	memset(w, 0, sizeof(*w));
	w->rev = 1;
	w->leader = true;
	struct ac_env env = {w_now, w_rev, w_leader, w_compact, w_log, w};
	EXPECT(ac_sched_init(s, mode, retention, &env) == CORE_OK);
}

/* Run ticks until `until`; before each, the revision is 100 * minutes
 * elapsed + 1 (so a sample names the time it was taken). */
static void run_until(struct world *w, struct ac_sched *s, int64_t *next, int64_t until)
{
	while (*next <= until) {
		w->now = *next;
		w->rev = w->now / MIN * 100 + 1;
		*next = ac_sched_step(s);
	}
}

static void test_periodic_one_hour(void)
{
	struct world w;
	struct ac_sched s;
	start(&w, &s, CORE_AUTOCOMPACT_PERIODIC, AC_HOUR_NS);
	int64_t next = ac_sched_first(&s);
	EXPECT(next == 6 * MIN); /* sampled every 1h/10 */
	run_until(&w, &s, &next, 59 * MIN);
	EXPECT(w.n == 0); /* nothing before the retention has passed */
	run_until(&w, &s, &next, 60 * MIN);
	/* The first at 1 h, at the revision sampled at start. */
	EXPECT(w.n == 1 && w.when[0] == 60 * MIN && w.at[0] == 1);
	EXPECT(strcmp(w.last_msg, "completed auto periodic compaction") == 0);
	EXPECT(strstr(w.last_fields, "\"revision\":1,\"compact-period\":\"1h0m0s\"") != NULL);
	EXPECT(strstr(w.last_fields, "\"took\":\"1h0m0s\"") != NULL);
	run_until(&w, &s, &next, 119 * MIN);
	EXPECT(w.n == 1);
	run_until(&w, &s, &next, 120 * MIN);
	/* Then every hour, at the oldest of the 11 samples etcd keeps: the
	 * one taken 11 ticks (66 min) before. */
	EXPECT(w.n == 2 && w.when[1] == 120 * MIN && w.at[1] == 54 * 100 + 1);
	run_until(&w, &s, &next, 180 * MIN);
	EXPECT(w.n == 3 && w.when[2] == 180 * MIN && w.at[2] == 114 * 100 + 1);
	ac_sched_free(&s);
}

static void test_periodic_longer_than_an_hour(void)
{
	struct world w;
	struct ac_sched s;
	start(&w, &s, CORE_AUTOCOMPACT_PERIODIC, 2 * AC_HOUR_NS);
	int64_t next = ac_sched_first(&s);
	EXPECT(next == 6 * MIN); /* min(2h, 1h)/10 */
	run_until(&w, &s, &next, 119 * MIN);
	EXPECT(w.n == 0);
	run_until(&w, &s, &next, 120 * MIN);
	EXPECT(w.n == 1 && w.at[0] == 1 && w.when[0] == 120 * MIN);
	run_until(&w, &s, &next, 180 * MIN);
	/* Hourly after the first; the window holds 2h/6min + 1 = 21 samples. */
	EXPECT(w.n == 2 && w.when[1] == 180 * MIN && w.at[1] == 54 * 100 + 1);
	ac_sched_free(&s);
}

static void test_periodic_short(void)
{
	struct world w;
	struct ac_sched s;
	start(&w, &s, CORE_AUTOCOMPACT_PERIODIC, 2 * AC_SECOND_NS);
	int64_t next = ac_sched_first(&s);
	EXPECT(next == 200000000); /* 2s/10 */
	int ticks = 0;
	while (w.n == 0 && ticks < 100) {
		w.now = next;
		next = ac_sched_step(&s);
		ticks++;
	}
	EXPECT(ticks == 10 && w.now == 2 * AC_SECOND_NS);
	EXPECT(strstr(w.last_fields, "\"compact-period\":\"2s\"") != NULL);
	ac_sched_free(&s);
}

static void test_periodic_follower_and_failure(void)
{
	struct world w;
	struct ac_sched s;
	start(&w, &s, CORE_AUTOCOMPACT_PERIODIC, AC_HOUR_NS);
	int64_t next = ac_sched_first(&s);
	w.leader = false;
	run_until(&w, &s, &next, 90 * MIN);
	EXPECT(w.n == 0); /* a follower never compacts, but keeps sampling */
	w.leader = true;
	w.fail = 1;
	run_until(&w, &s, &next, 96 * MIN);
	/* Overdue: the first tick as leader tries, at the oldest sample (the
	 * window of 11 ending at 90 min starts at 30 min). */
	EXPECT(w.n == 1 && w.when[0] == 96 * MIN && w.at[0] == 30 * 100 + 1);
	EXPECT(strcmp(w.last_msg, "failed auto periodic compaction") == 0);
	EXPECT(strcmp(w.last_level, "warn") == 0);
	EXPECT(strstr(w.last_fields, "\"retry-interval\":\"6m0s\"") != NULL);
	EXPECT(strstr(w.last_fields, "etcdserver: request timed out") != NULL);
	run_until(&w, &s, &next, 102 * MIN);
	/* Retried one tick later, since the last success (start) is > 1h ago. */
	EXPECT(w.n == 2 && w.when[1] == 102 * MIN && w.at[1] == 36 * 100 + 1);
	EXPECT(strcmp(w.last_msg, "completed auto periodic compaction") == 0);
	run_until(&w, &s, &next, 161 * MIN);
	EXPECT(w.n == 2);
	run_until(&w, &s, &next, 162 * MIN);
	EXPECT(w.n == 3 && w.when[2] == 162 * MIN);
	ac_sched_free(&s);
}

static void test_revision_mode(void)
{
	struct world w;
	struct ac_sched s;
	start(&w, &s, CORE_AUTOCOMPACT_REVISION, 1000);
	int64_t next = ac_sched_first(&s);
	EXPECT(next == 5 * MIN);
	w.now = next;
	w.rev = 900; /* current - N <= 0: nothing */
	next = ac_sched_step(&s);
	EXPECT(w.n == 0 && next == 10 * MIN);
	w.now = next;
	w.rev = 1500;
	next = ac_sched_step(&s);
	EXPECT(w.n == 1 && w.at[0] == 500);
	EXPECT(strcmp(w.last_msg, "completed auto revision compaction") == 0);
	EXPECT(strstr(w.last_fields,
		      "\"revision\":500,\"revision-compaction-retention\":1000") != NULL);
	w.now = next; /* no writes since: the same revision is not asked again */
	int logs = w.logs;
	next = ac_sched_step(&s);
	EXPECT(w.n == 1 && w.logs == logs);
	w.now = next;
	w.rev = 1600;
	w.leader = false; /* a follower never compacts */
	next = ac_sched_step(&s);
	EXPECT(w.n == 1);
	w.now = next;
	w.leader = true;
	w.fail = 1;
	next = ac_sched_step(&s);
	EXPECT(w.n == 2 && w.at[1] == 600);
	EXPECT(strcmp(w.last_msg, "failed auto revision compaction") == 0);
	EXPECT(strstr(w.last_fields, "\"retry-interval\":\"5m0s\"") != NULL);
	w.now = next; /* retried: a failure does not count as done */
	next = ac_sched_step(&s);
	EXPECT(w.n == 3 && w.at[2] == 600 && w.when[2] == 30 * MIN);
	ac_sched_free(&s);
}

static void test_durations(void)
{
	char b[32];
	struct {
		int64_t ns;
		const char *s;
	} cases[] = {
		{0, "0s"},
		{2 * AC_SECOND_NS, "2s"},
		{200000000, "200ms"},
		{1500000000, "1.5s"},
		{6 * MIN, "6m0s"},
		{AC_HOUR_NS, "1h0m0s"},
		{AC_HOUR_NS + 90 * AC_SECOND_NS, "1h1m30s"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ac_format_duration(cases[i].ns, b, sizeof(b));
		if (strcmp(b, cases[i].s) != 0)
			fprintf(stderr, "duration %lld: got %s, want %s\n", (long long)cases[i].ns, b,
				cases[i].s);
		EXPECT(strcmp(b, cases[i].s) == 0);
	}
}

int main(void)
{
	test_periodic_one_hour();
	test_periodic_longer_than_an_hour();
	test_periodic_short();
	test_periodic_follower_and_failure();
	test_revision_mode();
	test_durations();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures ? 1 : 0;
}
