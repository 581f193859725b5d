/*
 * core/lock.c — the Lock service (v3lockpb) inside the server, as etcd's
 * v3lock runs clientv3's Mutex on the server, plus the helpers the
 * Election service shares.
 *
 * Lock(name, lease): lease 0 first grants a session lease (cc_session_lease);
 * key = name/<lease hex>; one txn creates it under the
 * lease unless it exists (a retry), and reads the oldest key under the
 * prefix. If that is ours, the lock is held; else wait until every key
 * created before ours is gone (each wait is a hub wait on the newest older
 * key), then check our key still exists (its lease may have expired).
 * Unlock(key) deletes the key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/core_internal.h"
#include "core/lock_internal.h"

#include "v3lock.pb-c.h"

/* ---- shared helpers ---- */

const char *core_concurrency_strerror(int err)
{
	switch (err) {
	case CORE_EC_SESSION_EXPIRED:
		return "mutex: session is expired";
	case CORE_EC_NOT_LEADER:
		return "election: not leader";
	case CORE_EC_NO_LEADER:
		return "election: no leader";
	case CORE_EC_MISSING_LEADER:
		return "\"leader\" field must be provided";
	default:
		return NULL;
	}
}

int cc_prefix(struct cbytes *out, const uint8_t *name, size_t len)
{
	out->p = malloc(len + 1);
	if (out->p == NULL)
		return CORE_ENOMEM;
	if (len)
		memcpy(out->p, name, len);
	out->p[len] = '/';
	out->len = len + 1;
	return CORE_OK;
}

/* pfx + lowercase hex of lease (the recipes' own key). */
static int cc_key(struct cbytes *out, const struct cbytes *pfx, int64_t lease)
{
	char hex[32];
	int n = snprintf(hex, sizeof(hex), "%llx", (unsigned long long)lease);
	out->p = malloc(pfx->len + (size_t)n);
	if (out->p == NULL)
		return CORE_ENOMEM;
	memcpy(out->p, pfx->p, pfx->len);
	memcpy(out->p + pfx->len, hex, (size_t)n);
	out->len = pfx->len + (size_t)n;
	return CORE_OK;
}

int cc_prefix_end(struct cbytes *out, const struct cbytes *pfx)
{
	out->p = malloc(pfx->len ? pfx->len : 1);
	if (out->p == NULL)
		return CORE_ENOMEM;
	memcpy(out->p, pfx->p, pfx->len);
	for (size_t i = pfx->len; i-- > 0;)
		if (out->p[i] < 0xff) {
			out->p[i]++;
			out->len = i + 1;
			return CORE_OK;
		}
	out->p[0] = 0; /* all 0xff: every key >= pfx */
	out->len = 1;
	return CORE_OK;
}

struct session_grant {
	cc_lease_fn fn;
	void *arg;
};

static void session_granted(void *arg, struct core_reply *reply)
{
	struct session_grant g = *(struct session_grant *)arg;
	free(arg);
	int err = reply->err;
	int64_t id = err == CORE_OK ? ((const Etcdserverpb__LeaseGrantResponse *)reply->msg)->id : 0;
	core_reply_free(reply);
	g.fn(g.arg, err, id);
}

void cc_session_lease(struct core *c, int64_t lease, cc_lease_fn fn, void *arg)
{
	if (lease != 0) {
		fn(arg, CORE_OK, lease);
		return;
	}
	struct session_grant *g = malloc(sizeof(*g));
	if (g == NULL) {
		fn(arg, CORE_ENOMEM, 0);
		return;
	}
	g->fn = fn;
	g->arg = arg;
	/* Through the normal lease path: a LeaseGrant like any client's. */
	Etcdserverpb__LeaseGrantRequest q = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	q.ttl = CC_SESSION_TTL;
	core_lease_grant(c, &q, session_granted, g);
}

int cc_session_key(int err, const _Atomic bool *cancelled, struct cbytes *key,
		   const struct cbytes *pfx, int64_t lease)
{
	if (err != CORE_OK)
		return err;
	if (atomic_load(cancelled))
		return CORE_ETIMEOUT; /* gone while its lease was granted */
	return cc_key(key, pfx, lease) == CORE_OK ? CORE_OK : CORE_ENOMEM;
}

static void capture(void *arg, struct core_reply *reply)
{
	*(struct core_reply **)arg = reply;
}

int cc_range(struct core *c, const Etcdserverpb__RangeRequest *q, struct core_reply **out)
{
	*out = NULL;
	core_range(c, q, capture, out); /* reads answer inline */
	return (*out)->err;
}

void cc_first_create(Etcdserverpb__RangeRequest *q, const struct cbytes *pfx,
		     const struct cbytes *end)
{
	etcdserverpb__range_request__init(q);
	q->key.data = pfx->p;
	q->key.len = pfx->len;
	q->range_end.data = end->p;
	q->range_end.len = end->len;
	q->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
	q->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
	q->limit = 1;
}

struct waitdel {
	struct core *c;
	struct cbytes pfx, end;
	int64_t max_rev;
	const _Atomic bool *cancel;
	cc_done_fn done;
	void *arg;
};

