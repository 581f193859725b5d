/*
 * etcdapi/authz.c — the caller's identity from call metadata, and the
 * permission checks of the KV, Watch and admin calls.
 */
#include <string.h>

#include <grpc/grpc_security.h>

#include "core/reserved.h"
#include "etcdapi/authz.h"

/* The common name of the client's verified certificate, as etcd's
 * AuthInfoFromTLS takes it; "" when there is none (or it is too long to
 * be a user's name). */
static void cert_user(struct api_call *call, char *user)
{
	grpc_auth_context *ctx = grpc_call_auth_context(call->call);
	if (ctx == NULL)
		return;
	grpc_auth_property_iterator it =
		grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_CN_PROPERTY_NAME);
	const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
	if (p != NULL && p->value_length < CORE_AUTH_USER_MAX &&
	    memchr(p->value, 0, p->value_length) == NULL) {
		memcpy(user, p->value, p->value_length);
		user[p->value_length] = 0;
	}
	grpc_auth_context_release(ctx);
}

int api_caller(struct api_call *call, char *user)
{
	user[0] = 0;
	for (size_t i = 0; i < call->md.count; i++) {
		const grpc_metadata *m = &call->md.metadata[i];
		if (!grpc_slice_str_cmp(m->key, "token") ||
		    !grpc_slice_str_cmp(m->key, "authorization")) {
			struct core *c = api_core(call);
			uint64_t rev;
			int err = core_auth_token_user(c, (const char *)GRPC_SLICE_START_PTR(m->value),
						       GRPC_SLICE_LENGTH(m->value), user, &rev);
			/* A JWT issued before the store last changed: clientv3 logs
			 * in again on this error (etcd's isOpPermitted). */
			if (err == CORE_OK && rev < core_auth_revision(c))
				err = CORE_EAUTH_OLD_REVISION;
			return err;
		}
	}
	/* No token: with --client-cert-auth the certificate names the user (a
	 * token, when given, wins, as in etcd). Otherwise the checks answer
	 * "user name is empty". */
	if (api_client_cert_auth(call->srv))
		cert_user(call, user);
	return CORE_OK;
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

void api_authz_end(void)
{
	core_auth_caller_end();
}

/* The checks a write needs. */
enum write_kind { W_PUT, W_DELETE, W_TXN, W_LEASE, W_ADMIN };

/* The keys only the controllers write (core/reserved.h): refused to every
 * client but root, auth on or off. Deletes are judged when applied. */
static int reserved(struct core *c, enum write_kind kind, const char *user, const void *q,
		    int64_t lease, enum core_perm perm)
{
	switch (kind) {
	case W_PUT:
		return core_reserved_check_put(c, user, q);
	case W_TXN:
		return core_reserved_check_txn(c, user, q);
	case W_LEASE:
		return perm == CORE_PERM_WRITE ? core_reserved_check_lease(c, user, lease) : CORE_OK;
	default:
		return CORE_OK;
	}
}

/* The auth checks of a write (auth on); on a refusal the call is finished. */
static bool permitted(struct api_call *call, enum write_kind kind, const char *user,
		      const void *q, int64_t lease, enum core_perm perm)
{
	struct core *c = api_core(call);
	int err;
	switch (kind) {
	case W_PUT:
		err = core_auth_check_put(c, user, q);
		break;
	case W_DELETE:
		err = core_auth_check_delete(c, user, q);
		break;
	case W_TXN:
		err = core_auth_check_txn(c, user, q);
		break;
	case W_LEASE:
		err = core_auth_check_lease(c, user, lease, perm);
		break;
	default:
		err = core_auth_check_admin(c, user);
		break;
	}
	return api_allowed(call, err);
}

/*
 * Check a write and record who it was checked as, and at which auth
 * revision (read before the check: a change racing with the check makes
 * the entry older, never newer, so apply refuses rather than trusts it).
 * With auth off the empty user is recorded, so a write that arrives before
 * auth is turned on and applies after is refused as etcd refuses it.
 */
static bool write_check(struct api_call *call, enum write_kind kind, const void *q, int64_t lease,
			enum core_perm perm)
{
	struct core *c = api_core(call);
	uint64_t rev = core_auth_revision(c);
	char user[CORE_AUTH_USER_MAX];
	user[0] = 0;
	if (core_auth_enabled(c) &&
	    !(caller(call, user) && permitted(call, kind, user, q, lease, perm)))
		return false;
	if (!api_allowed(call, reserved(c, kind, user, q, lease, perm)))
		return false;
	core_auth_caller_begin(user, rev);
	return true;
}

bool api_authz_put(struct api_call *call, const Etcdserverpb__PutRequest *q)
{
	return write_check(call, W_PUT, q, 0, CORE_PERM_WRITE);
}

bool api_authz_delete(struct api_call *call, const Etcdserverpb__DeleteRangeRequest *q)
{
	return write_check(call, W_DELETE, q, 0, CORE_PERM_WRITE);
}

bool api_authz_txn(struct api_call *call, const Etcdserverpb__TxnRequest *q)
{
	return write_check(call, W_TXN, q, 0, CORE_PERM_WRITE);
}

bool api_authz_lease(struct api_call *call, int64_t lease, enum core_perm perm)
{
	if (perm == CORE_PERM_READ) { /* TimeToLive: a read, nothing to record */
		struct core *c = api_core(call);
		char user[CORE_AUTH_USER_MAX];
		if (!core_auth_enabled(c))
			return true;
		return caller(call, user) &&
		       api_allowed(call, core_auth_check_lease(c, user, lease, perm));
	}
	return write_check(call, W_LEASE, NULL, lease, perm);
}

bool api_authz_admin(struct api_call *call)
{
	return write_check(call, W_ADMIN, NULL, 0, CORE_PERM_READWRITE);
}

bool api_authz_user(struct api_call *call)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	return !core_auth_enabled(c) ||
	       (caller(call, user) && api_allowed(call, core_auth_check_user(c, user)));
}

bool api_authz_token(struct api_call *call)
{
	char user[CORE_AUTH_USER_MAX];
	return !core_auth_enabled(api_core(call)) || caller(call, user);
}

const char *api_watch_cancel_reason(int err)
{
	switch (err) {
	case CORE_EINVALID_AUTH_TOKEN:
		return "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token";
	case CORE_EUSER_EMPTY:
		return "rpc error: code = InvalidArgument desc = etcdserver: user name is empty";
	case CORE_EAUTH_OLD_REVISION:
		return "rpc error: code = InvalidArgument desc = etcdserver: revision of auth store is old";
	default:
		return "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
	}
}

int api_authz_watch(struct api_call *call, const uint8_t *key, size_t key_len, const uint8_t *end,
		    size_t end_len)
{
	struct core *c = api_core(call);
	char user[CORE_AUTH_USER_MAX];
	if (!core_auth_enabled(c))
		return CORE_OK;
	int err = api_caller(call, user);
	if (err != CORE_OK)
		return err;
	/* The hub watches "\0" for an empty key (etcd's rule); check what it
	 * will watch. An end of "\0" stays "every key >= key": etcd turns it
	 * into an empty end before its check and so checks only one key. */
	static const uint8_t zero = 0;
	if (key_len == 0) {
		key = &zero;
		key_len = 1;
	}
	return core_auth_check_range(c, user, CORE_PERM_READ, key, key_len, end, end_len);
}
