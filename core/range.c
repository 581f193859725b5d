/*
 * core/range.c — etcd's Range semantics on top of mvcc_range.
 *
 * The store answers [key, end) at a revision with a count; this file adds
 * what etcd's apply layer does: any sort or min/max filter disables limit
 * push-down (fetch all, then filter, sort, truncate); otherwise limit+1 is
 * fetched so `more` is exact. count is computed before filtering.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

struct sort_ctx {
	int target;
	int desc;
};

static int cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static _Thread_local struct sort_ctx g_sort;

static int cmp_kv(const void *pa, const void *pb)
{
	const struct mvcc_kv *a = pa, *b = pb;
	int c = 0;
	switch (g_sort.target) {
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION:
		c = cmp_i64(a->version, b->version);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE:
		c = cmp_i64(a->create_revision, b->create_revision);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD:
		c = cmp_i64(a->mod_revision, b->mod_revision);
		break;
	case ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE:
		c = cmp_bytes(a->value, a->value_len, b->value, b->value_len);
		break;
	default:
		break;
	}
	/* Ties keep key order, which makes results deterministic. */
	if (c == 0)
		c = cmp_bytes(a->key, a->key_len, b->key, b->key_len);
	return g_sort.desc ? -c : c;
}

static bool keep(const Etcdserverpb__RangeRequest *q, const struct mvcc_kv *kv)
{
	if (q->max_mod_revision != 0 && kv->mod_revision > q->max_mod_revision)
		return false;
	if (q->min_mod_revision != 0 && kv->mod_revision < q->min_mod_revision)
		return false;
	if (q->max_create_revision != 0 && kv->create_revision > q->max_create_revision)
		return false;
	if (q->min_create_revision != 0 && kv->create_revision < q->min_create_revision)
		return false;
	return true;
}

int core_range_exec(struct core *c, struct db_session *s, struct reply *r,
		    const Etcdserverpb__RangeRequest *q, Etcdserverpb__RangeResponse **out)
{
	bool filtered = q->min_mod_revision != 0 || q->max_mod_revision != 0 ||
			q->min_create_revision != 0 || q->max_create_revision != 0;
	int order = q->sort_order;
	/* etcd: a sort target other than KEY with order NONE means ASCEND. */
	if (order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE &&
	    q->sort_target != ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY)
		order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;

	struct mvcc_range_req mq = {
		.key = q->key.data,
		.key_len = q->key.len,
		.end = q->range_end.data,
		.end_len = q->range_end.len,
		.rev = q->revision,
		.limit = 0,
		.flags = 0,
	};
	if (q->limit > 0 && q->sort_order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE && !filtered)
		mq.limit = q->limit + 1; /* one extra tells whether there is more */
	/* Values are still needed to sort by value; they are dropped below. */
	if (q->keys_only && !(order != ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE &&
			      q->sort_target == ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE))
		mq.flags |= MVCC_KEYS_ONLY;
	if (q->count_only)
		mq.flags |= MVCC_COUNT_ONLY;

	struct mvcc_kvlist *kvs = reply_kvlist(r);
	if (kvs == NULL)
		return CORE_ENOMEM;
	struct mvcc_range_res res = {0};
	int rv = mvcc_range(c->mvcc, s, &mq, &res);
	if (rv != DB_OK) {
		mvcc_kvlist_free(&res.kvs);
		return core_db_err(rv);
	}
	*kvs = res.kvs; /* the reply now owns the list */

	size_t n = 0;
	for (size_t i = 0; i < kvs->n; i++)
		if (keep(q, &kvs->kvs[i]))
			kvs->kvs[n++] = kvs->kvs[i];

	if (order != ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE && n > 1) {
		g_sort.target = q->sort_target;
		g_sort.desc = order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
		qsort(kvs->kvs, n, sizeof(kvs->kvs[0]), cmp_kv);
	}

	Etcdserverpb__RangeResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	if (resp == NULL)
		return CORE_ENOMEM;
	etcdserverpb__range_response__init(resp);
	if (q->limit > 0 && n > (size_t)q->limit) {
		n = (size_t)q->limit;
		resp->more = 1;
	}
	resp->count = res.count;
	resp->header = reply_header(c, r, res.rev);
	if (resp->header == NULL)
		return CORE_ENOMEM;
	if (n > 0 && !q->count_only) {
		resp->kvs = arena_alloc(&r->arena, n * sizeof(*resp->kvs));
		if (resp->kvs == NULL)
			return CORE_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			resp->kvs[i] = reply_kv(r, &kvs->kvs[i]);
			if (resp->kvs[i] == NULL)
				return CORE_ENOMEM;
			if (q->keys_only) {
				resp->kvs[i]->value.data = NULL;
				resp->kvs[i]->value.len = 0;
			}
		}
		resp->n_kvs = n;
	}
	*out = resp;
	return CORE_OK;
}
