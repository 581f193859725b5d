/*
 * core/autocompact.c — etcd 3.4's auto-compaction: the schedule (pure, on an
 * injected clock) and the thread that runs it against a core.
 *
 * A compaction is an ordinary Compact request through core_compact, made by
 * the leader only: it goes through the log, so every member compacts once,
 * at the same revision, whoever sampled what.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/autocompact.h"
#include "core/core_internal.h"

/*------------------------------------------------------------------------
 * The schedule
 *----------------------------------------------------------------------*/

void ac_format_duration(int64_t ns, char *buf, size_t len)
{
	if (ns == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (ns < AC_SECOND_NS) {
		const char *unit = "ns";
		double v = (double)ns;
		if (ns >= 1000000) {
			unit = "ms";
			v = ns / 1e6;
		} else if (ns >= 1000) {
			unit = "µs";
			v = ns / 1e3;
		}
		snprintf(buf, len, "%.9g%s", v, unit);
		return;
	}
	int64_t h = ns / AC_HOUR_NS;
	int64_t m = ns % AC_HOUR_NS / (60 * AC_SECOND_NS);
	double s = (double)(ns % (60 * AC_SECOND_NS)) / 1e9;
	if (h > 0)
		snprintf(buf, len, "%" PRId64 "h%" PRId64 "m%.9gs", h, m, s);
	else if (m > 0)
		snprintf(buf, len, "%" PRId64 "m%.9gs", m, s);
	else
		snprintf(buf, len, "%.9gs", s);
}

static void sample(struct ac_sched *s)
{
	if (s->mode != CORE_AUTOCOMPACT_PERIODIC)
		return;
	if (s->n_revs == s->max_revs) { /* the window slides: revs[0] is the oldest kept */
		memmove(s->revs, s->revs + 1, (s->n_revs - 1) * sizeof(*s->revs));
		s->n_revs--;
	}
	s->revs[s->n_revs++] = s->env.rev(s->env.arg);
}

int ac_sched_init(struct ac_sched *s, int mode, int64_t retention, const struct ac_env *env)
{
	memset(s, 0, sizeof(*s));
	s->env = *env;
	s->mode = mode;
	s->retention = retention;
	if (mode == CORE_AUTOCOMPACT_PERIODIC) {
		s->compact_ns = retention < AC_HOUR_NS ? retention : AC_HOUR_NS;
		s->interval_ns = s->compact_ns / 10;
		if (s->interval_ns == 0)
			s->interval_ns = 1;
		s->base_ns = retention;
		/* etcd keeps period/interval + 1 samples: the oldest is the
		 * revision of about one retention ago. */
		s->max_revs = (size_t)(retention / s->interval_ns) + 1;
		s->revs = calloc(s->max_revs, sizeof(*s->revs));
		if (s->revs == NULL)
			return CORE_ENOMEM;
	} else {
		s->interval_ns = AC_REVISION_INTERVAL_NS;
	}
	s->last_ok_ns = s->env.now_ns(s->env.arg);
	sample(s);
	return CORE_OK;
}

void ac_sched_free(struct ac_sched *s)
{
	free(s->revs);
	s->revs = NULL;
}

int64_t ac_sched_first(const struct ac_sched *s)
{
	return s->last_ok_ns + s->interval_ns;
}

static void log_result(struct ac_sched *s, const char *what, int64_t rev, int64_t took_ns,
		       int err)
{
	char period[32], took[32], retry[32], msg[64];
	ac_format_duration(took_ns, took, sizeof(took));
	ac_format_duration(s->interval_ns, retry, sizeof(retry));
	json_t *fields;
	if (s->mode == CORE_AUTOCOMPACT_PERIODIC) {
		ac_format_duration(s->retention, period, sizeof(period));
		fields = json_pack("{s:I,s:s}", "revision", (json_int_t)rev, "compact-period", period);
	} else {
		fields = json_pack("{s:I,s:I}", "revision", (json_int_t)rev,
				   "revision-compaction-retention", (json_int_t)s->retention);
	}
	if (fields != NULL && strcmp(what, "completed") == 0)
		json_object_set_new(fields, "took", json_string(took));
	else if (fields != NULL && strcmp(what, "failed") == 0) {
		json_object_set_new(fields, "retry-interval", json_string(retry));
		json_object_set_new(fields, "error", json_string(core_strerror(err)));
	}
	snprintf(msg, sizeof(msg), "%s auto %s compaction", what,
		 s->mode == CORE_AUTOCOMPACT_PERIODIC ? "periodic" : "revision");
	s->env.log(s->env.arg, strcmp(what, "failed") == 0 ? "warn" : "info", msg, fields);
	json_decref(fields);
}

/* Compact at rev; whether it counts as done (etcd: success or "already
 * compacted"). */
static bool compact(struct ac_sched *s, int64_t rev, int64_t since_ns)
{
	log_result(s, "starting", rev, 0, CORE_OK);
	int err = s->env.compact(s->env.arg, rev);
	int64_t now = s->env.now_ns(s->env.arg);
	if (err == CORE_OK || err == CORE_ECOMPACTED) {
		log_result(s, "completed", rev, now - since_ns, err);
		return true;
	}
	log_result(s, "failed", rev, 0, err);
	return false;
}

static void step_periodic(struct ac_sched *s, int64_t now)
{
	if (!s->env.leader(s->env.arg))
		return; /* paused: only sample */
	if (now - s->last_ok_ns < s->base_ns)
		return;
	/* After the first attempt (whatever its outcome), the wait between
	 * compactions is min(retention, 1 h). */
	s->base_ns = s->compact_ns;
	int64_t rev = s->revs[0];
	/* etcd logs "took" as the time since the last success. */
	if (compact(s, rev, s->last_ok_ns))
		s->last_ok_ns = s->env.now_ns(s->env.arg);
}

static void step_revision(struct ac_sched *s, int64_t now)
{
	if (!s->env.leader(s->env.arg))
		return;
	int64_t rev = s->env.rev(s->env.arg) - s->retention;
	if (rev <= 0 || rev == s->prev)
		return;
	if (compact(s, rev, now))
		s->prev = rev;
}

int64_t ac_sched_step(struct ac_sched *s)
{
	int64_t now = s->env.now_ns(s->env.arg);
	if (s->mode == CORE_AUTOCOMPACT_PERIODIC)
		step_periodic(s, now);
	else
		step_revision(s, now);
	sample(s);
	/* etcd waits a full interval after the tick's work. */
	return s->env.now_ns(s->env.arg) + s->interval_ns;
}

/*------------------------------------------------------------------------
 * The thread
 *----------------------------------------------------------------------*/

struct autocompact {
	struct core *c;
	struct ac_sched sched;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stopping;
	bool started;
	int inflight;  /* compactions submitted and not yet answered */
	bool answered; /* the last one was answered, with err */
	int err;
};

static int64_t mono_ns(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * AC_SECOND_NS + ts.tv_nsec;
}

static int64_t core_rev(void *arg)
{
	struct autocompact *a = arg;
	return mvcc_rev(a->c->mvcc);
}

static bool core_leads(void *arg)
{
	struct autocompact *a = arg;
	return atomic_load(&a->c->is_leader);
}

static void compacted(void *arg, struct core_reply *reply)
{
	struct autocompact *a = arg;
	pthread_mutex_lock(&a->mu);
	a->inflight--;
	a->answered = true;
	a->err = reply->err;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	core_reply_free(reply);
}

/* A client's Compact, as etcd's compactor sends to its own server; waits
 * for the answer unless the core stops meanwhile. */
static int core_compact_at(void *arg, int64_t rev)
{
	struct autocompact *a = arg;
	Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	req.revision = rev;
	pthread_mutex_lock(&a->mu);
	a->inflight++;
	a->answered = false;
	pthread_mutex_unlock(&a->mu);
	core_compact(a->c, &req, compacted, a);
	pthread_mutex_lock(&a->mu);
	while (!a->answered && !a->stopping)
		pthread_cond_wait(&a->cv, &a->mu);
	int err = a->answered ? a->err : CORE_ESTOPPED;
	pthread_mutex_unlock(&a->mu);
	return err;
}

static void log_fields(void *arg, const char *level, const char *msg, json_t *fields)
{
	(void)arg;
	log_json_at(__FILE__, __LINE__, level, msg, fields);
}

static void *run(void *arg)
{
	struct autocompact *a = arg;
	int64_t next = ac_sched_first(&a->sched);
	pthread_mutex_lock(&a->mu);
	while (!a->stopping) {
		int64_t now = mono_ns(NULL);
		if (now < next) {
			struct timespec ts = {next / AC_SECOND_NS, next % AC_SECOND_NS};
			pthread_cond_timedwait(&a->cv, &a->mu, &ts);
			continue;
		}
		pthread_mutex_unlock(&a->mu);
		next = ac_sched_step(&a->sched);
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

int autocompact_start(struct core *c)
{
	int64_t retention = c->cfg.auto_compaction_retention;
	if (retention <= 0)
		return CORE_OK;
	struct autocompact *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return CORE_ENOMEM;
	a->c = c;
	pthread_mutex_init(&a->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cv, &ca);
	pthread_condattr_destroy(&ca);
	struct ac_env env = {mono_ns, core_rev, core_leads, core_compact_at, log_fields, a};
	c->autocompact = a;
	if (ac_sched_init(&a->sched, c->cfg.auto_compaction_mode, retention, &env) != CORE_OK)
		return CORE_ENOMEM;
	/* Test-only: revision mode's 5-minute tick is fixed in etcd; end-to-end
	 * tests shorten it (milliseconds) instead of waiting minutes. */
	const char *t = getenv("METAD_TEST_REVISION_COMPACT_INTERVAL_MS");
	if (t != NULL && atoll(t) > 0 && c->cfg.auto_compaction_mode == CORE_AUTOCOMPACT_REVISION) {
		a->sched.interval_ns = atoll(t) * INT64_C(1000000);
		core_log("warn", "auto revision compaction every %s ms (test setting)", t);
	}
	char period[32];
	if (c->cfg.auto_compaction_mode == CORE_AUTOCOMPACT_PERIODIC)
		ac_format_duration(retention, period, sizeof(period));
	else
		snprintf(period, sizeof(period), "%" PRId64, retention);
	char interval[32];
	ac_format_duration(a->sched.interval_ns, interval, sizeof(interval));
	core_log_kv("info", "enabled auto compaction", "{s:s,s:s,s:s}", "auto-compaction-mode",
		    c->cfg.auto_compaction_mode == CORE_AUTOCOMPACT_PERIODIC ? "periodic" : "revision",
		    "auto-compaction-retention", period, "auto-compaction-interval", interval);
	if (pthread_create(&a->thread, NULL, run, a) != 0)
		return CORE_ENOMEM;
	a->started = true;
	return CORE_OK;
}

void autocompact_stop(struct core *c)
{
	struct autocompact *a = c->autocompact;
	if (a == NULL || !a->started)
		return;
	pthread_mutex_lock(&a->mu);
	a->stopping = true;
	pthread_cond_broadcast(&a->cv);
	pthread_mutex_unlock(&a->mu);
	pthread_join(a->thread, NULL);
	a->started = false;
}

void autocompact_free(struct core *c)
{
	struct autocompact *a = c->autocompact;
	if (a == NULL)
		return;
	autocompact_stop(c);
	ac_sched_free(&a->sched);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
	c->autocompact = NULL;
}
