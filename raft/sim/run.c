/*
 * raft/sim/run.c — one simulated run from its seed: the step loop with the
 * fault schedule, healing, the liveness check, and the CLI-facing helpers
 * (options, fault names, the summary line).
 */
#include <stdlib.h>
#include <string.h>

#include "raft/sim/sim_int.h"

#define ELECTION_TICK SIM_ELECTION_TICK
#define HEAL_STEPS 3000

static void restartDue(struct sim *s, bool all)
{
	for (int k = 0; k < s->nslots; k++) {
		struct snode *n = &s->nodes[k];
		if (n->alive && !n->up && (all || s->now >= n->down_until)) {
			simTrace(s, "restart %llu", (unsigned long long)n->id);
			nodeStart(s, n);
		}
	}
}

static void stepOnce(struct sim *s, bool faulty)
{
	unsigned f = faulty ? s->o->faults : 0;
	restartDue(s, false);
	if (f & SIM_FAULT_PARTITION) {
		if (s->partitioned && s->now >= s->partition_until) {
			s->partitioned = false;
			simTrace(s, "partition healed");
		} else if (!s->partitioned && simChance(s, 6)) {
			s->partitioned = true;
			s->partition_until = s->now + 20 + (int)(simRand(s) % 150);
			for (int k = 0; k < s->nslots; k++) {
				s->nodes[k].group = (int)(simRand(s) % 2);
			}
			simTrace(s, "partition until %d", s->partition_until);
		}
	}
	if ((f & SIM_FAULT_CRASH) && simChance(s, s->o->crash_per_mille)) {
		/* Half the crashes hit the leader: that is where logs diverge. */
		int k = simChance(s, 500) ? leaderSlot(s) : -1;
		if (k < 0) {
			k = randomUpSlot(s);
		}
		if (k >= 0) {
			nodeCrash(s, &s->nodes[k], 5 + (int)(simRand(s) % 80));
		}
	}
	if ((f & SIM_FAULT_CRASH) && simChance(s, 4)) {
		/* A pause (SIGSTOP, a long GC): the node keeps its state and wakes
		 * up believing what it believed, e.g. that it leads. */
		int k = simChance(s, 500) ? leaderSlot(s) : -1;
		if (k < 0) {
			k = randomUpSlot(s);
		}
		if (k >= 0) {
			s->nodes[k].paused_until = s->now + 5 + (int)(simRand(s) % 60);
			simTrace(s, "pause %llu until %d", (unsigned long long)s->nodes[k].id,
				 s->nodes[k].paused_until);
		}
	}
	if ((f & SIM_FAULT_CONF) && simChance(s, 6)) {
		confChange(s);
	}
	if ((f & SIM_FAULT_TRANSFER) && simChance(s, 4)) {
		transfer(s);
	}
	if ((f & SIM_FAULT_SNAPSHOT) && simChance(s, 15)) {
		int k = randomUpSlot(s);
		if (k >= 0) {
			snapshot(s, k);
		}
	}
	if (faulty && simChance(s, 300)) {
		int k = randomUpSlot(s);
		if (k >= 0) {
			propose(s, k);
		}
	}
	if (faulty && simChance(s, 120)) {
		int k = randomUpSlot(s);
		if (k >= 0) {
			readIndex(s, k);
		}
	}
	for (int k = 0; k < s->nslots; k++) {
		if (simRunning(s, &s->nodes[k])) {
			raft_tick(s->nodes[k].r);
		}
	}
	netDeliverDue(s);
	for (int k = 0; k < s->nslots; k++) {
		/* A slow disk: a node may take a while to handle its ready, and a
		 * crash meanwhile loses what it had not persisted. */
		if (simRunning(s, &s->nodes[k]) && (!faulty || simChance(s, 750))) {
			processReady(s, k, faulty);
		}
	}
	checkStep(s);
	s->now++;
	s->st->steps++;
}

/* After healing: a leader must emerge, commit a fresh entry and every
 * member must apply it, within a bounded number of steps. */
static void checkLiveness(struct sim *s)
{
	uint64_t marker = 0xfeed000000000000ull ^ s->seed;
	struct raft_entry me = {.type = RAFT_ENTRY_NORMAL, .len = 8, .data = (uint8_t *)&marker};
	uint64_t mhash = simEntryHash(&me);
	uint64_t midx = 0;
	int proposed_at = -1000;
	for (int h = 0; h < HEAL_STEPS && !s->aborted; h++) {
		int l = leaderSlot(s);
		bool committed = midx != 0 && midx <= s->t_n && s->t_hash[midx] == mhash;
		if (l >= 0 && !committed && s->now - proposed_at >= 4 * ELECTION_TICK) {
			struct raft_buffer b = {&marker, sizeof(marker)};
			uint64_t first;
			if (raft_propose(s->nodes[l].r, &b, 1, &first) == 0) {
				midx = first;
				proposed_at = s->now;
				simTrace(s, "liveness marker proposed at %llu index %llu",
					 (unsigned long long)s->nodes[l].id, (unsigned long long)first);
			}
		}
		if (committed && l >= 0) {
			const struct raft_conf *c = raft_conf(s->nodes[l].r);
			bool all = true;
			for (uint32_t g = 0; g < c->n_voters + c->n_learners && all; g++) {
				uint64_t id = g < c->n_voters ? c->voters[g] : c->learners[g - c->n_voters];
				int k = simSlotOf(s, id);
				all = k >= 0 && s->nodes[k].up && s->nodes[k].applied >= midx;
			}
			if (all) {
				return;
			}
		}
		stepOnce(s, false);
	}
	if (s->aborted) {
		return;
	}
	int l = leaderSlot(s);
	simViolation(s, "liveness: %d steps after healing: leader %llu, marker index %llu %s",
		     HEAL_STEPS, l >= 0 ? (unsigned long long)s->nodes[l].id : 0ull,
		     (unsigned long long)midx,
		     midx && midx <= s->t_n && s->t_hash[midx] == mhash ? "committed, not applied everywhere"
									  : "not committed");
}

