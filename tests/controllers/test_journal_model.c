/*
 * tests/controllers/test_journal_model.c — the journal controller's pure
 * decisions: segment values round-trip, the accepted state edges, leader
 * failover to the first surviving ISR member (else Unavailable, never an
 * unclean election), recovery by highest log end offset, ISR checks, and
 * the rebalance rate limit driven by an injected clock.
 */
#include <stdlib.h>
#include <string.h>

#include "controllers/journal_model.h"
#include "tests/expect.h"

/* alive(): ids listed in the test's "up" string, any epoch unless pinned. */
struct world {
	const char *up[8];
	int64_t epoch_of_s1; /* 0: any */
};

static bool alive(void *arg, const char *id, int64_t epoch)
{
	struct world *w = arg;
	for (size_t i = 0; i < 8 && w->up[i] != NULL; i++)
		if (strcmp(w->up[i], id) == 0)
			return !(strcmp(id, "s1") == 0 && w->epoch_of_s1 != 0 && epoch != 0 &&
				 epoch != w->epoch_of_s1);
	return false;
}

static struct jseg three(void)
{
	const char *v = "{\"state\":\"Write\",\"replicas\":[\"s0\",\"s1\",\"s2\"],"
			"\"epochs\":{\"s0\":2,\"s1\":4,\"s2\":6},\"isr\":[\"s0\",\"s1\",\"s2\"],"
			"\"leader\":\"s0\",\"preferred\":\"s0\"}";
	struct jseg s;
	EXPECT(jseg_parse(v, strlen(v), &s) == 0);
	return s;
}

