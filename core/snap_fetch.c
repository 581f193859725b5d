/*
 * core/snap_fetch.c — a member behind the leader's compacted log: the
 * leader's Raft snapshot message names index S; unless the store already
 * holds S, a thread fetches the leader's store file (peer_snap.c), checks
 * its hash, and the node installs it and only then steps the message, so
 * Raft never believes in a snapshot the store does not hold. One fetch at
 * a time; the leader repeats its message until the member answers, so a
 * message that arrives meanwhile, or a fetch that fails, costs nothing but
 * time (a broken transfer resumes from the part already fetched).
 *
 * The leader side (snap_serve) hands out its newest file while it still
 * covers the Raft snapshot index, and makes a new one otherwise.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core_internal.h"
#include "core/node_internal.h"
#include "core/peer.h"
#include "core/snapshot.h"

#define FETCH_IDLE_MS 60000 /* the leader may be dumping a large store first */

struct snap_fetch {
	struct node_op op; /* first: the op is the fetch */
	struct core *c;
	struct raft_message msg; /* the snapshot message, stepped once installed */
	char part[4200];
	int result;   /* 0: fetched and verified */
	bool damaged; /* fetched whole but the hash disagrees: not resumed */
	uint64_t index;
	char err[512];
};

static void fetch_free(struct snap_fetch *f)
{
	raft_message_release(&f->msg);
	free(f);
}

/* Node thread, posted by the fetch thread as it ends. */
static void fetched(struct core *c, struct node_op *op)
{
	struct snap_fetch *f = (struct snap_fetch *)op;
	c->fetch = NULL;
	if (atomic_load(&c->fetch_stop)) { /* closing: the node may be gone */
		fetch_free(f);
		return;
	}
	uint64_t want = f->msg.snapshot.meta.index;
	if (f->result == 0 && f->index < want) {
		f->result = -1;
		snprintf(f->err, sizeof(f->err), "the leader's store holds index %llu, short of %llu",
			 (unsigned long long)f->index, (unsigned long long)want);
	}
	if (f->result == 0 && !atomic_load(&c->removed)) {
		core_log("info", "installing snapshot at index %llu from leader %llx",
			 (unsigned long long)f->index, (unsigned long long)f->msg.from);
		int rv = snap_install(c, f->part, f->index);
		if (rv != DB_OK)
			node_fatal("snapshot install", db_strerror(rv));
		core_log("info", "installed snapshot at index %llu; raft snapshot index %llu",
			 (unsigned long long)f->index, (unsigned long long)want);
		(void)raft_step(c->raft, &f->msg);
	} else if (f->result != 0) {
		core_log("warn", "fetching a snapshot from %llx: %s", (unsigned long long)f->msg.from,
			 f->err);
		if (f->damaged)
			unlink(f->part); /* a broken transfer resumes; a bad file does not */
	}
	fetch_free(f);
}

