/*
 * tests/raft/test_oom.c — allocation failures. Through raft_set_heap, the
 * n-th allocation fails, for every n a small cluster scenario makes; the
 * library must return RAFT_NOMEM or treat the failure as a lost message,
 * never crash or leak (the ASan build checks the latter), and the cluster
 * must still work once memory is back.
 */
#include "tests/raft/harness.h"

static long countdown = -1; /* fail when it reaches 0; -1: never */
static long calls;

static void *failMalloc(void *data, size_t size)
{
	(void)data;
	calls++;
	if (countdown >= 0 && countdown-- == 0) {
		return NULL;
	}
	return malloc(size);
}

static void *failRealloc(void *data, void *ptr, size_t size)
{
	(void)data;
	calls++;
	if (countdown >= 0 && countdown-- == 0) {
		return NULL;
	}
	return realloc(ptr, size);
}

static void plainFree(void *data, void *ptr)
{
	(void)data;
	free(ptr);
}

static void scenario(struct cluster *c)
{
	raft_campaign(c->r[1]);
	hStabilize(c);
	for (int i = 0; i < 5; i++) {
		hPropose(c, 1 + i % 3, (uint64_t)i);
	}
	raft_read_index(c->r[2], 9);
	hStabilize(c);
	hTickAll(c, 2);
	raft_snapshot_taken(c->r[1], c->applied[1], "s", 1, 0);
	raft_propose_conf_change(c->r[1], RAFT_CC_ADD_LEARNER, 4, NULL);
	hStabilize(c);
	hTickAll(c, 2);
}

static void testAllocationFailures(void)
{
	struct raft_heap heap = {failMalloc, failRealloc, plainFree, NULL};
	raft_set_heap(&heap);
	/* Count the allocations of a clean run first. */
	struct cluster c;
	hInit(&c, 3);
	hStartAll(&c);
	countdown = -1;
	calls = 0;
	scenario(&c);
	long total = calls;
	hFree(&c);
	CHECK(total > 20);
	int recovered = 0;
	for (long n = 0; n < total; n++) {
		hInit(&c, 3);
		hStartAll(&c);
		countdown = n;
		scenario(&c);
		countdown = -1;
		/* Memory is back: the cluster must make progress again. */
		for (int round = 0; round < 20; round++) {
			hTickAll(&c, 5);
			int leader = 0;
			for (int i = 1; i <= 3; i++) {
				if (hStatus(&c, i).role == RAFT_LEADER) {
					leader = i;
				}
			}
			if (leader != 0 && hPropose(&c, leader, 777) == 0) {
				uint64_t want = hStatus(&c, leader).last_index;
				hStabilize(&c);
				hTickAll(&c, 2);
				if (hStatus(&c, leader).commit >= want) {
					recovered++;
					break;
				}
			}
		}
		hFree(&c);
	}
	raft_set_heap(NULL);
	CHECK_EQ(recovered, total);
	printf("     %ld allocation points failed one at a time\n", total);
}

/* raft_create fails cleanly at every allocation, restoring a log with a
 * conf change and a snapshot. */
static void testCreateFailures(void)
{
	struct raft_heap heap = {failMalloc, failRealloc, plainFree, NULL};
	raft_set_heap(&heap);
	static const uint64_t terms[] = {1, 1, 2, 2, 3};
	struct hlog l;
	hLog(&l, 3, terms, 5, 3, 4);
	l.p.snapshot.meta.index = 0;
	uint8_t cc_buf[RAFT_CONF_CHANGE_MAX_BYTES];
	struct raft_conf_change cc = {.type = RAFT_CC_ADD_LEARNER, .node_id = 4};
	cc.result = l.p.snapshot.meta.conf;
	cc.result.learners[cc.result.n_learners++] = 4;
	size_t len;
	CHECK_EQ(raft_conf_change_encode(&cc, cc_buf, sizeof(cc_buf), &len), 0);
	l.e[2].type = RAFT_ENTRY_CONF_CHANGE;
	l.e[2].data = cc_buf;
	l.e[2].len = (uint32_t)len;
	struct raft_config cfg;
	raft_config_init(&cfg, 1);
	int nomem = 0;
	for (long n = 0;; n++) {
		countdown = n;
		struct raft *r = NULL;
		int rv = raft_create(&cfg, &l.p, &r);
		countdown = -1;
		if (rv == 0) {
			CHECK(raft_conf_is_learner(raft_conf(r), 4));
			raft_destroy(r);
			break;
		}
		CHECK_EQ(rv, RAFT_NOMEM);
		nomem++;
	}
	raft_set_heap(NULL);
	CHECK(nomem >= 4);
}

int main(void)
{
	RUN(testAllocationFailures);
	RUN(testCreateFailures);
	return failures ? 1 : 0;
}
