/*
 * raft/sim/sim.c — the simulated cluster's nodes: driven exactly as a real
 * driver would (persist, then send — a leader may send first —, then apply,
 * then advance), crashes that keep only what was persisted (one may fall
 * between a leader's send and its persist), and the actions of clients and
 * of the fault schedule (proposals, reads, membership changes, transfers,
 * snapshots).
 * Everything is derived from the seed: same seed, same run.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/sim/sim_int.h"


uint64_t simHash(uint64_t h, uint64_t v)
{
	uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t simEntryHash(const struct raft_entry *e)
{
	uint64_t h = simHash(0x51, e->type);
	size_t i = 0;
	for (; i + 8 <= e->len; i += 8) {
		uint64_t w;
		memcpy(&w, e->data + i, 8);
		h = simHash(h, w);
	}
	for (; i < e->len; i++) {
		h = simHash(h, e->data[i]);
	}
	return simHash(h, e->len);
}

uint64_t simRand(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void simTrace(struct sim *s, const char *fmt, ...)
{
	if (s->trace == NULL) {
		return;
	}
	char *line = s->trace[s->trace_head];
	int n = snprintf(line, sizeof(s->trace[0]), "[%5d] ", s->now);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(s->trace[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	s->trace_head = (s->trace_head + 1) % s->trace_cap;
	if (s->trace_n < s->trace_cap) {
		s->trace_n++;
	}
}

void simViolation(struct sim *s, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (s->violations == 0 && s->st->violations == 0) {
		snprintf(s->st->what, sizeof(s->st->what), "%s", buf);
		s->st->bad_seed = s->seed;
	}
	s->violations++;
	simTrace(s, "VIOLATION: %s", buf);
}

int simSlotOf(struct sim *s, uint64_t id)
{
	for (int k = 0; k < s->nslots; k++) {
		if (s->nodes[k].alive && s->nodes[k].id == id) {
			return k;
		}
	}
	return -1;
}

void nodeStart(struct sim *s, struct snode *n)
{
	struct raft_config c;
	raft_config_init(&c, n->id);
	c.election_tick = SIM_ELECTION_TICK;
	c.heartbeat_tick = SIM_HEARTBEAT_TICK;
	c.seed = s->seed * 7919 + n->id;
	/* Small appends split a leader's log over many messages, which is what
	 * exposes ordering bugs (e.g. committing an old term's entry alone). */
	static const size_t msg_bytes[] = {1, 8, 64, 4096};
	c.max_msg_bytes = msg_bytes[(s->seed + n->id) % 4];
	if (s->o->max_msg_bytes != 0) {
		c.max_msg_bytes = s->o->max_msg_bytes;
	}
	c.max_inflight_msgs = 1 + (s->seed % 5);
	c.test_unsafe_commit = s->o->unsafe_commit;
	c.test_unsafe_read = s->o->unsafe_read;
	struct raft_entry *ents = calloc(n->n ? n->n : 1, sizeof(*ents));
	if (ents == NULL) {
		abort();
	}
	/* The library restarts from the snapshot: entries kept before it
	 * (trailing entries) are not replayed. */
	size_t skip = 0;
	while (skip < n->n && n->log[skip].index <= n->smeta.index) {
		skip++;
	}
	for (size_t i = skip; i < n->n; i++) {
		const struct pentry *p = &n->log[i];
		ents[i - skip] = (struct raft_entry){.term = p->term,
						     .index = p->index,
						     .type = p->type,
						     .len = p->len,
						     .data = pentryData(p)};
	}
	struct raft_persisted p = {
		.hard_state = n->hs,
		.snapshot = {.meta = n->smeta,
			     .data = (const uint8_t *)&n->sdata,
			     .len = n->smeta.index ? sizeof(n->sdata) : 0},
		.entries = ents,
		.n_entries = n->n - skip,
		.applied = n->smeta.index,
	};
	int rv = raft_create(&c, &p, &n->r);
	free(ents);
	if (rv != 0) {
		simViolation(s, "node %llu cannot restart: %s", (unsigned long long)n->id,
			     raft_strerror(rv));
		n->up = false;
		return;
	}
	n->up = true;
	n->applied = n->smeta.index;
	n->sm = n->smeta.index ? n->sdata.sm : 0;
	n->obs_commit = n->smeta.index;
	n->obs_role = RAFT_FOLLOWER;
	n->obs_term = 0;
}

