/*
 * controllers/client.c — the controllers' client calls: synchronous Range,
 * Txn and lease calls over core's asynchronous ones, made from the
 * controller thread (core answers reads inline and writes from its apply
 * thread; the waiter only signals, so it never holds a core thread up).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controllers/ctl_internal.h"
#include "core/core.h"

/* ---- waiting for a callback ---- */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	struct core_reply *reply;
};

static void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->done = false;
	w->reply = NULL;
}

static void waiter_done(void *arg, struct core_reply *reply)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->reply = reply;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Wait for the reply; returns it (the caller's) with its error. */
static struct core_reply *waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	return w->reply;
}

/* ---- Txn builder ---- */

void ctl_txn_init(struct ctl_txn *t)
{
	memset(t, 0, sizeof(*t));
	etcdserverpb__txn_request__init(&t->req);
}

static bool grow(void ***arr, size_t n, size_t *cap)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 8;
	void **p = realloc(*arr, nc * sizeof(*p));
	if (p == NULL)
		return false;
	*arr = p;
	*cap = nc;
	return true;
}

static bool copy_bytes(ProtobufCBinaryData *d, const char *p, size_t len)
{
	d->data = malloc(len ? len : 1);
	if (d->data == NULL)
		return false;
	if (len)
		memcpy(d->data, p, len);
	d->len = len;
	return true;
}

static void add_cmp(struct ctl_txn *t, const char *key, size_t key_len,
		    Etcdserverpb__Compare__CompareTarget target, int64_t rev)
{
	if (t->oom || !grow((void ***)&t->cmp, t->n_cmp, &t->cap_cmp)) {
		t->oom = true;
		return;
	}
	Etcdserverpb__Compare *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		t->oom = true;
		return;
	}
	etcdserverpb__compare__init(c);
	if (!copy_bytes(&c->key, key, key_len)) {
		free(c);
		t->oom = true;
		return;
	}
	c->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	c->target = target;
	if (target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD) {
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		c->mod_revision = rev;
	} else {
		c->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
		c->create_revision = rev;
	}
	t->cmp[t->n_cmp++] = c;
}

void ctl_txn_cmp_mod(struct ctl_txn *t, const char *key, size_t key_len, int64_t mod_rev)
{
	add_cmp(t, key, key_len, ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD, mod_rev);
}

void ctl_txn_cmp_create(struct ctl_txn *t, const char *key, size_t key_len, int64_t create_rev)
{
	add_cmp(t, key, key_len, ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE, create_rev);
}

static Etcdserverpb__RequestOp *add_op(struct ctl_txn *t)
{
	if (t->oom || !grow((void ***)&t->ops, t->n_ops, &t->cap_ops)) {
		t->oom = true;
		return NULL;
	}
	Etcdserverpb__RequestOp *op = calloc(1, sizeof(*op));
	if (op == NULL) {
		t->oom = true;
		return NULL;
	}
	etcdserverpb__request_op__init(op);
	t->ops[t->n_ops++] = op;
	return op;
}

void ctl_txn_put(struct ctl_txn *t, const char *key, size_t key_len, const char *val,
		 size_t val_len, int64_t lease)
{
	Etcdserverpb__RequestOp *op = add_op(t);
	if (op == NULL)
		return;
	Etcdserverpb__PutRequest *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		t->oom = true;
		return;
	}
	etcdserverpb__put_request__init(p);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op->request_put = p;
	p->lease = lease;
	if (!copy_bytes(&p->key, key, key_len) || !copy_bytes(&p->value, val, val_len))
		t->oom = true;
}

void ctl_txn_put_lease(struct ctl_txn *t, const char *key, size_t key_len, int64_t lease)
{
	ctl_txn_put(t, key, key_len, "", 0, lease);
	if (!t->oom)
		t->ops[t->n_ops - 1]->request_put->ignore_value = true;
}

void ctl_txn_del_range(struct ctl_txn *t, const char *key, size_t key_len, const char *end,
		       size_t end_len)
{
	ctl_txn_del(t, key, key_len);
	if (t->oom || end == NULL)
		return;
	Etcdserverpb__DeleteRangeRequest *d = t->ops[t->n_ops - 1]->request_delete_range;
	if (!copy_bytes(&d->range_end, end, end_len))
		t->oom = true;
}

void ctl_txn_del(struct ctl_txn *t, const char *key, size_t key_len)
{
	Etcdserverpb__RequestOp *op = add_op(t);
	if (op == NULL)
		return;
	Etcdserverpb__DeleteRangeRequest *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		t->oom = true;
		return;
	}
	etcdserverpb__delete_range_request__init(d);
	op->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	op->request_delete_range = d;
	if (!copy_bytes(&d->key, key, key_len))
		t->oom = true;
}

size_t ctl_txn_ops(const struct ctl_txn *t)
{
	return t->n_ops;
}

void ctl_txn_free(struct ctl_txn *t)
{
	for (size_t i = 0; i < t->n_cmp; i++) {
		free(t->cmp[i]->key.data);
		free(t->cmp[i]);
	}
	for (size_t i = 0; i < t->n_ops; i++) {
		Etcdserverpb__RequestOp *op = t->ops[i];
		if (op->request_put != NULL && op->request_case ==
		    ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT) {
			free(op->request_put->key.data);
			free(op->request_put->value.data);
			free(op->request_put);
		} else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE &&
			   op->request_delete_range != NULL) {
			free(op->request_delete_range->key.data);
			free(op->request_delete_range->range_end.data);
			free(op->request_delete_range);
		}
		free(op);
	}
	free(t->cmp);
	free(t->ops);
	ctl_txn_init(t);
}

