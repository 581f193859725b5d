/*
 * core/snapshot.h — Raft snapshots of the store (snapshot.c: the file;
 * snap_fetch.c: a member behind the leader's log fetching one). Internal
 * to core.
 */
#ifndef METAD_CORE_SNAPSHOT_H
#define METAD_CORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

struct core;

/* <data-dir>/snap, created if missing. 0 or -1. */
int snap_dir(struct core *c, char *buf, size_t cap);

/* Leader: dump the applied store into a new file of the snap dir; *index
 * is the consistent index it holds. The caller deletes it. 0 or -1. */
int snap_make(struct core *c, char *path, size_t cap, uint64_t *index);

/* The file is whole (hash), of this cluster; *index as made. 0 or -1. */
int snap_verify(struct core *c, const char *path, uint64_t *index);

/* Node thread: replace the store with a verified file's (which is consumed),
 * crash-safely, and reload what core keeps in memory. DB_* code. */
int snap_install(struct core *c, const char *path, uint64_t index);

/* Start-up, before the store is read: finish an install a crash
 * interrupted; drop leftover files. 0 or -1 with err. */
int snap_recover(struct core *c, char *err, size_t errlen);

/* A snapshot message for this member (node thread, from node_recv's
 * delivery): when the store is behind m's index, fetch the leader's store
 * first and step m once it is installed; otherwise step it now. Takes m. */
void snap_fetch_or_step(struct core *c, struct raft_message *m);

/* Serve a member's fetch (the transport's snapshot thread): the file to
 * stream for a fetcher holding part of have_id. 0 with *path (malloc'ed)
 * or -1. */
int snap_serve(void *arg, const char *have_id, char **path);

/* Stop a fetch under way and wait for its thread (core_close, after the
 * writer stopped and before the peer transport does). */
void snap_fetch_stop(struct core *c);

#endif
