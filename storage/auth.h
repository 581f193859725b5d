/*
 * storage/auth.h — the auth store's persistent records: users, roles and
 * the store's own state (enabled flag, auth revision).
 *
 * Storage knows no wire format: a record is a kind byte, a name and opaque
 * bytes (core packs etcd's authpb.User / authpb.Role into them). Writes
 * happen inside the writer's open transaction, so an auth change commits
 * atomically with the applied index of the log entry that made it.
 */
#ifndef METAD_STORAGE_AUTH_H
#define METAD_STORAGE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"

/* Record kinds (the first byte of the table key, so each kind is one
 * contiguous, name-ordered run of the table). */
enum {
	AUTH_REC_META = 'm', /* store state: "enabled", "revision" */
	AUTH_REC_ROLE = 'r',
	AUTH_REC_USER = 'u',
};

/* Write (or overwrite) one record. Only in an open transaction
 * (DB_INVALID otherwise). name and val are borrowed. */
int auth_store_put(struct db_session *s, int kind, const char *name, size_t name_len,
		   const uint8_t *val, size_t val_len);
/* Remove one record; absent is not an error. Only in an open transaction. */
int auth_store_delete(struct db_session *s, int kind, const char *name, size_t name_len);

/* Called once per record, in (kind, name) order; name and val are borrowed
 * for the call only. A non-zero return stops the scan and is returned. */
typedef int (*auth_store_fn)(void *arg, int kind, const char *name, size_t name_len,
			     const uint8_t *val, size_t val_len);
/* Every record (own snapshot, or the open transaction). */
int auth_store_load(struct db_session *s, auth_store_fn fn, void *arg);

#endif