static void *fetch_main(void *arg)
{
	struct snap_fetch *f = arg;
	struct core *c = f->c;
	pthread_setname_np(pthread_self(), "metad-snap-fetch");
	size_t n = 0;
	char **urls = members_peer_urls(&c->members, f->msg.from, &n);
	f->result = -1;
	if (urls == NULL || n == 0)
		snprintf(f->err, sizeof(f->err), "no peer URL for the leader");
	else if (peer_fetch_snapshot(c->peers, (const char *const *)urls, n, f->part, FETCH_IDLE_MS,
				     &c->fetch_stop, f->err, sizeof(f->err)) == 0) {
		f->result = snap_verify(c, f->part, &f->index);
		f->damaged = f->result != 0;
		if (f->damaged)
			snprintf(f->err, sizeof(f->err), "the fetched snapshot is damaged (hash mismatch)");
	}
	members_free_urls(urls, n);
	writer_op(c, &f->op);
	pthread_mutex_lock(&c->mu);
	c->fetch_threads--;
	pthread_cond_broadcast(&c->pcv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

void snap_fetch_or_step(struct core *c, struct raft_message *m)
{
	if (m->snapshot.meta.index <= mvcc_consistent_index(c->mvcc)) {
		/* The store holds it already (an install, or a replay). */
		(void)raft_step(c->raft, m);
		raft_message_release(m);
		return;
	}
	char dir[4096];
	struct snap_fetch *f = c->fetch || c->peers == NULL ? NULL : calloc(1, sizeof(*f));
	if (f == NULL || snap_dir(c, dir, sizeof(dir)) != 0) {
		free(f);
		raft_message_release(m); /* repeated by the leader */
		return;
	}
	f->msg = *m;
	memset(m, 0, sizeof(*m));
	snprintf(f->part, sizeof(f->part), "%s/fetch.part", dir);
	f->op.fn = fetched;
	f->c = c;
	core_log("info", "fetching a snapshot from leader %llx (raft snapshot index %llu, applied %llu)",
		 (unsigned long long)f->msg.from, (unsigned long long)f->msg.snapshot.meta.index,
		 (unsigned long long)mvcc_consistent_index(c->mvcc));
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&c->mu);
	c->fetch_threads++;
	pthread_mutex_unlock(&c->mu);
	if (pthread_create(&th, &attr, fetch_main, f) != 0) {
		pthread_mutex_lock(&c->mu);
		c->fetch_threads--;
		pthread_mutex_unlock(&c->mu);
		fetch_free(f);
	} else {
		c->fetch = f;
	}
	pthread_attr_destroy(&attr);
}

void snap_fetch_stop(struct core *c)
{
	atomic_store(&c->fetch_stop, true);
	pthread_mutex_lock(&c->mu);
	while (c->fetch_threads > 0)
		pthread_cond_wait(&c->pcv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	/* Its op, if the writer did not run it, is run by writer_drain. */
}

/* ---- the leader's side ---- */

/* Our files "<member>-<index>.snap": the newest, by index. */
static bool newest(const char *dir, uint64_t self, char *name, size_t cap, uint64_t *index)
{
	DIR *d = opendir(dir);
	bool found = false;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		unsigned long long member, idx;
		char tail[8];
		if (sscanf(e->d_name, "%16llx-%16llx%7s", &member, &idx, tail) != 3 ||
		    strcmp(tail, ".snap") != 0 || member != self || (found && idx <= *index))
			continue;
		found = true;
		*index = idx;
		snprintf(name, cap, "%s", e->d_name);
	}
	if (d != NULL)
		closedir(d);
	return found;
}

static void remove_others(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	char path[4400];
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".snap") == 0 && strcmp(e->d_name, keep) != 0 &&
		    strcmp(e->d_name, "install.snap") != 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	if (d != NULL)
		closedir(d);
}

int snap_serve(void *arg, const char *have_id, char **path)
{
	struct core *c = arg;
	char dir[4096], name[256], full[4400];
	if (snap_dir(c, dir, sizeof(dir)) != 0)
		return -1;
	if (have_id[0] != 0 && strchr(have_id, '/') == NULL && strlen(have_id) < 200) {
		snprintf(full, sizeof(full), "%s/%s.snap", dir, have_id);
		if (access(full, R_OK) == 0)
			return (*path = strdup(full)) ? 0 : -1; /* resume it */
	}
	uint64_t index = 0;
	if (!newest(dir, c->member_id, name, sizeof(name), &index) ||
	    index < atomic_load(&c->snap_index)) {
		if (snap_make(c, full, sizeof(full), &index) != 0) {
			core_log("warn", "cannot write a snapshot file in %s", dir);
			return -1;
		}
		const char *base = strrchr(full, '/');
		snprintf(name, sizeof(name), "%.200s", base ? base + 1 : full);
		core_log("info", "made a snapshot of the store at index %llu to send",
			 (unsigned long long)index);
	}
	remove_others(dir, name);
	snprintf(full, sizeof(full), "%s/%s", dir, name);
	return (*path = strdup(full)) ? 0 : -1;
}
