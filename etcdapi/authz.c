/*
 * etcdapi/authz.c — the caller's identity from call metadata, and the
 * permission checks of the KV, Watch and admin calls.
 */
#include <string.h>

#include "etcdapi/authz.h"

int api_caller(struct api_call *call, char *user)
{
	user[0] = 0;
	for (size_t i = 0; i < call->md.count; i++) {
		const grpc_metadata *m = &call->md.metadata[i];
		if (!grpc_slice_str_cmp(m->key, "token") || !grpc_slice_str_cmp(m->key, "authorization"))
			return core_auth_token_user(api_core(call),
						    (const char *)GRPC_SLICE_START_PTR(m->value),
						    GRPC_SLICE_LENGTH(m->value), user);
	}
	return CORE_OK; /* no token: the checks answer "user name is empty" */
}

bool api_allowed(struct api_call *call, int err)
{
	if (err == CORE_OK)
		return true;
	api_finish_status(call, (grpc_status_code)core_grpc_code(err), core_strerror(err));
	return false;
}

/* Resolve the caller; on a bad token the call is finished. */
static bool caller(struct api_call *call, char *user)
{
	return api_allowed(call, api_caller(call, user));
}

bool api_authz_range(struct api_call *call, const Etcdserverpb__RangeRequest *q)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return true;
	return caller(call, user) &&
	       api_allowed(call, core_auth_check_range(c, user, CORE_PERM_READ, q->key.data,
						       q->key.len, q->range_end.data,
						       q->range_end.len));
}

bool api_authz_put(struct api_call *call, const Etcdserverpb__PutRequest *q)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return true;
	return caller(call, user) && api_allowed(call, core_auth_check_put(c, user, q));
}

bool api_authz_delete(struct api_call *call, const Etcdserverpb__DeleteRangeRequest *q)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return true;
	return caller(call, user) && api_allowed(call, core_auth_check_delete(c, user, q));
}

bool api_authz_txn(struct api_call *call, const Etcdserverpb__TxnRequest *q)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return true;
	return caller(call, user) && api_allowed(call, core_auth_check_txn(c, user, q));
}

bool api_authz_lease(struct api_call *call, int64_t lease, enum core_perm perm)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return true;
	return caller(call, user) && api_allowed(call, core_auth_check_lease(c, user, lease, perm));
}

bool api_authz_admin(struct api_call *call)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return true;
	return caller(call, user) && api_allowed(call, core_auth_check_admin(c, user));
}

bool api_authz_watch(struct api_call *call, const uint8_t *key, size_t key_len,
		     const uint8_t *end, size_t end_len)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return true;
	if (api_caller(call, user) != CORE_OK)
		return false;
	/* The hub watches "\0" for an empty key (etcd's rule); check what it
	 * will watch. An end of "\0" stays "every key >= key": etcd turns it
	 * into an empty end before its check and so checks only one key. */
	static const uint8_t zero = 0;
	if (key_len == 0) {
		key = &zero;
		key_len = 1;
	}
	return core_auth_check_range(c, user, CORE_PERM_READ, key, key_len, end, end_len) ==
	       CORE_OK;
}
