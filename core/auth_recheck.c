/*
 * core/auth_recheck.c — a client's write checked again when it is applied.
 *
 * The entry carries who it was checked as and at which auth revision
 * (auth_stamp.c). If the auth store has moved on since, apply refuses it,
 * as etcd's isOpPermitted does ("revision of auth store is old"; clientv3
 * logs in again and retries). At the same revision the user's permissions
 * are the ones the check saw, but which keys a lease holds is not part of
 * the auth store: a lease may have gained a key the caller cannot write
 * between the check and now. So, as etcd's authApplierV3 does at apply,
 * LeaseRevoke needs WRITE on every key the lease holds now, and so does
 * every Put that joins a lease. Every member decides alike: the decision
 * depends only on the entry and on what the log has built so far.
 */
#include "core/auth_internal.h"
#include "core/core_internal.h"

/* As deep as a txn may nest in a log entry we walk (validation allows far
 * less; a corrupt or hostile entry must not exhaust the stack). */
#define LEASE_WALK_DEPTH 1024

int auth_apply_check_revision(struct core *c, const Metadpb__InternalRequest *req)
{
	struct core_auth *a = c->auth;
	if (req->auth_revision == 0 || !atomic_load(&a->enabled))
		return CORE_OK; /* not a client's write, or nothing to check */
	/* Authenticate carries its own check (the password hash); enabling
	 * auth is refused below only if someone changed the store first. */
	if (req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_AUTHENTICATE)
		return CORE_OK;
	if (req->auth_user == NULL || req->auth_user[0] == 0)
		return CORE_EUSER_EMPTY; /* checked while auth was off */
	if (req->auth_revision < atomic_load(&a->revision))
		return CORE_EAUTH_OLD_REVISION;
	/* Same revision: the check ran against exactly this store. */
	return CORE_OK;
}

static int txn_leases(const Etcdserverpb__TxnRequest *t, int depth, auth_lease_fn fn, void *arg)
{
	if (depth > LEASE_WALK_DEPTH)
		return CORE_ETOO_MANY_OPS;
	Etcdserverpb__RequestOp **branch[2] = {t->success, t->failure};
	size_t n[2] = {t->n_success, t->n_failure};
	for (int b = 0; b < 2; b++)
		for (size_t i = 0; i < n[b]; i++) {
			const Etcdserverpb__RequestOp *op = branch[b][i];
			int err = CORE_OK;
			if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT &&
			    op->request_put->lease != 0 && !op->request_put->ignore_lease)
				err = fn(arg, op->request_put->lease);
			else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
				err = txn_leases(op->request_txn, depth + 1, fn, arg);
			if (err != CORE_OK)
				return err;
		}
	return CORE_OK;
}

int auth_req_leases(const Metadpb__InternalRequest *req, auth_lease_fn fn, void *arg)
{
	switch (req->request_case) {
	case METADPB__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE:
		return fn(arg, req->lease_revoke->id);
	case METADPB__INTERNAL_REQUEST__REQUEST_PUT:
		if (req->put->lease != 0 && !req->put->ignore_lease)
			return fn(arg, req->put->lease);
		return CORE_OK;
	case METADPB__INTERNAL_REQUEST__REQUEST_TXN:
		return txn_leases(req->txn, 0, fn, arg);
	default:
		return CORE_OK;
	}
}

struct lease_check {
	struct core *c;
	struct db_session *s;
	const char *user;
};

static int lease_keys_writable(void *arg, int64_t lease)
{
	struct lease_check *lc = arg;
	return auth_lease_keys_check(lc->c, lc->s, lc->user, lease, CORE_PERM_WRITE);
}

int auth_apply_check(struct core *c, struct db_session *s, const Metadpb__InternalRequest *req)
{
	int err = auth_apply_check_revision(c, req);
	if (err != CORE_OK || req->auth_revision == 0 || !atomic_load(&c->auth->enabled) ||
	    req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_AUTHENTICATE)
		return err;
	struct lease_check lc = {c, s, req->auth_user};
	return auth_req_leases(req, lease_keys_writable, &lc);
}
