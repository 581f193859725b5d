/*
 * storage/lease.h — the lessor's persistent state: which leases exist and
 * the TTL each was granted with.
 *
 * Only (id, granted TTL) is stored: expiry times are not, because etcd gives
 * every lease a fresh TTL when a node (re)gains leadership, and a restart is
 * that case here. Which keys a lease holds is kept by mvcc (lease_keys).
 * Writes happen inside the writer's open transaction (db_txn_begin), so a
 * grant or revoke commits atomically with the key changes of its request.
 */
#ifndef METAD_STORAGE_LEASE_H
#define METAD_STORAGE_LEASE_H

#include <stdint.h>

#include "storage/db.h"

/* Record (or overwrite) lease id with its granted TTL in seconds. Only in an
 * open transaction (DB_INVALID otherwise). */
int lease_store_put(struct db_session *s, int64_t id, int64_t ttl);
/* Remove lease id; absent is not an error. Only in an open transaction. */
int lease_store_delete(struct db_session *s, int64_t id);

/* Called once per stored lease; a non-zero return stops the scan and is
 * returned by lease_store_load. */
typedef int (*lease_store_fn)(void *arg, int64_t id, int64_t ttl);
/* Every stored lease in id order (own snapshot, or the open transaction). */
int lease_store_load(struct db_session *s, lease_store_fn fn, void *arg);

#endif
