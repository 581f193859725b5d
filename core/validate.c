/*
 * core/validate.c — checks a request must pass before it enters the log,
 * with etcd's rules and errors (v3rpc key.go): empty keys, ignore_value /
 * ignore_lease conflicts, txn size and the duplicate-key rule.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

int validate_range(const Etcdserverpb__RangeRequest *r)
{
	return r->key.len == 0 ? CORE_EKEY_NOT_PROVIDED : CORE_OK;
}

int validate_put(const Etcdserverpb__PutRequest *r)
{
	if (r->key.len == 0)
		return CORE_EKEY_NOT_PROVIDED;
	if (r->ignore_value && r->value.len != 0)
		return CORE_EVALUE_PROVIDED;
	if (r->ignore_lease && r->lease != 0)
		return CORE_ELEASE_PROVIDED;
	return CORE_OK;
}

int validate_delete(const Etcdserverpb__DeleteRangeRequest *r)
{
	return r->key.len == 0 ? CORE_EKEY_NOT_PROVIDED : CORE_OK;
}

static int validate_op(const Etcdserverpb__RequestOp *op, uint32_t max_ops)
{
	switch (op->request_case) {
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
		return validate_range(op->request_range);
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
		return validate_put(op->request_put);
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
		return validate_delete(op->request_delete_range);
	case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
		return validate_txn(op->request_txn, max_ops);
	default:
		return CORE_EKEY_NOT_FOUND; /* etcd's answer to an empty op */
	}
}

/* ---- the duplicate-key rule (etcd checkIntervals) ---- */

/* A deleted interval [key, end), or the single key when point is set. */
struct span {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *end;
	size_t end_len;
	bool point;
};

struct key_sets {
	struct span *dels;
	size_t n_dels, cap_dels;
	const ProtobufCBinaryData **puts;
	size_t n_puts, cap_puts;
};

