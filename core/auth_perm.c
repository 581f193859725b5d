/*
 * core/auth_perm.c — may this user do that to this range?
 *
 * A request's range is allowed when the union of the user's permitted
 * intervals (of the right type, over all its roles) covers it entirely, as
 * etcd's unified range permissions do. Ranges follow etcd's rules: an empty
 * end means the key alone, "\0" means every key >= key. The root role may
 * do everything. The user's grants come from the thread's copy of them
 * (auth_cache.c), so a check takes no lock.
 */
#include <string.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

/* An interval end: the bytes p[0..n), then one 0x00 byte if z (a single
 * key k is [k, k+"\0")), or +infinity if inf. */
struct bound {
	const uint8_t *p;
	size_t n;
	bool z;
	bool inf;
};

static int bound_cmp(const struct bound *x, const struct bound *y)
{
	if (x->inf || y->inf)
		return (int)x->inf - (int)y->inf;
	size_t lx = x->n + x->z, ly = y->n + y->z, m = x->n < y->n ? x->n : y->n;
	int c = m > 0 ? memcmp(x->p, y->p, m) : 0;
	if (c != 0)
		return c;
	for (size_t i = m; i < lx && i < ly; i++) {
		int bx = i < x->n ? x->p[i] : 0, by = i < y->n ? y->p[i] : 0;
		if (bx != by)
			return bx - by;
	}
	return (lx > ly) - (lx < ly);
}

/* etcd's [key, end) rules as two bounds. */
static void interval(const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len,
		     struct bound *lo, struct bound *hi)
{
	*lo = (struct bound){key, key_len, false, false};
	if (end_len == 0)
		*hi = (struct bound){key, key_len, true, false};
	else if (end_len == 1 && end[0] == 0)
		*hi = (struct bound){NULL, 0, false, true};
	else
		*hi = (struct bound){end, end_len, false, false};
}

static bool type_allows(int have, enum core_perm want)
{
	return have == CORE_PERM_READWRITE || have == (int)want;
}

/*
 * Whether the user's perms of type want (every role's, flattened in g)
 * cover [lo, hi). Sweeps from lo: at each step any permitted interval that
 * starts at or before the covered point and ends after it extends the
 * coverage. Roles hold few perms, so the quadratic walk costs less than
 * sorting would.
 */
static bool covered(const struct auth_grants *g, enum core_perm want, struct bound lo,
		    const struct bound *hi)
{
	if (bound_cmp(&lo, hi) >= 0)
		return false; /* an empty or inverted range: nothing to grant */
	for (;;) {
		bool moved = false;
		for (size_t j = 0; j < g->n; j++) {
			const struct auth_perm *p = &g->perms[j];
			if (!type_allows(p->type, want))
				continue;
			struct bound plo, phi;
			interval(p->key, p->key_len, p->end, p->end_len, &plo, &phi);
			if (bound_cmp(&plo, &lo) <= 0 && bound_cmp(&phi, &lo) > 0) {
				lo = phi;
				moved = true;
				if (bound_cmp(&lo, hi) >= 0)
					return true;
			}
		}
		if (!moved)
			return false;
	}
}

/* user's grants: the thread's copy (no lock), or, if they do not fit one,
 * a fresh copy made under the read lock into *tmp (*own set: free it with
 * auth_grants_free). NULL when out of memory. */
static const struct auth_grants *grants(struct core_auth *a, const char *user,
					struct auth_grants *tmp, bool *own)
{
	*own = false;
	const struct auth_grants *g = auth_cache_grants(a, user);
	if (g != NULL)
		return g;
	pthread_rwlock_rdlock(&a->lock);
	bool ok = auth_grants_locked(a, user, tmp);
	pthread_rwlock_unlock(&a->lock);
	*own = ok;
	return ok ? tmp : NULL;
}

bool core_auth_enabled(struct core *c)
{
	return atomic_load_explicit(&c->auth->enabled, memory_order_acquire);
}

int core_auth_check_range(struct core *c, const char *user, enum core_perm perm,
			  const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len)
{
	struct core_auth *a = c->auth;
	if (!core_auth_enabled(c))
		return CORE_OK;
	if (user == NULL || user[0] == 0)
		return CORE_EUSER_EMPTY;
	struct auth_grants tmp;
	bool own;
	const struct auth_grants *g = grants(a, user, &tmp, &own);
	if (g == NULL)
		return CORE_ENOMEM;
	int err = CORE_EPERMISSION_DENIED; /* also an unknown user */
	if (g->kind == AUTH_GRANTS_ROOT) {
		err = CORE_OK;
	} else if (g->kind == AUTH_GRANTS_PERMS) {
		struct bound lo, hi;
		interval(key, key_len, end, end_len, &lo, &hi);
		if (perm == CORE_PERM_READWRITE)
			err = covered(g, CORE_PERM_READ, lo, &hi) && covered(g, CORE_PERM_WRITE, lo, &hi)
				      ? CORE_OK
				      : CORE_EPERMISSION_DENIED;
		else if (covered(g, perm, lo, &hi))
			err = CORE_OK;
	}
	if (own)
		auth_grants_free(&tmp);
	return err;
}