void nodeCrash(struct sim *s, struct snode *n, int down_for)
{
	raft_destroy(n->r);
	n->r = NULL;
	n->up = false;
	n->down_until = s->now + down_for;
	simTrace(s, "crash %llu (down %d)", (unsigned long long)n->id, down_for);
}

void nodeFree(struct sim *s, struct snode *n)
{
	(void)s;
	if (n->up) {
		raft_destroy(n->r);
	}
	for (size_t j = 0; j < n->n; j++) {
		pentryFree(&n->log[j]);
	}
	free(n->log);
	memset(n, 0, sizeof(*n));
}

/* A brand-new server (initial member or one about to be added). */
void nodeNew(struct sim *s, struct snode *n, uint64_t id, const struct raft_conf *conf)
{
	memset(n, 0, sizeof(*n));
	n->alive = true;
	n->id = id;
	n->first = 1;
	n->smeta.conf = *conf;
	nodeStart(s, n);
}

static void applyConfChange(struct sim *s, struct snode *n, const struct raft_entry *e)
{
	struct raft_conf_change cc;
	if (raft_conf_change_decode(e->data, e->len, &cc) != 0) {
		simViolation(s, "node %llu applies a corrupt conf change", (unsigned long long)n->id);
		return;
	}
	if (e->index == s->t_n) {
		/* First time this change is applied anywhere. */
	}
	if (cc.type == RAFT_CC_REMOVE) {
		/* The removal is committed: the removed server shuts down. */
		int k = simSlotOf(s, cc.node_id);
		if (k >= 0 && &s->nodes[k] != n) {
			simTrace(s, "shutdown removed %llu", (unsigned long long)cc.node_id);
			nodeFree(s, &s->nodes[k]);
		}
	}
}

static void sendReady(struct sim *s, int slot, const struct raft_ready *rd)
{
	for (size_t i = 0; i < rd->n_messages; i++) {
		netSend(s, slot, &rd->messages[i]);
	}
}

/* Drive one ready exactly like a real node: persist, send, apply, advance;
 * a leader sends first when the ready allows it, as core/node.c does, and
 * may crash between that send and its persist. */
void processReady(struct sim *s, int slot, bool faulty)
{
	struct snode *n = &s->nodes[slot];
	struct raft_ready rd;
	if (!raft_ready(n->r, &rd)) {
		return;
	}
	if (rd.send_first) {
		sendReady(s, slot, &rd);
		if (faulty && (s->o->faults & SIM_FAULT_CRASH) &&
		    simChance(s, s->o->crash_per_mille / 2)) {
			simTrace(s, "node %llu crashes between its send and its persist",
				 (unsigned long long)n->id);
			nodeCrash(s, n, 5 + (int)(simRand(s) % 80));
			return;
		}
	}
	bool self_removed = false;
	if (rd.snapshot != NULL) {
		if (rd.snapshot->len != sizeof(struct ssnap)) {
			simViolation(s, "snapshot of %zu bytes", rd.snapshot->len);
		} else {
			struct ssnap d;
			memcpy(&d, rd.snapshot->data, sizeof(d));
			if (d.index != rd.snapshot->meta.index) {
				simViolation(s, "snapshot meta %llu vs data %llu",
					     (unsigned long long)rd.snapshot->meta.index,
					     (unsigned long long)d.index);
			}
			n->smeta = rd.snapshot->meta;
			n->sdata = d;
			checkSnapshotInstall(s, n, &d);
			s->st->snapshots++;
			simTrace(s, "node %llu installs snapshot %llu", (unsigned long long)n->id,
				 (unsigned long long)d.index);
		}
	}
	if (rd.n_entries > 0) {
		checkPersist(s, n, rd.entries, rd.n_entries);
	}
	if (rd.has_hard_state) {
		n->hs = rd.hard_state;
	}
	if (!rd.send_first) {
		sendReady(s, slot, &rd);
	}
	for (size_t i = 0; i < rd.n_committed; i++) {
		const struct raft_entry *e = &rd.committed[i];
		checkApply(s, n, e);
		if (e->type == RAFT_ENTRY_CONF_CHANGE) {
			struct raft_conf_change cc;
			if (raft_conf_change_decode(e->data, e->len, &cc) == 0 &&
			    cc.type == RAFT_CC_REMOVE && cc.node_id == n->id) {
				self_removed = true;
			}
			applyConfChange(s, n, e);
		}
	}
	for (size_t i = 0; i < rd.n_read_states; i++) {
		checkReadState(s, n, rd.read_states[i].ctx, rd.read_states[i].index);
	}
	raft_advance(n->r);
	if (self_removed) {
		simTrace(s, "shutdown removed %llu (self)", (unsigned long long)n->id);
		nodeFree(s, n);
	}
}

