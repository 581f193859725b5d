/*
 * core/lease_internal.h — the lessor, shared by core's files.
 *
 * The lessor keeps every lease in memory (id, granted TTL, expiry) under one
 * mutex. Grant and revoke change it only from the writer's apply, so a
 * replicated log gives every node the same set; renewals (keep-alive) are
 * leader-local and in memory only, as in etcd. A timer thread finds expired
 * leases and proposes their revocation through the normal write path.
 */
#ifndef METAD_CORE_LEASE_INTERNAL_H
#define METAD_CORE_LEASE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.pb-c.h"

struct core;
struct reply;
struct db_session;
struct lessor;

/* etcd: lease.MaxLeaseTTL. */
#define LEASE_MAX_TTL 9000000000LL
/* etcd: ceil(1.5 * election timeout) with the default 1 s election timeout. */
#define LEASE_MIN_TTL 2
/* etcd: leaseRevokeRate, expired leases revoked per second. */
#define LEASE_REVOKE_RATE 1000
#define LEASE_CHECKPOINT_BATCH 1000 /* etcd's maxLeaseCheckpointBatchSize */

/* Create the lessor and load the persisted leases, each with a fresh TTL. */
int lessor_open(struct core *c, struct lessor **out);
/* Start / stop the expiry thread (after / before the writer runs). */
int lessor_start(struct lessor *l);
void lessor_stop(struct lessor *l);
void lessor_free(struct lessor *l); /* NULL is allowed */
/* A snapshot replaced the store: its leases, each with a fresh TTL (as at
 * start-up; expiry is the leader's, which keeps its own). */
int lessor_reload(struct lessor *l);

bool lessor_exists(struct lessor *l, int64_t id);
/* Remaining (whole seconds) and granted TTL of a lease; false if unknown. */
bool lessor_ttl(struct lessor *l, int64_t id, int64_t *ttl, int64_t *granted);
/* Apply the leader's checkpoint of remaining TTLs (every member). */
int apply_lease_checkpoint(struct core *c, const Metadpb__LeaseCheckpoints *cps);
/* This member became leader: every lease restarts from now with its
 * checkpointed remaining TTL, or its full TTL. */
void lessor_promote(struct lessor *l);

/* Apply a grant / revoke inside the writer's open transaction. */
int apply_lease_grant(struct core *c, struct db_session *s, struct reply *r,
		      const Etcdserverpb__LeaseGrantRequest *q, ProtobufCMessage **msg);
int apply_lease_revoke(struct core *c, struct db_session *s, struct reply *r,
		       const Etcdserverpb__LeaseRevokeRequest *q, ProtobufCMessage **msg);

#endif
