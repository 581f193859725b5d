/*
 * tests/core/test_validate.c — etcd's pre-log checks on requests: empty
 * keys, ignore_* conflicts, txn size with the nested budget, and the
 * duplicate-key rule across branches and nested txns.
 */
#include <stdio.h>
#include <string.h>

#include "core/core_internal.h"
#include "tests/expect.h"

#define MAXOPS 16

struct ops {
	Etcdserverpb__RequestOp op[MAXOPS];
	Etcdserverpb__RequestOp *p[MAXOPS];
	Etcdserverpb__PutRequest put[MAXOPS];
	Etcdserverpb__DeleteRangeRequest del[MAXOPS];
	Etcdserverpb__RangeRequest rng[MAXOPS];
	size_t n;
};

static ProtobufCBinaryData bin(const char *s)
{
	ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
	return b;
}

static void put(struct ops *o, const char *key)
{
	size_t i = o->n++;
	etcdserverpb__request_op__init(&o->op[i]);
	etcdserverpb__put_request__init(&o->put[i]);
	o->put[i].key = bin(key);
	o->op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	o->op[i].request_put = &o->put[i];
	o->p[i] = &o->op[i];
}

static void del(struct ops *o, const char *key, const char *end, size_t end_len)
{
	size_t i = o->n++;
	etcdserverpb__request_op__init(&o->op[i]);
	etcdserverpb__delete_range_request__init(&o->del[i]);
	o->del[i].key = bin(key);
	o->del[i].range_end.data = (uint8_t *)end;
	o->del[i].range_end.len = end_len;
	o->op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
	o->op[i].request_delete_range = &o->del[i];
	o->p[i] = &o->op[i];
}

