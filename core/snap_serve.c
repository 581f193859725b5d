/*
 * core/snap_serve.c — the leader's side of a snapshot fetch: it hands out
 * its newest store file while that still covers the Raft snapshot index,
 * and otherwise starts making one on a thread of its own and hands it out
 * at once, growing: the transport streams what is written while the rest
 * is dumped (snap_file_state tells it how far the file has got), so the
 * member loads the store while the leader reads it. One file is made at a
 * time; a fetcher that comes meanwhile gets the same one.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core_internal.h"
#include "core/node_internal.h"
#include "core/snapshot.h"

#define APPLIED_RING 16

struct snap_maker {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool busy;         /* a file is being made */
	bool named;        /* ... and has its name: making */
	char making[4200]; /* path of the growing file */
	/* Raft's snapshot meta at the last indexes the store committed
	 * (snap_serve_applied), so that a file can say where it stands in Raft
	 * terms; under amu, apart from mu, which waits on makers. */
	pthread_mutex_t amu;
	struct raft_snapshot_meta applied[APPLIED_RING];
	unsigned next;
};

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
		if (len > 5 && strcmp(e->d_name + len - 5, ".snap") == 0 && strcmp(e->d_name, keep) != 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	}
	if (d != NULL)
		closedir(d);
}

static void named(void *arg, const char *making, uint64_t index)
{
	struct snap_maker *mk = arg;
	(void)index;
	pthread_mutex_lock(&mk->mu);
	snprintf(mk->making, sizeof(mk->making), "%s", making);
	mk->named = true;
	pthread_cond_broadcast(&mk->cv);
	pthread_mutex_unlock(&mk->mu);
}

static void *make_main(void *arg)
{
	struct core *c = arg;
	struct snap_maker *mk = c->maker;
	pthread_setname_np(pthread_self(), "metad-snap-make");
	char path[4400];
	uint64_t index = 0;
	struct db_session *s = NULL;
	int64_t t0 = node_now_ns();
	int rv = db_session_open(c->db, &s) == DB_OK ? snap_make(c, s, named, mk, path, sizeof(path), &index)
						       : -1;
	db_session_close(s);
	if (rv == 0)
		core_log("info", "made a snapshot of the store at index %llu to send in %lld ms",
			 (unsigned long long)index, (long long)((node_now_ns() - t0) / 1000000));
	else if (!atomic_load(&c->fetch_stop))
		core_log("warn", "cannot write a snapshot file of the store");
	pthread_mutex_lock(&mk->mu);
	mk->busy = false;
	mk->named = false;
	pthread_cond_broadcast(&mk->cv); /* a server waiting for a name gives up */
	pthread_mutex_unlock(&mk->mu);
	snap_thread_done(c);
	return NULL;
}

/* Start making a file unless one is under way; mk->mu held. */
static int start_making(struct core *c, struct snap_maker *mk)
{
	if (mk->busy)
		return 0;
	mk->busy = true;
	mk->named = false;
	int rv = snap_thread_start(c, make_main, c);
	if (rv != 0)
		mk->busy = false;
	return rv;
}

int snap_serve(void *arg, const char *have_id, char **path)
{
	struct core *c = arg;
	char dir[4096], name[256], full[4400];
	if (snap_dir(c, dir, sizeof(dir)) != 0 || atomic_load(&c->fetch_stop))
		return -1;
	struct snap_maker *mk = c->maker;
	bool ok_id = have_id[0] != 0 && strchr(have_id, '/') == NULL && strlen(have_id) < 200;
	if (ok_id) {
		snprintf(full, sizeof(full), "%s/%s.snap", dir, have_id);
		if (access(full, R_OK) == 0)
			return (*path = strdup(full)) ? 0 : -1; /* resume it */
	}
	pthread_mutex_lock(&mk->mu);
	uint64_t index = 0;
	if (!mk->busy && newest(dir, c->member_id, name, sizeof(name), &index) &&
	    index >= atomic_load(&c->snap_index)) {
		pthread_mutex_unlock(&mk->mu);
		remove_others(dir, name);
		snprintf(full, sizeof(full), "%s/%s", dir, name);
		return (*path = strdup(full)) ? 0 : -1;
	}
	/* The file under way (a resume of it too), or a new one. */
	int rv = start_making(c, mk);
	while (rv == 0 && mk->busy && !mk->named)
		pthread_cond_wait(&mk->cv, &mk->mu);
	rv = rv == 0 && mk->named ? 0 : -1;
	if (rv == 0)
		*path = strdup(mk->making);
	pthread_mutex_unlock(&mk->mu);
	if (rv == 0 && *path == NULL)
		return -1;
	return rv;
}

void snap_prefetch(struct core *c)
{
	struct snap_maker *mk = c->maker;
	if (mk == NULL || atomic_load(&c->fetch_stop))
		return;
	pthread_mutex_lock(&mk->mu);
	if (start_making(c, mk) != 0)
		core_log("warn", "cannot start making a snapshot file for the new member");
	pthread_mutex_unlock(&mk->mu);
}

int snap_file_state(void *arg, const char *path, uint64_t *size)
{
	(void)arg;
	struct stat st;
	size_t n = strlen(path);
	if (n < 7 || strcmp(path + n - 7, ".making") != 0)
		return stat(path, &st) == 0 ? (*size = (uint64_t)st.st_size, 1) : -1;
	/* Growing while .making exists; whole once renamed to .snap (checked
	 * in this order: the rename is the only way from one to the other). */
	if (stat(path, &st) == 0) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	char whole[4400];
	snprintf(whole, sizeof(whole), "%.*s.snap", (int)(n - 7), path);
	return stat(whole, &st) == 0 ? (*size = (uint64_t)st.st_size, 1) : -1;
}

/*
 * The dump reads its consistent index in a transaction of its own, while
 * the writer goes on committing: a few commits' worth of history lets it
 * find the meta of the index it read. Recorded before the commit, so that
 * no index a transaction can see is missing for the moment between.
 */
void snap_serve_applied(struct core *c, uint64_t index)
{
	struct snap_maker *mk = c->maker;
	struct raft_snapshot_meta m;
	if (mk == NULL || raft_snapshot_meta_at(c->raft, index, &m) != 0)
		return;
	pthread_mutex_lock(&mk->amu);
	mk->applied[mk->next++ % APPLIED_RING] = m;
	pthread_mutex_unlock(&mk->amu);
}

bool snap_serve_meta(struct core *c, uint64_t index, struct raft_snapshot_meta *m)
{
	struct snap_maker *mk = c->maker;
	bool found = false;
	pthread_mutex_lock(&mk->amu);
	for (unsigned i = 0; i < APPLIED_RING && !found; i++)
		if (mk->applied[i].index == index && index != 0) {
			*m = mk->applied[i];
			found = true;
		}
	pthread_mutex_unlock(&mk->amu);
	return found;
}

int snap_maker_init(struct core *c)
{
	struct snap_maker *mk = calloc(1, sizeof(*mk));
	if (mk == NULL)
		return -1;
	pthread_mutex_init(&mk->mu, NULL);
	pthread_mutex_init(&mk->amu, NULL);
	pthread_cond_init(&mk->cv, NULL);
	c->maker = mk;
	return 0;
}

void snap_maker_free(struct core *c)
{
	struct snap_maker *mk = c->maker;
	if (mk == NULL)
		return;
	pthread_mutex_destroy(&mk->mu);
	pthread_mutex_destroy(&mk->amu);
	pthread_cond_destroy(&mk->cv);
	free(mk);
	c->maker = NULL;
}
