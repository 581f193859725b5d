/*
 * core/election.c — the Election service (v3electionpb) inside the server,
 * as etcd's v3election runs clientv3's Election recipe.
 *
 * Campaign: lease 0 first grants a session lease, as etcd's per-call
 * concurrency Session does (cc_session_lease); then
 * key = name/<lease hex> created under the lease (or found, on a
 * retry, keeping its create revision and proclaiming the new value), then
 * wait until every key created before it is gone. The leader is the key
 * with the oldest create revision. Proclaim and Resign are txns guarded by
 * the leader key's create revision. Observe re-reads the leader after every
 * change under the prefix and reports a new leader or a new value.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/core_internal.h"
#include "core/lock_internal.h"

/* ---- txn building ---- */

struct gtxn {
	Etcdserverpb__Compare cmp;
	Etcdserverpb__Compare *cmps[1];
	Etcdserverpb__PutRequest put;
	Etcdserverpb__RangeRequest get;
	Etcdserverpb__DeleteRangeRequest del;
	Etcdserverpb__RequestOp then, els;
	Etcdserverpb__RequestOp *thens[1], *elses[1];
	Etcdserverpb__TxnRequest txn;
};

/* if create_revision(key) == rev then <then op> [else get(key)] */
static void gtxn_init(struct gtxn *g, const uint8_t *key, size_t key_len, int64_t rev, bool els)
{
	memset(g, 0, sizeof(*g));
	etcdserverpb__compare__init(&g->cmp);
	g->cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	g->cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
	g->cmp.key.data = (uint8_t *)key;
	g->cmp.key.len = key_len;
	g->cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
	g->cmp.create_revision = rev;
	g->cmps[0] = &g->cmp;
	etcdserverpb__put_request__init(&g->put);
	etcdserverpb__range_request__init(&g->get);
	etcdserverpb__delete_range_request__init(&g->del);
	g->put.key = g->get.key = g->del.key = g->cmp.key;
	etcdserverpb__request_op__init(&g->then);
	etcdserverpb__request_op__init(&g->els);
	g->els.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	g->els.request_range = &g->get;
	g->thens[0] = &g->then;
	g->elses[0] = &g->els;
	etcdserverpb__txn_request__init(&g->txn);
	g->txn.n_compare = 1;
	g->txn.compare = g->cmps;
	g->txn.n_success = 1;
	g->txn.success = g->thens;
	g->txn.n_failure = els ? 1 : 0;
	g->txn.failure = els ? g->elses : NULL;
}

static void gtxn_put(struct gtxn *g, const ProtobufCBinaryData *value, int64_t lease)
{
	g->put.value = *value;
	g->put.lease = lease;
	g->then.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	g->then.request_put = &g->put;
}

