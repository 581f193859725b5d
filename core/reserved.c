/*
 * core/reserved.c — a client's write may not change a controller-owned key
 * (core/reserved.h). Only what a request writes is asked about: reads,
 * compares and Txn ranges are free, as clients may read and watch
 * everything.
 *
 * A put names its key, so it is judged when it arrives, in both branches
 * of a Txn. A delete of a range is judged when it is applied, by what the
 * range holds then: a range that could hold controllers' keys but holds
 * none (`etcdctl del "" --from-key` before any node registered, say) is
 * allowed, as it changes nothing of theirs. Apply decides from the entry
 * (its caller) and the store, so every member decides alike.
 */
#include <string.h>

#include "core/reserved.h"

#include "core/auth.h"
#include "core/core_internal.h"
#include "storage/mvcc.h"

/* Root, once auth is on, writes anything (as it may in etcd). */
static bool exempt(struct core *c, const char *user)
{
	return user != NULL && user[0] != 0 && core_auth_enabled(c) &&
	       core_auth_check_admin(c, user) == CORE_OK;
}

static bool owned(struct core *c, const uint8_t *key, size_t key_len, const uint8_t *end,
		  size_t end_len, bool del)
{
	return c->cfg.reserved != NULL && c->cfg.reserved(key, key_len, end, end_len, del);
}

static int put_err(struct core *c, const Etcdserverpb__PutRequest *p)
{
	return owned(c, p->key.data, p->key.len, NULL, 0, false) ? CORE_EPERMISSION_DENIED
								  : CORE_OK;
}

int core_reserved_check_put(struct core *c, const char *user, const Etcdserverpb__PutRequest *p)
{
	int err = put_err(c, p);
	return err != CORE_OK && exempt(c, user) ? CORE_OK : err;
}

/* Deeper than this cannot pass validation (each level is an op of the
 * --max-txn-ops budget); refuse it before recursing, as the check runs
 * before validation. */
#define MAX_TXN_DEPTH 1024

static int txn_err(struct core *c, const Etcdserverpb__TxnRequest *t, int depth)
{
	if (depth > MAX_TXN_DEPTH)
		return CORE_ETOO_MANY_OPS;
	for (int branch = 0; branch < 2; branch++) { /* whichever runs */
		Etcdserverpb__RequestOp **ops = branch ? t->failure : t->success;
		size_t n = branch ? t->n_failure : t->n_success;
		for (size_t i = 0; i < n; i++) {
			int err = CORE_OK;
			switch (ops[i]->request_case) {
			case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
				err = put_err(c, ops[i]->request_put);
				break;
			case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
				err = txn_err(c, ops[i]->request_txn, depth + 1);
				break;
			default:
				break; /* reads; deletes (at apply); empty ops (validation) */
			}
			if (err != CORE_OK)
				return err;
		}
	}
	return CORE_OK;
}

int core_reserved_check_txn(struct core *c, const char *user, const Etcdserverpb__TxnRequest *t)
{
	if (c->cfg.reserved == NULL)
		return CORE_OK;
	int err = txn_err(c, t, 0);
	return err == CORE_EPERMISSION_DENIED && exempt(c, user) ? CORE_OK : err;
}

int core_reserved_check_lease(struct core *c, const char *user, int64_t lease)
{
	if (c->cfg.reserved == NULL || exempt(c, user))
		return CORE_OK;
	struct db_session *s = core_session(c);
	if (s == NULL)
		return CORE_ENOMEM;
	struct mvcc_kvlist keys;
	mvcc_kvlist_init(&keys);
	int err = core_db_err(mvcc_lease_keys(c->mvcc, s, lease, &keys));
	for (size_t i = 0; err == CORE_OK && i < keys.n; i++)
		if (owned(c, keys.kvs[i].key, keys.kvs[i].key_len, NULL, 0, true))
			err = CORE_EPERMISSION_DENIED;
	mvcc_kvlist_free(&keys);
	return err;
}

int core_reserved_check_range(struct core *c, const char *user, const uint8_t *key,
			      size_t key_len, const uint8_t *end, size_t end_len)
{
	if (!owned(c, key, key_len, end, end_len, false) || exempt(c, user))
		return CORE_OK;
	return CORE_EPERMISSION_DENIED;
}

bool reserved_guarded(struct core *c, const Metadpb__InternalRequest *req)
{
	/* Clients' entries carry the auth revision of their check (>= 1);
	 * the controllers' and the lessor's carry none. */
	if (c->cfg.reserved == NULL || req->auth_revision == 0)
		return false;
	return !(core_auth_enabled(c) && req->auth_user != NULL && req->auth_user[0] != 0 &&
		 core_auth_has_role(c, req->auth_user, "root"));
}

/* The reserved prefix of DESIGN.md: controllers own keys below it only. */
static const uint8_t META[] = "/_meta/", META_END[] = "/_meta0";
#define META_LEN (sizeof(META) - 1)

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	int k = memcmp(a, b, an < bn ? an : bn);
	return k != 0 ? k : (an > bn) - (an < bn);
}

int reserved_check_delete(struct core *c, struct db_session *s,
			  const Etcdserverpb__DeleteRangeRequest *d)
{
	const uint8_t *key = d->key.data, *end = d->range_end.data;
	size_t key_len = d->key.len, end_len = d->range_end.len;
	if (!owned(c, key, key_len, end, end_len, true))
		return CORE_OK;
	if (end_len == 0)
		return CORE_EPERMISSION_DENIED; /* one key, and it is theirs */
	/* Which keys of the range under /_meta/ are there now, and is one of
	 * them the controllers'? */
	struct mvcc_range_req q = {.key = key, .key_len = key_len, .end = end, .end_len = end_len,
				   .flags = MVCC_KEYS_ONLY};
	if (bytes_cmp(key, key_len, META, META_LEN) < 0) {
		q.key = META;
		q.key_len = META_LEN;
	}
	if ((end_len == 1 && end[0] == 0) || bytes_cmp(end, end_len, META_END, META_LEN) > 0) {
		q.end = META_END;
		q.end_len = META_LEN;
	}
	struct mvcc_range_res res = {0};
	int err = core_db_err(mvcc_range(c->mvcc, s, &q, &res));
	for (size_t i = 0; err == CORE_OK && i < res.kvs.n; i++)
		if (owned(c, res.kvs.kvs[i].key, res.kvs.kvs[i].key_len, NULL, 0, true))
			err = CORE_EPERMISSION_DENIED;
	mvcc_kvlist_free(&res.kvs);
	return err;
}