static int bcmp_(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

static bool span_hits(const struct span *s, const ProtobufCBinaryData *k)
{
	int c = bcmp_(k->data, k->len, s->key, s->key_len);
	if (s->point || c < 0)
		return c == 0;
	return bcmp_(k->data, k->len, s->end, s->end_len) < 0;
}

static bool hits_dels(const struct key_sets *ks, const ProtobufCBinaryData *k)
{
	for (size_t i = 0; i < ks->n_dels; i++)
		if (span_hits(&ks->dels[i], k))
			return true;
	return false;
}

static bool in_puts(const struct key_sets *ks, const ProtobufCBinaryData *k)
{
	for (size_t i = 0; i < ks->n_puts; i++)
		if (bcmp_(ks->puts[i]->data, ks->puts[i]->len, k->data, k->len) == 0)
			return true;
	return false;
}

static int add_del(struct key_sets *ks, struct span s)
{
	if (ks->n_dels == ks->cap_dels) {
		size_t cap = ks->cap_dels ? ks->cap_dels * 2 : 8;
		struct span *p = realloc(ks->dels, cap * sizeof(*p));
		if (p == NULL)
			return CORE_ENOMEM;
		ks->dels = p;
		ks->cap_dels = cap;
	}
	ks->dels[ks->n_dels++] = s;
	return CORE_OK;
}

static int add_put(struct key_sets *ks, const ProtobufCBinaryData *k)
{
	if (ks->n_puts == ks->cap_puts) {
		size_t cap = ks->cap_puts ? ks->cap_puts * 2 : 8;
		const ProtobufCBinaryData **p = realloc(ks->puts, cap * sizeof(*p));
		if (p == NULL)
			return CORE_ENOMEM;
		ks->puts = p;
		ks->cap_puts = cap;
	}
	ks->puts[ks->n_puts++] = k;
	return CORE_OK;
}

static void sets_free(struct key_sets *ks)
{
	free(ks->dels);
	free(ks->puts);
	memset(ks, 0, sizeof(*ks));
}

static struct span del_span(const Etcdserverpb__DeleteRangeRequest *d)
{
	/* etcd takes range_end literally here, so a from-key delete ("\0")
	 * is the empty interval [key, "\0") and conflicts with no put. */
	struct span s = {d->key.data, d->key.len, d->range_end.data, d->range_end.len,
			 d->range_end.len == 0};
	return s;
}

/* Collect the puts and deletes of one branch; fail on a conflict. */
static int check_branch(Etcdserverpb__RequestOp **ops, size_t n, struct key_sets *out)
{
	int rv = CORE_OK;
	/* This level's deletes first, so nested puts are checked against them. */
	for (size_t i = 0; i < n && rv == CORE_OK; i++)
		if (ops[i]->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE)
			rv = add_del(out, del_span(ops[i]->request_delete_range));
	for (size_t i = 0; i < n && rv == CORE_OK; i++) {
		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
			continue;
		const Etcdserverpb__TxnRequest *t = ops[i]->request_txn;
		struct key_sets then = {0}, els = {0};
		rv = check_branch(t->success, t->n_success, &then);
		if (rv == CORE_OK)
			rv = check_branch(t->failure, t->n_failure, &els);
		for (size_t k = 0; k < then.n_puts && rv == CORE_OK; k++) {
			if (in_puts(out, then.puts[k]) || hits_dels(out, then.puts[k]))
				rv = CORE_EDUPLICATE_KEY;
			else
				rv = add_put(out, then.puts[k]);
		}
		for (size_t k = 0; k < els.n_puts && rv == CORE_OK; k++) {
			/* then and else are exclusive: the same key in both is fine */
			if ((in_puts(out, els.puts[k]) && !in_puts(&then, els.puts[k])) ||
			    hits_dels(out, els.puts[k]))
				rv = CORE_EDUPLICATE_KEY;
			else if (!in_puts(&then, els.puts[k]))
				rv = add_put(out, els.puts[k]);
		}
		for (size_t k = 0; k < then.n_dels && rv == CORE_OK; k++)
			rv = add_del(out, then.dels[k]);
		for (size_t k = 0; k < els.n_dels && rv == CORE_OK; k++)
			rv = add_del(out, els.dels[k]);
		sets_free(&then);
		sets_free(&els);
	}
	for (size_t i = 0; i < n && rv == CORE_OK; i++) {
		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
			continue;
		const ProtobufCBinaryData *k = &ops[i]->request_put->key;
		if (in_puts(out, k) || hits_dels(out, k))
			rv = CORE_EDUPLICATE_KEY;
		else
			rv = add_put(out, k);
	}
	return rv;
}

static int check_intervals(Etcdserverpb__RequestOp **ops, size_t n)
{
	struct key_sets ks = {0};
	int rv = check_branch(ops, n, &ks);
	sets_free(&ks);
	return rv;
}

int validate_txn(const Etcdserverpb__TxnRequest *r, uint32_t max_ops)
{
	size_t opc = r->n_compare;
	if (opc < r->n_success)
		opc = r->n_success;
	if (opc < r->n_failure)
		opc = r->n_failure;
	if (opc > max_ops)
		return CORE_ETOO_MANY_OPS;
	for (size_t i = 0; i < r->n_compare; i++)
		if (r->compare[i]->key.len == 0)
			return CORE_EKEY_NOT_PROVIDED;
	/* Nested txns spend what is left of the budget, as in etcd. */
	uint32_t left = max_ops - (uint32_t)opc;
	for (size_t i = 0; i < r->n_success; i++) {
		int rv = validate_op(r->success[i], left);
		if (rv != CORE_OK)
			return rv;
	}
	for (size_t i = 0; i < r->n_failure; i++) {
		int rv = validate_op(r->failure[i], left);
		if (rv != CORE_OK)
			return rv;
	}
	int rv = check_intervals(r->success, r->n_success);
	if (rv == CORE_OK)
		rv = check_intervals(r->failure, r->n_failure);
	return rv;
}

static bool ops_readonly(Etcdserverpb__RequestOp **ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (ops[i]->request_case) {
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
			break;
		case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN:
			if (!txn_is_readonly(ops[i]->request_txn))
				return false;
			break;
		default:
			return false;
		}
	}
	return true;
}

bool txn_is_readonly(const Etcdserverpb__TxnRequest *r)
{
	return ops_readonly(r->success, r->n_success) && ops_readonly(r->failure, r->n_failure);
}

static bool ops_serializable(Etcdserverpb__RequestOp **ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ops[i]->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE ||
		    !ops[i]->request_range->serializable)
			return false;
	return true;
}

bool txn_is_serializable(const Etcdserverpb__TxnRequest *r)
{
	return ops_serializable(r->success, r->n_success) &&
	       ops_serializable(r->failure, r->n_failure);
}
