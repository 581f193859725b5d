/*
 * core/txn.c — etcd's Txn: compares, then the chosen branch, nested txns.
 *
 * As in etcd, the whole path of compare results (nested txns included) is
 * decided before any operation runs, then puts are checked (ignore_value /
 * ignore_lease keys, leases) and range revisions are checked, so a txn that
 * fails does so before it changes anything.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

struct path {
	bool *v;
	size_t n, cap;
};

static int path_push(struct path *p, bool b)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		bool *v = realloc(p->v, cap * sizeof(*v));
		if (v == NULL)
			return CORE_ENOMEM;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = b;
	return CORE_OK;
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static bool compare_kv(const Etcdserverpb__Compare *cmp, const struct mvcc_kv *kv)
{
	int res = 0;
	switch (cmp->target) {
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE: {
		const uint8_t *v = NULL;
		size_t vl = 0;
		if (cmp->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE) {
			v = cmp->value.data;
			vl = cmp->value.len;
		}
		size_t n = kv->value_len < vl ? kv->value_len : vl;
		res = n ? memcmp(kv->value, v, n) : 0;
		if (res == 0)
			res = kv->value_len < vl ? -1 : kv->value_len > vl;
		break;
	}
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
		res = cmp_i64(kv->create_revision,
			      cmp->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION
				      ? cmp->create_revision
				      : 0);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
		res = cmp_i64(kv->mod_revision,
			      cmp->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION
				      ? cmp->mod_revision
				      : 0);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
		res = cmp_i64(kv->version,
			      cmp->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION
				      ? cmp->version
				      : 0);
		break;
	case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
		res = cmp_i64(kv->lease, cmp->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE
						 ? cmp->lease
						 : 0);
		break;
	default:
		break;
	}
	switch (cmp->result) {
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL:
		return res == 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL:
		return res != 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER:
		return res > 0;
	case ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS:
		return res < 0;
	default:
		return true;
	}
}

static int apply_compare(struct core *c, struct db_session *s, const Etcdserverpb__Compare *cmp,
			 bool *ok)
{
	struct mvcc_range_req q = {
		.key = cmp->key.data,
		.key_len = cmp->key.len,
		.end = cmp->range_end.data,
		.end_len = cmp->range_end.len,
		.flags = cmp->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE ? 0 : MVCC_KEYS_ONLY,
	};
	struct mvcc_range_res res = {0};
	int rv = mvcc_range(c->mvcc, s, &q, &res);
	if (rv != DB_OK) {
		mvcc_kvlist_free(&res.kvs);
		return core_db_err(rv);
	}
	if (res.kvs.n == 0) {
		/* A missing key compares as zero, but a value compare never holds. */
		struct mvcc_kv zero = {0};
		*ok = cmp->target != ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE && compare_kv(cmp, &zero);
	} else {
		*ok = true;
		for (size_t i = 0; i < res.kvs.n && *ok; i++)
			*ok = compare_kv(cmp, &res.kvs.kvs[i]);
	}
	mvcc_kvlist_free(&res.kvs);
	return CORE_OK;
}

/* Decide every compare on the path (depth first, etcd's compareToPath). */
static int decide_path(struct core *c, struct db_session *s, const Etcdserverpb__TxnRequest *t,
		       struct path *p)
{
	bool ok = true;
	for (size_t i = 0; i < t->n_compare && ok; i++) {
		int rv = apply_compare(c, s, t->compare[i], &ok);
		if (rv != CORE_OK)
			return rv;
	}
	int rv = path_push(p, ok);
	if (rv != CORE_OK)
		return rv;
	Etcdserverpb__RequestOp **ops = ok ? t->success : t->failure;
	size_t n = ok ? t->n_success : t->n_failure;
	for (size_t i = 0; i < n; i++) {
		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
			continue;
		rv = decide_path(c, s, ops[i]->request_txn, p);
		if (rv != CORE_OK)
			return rv;
	}
	return CORE_OK;
}

/* etcd's checkRequests over the chosen path: puts, then range revisions;
 * with guard, deletes of controller-owned keys too (core/reserved.h). */
