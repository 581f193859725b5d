/*
 * etcdapi/authz.h — who is calling, and may they do this: the checks each
 * service runs before it hands a request to core.
 *
 * The caller is the user of the simple token in the call's `token`
 * metadata (etcd's key; the gateway's `authorization` too), or, with no
 * token and --client-cert-auth, the common name of the client's verified
 * certificate (etcd's AuthInfoFromTLS). With auth off
 * every check passes after one atomic load. A check that fails finishes
 * the call with etcd's status (invalid auth token, user name is empty,
 * permission denied, ...) and returns false; the handler then returns.
 */
#ifndef METAD_ETCDAPI_AUTHZ_H
#define METAD_ETCDAPI_AUTHZ_H

#include <stdbool.h>

#include "core/auth.h"
#include "etcdapi/call.h"

/* The calling user into user (CORE_AUTH_USER_MAX bytes; "" when no token
 * was given). CORE_OK or CORE_EINVALID_AUTH_TOKEN. */
int api_caller(struct api_call *call, char *user);

/* Finish the call with err's status unless err is CORE_OK. */
bool api_allowed(struct api_call *call, int err);

/*
 * Reads (Range, Watch, TimeToLive) are checked and served at once. Writes
 * (Put, DeleteRange, Txn, LeaseRevoke, Compact, auth management) are also
 * checked again when applied: a passing check records the caller for the
 * write the handler then submits (core_auth_caller_begin), and the handler
 * must call api_authz_end() after its core call, whatever happened.
 */
bool api_authz_range(struct api_call *call, const Etcdserverpb__RangeRequest *q);
void api_authz_end(void);
bool api_authz_put(struct api_call *call, const Etcdserverpb__PutRequest *q);
bool api_authz_delete(struct api_call *call, const Etcdserverpb__DeleteRangeRequest *q);
bool api_authz_txn(struct api_call *call, const Etcdserverpb__TxnRequest *q);
/* LeaseRevoke: WRITE on the lease's keys; TimeToLive with keys: READ. */
bool api_authz_lease(struct api_call *call, int64_t lease, enum core_perm perm);
/* Root role required (auth management, Compact, maintenance). */
bool api_authz_admin(struct api_call *call);

/* Whether a Watch create on [key, end) is allowed: CORE_OK or the refusal
 * (etcd cancels a denied watch rather than failing the stream, so this
 * only answers). */
int api_authz_watch(struct api_call *call, const uint8_t *key, size_t key_len, const uint8_t *end,
		    size_t end_len);
/* etcd's cancel_reason for a watch refused with err: the gRPC error's full
 * text, so a client can tell a token to renew from a range it may not read. */
const char *api_watch_cancel_reason(int err);

/* An authenticated caller: a valid token (or certificate) naming a user
 * the store knows. Nothing is recorded: for reads. */
bool api_authz_user(struct api_call *call);

/* For calls etcd checks no permission on but whose token it still reads
 * (LeaseGrant: every proposal carries its caller): a token that is given
 * must be valid. */
bool api_authz_token(struct api_call *call);

/* Lock and Election (authz_recipe.c): READ on name + "/" as a prefix when
 * has_name, and if write, WRITE on key (or, key NULL, on that whole prefix).
 * A refusal finishes the call as etcd's recipes do: gRPC Unknown + text.
 * A write check that passes records the caller as the writes' checks do:
 * call api_authz_end() after the core call. */
bool api_authz_recipe(struct api_call *call, const uint8_t *name, size_t name_len, bool has_name,
		      const uint8_t *key, size_t key_len, bool write);
/* The same check, answering only (the call is left alone). */
int api_authz_recipe_err(struct api_call *call, const uint8_t *name, size_t name_len,
			 bool has_name, const uint8_t *key, size_t key_len, bool write);


#endif
