/*
 * tests/controllers/test_keys.c — the controllers' key helpers: splitting a
 * key into its segments (exactly n, none empty, none too long), prefix
 * ends, and the Txn builder's compares and ops (what a guard compares and
 * which keys an action writes).
 */
#include <string.h>

#include "controllers/ctl_internal.h"
#include "tests/expect.h"

static int split(const char *key, size_t skip, size_t n, char (*p)[CTL_PART_MAX])
{
	return ctl_key_split(key, strlen(key), skip, p, n);
}

static void test_split(void)
{
	char p[4][CTL_PART_MAX];
	const size_t s = strlen("/_meta/nodes/");
	EXPECT(split("/_meta/nodes/broker/b1", s, 2, p) == 2);
	EXPECT(strcmp(p[0], "broker") == 0 && strcmp(p[1], "b1") == 0);
	EXPECT(split("/_meta/nodes/broker/b1/x", s, 2, p) == -1); /* one too many */
	EXPECT(split("/_meta/nodes/broker", s, 2, p) == -1);      /* one too few */
	EXPECT(split("/_meta/nodes/broker/", s, 2, p) == -1);     /* empty id */
	EXPECT(split("/_meta/nodes//b1", s, 2, p) == -1);         /* empty kind */
	EXPECT(split("/_meta/no", s, 2, p) == -1);                /* shorter than the prefix */
	EXPECT(split("/_meta/nodes/a/b/c/d", s, 4, p) == 4 && strcmp(p[3], "d") == 0);
	char longk[400] = "/_meta/nodes/k/";
	memset(longk + strlen(longk), 'x', CTL_PART_MAX);
	EXPECT(split(longk, s, 2, p) == -1); /* a segment of CTL_PART_MAX bytes */
	longk[strlen("/_meta/nodes/k/") + CTL_PART_MAX - 1] = 0;
	EXPECT(split(longk, s, 2, p) == 2 && strlen(p[1]) == CTL_PART_MAX - 1);
	EXPECT(ctl_key_split("t/g", 3, 0, p, 2) == 2 && strcmp(p[1], "g") == 0);
}

static void test_prefix_end(void)
{
	char buf[16];
	EXPECT(ctl_prefix_end("/_meta/", 7, buf) == 7 && memcmp(buf, "/_meta0", 7) == 0);
	EXPECT(ctl_prefix_end("a\xff", 2, buf) == 1 && buf[0] == 'b');
	EXPECT(ctl_prefix_end("\xff\xff", 2, buf) == 1 && buf[0] == 0); /* every key */
}

static void test_txn(void)
{
	struct ctl_txn t;
	ctl_txn_init(&t);
	ctl_txn_cmp_mod(&t, "k1", 2, 0);
	ctl_txn_cmp_create(&t, "n1", 2, 42);
	ctl_txn_put(&t, "k1", 2, "v", 1, 7);
	ctl_txn_put_lease(&t, "k2", 2, 9);
	ctl_txn_del_range(&t, "p/", 2, "p0", 2);
	ctl_txn_del(&t, "k3", 2);
	EXPECT(!t.oom && t.n_cmp == 2 && ctl_txn_ops(&t) == 4);
	EXPECT(t.cmp[0]->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD &&
	       t.cmp[0]->mod_revision == 0 &&
	       t.cmp[0]->result == ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL);
	EXPECT(t.cmp[1]->target == ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE &&
	       t.cmp[1]->create_revision == 42 && memcmp(t.cmp[1]->key.data, "n1", 2) == 0);
	EXPECT(t.ops[0]->request_put->lease == 7 && !t.ops[0]->request_put->ignore_value &&
	       t.ops[0]->request_put->value.len == 1);
	EXPECT(t.ops[1]->request_put->lease == 9 && t.ops[1]->request_put->ignore_value &&
	       t.ops[1]->request_put->value.len == 0);
	EXPECT(t.ops[2]->request_delete_range->range_end.len == 2 &&
	       t.ops[3]->request_delete_range->range_end.len == 0);
	ctl_txn_free(&t);
	EXPECT(t.n_cmp == 0 && t.n_ops == 0 && t.cmp == NULL);
	/* Reusable after free. */
	ctl_txn_put(&t, "x", 1, "", 0, 0);
	EXPECT(ctl_txn_ops(&t) == 1);
	ctl_txn_free(&t);
}

int main(void)
{
	test_split();
	test_prefix_end();
	test_txn();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures != 0;
}
