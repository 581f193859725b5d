/*
 * storage/snapshot.h — the whole state machine as one stream of records,
 * for a Raft member that is too far behind to catch up from the log.
 *
 * A dump is every row of the state tables (key space, leases, meta with
 * the consistent index, auth) plus chosen raft_state blobs, read in one
 * snapshot transaction, so it is the store exactly as of one applied index
 * while writers go on. Restore replaces those rows with a dump's. The
 * record framing is storage's; what surrounds it (header, hash, transfer)
 * is the caller's.
 */
#ifndef METAD_STORAGE_SNAPSHOT_H
#define METAD_STORAGE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"

struct mvcc;

/* Sink for dump bytes; non-zero stops the dump with DB_IO. */
typedef int (*snap_write_fn)(void *arg, const void *buf, size_t len);
/* Source of restore bytes: exactly len bytes, or non-zero (short, error). */
typedef int (*snap_read_fn)(void *arg, void *buf, size_t len);

/*
 * Write every state row, then the raft_state blobs named in blobs[n] (those
 * present), then an end record, in one read transaction of s (none may be
 * open). *ci is the consistent index the dump holds.
 */
int snap_dump(struct db_session *s, const char *const *blobs, size_t n, snap_write_fn out,
	      void *arg, uint64_t *ci);

/*
 * Replace the state rows with a dump read from in: clear the state tables,
 * load the records (blobs overwrite their raft_state rows), then publish
 * the dump's revision, compact revision and consistent index in m. Runs in
 * bounded transactions, not one: the store is inconsistent until it
 * returns DB_OK, so the caller marks the restore durably beforehand and
 * redoes it after a crash, and keeps readers out meanwhile. Compaction
 * waits (mvcc's compaction lock is held). No transaction may be open on s.
 * The restored rows are durable at the next checkpoint (the state tables
 * are not journaled). DB_CORRUPT for a malformed dump.
 */
int snap_restore(struct mvcc *m, struct db_session *s, snap_read_fn in, void *arg);

#endif