/* A known user (with auth on), and with the root role when root is asked. */
static int check_user(struct core *c, const char *user, bool root)
{
	if (!core_auth_enabled(c))
		return CORE_OK;
	if (user == NULL || user[0] == 0)
		return CORE_EUSER_EMPTY;
	struct auth_grants tmp;
	bool own;
	const struct auth_grants *g = grants(c->auth, user, &tmp, &own);
	if (g == NULL)
		return CORE_ENOMEM;
	int err = CORE_OK;
	if (g->kind == AUTH_GRANTS_NO_USER)
		err = CORE_EUSER_NOT_FOUND;
	else if (root && g->kind != AUTH_GRANTS_ROOT)
		err = CORE_EPERMISSION_DENIED;
	if (own)
		auth_grants_free(&tmp);
	return err;
}

int core_auth_check_admin(struct core *c, const char *user)
{
	return check_user(c, user, true);
}

int core_auth_check_user(struct core *c, const char *user)
{
	return check_user(c, user, false);
}

bool core_auth_has_role(struct core *c, const char *user, const char *role)
{
	struct core_auth *a = c->auth;
	pthread_rwlock_rdlock(&a->lock);
	const struct auth_user *u = auth_find_user(a, user);
	bool has = u != NULL && auth_user_has_role(u, role);
	pthread_rwlock_unlock(&a->lock);
	return has;
}

int core_auth_check_lease(struct core *c, const char *user, int64_t lease, enum core_perm perm)
{
	if (!core_auth_enabled(c))
		return CORE_OK;
	if (user == NULL || user[0] == 0)
		return CORE_EUSER_EMPTY;
	struct db_session *s = core_session(c);
	return s == NULL ? CORE_ENOMEM : auth_lease_keys_check(c, s, user, lease, perm);
}

int auth_lease_keys_check(struct core *c, struct db_session *s, const char *user, int64_t lease,
			  enum core_perm perm)
{
	if (core_auth_check_admin(c, user) == CORE_OK)
		return CORE_OK; /* root: no need to list the keys */
	struct mvcc_kvlist keys;
	mvcc_kvlist_init(&keys);
	int err = core_db_err(mvcc_lease_keys(c->mvcc, s, lease, &keys));
	for (size_t i = 0; err == CORE_OK && i < keys.n; i++)
		err = core_auth_check_range(c, user, perm, keys.kvs[i].key, keys.kvs[i].key_len, NULL,
					    0);
	mvcc_kvlist_free(&keys);
	return err;
}

int core_auth_check_put(struct core *c, const char *user, const Etcdserverpb__PutRequest *p)
{
	int err = core_auth_check_range(c, user, CORE_PERM_WRITE, p->key.data, p->key.len, NULL, 0);
	if (err == CORE_OK && p->prev_kv) /* the old value comes back: reading it */
		err = core_auth_check_range(c, user, CORE_PERM_READ, p->key.data, p->key.len, NULL, 0);
	if (err == CORE_OK && p->lease != 0 && !p->ignore_lease)
		err = core_auth_check_lease(c, user, p->lease, CORE_PERM_WRITE);
	return err;
}

int core_auth_check_delete(struct core *c, const char *user,
			   const Etcdserverpb__DeleteRangeRequest *d)
{
	int err = core_auth_check_range(c, user, CORE_PERM_WRITE, d->key.data, d->key.len,
					d->range_end.data, d->range_end.len);
	if (err == CORE_OK && d->prev_kv)
		err = core_auth_check_range(c, user, CORE_PERM_READ, d->key.data, d->key.len,
					    d->range_end.data, d->range_end.len);
	return err;
}

/* Nesting deeper than this cannot pass validation (each level is an op of
 * the budget, --max-txn-ops): refuse it before the recursion uses the
 * stack, since the check runs before validation. */
#define MAX_TXN_DEPTH 1024

static int check_txn(struct core *c, const char *user, const Etcdserverpb__TxnRequest *t,
		     int depth);

static int check_ops(struct core *c, const char *user, Etcdserverpb__RequestOp **ops, size_t n,
		     int depth)
{
	for (size_t i = 0; i < n; i++) {
		const Etcdserverpb__RequestOp *op = ops[i];
		int err = CORE_OK;
		switch (op->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			err = core_auth_check_range(c, user, CORE_PERM_READ, op->request_range->key.data,
						    op->request_range->key.len,
						    op->request_range->range_end.data,
						    op->request_range->range_end.len);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			err = core_auth_check_put(c, user, op->request_put);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
			err = core_auth_check_delete(c, user, op->request_delete_range);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			err = check_txn(c, user, op->request_txn, depth + 1);
			break;
		default:
			break; /* an empty op is refused by validation */
		}
		if (err != CORE_OK)
			return err;
	}
	return CORE_OK;
}

static int check_txn(struct core *c, const char *user, const Etcdserverpb__TxnRequest *t,
		     int depth)
{
	if (depth > MAX_TXN_DEPTH)
		return CORE_ETOO_MANY_OPS;
	for (size_t i = 0; i < t->n_compare; i++) {
		const Etcdserverpb__Compare *cmp = t->compare[i];
		int err = core_auth_check_range(c, user, CORE_PERM_READ, cmp->key.data, cmp->key.len,
						cmp->range_end.data, cmp->range_end.len);
		if (err != CORE_OK)
			return err;
	}
	/* Both branches, whichever runs: the outcome must not decide access. */
	int err = check_ops(c, user, t->success, t->n_success, depth);
	return err != CORE_OK ? err : check_ops(c, user, t->failure, t->n_failure, depth);
}

int core_auth_check_txn(struct core *c, const char *user, const Etcdserverpb__TxnRequest *t)
{
	if (!core_auth_enabled(c))
		return CORE_OK;
	if (user == NULL || user[0] == 0)
		return CORE_EUSER_EMPTY;
	return check_txn(c, user, t, 0);
}