static int check_path(struct core *c, struct db_session *s, const Etcdserverpb__TxnRequest *t,
		      const struct path *p, size_t *at, bool guard)
{
	bool ok = p->v[(*at)++];
	Etcdserverpb__RequestOp **ops = ok ? t->success : t->failure;
	size_t n = ok ? t->n_success : t->n_failure;
	for (size_t i = 0; i < n; i++) {
		int rv = CORE_OK;
		const Etcdserverpb__RequestOp *op = ops[i];
		if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT) {
			rv = check_put(c, s, op->request_put);
		} else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE) {
			int64_t rev = op->request_range->revision;
			if (rev > 0) {
				if (rev > mvcc_rev(c->mvcc))
					rv = CORE_EFUTURE_REV;
				else if (rev < mvcc_compact_rev(c->mvcc))
					rv = CORE_ECOMPACTED;
			}
		} else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE) {
			if (guard)
				rv = reserved_check_delete(c, s, op->request_delete_range);
		} else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN) {
			rv = check_path(c, s, op->request_txn, p, at, guard);
		}
		if (rv != CORE_OK)
			return rv;
	}
	return CORE_OK;
}

static int exec_path(struct core *c, struct db_session *s, struct reply *r,
		     const Etcdserverpb__TxnRequest *t, const struct path *p, size_t *at,
		     Etcdserverpb__TxnResponse **out)
{
	bool ok = p->v[(*at)++];
	Etcdserverpb__RequestOp **ops = ok ? t->success : t->failure;
	size_t n = ok ? t->n_success : t->n_failure;
	Etcdserverpb__TxnResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	if (resp == NULL)
		return CORE_ENOMEM;
	etcdserverpb__txn_response__init(resp);
	resp->succeeded = ok;
	if (n > 0) {
		resp->responses = arena_alloc(&r->arena, n * sizeof(*resp->responses));
		if (resp->responses == NULL)
			return CORE_ENOMEM;
		resp->n_responses = n;
	}
	for (size_t i = 0; i < n; i++) {
		Etcdserverpb__ResponseOp *ro = arena_alloc(&r->arena, sizeof(*ro));
		if (ro == NULL)
			return CORE_ENOMEM;
		etcdserverpb__response_op__init(ro);
		resp->responses[i] = ro;
		int rv = CORE_OK;
		const Etcdserverpb__RequestOp *op = ops[i];
		switch (op->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
			rv = core_range_exec(c, s, r, op->request_range, &ro->response_range);
			/* ETCD-COMPAT: a Range inside a Txn answers only the
			 * revision in its header (etcd's applier sets nothing else) */
			if (rv == CORE_OK && ro->response_range->header != NULL) {
				Etcdserverpb__ResponseHeader *h = ro->response_range->header;
				h->cluster_id = h->member_id = h->raft_term = 0;
			}
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
			rv = apply_put(c, s, r, op->request_put, &ro->response_put);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
			rv = apply_delete(c, s, r, op->request_delete_range, &ro->response_delete_range);
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			ro->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
			rv = exec_path(c, s, r, op->request_txn, p, at, &ro->response_txn);
			break;
		default:
			rv = CORE_EKEY_NOT_FOUND;
			break;
		}
		if (rv != CORE_OK)
			return rv;
	}
	resp->header = arena_alloc(&r->arena, sizeof(*resp->header));
	if (resp->header == NULL)
		return CORE_ENOMEM;
	etcdserverpb__response_header__init(resp->header);
	*out = resp;
	return CORE_OK;
}

/* etcd leaves nested put and delete headers with only the revision of the
 * whole txn (ranges carry their own read revision), and a nested txn's own
 * header empty: only the outermost TxnResponse gets a revision. */
static void set_nested_revs(Etcdserverpb__TxnResponse *t, int64_t rev)
{
	for (size_t i = 0; i < t->n_responses; i++) {
		Etcdserverpb__ResponseOp *ro = t->responses[i];
		switch (ro->response_case) {
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
			ro->response_put->header->revision = rev;
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
			ro->response_delete_range->header->revision = rev;
			break;
		case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN:
			set_nested_revs(ro->response_txn, rev);
			break;
		default:
			break;
		}
	}
}

int apply_txn(struct core *c, struct db_session *s, struct reply *r,
	      const Etcdserverpb__TxnRequest *req, bool write, bool guard,
	      Etcdserverpb__TxnResponse **out)
{
	struct path p = {0};
	size_t at = 0;
	int rv = decide_path(c, s, req, &p);
	if (rv == CORE_OK)
		rv = check_path(c, s, req, &p, &at, guard);
	if (rv == CORE_OK) {
		at = 0;
		if (write)
			mvcc_req_begin(c->mvcc, s);
		rv = exec_path(c, s, r, req, &p, &at, out);
		int64_t rev = write ? mvcc_req_end(c->mvcc, s) : mvcc_rev(c->mvcc);
		if (rv == CORE_OK) {
			set_nested_revs(*out, rev);
			core_fill_header(c, (*out)->header, rev);
		}
	}
	free(p.v);
	return rv;
}