static void waitdel_end(struct waitdel *w, int err)
{
	cc_done_fn done = w->done;
	void *arg = w->arg;
	free(w->pfx.p);
	free(w->end.p);
	free(w);
	done(arg, err);
}

static void waitdel_step(void *arg, bool stopping)
{
	struct waitdel *w = arg;
	if (stopping) {
		waitdel_end(w, CORE_ESTOPPED);
		return;
	}
	if (w->cancel && atomic_load(w->cancel)) {
		waitdel_end(w, CORE_ETIMEOUT);
		return;
	}
	/* The newest key created at or before max_rev (clientv3's
	 * WithLastCreate + WithMaxCreateRev). */
	Etcdserverpb__RangeRequest q;
	cc_first_create(&q, &w->pfx, &w->end);
	q.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
	q.max_create_revision = w->max_rev;
	struct core_reply *r;
	int err = cc_range(w->c, &q, &r);
	const Etcdserverpb__RangeResponse *res = err == CORE_OK ? (const void *)r->msg : NULL;
	if (err != CORE_OK || res->n_kvs == 0) {
		core_reply_free(r);
		waitdel_end(w, err);
		return;
	}
	/* Wake on any change of that key after this read, then look again. */
	const Mvccpb__KeyValue *kv = res->kvs[0];
	err = core_watch_wait(w->c, kv->key.data, kv->key.len, NULL, 0, res->header->revision,
			      waitdel_step, w);
	core_reply_free(r);
	if (err != CORE_OK)
		waitdel_end(w, err);
}

int cc_wait_deletes(struct core *c, const struct cbytes *pfx, int64_t max_rev,
		    const _Atomic bool *cancel, cc_done_fn done, void *arg)
{
	struct waitdel *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return CORE_ENOMEM;
	w->c = c;
	w->cancel = cancel;
	w->max_rev = max_rev;
	w->done = done;
	w->arg = arg;
	w->pfx.p = malloc(pfx->len);
	if (w->pfx.p == NULL || cc_prefix_end(&w->end, pfx) != CORE_OK) {
		free(w->pfx.p);
		free(w);
		return CORE_ENOMEM;
	}
	memcpy(w->pfx.p, pfx->p, pfx->len);
	w->pfx.len = pfx->len;
	waitdel_step(w, false);
	return CORE_OK;
}

/* ---- Lock ---- */

struct core_lock_op {
	struct core *c;
	struct cbytes pfx, end, key;
	int64_t lease;
	int64_t my_rev;
	core_done_fn cb;
	void *arg;
	_Atomic bool cancelled; /* the caller went away */
	struct core_auth_caller who; /* the key's write is checked at apply as this caller */
};
#define lock_op core_lock_op

static void lock_free(struct lock_op *op)
{
	free(op->pfx.p);
	free(op->end.p);
	free(op->key.p);
	free(op);
}

static void lock_fail(struct lock_op *op, int err)
{
	reply_fail(op->cb, op->arg, err);
	lock_free(op);
}

/* Answer with our key and the header of the read that proved it ours. */
static void lock_answer(struct lock_op *op, const Etcdserverpb__ResponseHeader *h)
{
	struct reply *r = reply_new();
	V3lockpb__LockResponse *resp = r ? arena_alloc(&r->arena, sizeof(*resp)) : NULL;
	Etcdserverpb__ResponseHeader *hd = resp ? arena_dup(&r->arena, h, sizeof(*h)) : NULL;
	uint8_t *k = hd ? arena_dup(&r->arena, op->key.p, op->key.len) : NULL;
	if (k == NULL) {
		if (r)
			core_reply_free(&r->pub);
		lock_fail(op, CORE_ENOMEM);
		return;
	}
	v3lockpb__lock_response__init(resp);
	resp->header = hd;
	resp->key.data = k;
	resp->key.len = op->key.len;
	reply_done(r, CORE_OK, &resp->base, op->cb, op->arg);
	lock_free(op);
}

static void lock_waited(void *arg, int err)
{
	struct lock_op *op = arg;
	if (err == CORE_OK && atomic_load(&op->cancelled))
		err = CORE_ETIMEOUT;
	if (err != CORE_OK) {
		if (atomic_load(&op->cancelled)) {
			/* As clientv3's Mutex.Lock when its context ends: give
			 * our place up, so the ones queued behind us go on. The
			 * server's own write (unstamped): it only undoes the
			 * write this call made, which was checked, and must not
			 * fail because the auth store moved on meanwhile. */
			Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
			d.key.data = op->key.p;
			d.key.len = op->key.len;
			core_delete_range(op->c, &d, reply_drop, NULL);
		}
		lock_fail(op, err);
		return;
	}
	/* Still ours? The lease may have expired while we waited. */
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key.data = op->key.p;
	q.key.len = op->key.len;
	struct core_reply *r;
	err = cc_range(op->c, &q, &r);
	const Etcdserverpb__RangeResponse *res = err == CORE_OK ? (const void *)r->msg : NULL;
	if (err != CORE_OK || res->n_kvs == 0) {
		core_reply_free(r);
		lock_fail(op, err != CORE_OK ? err : CORE_EC_SESSION_EXPIRED);
		return;
	}
	lock_answer(op, res->header);
	core_reply_free(r);
}

