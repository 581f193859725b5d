/*
 * tests/raft/test_sim.c — the simulator itself: same seed gives the same
 * run byte for byte, the wire codec changes nothing, healthy runs find no
 * violation, and deliberately broken libraries (committing an old term's
 * entry by counting replicas; answering reads without confirming
 * leadership) are caught, so we know the checker can fail.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/sim/sim.h"
#include "tests/raft/harness.h"

static char *runTraced(const struct sim_opts *o, uint64_t seed, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	struct sim_stats st;
	memset(&st, 0, sizeof(st));
	sim_run_seed(o, seed, &st, f, 1 << 20);
	sim_print_summary(f, &st);
	fclose(f);
	return buf;
}

static void testDeterministic(void)
{
	struct sim_opts o;
	sim_opts_init(&o);
	o.nodes = 5;
	o.steps = 1500;
	o.faults = SIM_FAULT_ALL;
	size_t la, lb;
	char *a = runTraced(&o, 77, &la);
	char *b = runTraced(&o, 77, &lb);
	CHECK(la > 10000);
	CHECK(la == lb && memcmp(a, b, la) == 0);
	char *c = runTraced(&o, 78, &lb);
	CHECK(la != lb || memcmp(a, c, la) != 0);
	free(a);
	free(b);
	free(c);
}

static void testWireChangesNothing(void)
{
	struct sim_opts o;
	sim_opts_init(&o);
	o.seed = 5;
	o.seeds = 10;
	o.nodes = 3;
	o.faults = SIM_FAULT_ALL;
	struct sim_stats a, b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	o.wire = true;
	sim_run(&o, &a);
	o.wire = false;
	sim_run(&o, &b);
	CHECK_EQ(a.violations, 0);
	CHECK_EQ(a.commits, b.commits);
	CHECK_EQ(a.elections, b.elections);
	CHECK_EQ(a.steps, b.steps);
	CHECK(a.commits > 1000);
}

static void testHealthyRuns(void)
{
	for (int nodes = 1; nodes <= 7; nodes += 2) {
		struct sim_opts o;
		sim_opts_init(&o);
		o.seed = 100;
		o.seeds = 10;
		o.nodes = nodes;
		o.faults = SIM_FAULT_ALL;
		struct sim_stats st;
		memset(&st, 0, sizeof(st));
		sim_run(&o, &st);
		CHECK_EQ(st.violations, 0);
		CHECK(st.elections >= 10);
		CHECK(st.commits > 0);
		if (st.violations) {
			fprintf(stderr, "nodes=%d seed=%llu: %s\n", nodes,
				(unsigned long long)st.bad_seed, st.what);
		}
	}
}

static void testBrokenCommitRuleIsCaught(void)
{
	struct sim_opts o;
	sim_opts_init(&o);
	/* Figure 8 needs logs that diverge and leaders that die half-way
	 * through replicating an old term's tail: crash often, one entry per
	 * append. About 3 seeds in 100 hit it; stop at the first. */
	o.seed = 1;
	o.seeds = 600;
	o.nodes = 3;
	o.faults = SIM_FAULT_DROP | SIM_FAULT_REORDER | SIM_FAULT_PARTITION | SIM_FAULT_CRASH;
	o.crash_per_mille = 30;
	o.max_msg_bytes = 1;
	o.unsafe_commit = true;
	o.stop_on_violation = true;
	struct sim_stats st;
	memset(&st, 0, sizeof(st));
	sim_run(&o, &st);
	CHECK(st.violations > 0);
	printf("     broken variant caught at seed %llu after %llu seeds: %s\n",
	       (unsigned long long)st.bad_seed, (unsigned long long)st.seeds, st.what);
	/* The same seeds with the real rule are clean. */
	o.unsafe_commit = false;
	o.seed = st.bad_seed;
	o.seeds = 1;
	struct sim_stats ok;
	memset(&ok, 0, sizeof(ok));
	sim_run(&o, &ok);
	CHECK_EQ(ok.violations, 0);
}

/* A leader that answers ReadIndex without confirming it still leads serves
 * stale reads after a pause: the linearizability check must see it. */
static void testBrokenReadIsCaught(void)
{
	struct sim_opts o;
	sim_opts_init(&o);
	o.seed = 1;
	o.seeds = 600;
	o.nodes = 3;
	o.faults = SIM_FAULT_ALL;
	o.unsafe_read = true;
	o.stop_on_violation = true;
	struct sim_stats st;
	memset(&st, 0, sizeof(st));
	sim_run(&o, &st);
	CHECK(st.violations > 0);
	CHECK(strstr(st.what, "linearizability") != NULL);
	printf("     broken read caught at seed %llu after %llu seeds: %s\n",
	       (unsigned long long)st.bad_seed, (unsigned long long)st.seeds, st.what);
	o.unsafe_read = false;
	o.seed = st.bad_seed;
	o.seeds = 1;
	struct sim_stats ok;
	memset(&ok, 0, sizeof(ok));
	sim_run(&o, &ok);
	CHECK_EQ(ok.violations, 0);
}

int main(void)
{
	RUN(testDeterministic);
	RUN(testWireChangesNothing);
	RUN(testHealthyRuns);
	RUN(testBrokenCommitRuleIsCaught);
	RUN(testBrokenReadIsCaught);
	return failures ? 1 : 0;
}
