/*
 * core/backup.h — the store as an etcd backend file (bbolt), for
 * Maintenance.Snapshot: what `etcdctl snapshot save` receives and `etcdctl
 * snapshot restore` turns into a data directory etcd starts from.
 */
#ifndef METAD_CORE_BACKUP_H
#define METAD_CORE_BACKUP_H

#include <stdint.h>

#include "core/core.h"

/*
 * Write the store to fd in etcd's layout: bucket "key" (every history entry
 * kept: revision bytes -> mvccpb.KeyValue, tombstones marked 't'), "meta"
 * (consistent_index, finishedCompactRev, scheduledCompactRev), "lease"
 * (ID -> leasepb.Lease), "alarm", and empty "members" / "members_removed"
 * (restore writes the new membership). The key space is read in one
 * snapshot, so writes go on meanwhile. *size gets the file size.
 * Returns CORE_OK, CORE_ENOMEM or CORE_EINTERNAL (I/O).
 */
int core_backup_write(struct core *c, int fd, uint64_t *size);

#endif
