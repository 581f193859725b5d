/*
 * core/import.h — starting metad from etcd's data: an etcd backend file (a
 * member's member/snap/db, or a file saved by `etcdctl snapshot save`)
 * becomes metad's store, with the same keys, revisions, versions, leases,
 * compacted revision, users, roles and auth switch.
 */
#ifndef METAD_CORE_IMPORT_H
#define METAD_CORE_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core_import_stats {
	int64_t revision, compact_revision;
	uint64_t entries, leases;
	uint64_t users, roles; /* etcd's auth store, kept as it was */
	bool auth_enabled;
};

/*
 * Import the bbolt file db_file (its first db_len bytes when db_len > 0)
 * into a new store under data_dir, before core_open. Refused when data_dir
 * already holds a metad store with any revision. The membership comes from
 * the flags afterwards, as `etcdctl snapshot restore` makes a new cluster.
 * wal_dir is core_config.wal_dir (the new store's log goes there). Returns
 * 0, or -1 with err written.
 */
int core_import_etcd(const char *data_dir, const char *wal_dir, const char *db_file, size_t db_len,
		     uint64_t cache_mb, struct core_import_stats *stats, char *err, size_t errlen);

#endif
