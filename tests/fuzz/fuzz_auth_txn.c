/*
 * tests/fuzz/fuzz_auth_txn.c — any bytes as a TxnRequest (the Txn call's
 * decoder), then its permission check as alice: nested txns, odd ranges and
 * empty ops must neither crash nor pass where a single op would not.
 */
#include "tests/fuzz/fuzz_common.h"

/* Lease checks read the lease's keys from the store, which this core does
 * not have: the harness covers everything else (test_auth covers leases). */
static void strip_leases(Etcdserverpb__TxnRequest *t, int depth)
{
	Etcdserverpb__RequestOp **branches[2] = {t->success, t->failure};
	size_t counts[2] = {t->n_success, t->n_failure};
	for (int b = 0; b < 2 && depth < 2000; b++)
		for (size_t i = 0; i < counts[b]; i++) {
			Etcdserverpb__RequestOp *op = branches[b][i];
			if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT)
				op->request_put->lease = 0;
			else if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN)
				strip_leases(op->request_txn, depth + 1);
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct core *c = fuzz_core();
	Etcdserverpb__TxnRequest *t = etcdserverpb__txn_request__unpack(NULL, size, data);
	if (t == NULL)
		return 0;
	strip_leases(t, 0);
	int err = core_auth_check_txn(c, "alice", t);
	/* Allowed as a whole means allowed op by op (both branches). */
	for (size_t i = 0; err == CORE_OK && i < t->n_success; i++) {
		const Etcdserverpb__RequestOp *op = t->success[i];
		if (op->request_case == ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT &&
		    core_auth_check_put(c, "alice", op->request_put) != CORE_OK)
			abort();
	}
	for (size_t i = 0; err == CORE_OK && i < t->n_compare; i++) {
		const Etcdserverpb__Compare *cmp = t->compare[i];
		if (core_auth_check_range(c, "alice", CORE_PERM_READ, cmp->key.data, cmp->key.len,
					  cmp->range_end.data, cmp->range_end.len) != CORE_OK)
			abort();
	}
	etcdserverpb__txn_request__free_unpacked(t, NULL);
	return 0;
}