int randomUpSlot(struct sim *s)
{
	int cand[SIM_MAX_NODES], c = 0;
	for (int k = 0; k < s->nslots; k++) {
		if (simRunning(s, &s->nodes[k])) {
			cand[c++] = k;
		}
	}
	return c ? cand[simRand(s) % (uint64_t)c] : -1;
}

int leaderSlot(struct sim *s)
{
	int best = -1;
	uint64_t best_term = 0;
	for (int k = 0; k < s->nslots; k++) {
		struct snode *n = &s->nodes[k];
		if (simRunning(s, n)) {
			struct raft_status st;
			raft_status(n->r, &st);
			if (st.role == RAFT_LEADER && st.term >= best_term) {
				best = k;
				best_term = st.term;
			}
		}
	}
	return best;
}

void propose(struct sim *s, int k)
{
	struct snode *n = &s->nodes[k];
	uint64_t ids[3];
	struct raft_buffer b[3];
	int cnt = 1 + (int)(simRand(s) % 3);
	for (int i = 0; i < cnt; i++) {
		ids[i] = ++s->next_prop;
		b[i] = (struct raft_buffer){&ids[i], sizeof(ids[i])};
	}
	uint64_t first;
	int rv = raft_propose(n->r, b, (size_t)cnt, &first);
	simTrace(s, "propose %d at %llu: %s (first %llu)", cnt, (unsigned long long)n->id,
		 raft_strerror(rv), (unsigned long long)first);
}

void readIndex(struct sim *s, int k)
{
	struct snode *n = &s->nodes[k];
	uint64_t ctx = ++s->next_ctx;
	if (raft_read_index(n->r, ctx) != 0) {
		return;
	}
	if (s->n_reads == (int)(sizeof(s->reads) / sizeof(s->reads[0]))) {
		/* Forget the oldest: unanswered reads are allowed (lost messages). */
		s->reads[0] = s->reads[--s->n_reads];
	}
	/* Anything committed anywhere by now must be visible to this read. */
	s->reads[s->n_reads++] = (struct pread){ctx, s->t_n, k, s->now};
}

static int freeSlot(struct sim *s)
{
	for (int k = 0; k < s->nslots; k++) {
		if (!s->nodes[k].alive) {
			return k;
		}
	}
	return -1;
}