static void lock_txn_done(void *arg, struct core_reply *reply)
{
	struct lock_op *op = arg;
	if (reply->err != CORE_OK) {
		int err = reply->err;
		core_reply_free(reply);
		lock_fail(op, err);
		return;
	}
	const Etcdserverpb__TxnResponse *t = (const void *)reply->msg;
	op->my_rev = t->header->revision;
	if (!t->succeeded) /* our key existed: keep its place in the queue */
		op->my_rev = t->responses[0]->response_range->kvs[0]->create_revision;
	const Etcdserverpb__RangeResponse *owner = t->responses[1]->response_range;
	if (owner->n_kvs == 0 || owner->kvs[0]->create_revision == op->my_rev) {
		lock_answer(op, t->header);
		core_reply_free(reply);
		return;
	}
	core_reply_free(reply);
	int err = cc_wait_deletes(op->c, &op->pfx, op->my_rev - 1, &op->cancelled, lock_waited, op);
	if (err != CORE_OK)
		lock_fail(op, err);
}

static void lock_begin(void *arg, int err, int64_t lease)
{
	struct lock_op *op = arg;
	err = cc_session_key(err, &op->cancelled, &op->key, &op->pfx, lease);
	if (err != CORE_OK) {
		lock_fail(op, err);
		return;
	}
	op->lease = lease;
	/* if create_revision(key) == 0 then put(key, lease), owner
	 * else get(key), owner */
	Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
	cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
	cmp.key.data = op->key.p;
	cmp.key.len = op->key.len;
	cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	put.key = cmp.key;
	put.lease = lease;
	Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
	get.key = cmp.key;
	Etcdserverpb__RangeRequest owner;
	cc_first_create(&owner, &op->pfx, &op->end);
	Etcdserverpb__RequestOp o_put = ETCDSERVERPB__REQUEST_OP__INIT,
				o_get = ETCDSERVERPB__REQUEST_OP__INIT,
				o_owner = ETCDSERVERPB__REQUEST_OP__INIT;
	o_put.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	o_put.request_put = &put;
	o_get.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	o_get.request_range = &get;
	o_owner.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	o_owner.request_range = &owner;
	Etcdserverpb__Compare *cmps[1] = {&cmp};
	Etcdserverpb__RequestOp *succ[2] = {&o_put, &o_owner}, *fail[2] = {&o_get, &o_owner};
	Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
	txn.n_compare = 1;
	txn.compare = cmps;
	txn.n_success = 2;
	txn.success = succ;
	txn.n_failure = 2;
	txn.failure = fail;
	core_auth_caller_resume(&op->who); /* maybe another thread: after a lease grant */
	core_txn(op->c, &txn, lock_txn_done, op);
	core_auth_caller_end();
}

struct core_lock_op *core_lock(struct core *c, const V3lockpb__LockRequest *req, core_done_fn cb,
			       void *arg)
{
	struct lock_op *op = calloc(1, sizeof(*op));
	if (op == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return NULL;
	}
	/* Before the session lease's grant, which must not carry it. */
	core_auth_caller_take(&op->who);
	op->c = c;
	op->cb = cb;
	op->arg = arg;
	if (cc_prefix(&op->pfx, req->name.data, req->name.len) != CORE_OK ||
	    cc_prefix_end(&op->end, &op->pfx) != CORE_OK) {
		lock_fail(op, CORE_ENOMEM);
		return NULL;
	}
	cc_session_lease(c, req->lease, lock_begin, op);
	return op;
}

void core_lock_cancel(struct core_lock_op *op)
{
	atomic_store(&op->cancelled, true);
}

struct unlock_op {
	core_done_fn cb;
	void *arg;
};

static void unlock_done(void *arg, struct core_reply *reply)
{
	struct unlock_op *op = arg;
	if (reply->err != CORE_OK) {
		op->cb(op->arg, reply);
		free(op);
		return;
	}
	const Etcdserverpb__DeleteRangeResponse *d = (const void *)reply->msg;
	struct reply *r = (struct reply *)reply;
	V3lockpb__UnlockResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	if (resp == NULL) {
		core_reply_free(reply);
		reply_fail(op->cb, op->arg, CORE_ENOMEM);
		free(op);
		return;
	}
	v3lockpb__unlock_response__init(resp);
	resp->header = d->header;
	reply->msg = &resp->base; /* same arena: the header stays valid */
	op->cb(op->arg, reply);
	free(op);
}

void core_unlock(struct core *c, const V3lockpb__UnlockRequest *req, core_done_fn cb, void *arg)
{
	struct unlock_op *op = malloc(sizeof(*op));
	if (op == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	op->cb = cb;
	op->arg = arg;
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	d.key = req->key;
	core_delete_range(c, &d, unlock_done, op);
}
