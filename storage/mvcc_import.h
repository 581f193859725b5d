/*
 * storage/mvcc_import.h — filling an empty key space with another store's
 * history, revisions kept (importing an etcd backend).
 */
#ifndef METAD_STORAGE_MVCC_IMPORT_H
#define METAD_STORAGE_MVCC_IMPORT_H

#include "storage/mvcc.h"

/* Add one history entry at (kv->mod_revision, sub), in revision order, in
 * the caller's open transaction: a put (kv complete: create revision,
 * version and lease as the source had them) or, with tombstone, a delete
 * of kv->key. The key's `current` row, chain and lease attachment follow,
 * as mvcc_put / mvcc_delete_range leave them. DB_INVALID outside a
 * transaction or for an empty key. */
int mvcc_import_entry(struct db_session *s, const struct mvcc_kv *kv, int64_t sub, int tombstone);

/* Record the imported store's revision and compacted revision (history
 * below it is as compaction leaves it), consistent index 0, in the open
 * transaction. */
int mvcc_import_finish(struct db_session *s, int64_t rev, int64_t compact_rev);

#endif
