/*
 * storage/snapshot.h — the whole state machine as one stream of records,
 * for a Raft member that is too far behind to catch up from the log.
 *
 * A dump is every row of the state tables (key space, leases, meta with
 * the consistent index, auth) plus chosen raft_state blobs, read in one
 * snapshot transaction, so it is the store exactly as of one applied index
 * while writers go on. A load replaces those rows with a dump's. The
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

/*
 * Write every state row, then the raft_state blobs named in blobs[n] (those
 * present), then an end record, in one read transaction of s (none may be
 * open). *ci is the consistent index the dump holds; it is set before the
 * first byte, and out is called once with (NULL, 0) to say so.
 */
int snap_dump(struct db_session *s, const char *const *blobs, size_t n, snap_write_fn out,
	      void *arg, uint64_t *ci);

/*
 * Loading a dump: its rows go into a new generation of the state tables,
 * beside the live ones, which serve meanwhile; nothing the live store holds
 * changes until snap_load_switch. Any thread may load (its own WiredTiger
 * session); one load at a time per db.
 */
struct snap_load;

int snap_load_begin(struct db *db, struct snap_load **out);
/*
 * Feed the next bytes of the dump, cut anywhere. *used is how many were
 * the dump's (fewer than len only once its end record was fed); *done is
 * set from then on. DB_CORRUPT for a malformed dump.
 */
int snap_load_feed(struct snap_load *l, const void *buf, size_t len, size_t *used, int *done);
/* After the end record: the loaded tables made durable (a checkpoint). */
int snap_load_finish(struct snap_load *l);
/*
 * Make the loaded generation the live one: the dump's blobs and the switch
 * in one synced transaction of s (none open), then publish the dump's
 * revision, compact revision and consistent index in m. Sessions move to
 * the new tables at their next transaction; readers that must not mix the
 * old store's revision with the new one's rows are the caller's to hold
 * off. Compaction waits (mvcc's compaction lock is held).
 */
int snap_load_switch(struct snap_load *l, struct mvcc *m, struct db_session *s);
/* Free the load; its tables are dropped unless it was switched. */
void snap_load_free(struct snap_load *l);

#endif
