/*
 * core/backup.h — the store as an etcd backend file (bbolt), for
 * Maintenance.Snapshot: what `etcdctl snapshot save` receives and `etcdctl
 * snapshot restore` turns into a data directory etcd starts from.
 */
#ifndef METAD_CORE_BACKUP_H
#define METAD_CORE_BACKUP_H

#include <stdint.h>

#include <stddef.h>

#include "core/core.h"

/*
 * The store in etcd's layout: bucket "key" (every history entry kept:
 * revision bytes -> mvccpb.KeyValue, tombstones marked 't'), "meta"
 * (consistent_index, finishedCompactRev, scheduledCompactRev), "lease"
 * (ID -> leasepb.Lease), "alarm", the auth buckets, and empty "members" /
 * "members_removed" (restore writes the new membership).
 *
 * open takes one storage snapshot (writes go on meanwhile) on a session of
 * its own and lays the file out in a first run over it, in two halves on
 * two threads (sizes only, nothing packed or written): the file's size is
 * then known and its first pages made. stream runs over the same snapshot
 * again and hands the file to emit in order, as it is made, so nothing is
 * staged on disk; it may be called once. open, stream and close are called
 * one at a time (any thread). The thread that calls open allocates from
 * then on from core/hugearena.h's arena: a thread of its own is best.
 * Errors: CORE_ENOMEM, CORE_EINTERNAL (storage), or emit's non-zero return.
 */
struct core_backup;
/* Takes the next bytes of the file (borrowed for the call); non-zero stops. */
typedef int (*core_backup_emit_fn)(void *arg, const uint8_t *bytes, size_t len);
int core_backup_open(struct core *c, struct core_backup **out);
/* The file's size in bytes (without the SHA-256 a snapshot stream adds). */
uint64_t core_backup_size(const struct core_backup *b);
int core_backup_stream(struct core_backup *b, core_backup_emit_fn emit, void *arg);
void core_backup_close(struct core_backup *b); /* NULL is allowed */

#endif
