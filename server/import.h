/*
 * server/import.h — etcd's data into a new metad store before it opens.
 */
#ifndef METAD_SERVER_IMPORT_H
#define METAD_SERVER_IMPORT_H

#include <stddef.h>
#include <stdint.h>

/* Import --import-etcd-snapshot FILE (snapshot != NULL), or an etcd
 * member's data dir (member/snap/db) holding no metad store yet; nothing
 * to do is success; wal_dir is --wal-dir (NULL: none). Returns 0, or -1
 * with err written. */
int server_import_etcd(const char *data_dir, const char *wal_dir, const char *snapshot,
		       uint64_t cache_mb, char *err, size_t errlen);

#endif