uint64_t sim_run_seed(const struct sim_opts *o, uint64_t seed, struct sim_stats *st,
		      FILE *trace_out, int trace_lines)
{
	struct sim *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		abort();
	}
	s->o = o;
	s->seed = seed;
	s->rng = seed * 0x2545f4914f6cdd1dull + 0x1234567;
	s->st = st;
	s->nslots = o->nodes + 1 < SIM_MAX_NODES ? o->nodes + 1 : SIM_MAX_NODES;
	s->next_id = (uint64_t)o->nodes + 1;
	if (trace_lines > 0) {
		s->trace = calloc((size_t)trace_lines, sizeof(*s->trace));
		s->trace_cap = trace_lines;
	}
	checkInit(s);
	struct raft_conf conf;
	memset(&conf, 0, sizeof(conf));
	for (int k = 0; k < o->nodes; k++) {
		conf.voters[conf.n_voters++] = (uint64_t)k + 1;
	}
	for (int k = 0; k < o->nodes; k++) {
		nodeNew(s, &s->nodes[k], (uint64_t)k + 1, &conf);
	}
	for (int i = 0; i < o->steps && !s->aborted; i++) {
		stepOnce(s, true);
		if (o->stop_on_violation && s->violations > 0) {
			break;
		}
	}
	if (!s->aborted && (s->violations == 0 || !o->stop_on_violation)) {
		s->healed = true;
		s->partitioned = false;
		for (int k = 0; k < s->nslots; k++) {
			s->nodes[k].paused_until = 0;
		}
		simTrace(s, "heal");
		restartDue(s, true);
		checkLiveness(s);
	}
	st->seeds++;
	st->commits += s->t_n;
	st->violations += s->violations;
	uint64_t v = s->violations;
	if (s->trace != NULL && trace_out != NULL) {
		for (int i = 0; i < s->trace_n; i++) {
			int at = (s->trace_head - s->trace_n + i + s->trace_cap) % s->trace_cap;
			fprintf(trace_out, "%s\n", s->trace[at]);
		}
	}
	for (int k = 0; k < s->nslots; k++) {
		if (s->nodes[k].alive) {
			nodeFree(s, &s->nodes[k]);
		}
	}
	netClear(s);
	checkClose(s);
	free(s->trace);
	free(s);
	return v;
}

uint64_t sim_run(const struct sim_opts *o, struct sim_stats *st)
{
	for (uint64_t i = 0; i < o->seeds; i++) {
		sim_run_seed(o, o->seed + i, st, NULL, 0);
		if (o->stop_on_violation && st->violations > 0) {
			break;
		}
	}
	return st->violations;
}

void sim_opts_init(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->seeds = 1;
	o->nodes = 5;
	o->steps = 2000;
	o->wire = true;
	o->crash_per_mille = 15;
}

int sim_parse_faults(const char *str, unsigned *mask)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"drop", SIM_FAULT_DROP},	   {"dup", SIM_FAULT_DUP},
		     {"reorder", SIM_FAULT_REORDER}, {"partition", SIM_FAULT_PARTITION},
		     {"crash", SIM_FAULT_CRASH},     {"conf", SIM_FAULT_CONF},
		     {"transfer", SIM_FAULT_TRANSFER}, {"snapshot", SIM_FAULT_SNAPSHOT},
		     {"all", SIM_FAULT_ALL},	   {"none", 0}};
	*mask = 0;
	const char *p = str;
	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		bool found = false;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strlen(names[i].name) == len && strncmp(p, names[i].name, len) == 0) {
				*mask |= names[i].bit;
				found = true;
			}
		}
		if (!found && len > 0) {
			return -1;
		}
		p += len;
		if (*p == ',') {
			p++;
		}
	}
	return 0;
}

void sim_print_summary(FILE *f, const struct sim_stats *st)
{
	fprintf(f, "seeds=%llu steps=%llu elections=%llu commits=%llu snapshots=%llu "
		   "conf_changes=%llu violations=%llu\n",
		(unsigned long long)st->seeds, (unsigned long long)st->steps,
		(unsigned long long)st->elections, (unsigned long long)st->commits,
		(unsigned long long)st->snapshots, (unsigned long long)st->conf_changes,
		(unsigned long long)st->violations);
}