void confChange(struct sim *s)
{
	int l = leaderSlot(s);
	if (l < 0) {
		return;
	}
	struct snode *ln = &s->nodes[l];
	const struct raft_conf *c = raft_conf(ln->r);
	uint32_t type;
	uint64_t id;
	int slot = -1;
	if (c->n_learners > 0 && simChance(s, 800)) {
		id = c->learners[simRand(s) % c->n_learners];
		type = simChance(s, 800) ? RAFT_CC_PROMOTE : RAFT_CC_REMOVE;
	} else if ((slot = freeSlot(s)) >= 0 && simChance(s, 600)) {
		id = s->next_id;
		type = simChance(s, 850) ? RAFT_CC_ADD_LEARNER : RAFT_CC_ADD_VOTER;
	} else if (c->n_voters > 2) {
		id = c->voters[simRand(s) % c->n_voters];
		type = RAFT_CC_REMOVE;
		slot = -1;
	} else {
		return;
	}
	uint64_t index;
	int rv = raft_propose_conf_change(ln->r, type, id, &index);
	simTrace(s, "conf change %u %llu at leader %llu: %s", type, (unsigned long long)id,
		 (unsigned long long)ln->id, raft_strerror(rv));
	if (rv != 0) {
		return;
	}
	s->st->conf_changes++;
	if (type == RAFT_CC_ADD_LEARNER || type == RAFT_CC_ADD_VOTER) {
		/* Servers left over from an add that never committed are gone:
		 * the change just accepted proves the previous one committed. */
		const struct raft_conf *now = raft_conf(ln->r);
		for (int k = 0; k < s->nslots; k++) {
			struct snode *n = &s->nodes[k];
			if (n->alive && !raft_conf_is_voter(now, n->id) &&
			    !raft_conf_is_learner(now, n->id)) {
				nodeFree(s, n);
			}
		}
		slot = freeSlot(s);
		s->next_id++;
		struct raft_conf empty;
		memset(&empty, 0, sizeof(empty));
		nodeNew(s, &s->nodes[slot], id, &empty);
	}
}

void transfer(struct sim *s)
{
	int l = leaderSlot(s);
	if (l < 0) {
		return;
	}
	const struct raft_conf *c = raft_conf(s->nodes[l].r);
	uint64_t target = c->voters[simRand(s) % c->n_voters];
	int rv = raft_transfer_leader(s->nodes[l].r, target);
	simTrace(s, "transfer %llu -> %llu: %s", (unsigned long long)s->nodes[l].id,
		 (unsigned long long)target, raft_strerror(rv));
}

void snapshot(struct sim *s, int k)
{
	struct snode *n = &s->nodes[k];
	struct raft_status st;
	raft_status(n->r, &st);
	if (n->applied <= st.snapshot_index || n->applied != st.applied) {
		return;
	}
	bool ok;
	struct ssnap d = {n->applied, n->sm, pentryChainAt(n, n->applied, &ok)};
	if (!ok) {
		return; /* applied entries not all persisted here yet */
	}
	uint64_t trailing = simRand(s) % 6;
	int rv = raft_snapshot_taken(n->r, d.index, &d, sizeof(d), trailing);
	if (rv != 0) {
		simViolation(s, "snapshot_taken(%llu) on %llu: %s", (unsigned long long)d.index,
			     (unsigned long long)n->id, raft_strerror(rv));
		return;
	}
	/* The disk now holds the snapshot and drops the same prefix. */
	raft_snapshot_get(n->r, &n->smeta);
	struct raft_status after;
	raft_status(n->r, &after);
	uint64_t upto = after.first_index - 1;
	if (upto >= n->first) {
		size_t drop = (size_t)(upto - n->first + 1);
		if (drop > n->n) {
			drop = n->n;
		}
		n->base_chain = n->log[drop - 1].chain;
		for (size_t j = 0; j < drop; j++) {
			pentryFree(&n->log[j]);
		}
		memmove(n->log, n->log + drop, (n->n - drop) * sizeof(*n->log));
		n->n -= drop;
		n->first = upto + 1;
	}
	n->sdata = d;
	s->st->snapshots++;
	simTrace(s, "snapshot %llu at %llu (trailing %llu)", (unsigned long long)n->id,
		 (unsigned long long)d.index, (unsigned long long)trailing);
}
