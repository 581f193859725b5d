/*
 * tests/core/core_fixture.h — a lone member's core in a temporary data
 * dir, and waiting for one reply of its asynchronous calls, for the core
 * tests that drive the whole of core.
 */
#ifndef METAD_TESTS_CORE_FIXTURE_H
#define METAD_TESTS_CORE_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/core.h"

/* ---- one call, waited for ---- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct core_reply *r;
};

static void done(void *arg, struct core_reply *r)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->r = r;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->r = NULL;
}

/* The reply's error (-1 if none came within 20 s); the reply is kept in
 * w->r for the caller to read and free, or freed when keep is false. */
static int wait_err(struct waiter *w, bool keep)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 20;
	pthread_mutex_lock(&w->mu);
	while (w->r == NULL)
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0)
			break;
	pthread_mutex_unlock(&w->mu);
	if (w->r == NULL)
		return -1;
	int err = w->r->err;
	if (!keep) {
		core_reply_free(w->r);
		w->r = NULL;
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	return err;
}

/* ---- the member ---- */

/* A lone member in dir (made from the mkdtemp template it holds), ready
 * to serve; exits the test on failure. */
static struct core *fixture_open(char *dir)
{
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "mkdtemp %s failed\n", dir);
		exit(1);
	}
	const char *client[1] = {"http://127.0.0.1:2379"}, *peer[1] = {"http://127.0.0.1:2380"};
	struct core_config cfg = {
		.name = "t",
		.data_dir = dir,
		.client_urls = client,
		.n_client_urls = 1,
		.peer_urls = peer,
		.n_peer_urls = 1,
		.heartbeat_ms = 100,
		.election_ms = 1000,
		.snapshot_count = 100000,
		.catchup_entries = 5000,
		.max_request_bytes = 1572864,
		.max_txn_ops = 128,
		.cache_mb = 16,
		.bcrypt_cost = 4,
	};
	char err[512] = "";
	struct core *c = NULL;
	if (core_open(&cfg, &c, err, sizeof(err)) != CORE_OK) {
		fprintf(stderr, "core_open: %s\n", err);
		exit(1);
	}
	if (!core_wait_ready(c, 20000)) {
		fprintf(stderr, "the member did not become ready\n");
		exit(1);
	}
	return c;
}

/* Close the member and remove its dir; the test's exit status. */
static int fixture_close(struct core *c, const char *dir, const char *name, int failures)
{
	core_close(c);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	if (failures)
		fprintf(stderr, "%s: %d failure(s)\n", name, failures);
	return failures != 0;
}

#endif