static void test_roundtrip(void)
{
	struct jseg s = three();
	EXPECT(s.n_rep == 3 && s.n_isr == 3 && s.leader == 0 && s.preferred == 0);
	EXPECT(s.epoch[1] == 4 && s.state == JS_WRITE);
	char *out = jseg_dump(&s);
	EXPECT(out != NULL && strcmp(out, "{\"epochs\":{\"s0\":2,\"s1\":4,\"s2\":6},\"isr\":[\"s0\","
				       "\"s1\",\"s2\"],\"leader\":\"s0\",\"preferred\":\"s0\","
				       "\"replicas\":[\"s0\",\"s1\",\"s2\"],\"state\":\"Write\"}") == 0);
	struct jseg back;
	EXPECT(jseg_parse(out, strlen(out), &back) == 0 && memcmp(&back, &s, sizeof(s)) == 0);
	free(out);
	/* Malformed values are refused, not half-read. */
	const char *bad[] = {
		"", "[]", "{\"state\":\"Nope\",\"replicas\":[],\"epochs\":{},\"isr\":[]}",
		"{\"state\":\"Write\",\"replicas\":[\"a\",\"a\"],\"epochs\":{},\"isr\":[]}",
		"{\"state\":\"Write\",\"replicas\":[\"a\"],\"epochs\":{},\"isr\":[\"b\"]}",
		"{\"state\":\"Write\",\"replicas\":[\"a\"],\"epochs\":{},\"isr\":[\"a\",\"a\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT(jseg_parse(bad[i], strlen(bad[i]), &back) == -1);
}

static void test_edges(void)
{
	enum jstate path[] = {JS_WRITE, JS_PRESEALUP, JS_SEALUP, JS_PREDELETE, JS_DELETING};
	for (int from = JS_NONE; from <= JS_UNAVAILABLE; from++)
		for (int to = JS_NONE; to <= JS_UNAVAILABLE; to++) {
			bool want = false;
			for (size_t i = 0; i + 1 < 5; i++)
				want = want || (path[i] == (enum jstate)from && path[i + 1] == (enum jstate)to);
			EXPECT(jstate_edge_ok((enum jstate)from, (enum jstate)to) == want);
		}
	EXPECT(jstate_parse("SealUp") == JS_SEALUP && jstate_parse("sealup") == JS_NONE);
}

static void test_failover(void)
{
	struct world w = {{"s1", "s2"}, 0};
	struct jseg s = three();
	/* A follower goes: it leaves the ISR, the leader stays. */
	EXPECT(jseg_fail_node(&s, "s2", alive, &w));
	EXPECT(s.leader == 0 && s.n_isr == 2);
	EXPECT(!jseg_fail_node(&s, "s2", alive, &w)); /* already out: no change */
	/* The leader goes: the first surviving ISR member in ISR order leads. */
	EXPECT(jseg_fail_node(&s, "s0", alive, &w));
	EXPECT(s.leader == 1 && s.n_isr == 1 && s.isr[0] == 1 && s.state == JS_WRITE);
	/* The last one goes: Unavailable, no leader — never a node outside the ISR. */
	w.up[0] = "s2"; /* s2 is alive but out of the ISR */
	w.up[1] = NULL;
	EXPECT(jseg_fail_node(&s, "s1", alive, &w));
	EXPECT(s.leader == -1 && s.n_isr == 0 && s.state == JS_UNAVAILABLE &&
	       s.prev_state == JS_WRITE);

	/* An ISR member alive under an older epoch is not a candidate. */
	struct jseg t = three();
	struct world w2 = {{"s1", "s2"}, 99};
	EXPECT(jseg_fail_node(&t, "s0", alive, &w2));
	EXPECT(t.leader == 2);
}

static void test_recover(void)
{
	struct world w = {{"s0", "s2"}, 0};
	struct jseg s = three();
	s.state = JS_UNAVAILABLE;
	s.prev_state = JS_SEALUP;
	s.n_isr = 0;
	s.leader = -1;
	int64_t leo[3] = {10, 50, 30}; /* s1 has most but is down */
	EXPECT(jseg_recover(&s, leo, alive, &w));
	EXPECT(s.leader == 2 && s.n_isr == 1 && s.isr[0] == 2 && s.state == JS_SEALUP);
	EXPECT(!jseg_recover(&s, leo, alive, &w)); /* not Unavailable any more */
	struct world none = {{NULL}, 0};
	struct jseg u = three();
	u.state = JS_UNAVAILABLE;
	EXPECT(!jseg_recover(&u, leo, alive, &none));
}

static void test_prefer_and_isr(void)
{
	struct world w = {{"s0", "s1", "s2"}, 0};
	struct jseg s = three();
	s.leader = 1;
	EXPECT(jseg_prefer(&s, alive, &w) && s.leader == 0);
	EXPECT(!jseg_prefer(&s, alive, &w));
	s.leader = 1;
	s.isr[0] = 1;
	s.isr[1] = 2;
	s.n_isr = 2; /* preferred s0 out of the ISR: stays put */
	EXPECT(!jseg_prefer(&s, alive, &w) && s.leader == 1);

	uint8_t idx[8];
	const char *ok[] = {"s1", "s0"}, *dup[] = {"s1", "s1"}, *stranger[] = {"s1", "x"},
		   *noleader[] = {"s0"};
	EXPECT(jseg_isr_ok(&s, "s1", ok, 2, idx) && idx[0] == 1 && idx[1] == 0);
	EXPECT(!jseg_isr_ok(&s, "s1", dup, 2, idx));
	EXPECT(!jseg_isr_ok(&s, "s1", stranger, 2, idx));
	EXPECT(!jseg_isr_ok(&s, "s1", noleader, 1, idx));
	EXPECT(!jseg_isr_ok(&s, "s1", ok, 0, idx));
}

static void test_bucket(void)
{
	struct jbucket b = {0};
	int64_t now = 1000000; /* the injected clock, in ms */
	int taken = 0;
	for (int i = 0; i < 200; i++)
		taken += jbucket_take(&b, now, 50);
	EXPECT(taken == 50); /* a burst of one minute's worth */
	EXPECT(!jbucket_take(&b, now + 1100, 50)); /* 1.1 s refills 0.92 tokens */
	EXPECT(jbucket_take(&b, now + 1300, 50));  /* 1.3 s: 1.08 */
	taken = 0;
	for (int64_t t = now + 1300; t <= now + 61300; t += 100)
		taken += jbucket_take(&b, t, 50);
	EXPECT(taken >= 49 && taken <= 51); /* 50 per minute, sustained */
	taken = 0;
	for (int i = 0; i < 200; i++)
		taken += jbucket_take(&b, now + 3600000, 50); /* an idle hour caps at 50 */
	EXPECT(taken == 50);
}

int main(void)
{
	test_roundtrip();
	test_edges();
	test_failover();
	test_recover();
	test_prefer_and_isr();
	test_bucket();
	if (failures)
		fprintf(stderr, "%d failures\n", failures);
	return failures != 0;
}