/* A reply with only a header (Proclaim / Resign responses). */
static void header_only(void *arg, struct core_reply *reply, const ProtobufCMessageDescriptor *d,
			core_done_fn cb, int fail_err)
{
	if (reply->err != CORE_OK) {
		cb(arg, reply);
		return;
	}
	const Etcdserverpb__TxnResponse *t = (const void *)reply->msg;
	if (fail_err && !t->succeeded) {
		core_reply_free(reply);
		reply_fail(cb, arg, fail_err);
		return;
	}
	struct reply *r = (struct reply *)reply;
	/* ProclaimResponse and ResignResponse are both {header}. */
	ProtobufCMessage *m = arena_alloc(&r->arena, d->sizeof_message);
	if (m == NULL) {
		core_reply_free(reply);
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	d->message_init(m);
	if (d == &v3electionpb__proclaim_response__descriptor)
		((V3electionpb__ProclaimResponse *)m)->header = t->header;
	else
		((V3electionpb__ResignResponse *)m)->header = t->header;
	reply->msg = m;
	cb(arg, reply);
}

struct simple_op {
	core_done_fn cb;
	void *arg;
};

static void proclaim_done(void *arg, struct core_reply *reply)
{
	struct simple_op op = *(struct simple_op *)arg;
	free(arg);
	header_only(op.arg, reply, &v3electionpb__proclaim_response__descriptor, op.cb,
		    CORE_EC_NOT_LEADER);
}

static void resign_done(void *arg, struct core_reply *reply)
{
	struct simple_op op = *(struct simple_op *)arg;
	free(arg);
	/* etcd's Resign does not fail when the key is no longer the leader's. */
	header_only(op.arg, reply, &v3electionpb__resign_response__descriptor, op.cb, 0);
}

static struct simple_op *simple(core_done_fn cb, void *arg)
{
	struct simple_op *op = malloc(sizeof(*op));
	if (op == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return NULL;
	}
	op->cb = cb;
	op->arg = arg;
	return op;
}

void core_proclaim(struct core *c, const V3electionpb__ProclaimRequest *req, core_done_fn cb,
		   void *arg)
{
	if (req->leader == NULL) {
		reply_fail(cb, arg, CORE_EC_MISSING_LEADER);
		return;
	}
	struct simple_op *op = simple(cb, arg);
	if (op == NULL)
		return;
	struct gtxn g;
	gtxn_init(&g, req->leader->key.data, req->leader->key.len, req->leader->rev, false);
	gtxn_put(&g, &req->value, req->leader->lease);
	core_txn(c, &g.txn, proclaim_done, op);
}

void core_resign(struct core *c, const V3electionpb__ResignRequest *req, core_done_fn cb, void *arg)
{
	if (req->leader == NULL) {
		reply_fail(cb, arg, CORE_EC_MISSING_LEADER);
		return;
	}
	struct simple_op *op = simple(cb, arg);
	if (op == NULL)
		return;
	struct gtxn g;
	gtxn_init(&g, req->leader->key.data, req->leader->key.len, req->leader->rev, false);
	g.then.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	g.then.request_delete_range = &g.del;
	core_txn(c, &g.txn, resign_done, op);
}

/* ---- Leader ---- */

/* The current leader's key-value, as a reply of the range. */
static int read_leader(struct core *c, const ProtobufCBinaryData *name, struct core_reply **out)
{
	struct cbytes pfx = {0}, end = {0};
	int err = cc_prefix(&pfx, name->data, name->len);
	if (err == CORE_OK)
		err = cc_prefix_end(&end, &pfx);
	if (err == CORE_OK) {
		Etcdserverpb__RangeRequest q;
		cc_first_create(&q, &pfx, &end);
		err = cc_range(c, &q, out);
	} else {
		*out = NULL;
	}
	free(pfx.p);
	free(end.p);
	return err;
}

void core_leader(struct core *c, const V3electionpb__LeaderRequest *req, core_done_fn cb, void *arg)
{
	struct core_reply *rr;
	int err = read_leader(c, &req->name, &rr);
	if (err != CORE_OK) {
		if (rr)
			core_reply_free(rr);
		reply_fail(cb, arg, err);
		return;
	}
	const Etcdserverpb__RangeResponse *res = (const void *)rr->msg;
	if (res->n_kvs == 0) {
		core_reply_free(rr);
		reply_fail(cb, arg, CORE_EC_NO_LEADER);
		return;
	}
	struct reply *r = (struct reply *)rr;
	V3electionpb__LeaderResponse *resp = arena_alloc(&r->arena, sizeof(*resp));
	if (resp == NULL) {
		core_reply_free(rr);
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	v3electionpb__leader_response__init(resp);
	resp->header = res->header;
	resp->kv = res->kvs[0];
	rr->msg = &resp->base;
	cb(arg, rr);
}

/* ---- Campaign ---- */

struct core_campaign_op {
	_Atomic bool cancelled; /* the caller went away */
	struct core *c;
	struct cbytes name, pfx, key;
	ProtobufCBinaryData value; /* points into value_buf */
	uint8_t *value_buf;
	int64_t lease, rev;
	Etcdserverpb__ResponseHeader hdr;
	core_done_fn cb;
	void *arg;
	struct core_auth_caller who; /* its writes are checked at apply as this caller */
};
#define campaign_op core_campaign_op

static void campaign_free(struct campaign_op *op)
{
	free(op->name.p);
	free(op->pfx.p);
	free(op->key.p);
	free(op->value_buf);
	free(op);
}

static void campaign_fail(struct campaign_op *op, int err)
{
	reply_fail(op->cb, op->arg, err);
	campaign_free(op);
}

static void campaign_waited(void *arg, int err)
{
	struct campaign_op *op = arg;
	if (err == CORE_OK && atomic_load(&op->cancelled))
		err = CORE_ETIMEOUT;
	if (err != CORE_OK) {
		if (atomic_load(&op->cancelled)) {
			/* clientv3 resigns when Campaign's context ends. The
			 * server's own write, as a cancelled lock's delete
			 * (lock.c): it undoes only what this call wrote. */
			struct gtxn g;
			gtxn_init(&g, op->key.p, op->key.len, op->rev, false);
			g.then.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
			g.then.request_delete_range = &g.del;
			core_txn(op->c, &g.txn, reply_drop, NULL);
		}
		campaign_fail(op, err);
		return;
	}
	struct reply *r = reply_new();
	V3electionpb__CampaignResponse *resp = r ? arena_alloc(&r->arena, sizeof(*resp)) : NULL;
	V3electionpb__LeaderKey *lk = resp ? arena_alloc(&r->arena, sizeof(*lk)) : NULL;
	Etcdserverpb__ResponseHeader *h = lk ? arena_dup(&r->arena, &op->hdr, sizeof(op->hdr)) : NULL;
	uint8_t *name = h ? arena_alloc(&r->arena, op->name.len + op->key.len + 1) : NULL;
	if (name == NULL) {
		if (r)
			core_reply_free(&r->pub);
		campaign_fail(op, CORE_ENOMEM);
		return;
	}
	v3electionpb__campaign_response__init(resp);
	v3electionpb__leader_key__init(lk);
	memcpy(name, op->name.p, op->name.len);
	memcpy(name + op->name.len, op->key.p, op->key.len);
	lk->name.data = name;
	lk->name.len = op->name.len;
	lk->key.data = name + op->name.len;
	lk->key.len = op->key.len;
	lk->rev = op->rev;
	lk->lease = op->lease;
	resp->header = h;
	resp->leader = lk;
	reply_done(r, CORE_OK, &resp->base, op->cb, op->arg);
	campaign_free(op);
}

static void campaign_wait(struct campaign_op *op)
{
	int err = cc_wait_deletes(op->c, &op->pfx, op->rev - 1, &op->cancelled, campaign_waited, op);
	if (err != CORE_OK)
		campaign_fail(op, err);
}

static void campaign_proclaimed(void *arg, struct core_reply *reply)
{
	struct campaign_op *op = arg;
	int err = reply->err;
	if (err == CORE_OK && !((const Etcdserverpb__TxnResponse *)reply->msg)->succeeded)
		err = CORE_EC_NOT_LEADER;
	core_reply_free(reply);
	if (err != CORE_OK) {
		campaign_fail(op, err);
		return;
	}
	campaign_wait(op);
}

static void campaign_txn_done(void *arg, struct core_reply *reply)
{
	struct campaign_op *op = arg;
	if (reply->err != CORE_OK) {
		int err = reply->err;
		core_reply_free(reply);
		campaign_fail(op, err);
		return;
	}
	const Etcdserverpb__TxnResponse *t = (const void *)reply->msg;
	op->hdr = *t->header;
	op->rev = t->header->revision;
	bool proclaim = false;
	if (!t->succeeded) {
		/* A retry with the same lease: keep the place, update the value. */
		const Mvccpb__KeyValue *kv = t->responses[0]->response_range->kvs[0];
		op->rev = kv->create_revision;
		proclaim = kv->value.len != op->value.len ||
			   (kv->value.len && memcmp(kv->value.data, op->value.data, kv->value.len) != 0);
	}
	core_reply_free(reply);
	if (!proclaim) {
		campaign_wait(op);
		return;
	}
	struct gtxn g;
	gtxn_init(&g, op->key.p, op->key.len, op->rev, false);
	gtxn_put(&g, &op->value, op->lease);
	core_auth_caller_resume(&op->who);
	core_txn(op->c, &g.txn, campaign_proclaimed, op);
	core_auth_caller_end();
}

static void campaign_begin(void *arg, int err, int64_t lease)
{
	struct campaign_op *op = arg;
	err = cc_session_key(err, &op->cancelled, &op->key, &op->pfx, lease);
	if (err != CORE_OK) {
		campaign_fail(op, err);
		return;
	}
	op->lease = lease; /* the LeaderKey's lease: the session's */
	struct gtxn g;
	gtxn_init(&g, op->key.p, op->key.len, 0, true);
	gtxn_put(&g, &op->value, op->lease);
	core_auth_caller_resume(&op->who); /* maybe another thread: after a lease grant */
	core_txn(op->c, &g.txn, campaign_txn_done, op);
	core_auth_caller_end();
}

struct core_campaign_op *core_campaign(struct core *c, const V3electionpb__CampaignRequest *req,
				       core_done_fn cb, void *arg)
{
	struct campaign_op *op = calloc(1, sizeof(*op));
	if (op == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return NULL;
	}
	/* Before the session lease's grant, which must not carry it. */
	core_auth_caller_take(&op->who);
	op->c = c;
	op->cb = cb;
	op->arg = arg;
	op->value_buf = malloc(req->value.len ? req->value.len : 1);
	op->name.p = malloc(req->name.len ? req->name.len : 1);
	if (op->value_buf == NULL || op->name.p == NULL ||
	    cc_prefix(&op->pfx, req->name.data, req->name.len) != CORE_OK) {
		campaign_fail(op, CORE_ENOMEM);
		return NULL;
	}
	memcpy(op->value_buf, req->value.data, req->value.len);
	op->value.data = op->value_buf;
	op->value.len = req->value.len;
	memcpy(op->name.p, req->name.data, req->name.len);
	op->name.len = req->name.len;
	cc_session_lease(c, req->lease, campaign_begin, op);
	return op;
}

void core_campaign_cancel(struct core_campaign_op *op)
{
	atomic_store(&op->cancelled, true);
}

/* ---- Observe ---- */

struct core_observe {
	struct core *c;
	struct cbytes name, pfx, end;
	struct cbytes last_key;
	int64_t last_mod;
	core_observe_fn cb;
	void *arg;
	_Atomic bool stopped;
};

static void observe_end(struct core_observe *o)
{
	o->cb(o->arg, NULL);
	free(o->name.p);
	free(o->pfx.p);
	free(o->end.p);
	free(o->last_key.p);
	free(o);
}

static void observe_step(void *arg, bool stopping)
{
	struct core_observe *o = arg;
	if (stopping || atomic_load(&o->stopped)) {
		observe_end(o);
		return;
	}
	struct core_reply *rr;
	Etcdserverpb__RangeRequest q;
	cc_first_create(&q, &o->pfx, &o->end);
	int err = cc_range(o->c, &q, &rr);
	if (err != CORE_OK) {
		core_reply_free(rr);
		observe_end(o);
		return;
	}
	const Etcdserverpb__RangeResponse *res = (const void *)rr->msg;
	if (res->n_kvs > 0) {
		const Mvccpb__KeyValue *kv = res->kvs[0];
		bool same = kv->mod_revision == o->last_mod && kv->key.len == o->last_key.len &&
			    memcmp(kv->key.data, o->last_key.p, kv->key.len) == 0;
		uint8_t *k = same ? NULL : malloc(kv->key.len ? kv->key.len : 1);
		if (k != NULL) {
			memcpy(k, kv->key.data, kv->key.len);
			free(o->last_key.p);
			o->last_key.p = k;
			o->last_key.len = kv->key.len;
			o->last_mod = kv->mod_revision;
			V3electionpb__LeaderResponse lr = V3ELECTIONPB__LEADER_RESPONSE__INIT;
			lr.header = res->header;
			lr.kv = res->kvs[0];
			o->cb(o->arg, &lr);
		}
	}
	int64_t rev = res->header->revision;
	core_reply_free(rr);
	if (core_watch_wait(o->c, o->pfx.p, o->pfx.len, o->end.p, o->end.len, rev, observe_step, o) !=
	    CORE_OK)
		observe_end(o);
}

struct core_observe *core_observe_start(struct core *c, const V3electionpb__LeaderRequest *req,
					core_observe_fn cb, void *arg)
{
	struct core_observe *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->c = c;
	o->cb = cb;
	o->arg = arg;
	if (cc_prefix(&o->pfx, req->name.data, req->name.len) != CORE_OK ||
	    cc_prefix_end(&o->end, &o->pfx) != CORE_OK) {
		free(o->pfx.p);
		free(o);
		return NULL;
	}
	/* The first look happens on the hub thread too (a wait that fires at
	 * once), so o is never freed before the caller has it. */
	if (core_watch_wait(c, o->pfx.p, o->pfx.len, o->end.p, o->end.len, -1, observe_step, o) !=
	    CORE_OK) {
		free(o->pfx.p);
		free(o->end.p);
		free(o);
		return NULL;
	}
	return o;
}

void core_observe_stop(struct core_observe *o)
{
	/* Freed at its next wake (any change under the prefix) or shutdown. */
	atomic_store(&o->stopped, true);
}
