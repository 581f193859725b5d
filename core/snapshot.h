/*
 * core/snapshot.h — Raft snapshots of the store (snapshot.c: the file;
 * snap_fetch.c: a member behind the leader's log fetching one). Internal
 * to core.
 */
#ifndef METAD_CORE_SNAPSHOT_H
#define METAD_CORE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

struct core;

/* <data-dir>/snap, created if missing. 0 or -1. */
int snap_dir(struct core *c, char *buf, size_t cap);

/*
 * Leader: dump the applied store (one read transaction of s) into
 * <snap dir>/<member>-<index>.snap (path); *index is the consistent index
 * it holds. Until whole the file is <member>-<index>.making, growing, and
 * named (when not NULL) is called with that path as soon as it has it, so
 * a sender can stream it while it is written. The caller deletes the file.
 * Stops early when the node closes. 0 or -1.
 */
typedef void (*snap_named_fn)(void *arg, const char *making, uint64_t index);
int snap_make(struct core *c, struct db_session *s, snap_named_fn named, void *arg, char *path,
	      size_t cap, uint64_t *index);

/*
 * Member: a snapshot file loaded as its bytes arrive (any thread), into
 * tables beside the live store. new: NULL on failure. feed: the next bytes,
 * cut anywhere; -1 once they are not a snapshot of this cluster. end: the
 * whole file was fed; checks the hash, makes the load durable, *index is
 * the consistent index it holds and *meta Raft's snapshot meta there
 * (meta->index 0: the file does not say); 0 or -1.
 */
struct snap_stream;
struct snap_stream *snap_stream_new(struct core *c);
int snap_stream_feed(struct snap_stream *st, const void *buf, size_t len);
int snap_stream_end(struct snap_stream *st, uint64_t *index, struct raft_snapshot_meta *meta);
void snap_stream_free(struct snap_stream *st); /* drops the load unless installed */

/*
 * Member: a snap_stream fed on a thread of its own (snap_loader.c), by one
 * fetching thread. start: NULL on failure. reset: a fresh stream, for a
 * file fed from its start (again). feed: copies the bytes and queues them,
 * waiting while the queue is full; -1 once the stream refused any (or the
 * member is closing). finish: waits until all is fed, stops the thread and
 * frees the loader; the stream (the caller's now, for snap_stream_end), or
 * NULL if it failed.
 */
struct snap_loader;
struct snap_loader *snap_loader_start(struct core *c);
int snap_loader_reset(struct snap_loader *l);
int snap_loader_feed(struct snap_loader *l, const void *buf, size_t len);
struct snap_stream *snap_loader_finish(struct snap_loader *l);

/* Node thread, after snap_stream_end: the loaded store becomes the store
 * (one synced switch) and what core keeps in memory is reloaded. DB_* code. */
int snap_stream_install(struct core *c, struct snap_stream *st);

/* Start-up, before the store is read: finish an older binary's install
 * that a crash interrupted; drop leftover files. 0 or -1 with err. */
int snap_recover(struct core *c, char *err, size_t errlen);

/* A snapshot message for this member (node thread, from node_recv's
 * delivery): when the store is behind m's index, fetch the leader's store
 * first and step m once it is installed; otherwise step it now. Takes m. */
void snap_fetch_or_step(struct core *c, struct raft_message *m);

/* Serve a member's fetch (the transport's snapshot thread, snap_serve.c):
 * the file to stream for a fetcher holding part of have_id, which may
 * still be growing. 0 with *path (malloc'ed) or -1. */
int snap_serve(void *arg, const char *have_id, char **path);
/* How far a file snap_serve gave has got: 1 whole (*size final), 0 still
 * growing (*size so far), -1 it never will be (its making failed). */
int snap_file_state(void *arg, const char *path, uint64_t *size);
/* Leader, node thread: start making a file now (unless one is under way),
 * for a member that will need one. */
void snap_prefetch(struct core *c);
/* Node thread, before the store commits index: what Raft would put in a
 * snapshot there, kept for a while so that a file made at that index can
 * carry it (a member then restores Raft at the store's index, not at the
 * older Raft snapshot, and is not sent the entries between). */
void snap_serve_applied(struct core *c, uint64_t index);
/* Any thread: that meta for index, if still kept. */
bool snap_serve_meta(struct core *c, uint64_t index, struct raft_snapshot_meta *m);
/* The maker's state, before the transport starts / after it stopped and
 * snap_fetch_stop returned. */
int snap_maker_init(struct core *c);
void snap_maker_free(struct core *c);

/* A detached thread of the snapshot code (a fetch, a maker), counted so
 * snap_fetch_stop waits for it; refused (-1) once closing. The thread calls
 * snap_thread_done as it ends. */
int snap_thread_start(struct core *c, void *(*fn)(void *), void *arg);
void snap_thread_done(struct core *c);

/* Stop a fetch under way and wait for its thread (core_close, after the
 * writer stopped and before the peer transport does). */
void snap_fetch_stop(struct core *c);

#endif