static void nested(struct ops *o, Etcdserverpb__TxnRequest *t)
{
	size_t i = o->n++;
	etcdserverpb__request_op__init(&o->op[i]);
	o->op[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	o->op[i].request_txn = t;
	o->p[i] = &o->op[i];
}

static void txn(Etcdserverpb__TxnRequest *t, struct ops *then, struct ops *els)
{
	etcdserverpb__txn_request__init(t);
	if (then) {
		t->success = then->p;
		t->n_success = then->n;
	}
	if (els) {
		t->failure = els->p;
		t->n_failure = els->n;
	}
}

static void test_single_requests(void)
{
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	EXPECT(validate_put(&p) == CORE_EKEY_NOT_PROVIDED);
	p.key = bin("k");
	EXPECT(validate_put(&p) == CORE_OK);
	p.ignore_value = 1;
	p.value = bin("v");
	EXPECT(validate_put(&p) == CORE_EVALUE_PROVIDED);
	p.ignore_value = 0;
	p.ignore_lease = 1;
	p.lease = 7;
	EXPECT(validate_put(&p) == CORE_ELEASE_PROVIDED);

	Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
	EXPECT(validate_range(&r) == CORE_EKEY_NOT_PROVIDED);
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	EXPECT(validate_delete(&d) == CORE_EKEY_NOT_PROVIDED);
}

static void test_duplicates(void)
{
	Etcdserverpb__TxnRequest t;
	struct ops a = {0}, b = {0};

	put(&a, "x");
	put(&a, "x");
	txn(&t, &a, NULL);
	EXPECT(validate_txn(&t, 128) == CORE_EDUPLICATE_KEY);

	/* The same key in success and failure is fine: only one branch runs. */
	memset(&a, 0, sizeof(a));
	put(&a, "x");
	put(&b, "x");
	txn(&t, &a, &b);
	EXPECT(validate_txn(&t, 128) == CORE_OK);

	/* Put inside a deleted interval conflicts; outside it does not. */
	memset(&a, 0, sizeof(a));
	del(&a, "a", "c", 1);
	put(&a, "b");
	txn(&t, &a, NULL);
	EXPECT(validate_txn(&t, 128) == CORE_EDUPLICATE_KEY);
	memset(&a, 0, sizeof(a));
	del(&a, "a", "c", 1);
	put(&a, "c");
	txn(&t, &a, NULL);
	EXPECT(validate_txn(&t, 128) == CORE_OK);

	/* Single-key delete conflicts with a put of the same key only. */
	memset(&a, 0, sizeof(a));
	del(&a, "k", NULL, 0);
	put(&a, "k");
	txn(&t, &a, NULL);
	EXPECT(validate_txn(&t, 128) == CORE_EDUPLICATE_KEY);
	memset(&a, 0, sizeof(a));
	del(&a, "k", NULL, 0);
	put(&a, "k2");
	txn(&t, &a, NULL);
	EXPECT(validate_txn(&t, 128) == CORE_OK);

	/* A from-key delete ("\0") conflicts with nothing (etcd quirk). */
	memset(&a, 0, sizeof(a));
	del(&a, "a", "\0", 1);
	put(&a, "zzz");
	txn(&t, &a, NULL);
	EXPECT(validate_txn(&t, 128) == CORE_OK);

	/* Deletes may overlap each other. */
	memset(&a, 0, sizeof(a));
	del(&a, "a", "m", 1);
	del(&a, "c", "z", 1);
	txn(&t, &a, NULL);
	EXPECT(validate_txn(&t, 128) == CORE_OK);
}

static void test_nested(void)
{
	Etcdserverpb__TxnRequest inner, outer;
	struct ops in_then = {0}, in_else = {0}, out = {0};

	/* A nested put of a key the outer level also puts. */
	put(&in_then, "x");
	txn(&inner, &in_then, NULL);
	put(&out, "x");
	nested(&out, &inner);
	txn(&outer, &out, NULL);
	EXPECT(validate_txn(&outer, 128) == CORE_EDUPLICATE_KEY);

	/* A nested put inside an outer delete. */
	memset(&out, 0, sizeof(out));
	del(&out, "w", "y", 1);
	nested(&out, &inner);
	txn(&outer, &out, NULL);
	EXPECT(validate_txn(&outer, 128) == CORE_EDUPLICATE_KEY);

	/* Nested then/else putting the same key is fine. */
	memset(&out, 0, sizeof(out));
	put(&in_else, "x");
	txn(&inner, &in_then, &in_else);
	nested(&out, &inner);
	txn(&outer, &out, NULL);
	EXPECT(validate_txn(&outer, 128) == CORE_OK);

	/* An outer put inside a nested delete. */
	struct ops d = {0};
	memset(&out, 0, sizeof(out));
	del(&d, "a", "z", 1);
	txn(&inner, &d, NULL);
	nested(&out, &inner);
	put(&out, "m");
	txn(&outer, &out, NULL);
	EXPECT(validate_txn(&outer, 128) == CORE_EDUPLICATE_KEY);
}

static void test_limits(void)
{
	Etcdserverpb__TxnRequest inner, outer;
	struct ops a = {0}, b = {0};
	for (int i = 0; i < 3; i++) {
		char *k = i == 0 ? "a" : i == 1 ? "b" : "c";
		put(&a, k);
	}
	txn(&outer, &a, NULL);
	EXPECT(validate_txn(&outer, 3) == CORE_OK);
	EXPECT(validate_txn(&outer, 2) == CORE_ETOO_MANY_OPS);

	/* A nested txn may use what the parent's largest list leaves. */
	put(&b, "n1");
	put(&b, "n2");
	txn(&inner, &b, NULL);
	memset(&a, 0, sizeof(a));
	nested(&a, &inner);
	put(&a, "p");
	txn(&outer, &a, NULL);
	EXPECT(validate_txn(&outer, 4) == CORE_OK);  /* 4 - 2 = 2 left for the inner two */
	EXPECT(validate_txn(&outer, 3) == CORE_ETOO_MANY_OPS);

	/* An empty op is "key not found", as etcd. */
	struct ops e = {0};
	e.n = 1;
	etcdserverpb__request_op__init(&e.op[0]);
	e.p[0] = &e.op[0];
	txn(&outer, &e, NULL);
	EXPECT(validate_txn(&outer, 128) == CORE_EKEY_NOT_FOUND);
	EXPECT(!txn_is_readonly(&inner));
}

int main(void)
{
	test_single_requests();
	test_duplicates();
	test_nested();
	test_limits();
	if (failures == 0)
		printf("test_validate: all passed\n");
	return failures != 0;
}