int ctl_txn_commit(struct ctl *rt, struct ctl_txn *t, bool *ok, int64_t *rev)
{
	*ok = false;
	if (t->oom)
		return CORE_ENOMEM;
	t->req.n_compare = t->n_cmp;
	t->req.compare = t->cmp;
	t->req.n_success = t->n_ops;
	t->req.success = t->ops;
	struct waiter w;
	waiter_init(&w);
	core_txn(ctl_core(rt), &t->req, waiter_done, &w);
	struct core_reply *r = waiter_wait(&w);
	int err = r->err;
	if (err == CORE_OK) {
		const Etcdserverpb__TxnResponse *tr = (const Etcdserverpb__TxnResponse *)r->msg;
		*ok = tr->succeeded;
		if (rev != NULL)
			*rev = tr->header != NULL ? tr->header->revision : 0;
		if (*ok)
			ctl_count_action(rt);
	}
	core_reply_free(r);
	return err;
}

#define PIPE_WINDOW 8 /* Txns in flight at once: enough for group commit to batch them */

int ctl_txn_many(struct ctl *rt, struct ctl_txn *txns, size_t n, bool *ok, int64_t *rev)
{
	struct waiter *w = calloc(n ? n : 1, sizeof(*w));
	if (w == NULL)
		return CORE_ENOMEM;
	int first_err = CORE_OK;
	size_t next = 0, done = 0;
	while (done < n) {
		while (next < n && next - done < PIPE_WINDOW) {
			struct ctl_txn *t = &txns[next];
			waiter_init(&w[next]);
			if (t->oom || !ctl_leading(rt)) {
				waiter_done(&w[next], NULL);
			} else {
				t->req.n_compare = t->n_cmp;
				t->req.compare = t->cmp;
				t->req.n_success = t->n_ops;
				t->req.success = t->ops;
				core_txn(ctl_core(rt), &t->req, waiter_done, &w[next]);
			}
			next++;
		}
		struct core_reply *r = waiter_wait(&w[done]);
		ok[done] = false;
		rev[done] = 0;
		int err = r != NULL ? r->err : CORE_ENOMEM;
		if (err == CORE_OK) {
			const Etcdserverpb__TxnResponse *tr = (const Etcdserverpb__TxnResponse *)r->msg;
			ok[done] = tr->succeeded;
			rev[done] = tr->header != NULL ? tr->header->revision : 0;
			if (ok[done])
				ctl_count_action(rt);
		} else if (first_err == CORE_OK) {
			first_err = err;
		}
		core_reply_free(r);
		done++;
	}
	free(w);
	return first_err;
}

/* ---- reads and leases ---- */

int ctl_range(struct ctl *rt, const char *key, size_t key_len, const char *end, size_t end_len,
	      int64_t rev, struct core_reply **reply, const Etcdserverpb__RangeResponse **resp)
{
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key.data = (uint8_t *)key;
	q.key.len = key_len;
	if (end != NULL) {
		q.range_end.data = (uint8_t *)end;
		q.range_end.len = end_len;
	}
	q.revision = rev;
	struct waiter w;
	waiter_init(&w);
	core_range(ctl_core(rt), &q, waiter_done, &w);
	struct core_reply *r = waiter_wait(&w);
	int err = r->err;
	if (err != CORE_OK) {
		core_reply_free(r);
		*reply = NULL;
		*resp = NULL;
		return err;
	}
	*reply = r;
	*resp = (const Etcdserverpb__RangeResponse *)r->msg;
	return CORE_OK;
}

int ctl_lease_grant(struct ctl *rt, int64_t ttl, int64_t *id)
{
	Etcdserverpb__LeaseGrantRequest q = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	q.ttl = ttl;
	struct waiter w;
	waiter_init(&w);
	core_lease_grant(ctl_core(rt), &q, waiter_done, &w);
	struct core_reply *r = waiter_wait(&w);
	int err = r->err;
	if (err == CORE_OK)
		*id = ((const Etcdserverpb__LeaseGrantResponse *)r->msg)->id;
	core_reply_free(r);
	return err;
}

int ctl_lease_revoke(struct ctl *rt, int64_t id)
{
	Etcdserverpb__LeaseRevokeRequest q = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	q.id = id;
	struct waiter w;
	waiter_init(&w);
	core_lease_revoke(ctl_core(rt), &q, waiter_done, &w);
	struct core_reply *r = waiter_wait(&w);
	int err = r->err;
	core_reply_free(r);
	return err;
}

size_t ctl_prefix_end(const char *pfx, size_t len, char *buf)
{
	memcpy(buf, pfx, len);
	for (size_t i = len; i-- > 0;)
		if ((unsigned char)buf[i] < 0xff) {
			buf[i] = (char)((unsigned char)buf[i] + 1);
			return i + 1;
		}
	buf[0] = 0;
	return 1;
}

size_t ctl_key(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int ctl_key_split(const char *key, size_t key_len, size_t skip, char (*parts)[CTL_PART_MAX],
		  size_t n)
{
	if (key_len < skip)
		return -1;
	const char *p = key + skip, *end = key + key_len;
	size_t k = 0;
	while (p <= end && k < n) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *stop = (k == n - 1 || slash == NULL) ? end : slash;
		if (k == n - 1 && slash != NULL)
			return -1; /* more segments than asked for */
		size_t len = (size_t)(stop - p);
		if (len == 0 || len >= CTL_PART_MAX)
			return -1;
		memcpy(parts[k], p, len);
		parts[k][len] = 0;
		k++;
		p = stop + 1;
	}
	return k == n && p >= end ? (int)n : -1;
}
