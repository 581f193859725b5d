/*
 * core/lock_internal.h — what the Lock and Election services share: the
 * concurrency recipes' key helpers and "wait until every older key under a
 * prefix is gone" (clientv3 concurrency's waitDeletes), run inside core.
 */
#ifndef METAD_CORE_LOCK_INTERNAL_H
#define METAD_CORE_LOCK_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct reply;

/* A byte string with its own allocation. */
struct cbytes {
	uint8_t *p;
	size_t len;
};

/* name + "/" (the recipes' key prefix). */
int cc_prefix(struct cbytes *out, const uint8_t *name, size_t len);
/* etcd's prefix range end (clientv3.GetPrefixRangeEnd). */
int cc_prefix_end(struct cbytes *out, const struct cbytes *pfx);

/* etcd's Lock and Campaign each build a concurrency Session from the
 * request's lease: lease 0 grants a fresh lease with the session TTL, and
 * the session is orphaned (never kept alive), so what it holds goes when
 * that lease expires. fn(arg, err, lease) runs once: at once for a lease
 * other than 0, else once the grant is applied (from a core thread). */
#define CC_SESSION_TTL 60
typedef void (*cc_lease_fn)(void *arg, int err, int64_t lease);
void cc_session_lease(struct core *c, int64_t lease, cc_lease_fn fn, void *arg);
/* In a cc_lease_fn: err, else CORE_ETIMEOUT if the caller went away while
 * the lease was granted, else builds *key = pfx + lowercase hex of lease (the recipes' own key). */
int cc_session_key(int err, const _Atomic bool *cancelled, struct cbytes *key,
		   const struct cbytes *pfx, int64_t lease);

/* A synchronous Range; *out is the reply (free with core_reply_free). */
int cc_range(struct core *c, const Etcdserverpb__RangeRequest *q, struct core_reply **out);

/* The first (oldest create revision) key under pfx. */
void cc_first_create(Etcdserverpb__RangeRequest *q, const struct cbytes *pfx,
		     const struct cbytes *end);

/* Wait until no key under pfx has create_revision <= max_rev, then call
 * done(arg, err) once (from some core thread). If cancel (may be NULL) is
 * set when the wait wakes, it ends with CORE_ETIMEOUT. */
typedef void (*cc_done_fn)(void *arg, int err);
int cc_wait_deletes(struct core *c, const struct cbytes *pfx, int64_t max_rev,
		    const _Atomic bool *cancel, cc_done_fn done, void *arg);

#endif
