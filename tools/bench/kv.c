/*
 * tools/bench/kv.c — unary KV workloads: put, range, txn-put, txn-mixed,
 * and status (the trivial RPC that measures the tool's own ceiling).
 *
 * Every request is rendered from a template packed at start-up (tmpl.h), or
 * is a shared, ref-counted slice when it never changes (range, status).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "rpc.pb-c.h"
#include "tmpl.h"
#include "unary.h"

struct kv_ctx {
	const struct bench_opts *o;
	struct bench_tmpl write;     /* put: PutRequest; txn-put/txn-mixed: TxnRequest of puts */
	struct bench_tmpl read;      /* txn-mixed point read: TxnRequest of one Range */
	grpc_slice fixed;            /* range, status, txn-mixed range read */
	int fixed_read;              /* txn-mixed reads use `fixed` */
	enum bench_method write_method;
	double read_frac;            /* txn-mixed: probability of a read */
};

static uint64_t pick_key(const struct bench_opts *o, uint64_t n, uint64_t *rng)
{
	if (o->sequential)
		return n % o->key_space;
	return bench_rand(rng) % o->key_space;
}

static void next_put(void *ctx, uint64_t n, uint64_t *rng, struct bench_req *out)
{
	struct kv_ctx *k = ctx;
	uint64_t keys[BENCH_TMPL_MAX_KEYS];
	/* Consecutive keys from a picked one: a txn may not name a key twice. */
	uint64_t base = pick_key(k->o, n * (uint64_t)k->write.nkeys, rng);
	for (int i = 0; i < k->write.nkeys; i++)
		keys[i] = (base + (uint64_t)i) % k->o->key_space;
	out->method = k->write_method;
	out->msg = bench_tmpl_render(&k->write, k->o->key_prefix, keys, 0);
	out->kind = BENCH_KIND_ALL;
}

static void next_fixed(void *ctx, uint64_t n, uint64_t *rng, struct bench_req *out)
{
	struct kv_ctx *k = ctx;
	(void)n;
	(void)rng;
	out->msg = grpc_slice_ref(k->fixed);
	out->kind = BENCH_KIND_ALL;
	out->method = k->write_method; /* the one method of this workload */
}

static void next_mixed(void *ctx, uint64_t n, uint64_t *rng, struct bench_req *out)
{
	struct kv_ctx *k = ctx;
	/* 53 random bits -> [0,1) */
	double u = (double)(bench_rand(rng) >> 11) / 9007199254740992.0;
	if (u >= k->read_frac) {
		next_put(ctx, n, rng, out);
		out->kind = BENCH_KIND_WRITE;
		return;
	}
	out->method = BENCH_M_TXN;
	out->kind = BENCH_KIND_READ;
	if (k->fixed_read) {
		out->msg = grpc_slice_ref(k->fixed);
	} else {
		uint64_t key = bench_rand(rng) % k->o->key_space;
		out->msg = bench_tmpl_render(&k->read, k->o->key_prefix, &key, 0);
	}
}

/* A TxnRequest whose success branch is ops[0..n). */
static void txn_of(Etcdserverpb__TxnRequest *txn, Etcdserverpb__RequestOp **ops, size_t n)
{
	Etcdserverpb__TxnRequest init = ETCDSERVERPB__TXN_REQUEST__INIT;
	*txn = init;
	txn->n_success = n;
	txn->success = ops;
}

/* Templates for a put (txn_ops > 0: a Txn of that many puts). */
static int build_write(struct kv_ctx *k, int txn_ops, uint8_t *value)
{
	const struct bench_opts *o = k->o;
	int n = txn_ops > 0 ? txn_ops : 1;
	if (n > BENCH_TMPL_MAX_KEYS) {
		fprintf(stderr, "metad-bench: --txn-ops is at most %d\n", BENCH_TMPL_MAX_KEYS);
		return 1;
	}
	uint8_t *keys[BENCH_TMPL_MAX_KEYS];
	Etcdserverpb__PutRequest puts[BENCH_TMPL_MAX_KEYS];
	Etcdserverpb__RequestOp ops[BENCH_TMPL_MAX_KEYS], *opp[BENCH_TMPL_MAX_KEYS];
	uint8_t *keymem = malloc((size_t)n * (size_t)o->key_size);
	if (keymem == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		Etcdserverpb__PutRequest pinit = ETCDSERVERPB__PUT_REQUEST__INIT;
		Etcdserverpb__RequestOp oinit = ETCDSERVERPB__REQUEST_OP__INIT;
		keys[i] = keymem + (size_t)i * (size_t)o->key_size;
		puts[i] = pinit;
		puts[i].key.data = keys[i];
		puts[i].key.len = (size_t)o->key_size;
		puts[i].value.data = value;
		puts[i].value.len = (size_t)o->val_size;
		ops[i] = oinit;
		ops[i].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		ops[i].request_put = &puts[i];
		opp[i] = &ops[i];
	}
	Etcdserverpb__TxnRequest txn;
	txn_of(&txn, opp, (size_t)n);
	const ProtobufCMessage *msg = txn_ops > 0 ? &txn.base : &puts[0].base;
	int rv = bench_tmpl_build(&k->write, msg, keys, n, (size_t)o->key_size, NULL);
	free(keymem);
	k->write_method = txn_ops > 0 ? BENCH_M_TXN : BENCH_M_PUT;
	return rv;
}

