/*
 * raft/sim/main.c — raft-sim: run seeded cluster simulations from the
 * command line. Prints one summary line; on a violation, also the failing
 * seed and the trace of that run, and exits 1.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/sim/sim.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: raft-sim [--seed S] [--seeds K] [--nodes N] [--steps T]\n"
		"                [--faults drop,dup,reorder,partition,crash,conf,transfer,snapshot|all]\n"
		"                [--no-wire] [--trace] [--unsafe-commit] [--unsafe-read]\n"
		"                [--crash-rate PER_MILLE]\n"
		"                [--msg-bytes N]\n");
	exit(2);
}

static uint64_t num(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0') {
		usage();
	}
	return v;
}

int main(int argc, char **argv)
{
	struct sim_opts o;
	sim_opts_init(&o);
	bool trace = false;
	const char *faults = "none";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--seed") == 0 && v) {
			o.seed = num(v), i++;
		} else if (strcmp(a, "--seeds") == 0 && v) {
			o.seeds = num(v), i++;
		} else if (strcmp(a, "--nodes") == 0 && v) {
			o.nodes = (int)num(v), i++;
		} else if (strcmp(a, "--steps") == 0 && v) {
			o.steps = (int)num(v), i++;
		} else if (strcmp(a, "--faults") == 0 && v) {
			if (sim_parse_faults(v, &o.faults) != 0) {
				usage();
			}
			faults = v;
			i++;
		} else if (strcmp(a, "--crash-rate") == 0 && v) {
			o.crash_per_mille = (unsigned)num(v), i++;
		} else if (strcmp(a, "--msg-bytes") == 0 && v) {
			o.max_msg_bytes = (size_t)num(v), i++;
		} else if (strcmp(a, "--no-wire") == 0) {
			o.wire = false;
		} else if (strcmp(a, "--trace") == 0) {
			trace = true;
		} else if (strcmp(a, "--unsafe-commit") == 0) {
			o.unsafe_commit = true; /* TEST ONLY: the broken variant */
		} else if (strcmp(a, "--unsafe-read") == 0) {
			o.unsafe_read = true; /* TEST ONLY: the broken variant */
		} else {
			usage();
		}
	}
	if (o.nodes < 1 || o.nodes >= SIM_MAX_NODES || o.steps < 0) {
		usage();
	}
	struct sim_stats st;
	memset(&st, 0, sizeof(st));
	if (trace) {
		for (uint64_t i = 0; i < o.seeds; i++) {
			sim_run_seed(&o, o.seed + i, &st, stdout, 1 << 20);
		}
	} else {
		sim_run(&o, &st);
	}
	sim_print_summary(stdout, &st);
	if (st.violations > 0) {
		printf("FAILED seed=%llu: %s\n", (unsigned long long)st.bad_seed, st.what);
		printf("trace of seed %llu (last 400 events):\n", (unsigned long long)st.bad_seed);
		struct sim_stats again;
		memset(&again, 0, sizeof(again));
		o.stop_on_violation = true; /* the trace ends where things went wrong */
		sim_run_seed(&o, st.bad_seed, &again, stdout, 400);
		o.stop_on_violation = false;
		printf("reproduce: raft-sim --seed %llu --seeds 1 --nodes %d --steps %d --faults %s%s%s "
		       "--crash-rate %u --msg-bytes %zu --trace\n",
		       (unsigned long long)st.bad_seed, o.nodes, o.steps, faults,
		       o.unsafe_commit ? " --unsafe-commit" : (o.unsafe_read ? " --unsafe-read" : ""),
		       o.wire ? "" : " --no-wire",
		       o.crash_per_mille, o.max_msg_bytes);
		return 1;
	}
	return 0;
}
