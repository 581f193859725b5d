/*
 * core/reserved.h — keys that only the controllers write.
 *
 * The controllers own some keys under /_meta/ (docs/controllers.md, "Who
 * may write"); which ones is theirs to say, through the reserved hook of
 * struct core_config (server wires controllers_owned). A client's write
 * that would change an owned key is refused with etcd's "permission denied"
 * (PERMISSION_DENIED), unless auth is on and the caller holds the root
 * role: a put (in a Txn: in either branch, nested too) and a LeaseRevoke of
 * a lease holding an owned key when they arrive, next to the permission
 * checks; a delete when it is applied, if the range holds an owned key
 * then (reserved.c says why). The controllers call core directly, and
 * their entries carry no caller: they are never refused. With no hook
 * every write passes.
 */
#ifndef METAD_CORE_RESERVED_H
#define METAD_CORE_RESERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.pb-c.h"

struct core;

/* user: the caller as the auth checks resolved it ("" or NULL with auth
 * off). Each returns CORE_OK or CORE_EPERMISSION_DENIED (the lease check
 * also CORE_ENOMEM or a storage error). Requests are borrowed. */
int core_reserved_check_put(struct core *c, const char *user, const Etcdserverpb__PutRequest *p);
/* Every put of both branches, nested Txns included. */
int core_reserved_check_txn(struct core *c, const char *user, const Etcdserverpb__TxnRequest *t);
/* LeaseRevoke: revoking deletes the lease's keys. */
int core_reserved_check_lease(struct core *c, const char *user, int64_t lease);
/* A write of [key, end) (end_len 0: key alone) made for the client by a
 * server-side recipe (Lock, Election). */
int core_reserved_check_range(struct core *c, const char *user, const uint8_t *key,
			      size_t key_len, const uint8_t *end, size_t end_len);

#endif