static void range_of(Etcdserverpb__RangeRequest *rr, const struct bench_opts *o, int64_t limit)
{
	Etcdserverpb__RangeRequest init = ETCDSERVERPB__RANGE_REQUEST__INIT;
	*rr = init;
	rr->serializable = o->consistency == 's';
	rr->count_only = o->count_only;
	rr->limit = limit > 0 ? limit : 0;
}

static grpc_slice pack_slice(const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(len);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	return s;
}

static int prepare(struct kv_ctx *k, uint8_t *value, uint8_t *key0)
{
	const struct bench_opts *o = k->o;
	const char *cmd = o->cmd;
	Etcdserverpb__RangeRequest rr;
	k->fixed = grpc_empty_slice();
	bench_key_format(key0, (size_t)o->key_size, o->key_prefix, 0);
	if (strcmp(cmd, "put") == 0)
		return build_write(k, 0, value);
	if (strcmp(cmd, "txn-put") == 0) {
		if ((uint64_t)o->txn_ops > o->key_space) {
			fprintf(stderr, "metad-bench: --key-space-size must be >= --txn-ops\n");
			return 1;
		}
		return build_write(k, o->txn_ops, value);
	}
	if (strcmp(cmd, "status") == 0) {
		Etcdserverpb__StatusRequest sr = ETCDSERVERPB__STATUS_REQUEST__INIT;
		k->fixed = pack_slice(&sr.base);
		k->write_method = BENCH_M_STATUS;
		return 0;
	}
	if (strcmp(cmd, "range") == 0) {
		range_of(&rr, o, o->limit);
		/* Default key: key number 0, the first one put writes. */
		rr.key.data = o->nargs > 0 ? (uint8_t *)o->args[0] : key0;
		rr.key.len = o->nargs > 0 ? strlen(o->args[0]) : (size_t)o->key_size;
		if (o->nargs > 1) {
			rr.range_end.data = (uint8_t *)o->args[1];
			rr.range_end.len = strlen(o->args[1]);
		}
		k->fixed = pack_slice(&rr.base);
		k->write_method = BENCH_M_RANGE;
		return 0;
	}
	if (strcmp(cmd, "txn-mixed") == 0) {
		k->read_frac = o->rw_ratio / (1.0 + o->rw_ratio);
		if (build_write(k, 1, value) != 0)
			return 1;
		Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT, *opp = &op;
		Etcdserverpb__TxnRequest txn;
		op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
		op.request_range = &rr;
		txn_of(&txn, &opp, 1);
		if (o->nargs > 0) {
			/* etcd's form: every read is the range [KEY, END) with --limit. */
			static uint8_t zero = 0;
			range_of(&rr, o, o->limit >= 0 ? o->limit : 1000);
			rr.key.data = (uint8_t *)o->args[0];
			rr.key.len = strlen(o->args[0]);
			if (o->nargs > 1) {
				rr.range_end.data = (uint8_t *)o->args[1];
				rr.range_end.len = strlen(o->args[1]);
			} else if (rr.key.len == 0) {
				/* "" means every key: "\0" .. "\0", as clientv3's WithPrefix("") */
				rr.key.data = &zero;
				rr.key.len = 1;
				rr.range_end.data = &zero;
				rr.range_end.len = 1;
			}
			k->fixed = pack_slice(&txn.base);
			k->fixed_read = 1;
			return 0;
		}
		/* No KEY: point reads of random keys from the key space. */
		range_of(&rr, o, o->limit);
		rr.key.data = key0;
		rr.key.len = (size_t)o->key_size;
		uint8_t *keys[1] = {key0};
		return bench_tmpl_build(&k->read, &txn.base, keys, 1, (size_t)o->key_size, NULL);
	}
	fprintf(stderr, "metad-bench: unknown command %s\n", cmd);
	return 1;
}

int bench_cmd_kv(const struct bench_opts *o, struct bench_conns *c, struct bench_result *res)
{
	struct kv_ctx k;
	memset(&k, 0, sizeof(k));
	k.o = o;
	uint8_t *value = malloc((size_t)o->val_size + 1);
	uint8_t *key0 = malloc((size_t)o->key_size);
	int rv = 1;
	if (value == NULL || key0 == NULL)
		goto out;
	bench_fill_random(value, (size_t)o->val_size, 42);
	if (prepare(&k, value, key0) != 0) {
		fprintf(stderr, "metad-bench: cannot build the %s request\n", o->cmd);
		goto out;
	}
	struct bench_workload w = {.ctx = &k};
	if (strcmp(o->cmd, "put") == 0 || strcmp(o->cmd, "txn-put") == 0)
		w.next = next_put;
	else if (strcmp(o->cmd, "txn-mixed") == 0)
		w.next = next_mixed;
	else
		w.next = next_fixed;
	rv = bench_unary_run(o, c, &w, o->cmd, bench_show_progress(o), res);
	if (rv != 0)
		fprintf(stderr, "metad-bench: cannot start the run (out of memory or threads)\n");
out:
	bench_tmpl_free(&k.write);
	bench_tmpl_free(&k.read);
	grpc_slice_unref(k.fixed);
	free(value);
	free(key0);
	return rv;
}
