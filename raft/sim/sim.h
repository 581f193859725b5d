/*
 * raft/sim/sim.h — seeded, deterministic cluster simulation of the Raft
 * library: a simulated network (drop, duplicate, reorder, partition) and
 * clock, crashes that lose everything not persisted, membership changes,
 * leader transfers and snapshots, with Raft's safety properties checked
 * after every step and liveness checked after the faults heal.
 */
#ifndef METAD_RAFT_SIM_H
#define METAD_RAFT_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
	SIM_FAULT_DROP = 1 << 0,
	SIM_FAULT_DUP = 1 << 1,
	SIM_FAULT_REORDER = 1 << 2,
	SIM_FAULT_PARTITION = 1 << 3,
	SIM_FAULT_CRASH = 1 << 4,
	SIM_FAULT_CONF = 1 << 5,
	SIM_FAULT_TRANSFER = 1 << 6,
	SIM_FAULT_SNAPSHOT = 1 << 7,
	SIM_FAULT_ALL = (1 << 8) - 1,
};

#define SIM_MAX_NODES 9

struct sim_opts {
	uint64_t seed;  /* first seed */
	uint64_t seeds; /* number of runs */
	int nodes;      /* initial voters, 1..SIM_MAX_NODES-1 */
	int steps;      /* faulty steps per run, then healing */
	unsigned faults;
	bool wire;          /* pass every message through the nanopb codec */
	bool unsafe_commit; /* TEST ONLY: the library's broken commit rule */
	bool unsafe_read;   /* TEST ONLY: ReadIndex without leadership check */
	bool stop_on_violation;
	unsigned crash_per_mille; /* chance per step of a crash (default 5) */
	size_t max_msg_bytes;     /* 0: chosen per node from the seed */
};

struct sim_stats {
	uint64_t seeds, steps, elections, commits, snapshots, conf_changes, reads;
	uint64_t violations;
	uint64_t bad_seed; /* first failing seed (valid when violations > 0) */
	char what[256];    /* first violation */
};

void sim_opts_init(struct sim_opts *o);
/* Parse "drop,dup,..." or "all"/"none". Returns 0 or -1. */
int sim_parse_faults(const char *s, unsigned *mask);

/* Run one seed; trace_lines > 0 keeps that many last trace lines and prints
 * them to trace_out at the end. Adds to *st; returns violations found. */
uint64_t sim_run_seed(const struct sim_opts *o, uint64_t seed, struct sim_stats *st,
		      FILE *trace_out, int trace_lines);

/* Run o->seeds seeds from o->seed. Returns total violations. */
uint64_t sim_run(const struct sim_opts *o, struct sim_stats *st);

/* The summary line, exactly: seeds=K steps=… elections=… commits=…
 * snapshots=… conf_changes=… violations=V */
void sim_print_summary(FILE *f, const struct sim_stats *st);

#endif
