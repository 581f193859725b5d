/*
 * raft/sim/sim_int.h — the simulated cluster's state, shared by the
 * simulator's files: nodes with their "disk", the network, and the checker's
 * record of what was committed.
 */
#ifndef METAD_RAFT_SIM_INT_H
#define METAD_RAFT_SIM_INT_H

#include <stdarg.h>
#include <stdlib.h>

#include "raft/raft.h"
#include "raft/sim/sim.h"

/* One persisted log entry. chain = hash of this entry and all before it,
 * so equal chains at an index mean equal prefixes (log matching). */
struct pentry {
	uint64_t term, index;
	uint32_t type, len;
	uint8_t *data; /* malloc'ed when len > sizeof(inl), else unused */
	uint64_t chain;
	uint8_t inl[16];
};

/* Payload of a persisted entry (inline ones move with the array). */
static inline const uint8_t *pentryData(const struct pentry *p)
{
	return p->len <= sizeof(p->inl) ? p->inl : p->data;
}

static inline void pentryFree(struct pentry *p)
{
	if (p->len > sizeof(p->inl)) {
		free(p->data);
	}
}

struct lmslot {
	uint64_t index, term, chain;
};

/* Snapshot payload of the simulated state machine. */
struct ssnap {
	uint64_t index, sm, chain;
};

struct snode {
	bool alive; /* slot in use */
	bool up;    /* running (not crashed) */
	uint64_t id;
	struct raft *r;
	int group; /* partition side */
	int down_until;
	int paused_until; /* running but frozen (a stopped process): no ticks, no input */
	/* Disk: survives crashes. */
	struct raft_hard_state hs;
	struct pentry *log; /* entries first .. first+n-1 */
	size_t n, cap;
	uint64_t first;
	uint64_t base_chain; /* chain at first-1 */
	struct raft_snapshot_meta smeta;
	struct ssnap sdata;
	/* Volatile: the state machine and what the checker saw. */
	uint64_t applied, sm;
	uint64_t obs_commit;
	uint64_t obs_term;
	int obs_role;
};

struct smsg {
	uint64_t at, seq;
	int from_slot;
	uint64_t to;
	uint8_t *bytes; /* wire mode */
	size_t len;
	struct raft_message *m; /* held mode (kept small: the heap moves these) */
};

struct pread {
	uint64_t ctx;
	uint64_t bound; /* commit index known anywhere when the read was issued */
	int slot;
	int issued;
};

struct sim {
	const struct sim_opts *o;
	uint64_t seed;
	uint64_t rng;
	int now;
	bool healed;
	int nslots;
	uint64_t next_id;
	struct snode nodes[SIM_MAX_NODES];
	/* Network: a binary heap ordered by (at, seq). */
	struct smsg *q;
	size_t qn, qcap;
	uint8_t *scratch; /* encoding buffer, so each message is encoded once */
	size_t scratch_cap, scratch_len;
	uint64_t seq;
	bool partitioned;
	int partition_until;
	bool aborted; /* a run gone so wrong (message storm) that it is stopped */
	uint64_t sent, sent_bytes; /* messages sent in this run (wire bytes in wire mode) */
	/* Checker. */
	uint64_t *t_term, *t_hash, *t_chain, *t_sm; /* committed truth, 1-based */
	uint64_t *t_cterm; /* a term by which the entry was known committed (an upper
			    * bound of the term in which it was committed) */
	uint64_t t_n, t_cap;
	uint64_t *leaders; /* term -> leader id */
	uint64_t leaders_cap;
	struct lmslot *lm; /* (index,term) -> chain, open addressing */
	uint64_t lm_n, lm_cap;
	struct pread reads[64];
	int n_reads;
	uint64_t next_ctx;
	uint64_t next_prop;
	struct sim_stats *st;
	uint64_t violations;
	/* Trace ring. */
	char (*trace)[200];
	int trace_cap, trace_n, trace_head;
};

#define SIM_ELECTION_TICK 10
#define SIM_HEARTBEAT_TICK 2
#define SIM_MAX_SENDS_PER_STEP 400
#define SIM_MAX_BYTES_PER_STEP 8192

uint64_t simRand(struct sim *s);
static inline bool simChance(struct sim *s, unsigned per_mille)
{
	return simRand(s) % 1000 < per_mille;
}
void simTrace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void simViolation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int simSlotOf(struct sim *s, uint64_t id);
uint64_t simHash(uint64_t h, uint64_t v);
uint64_t simEntryHash(const struct raft_entry *e);

/* Up and not frozen: it ticks, reads its input and serves clients. */
static inline bool simRunning(const struct sim *s, const struct snode *n)
{
	return n->alive && n->up && n->paused_until <= s->now;
}

/* sim.c: nodes and actions */
void nodeStart(struct sim *s, struct snode *n);
void nodeCrash(struct sim *s, struct snode *n, int down_for);
void nodeFree(struct sim *s, struct snode *n);
void nodeNew(struct sim *s, struct snode *n, uint64_t id, const struct raft_conf *conf);
void processReady(struct sim *s, int slot, bool faulty);
int randomUpSlot(struct sim *s);
int leaderSlot(struct sim *s);
void propose(struct sim *s, int k);
void readIndex(struct sim *s, int k);
void confChange(struct sim *s);
void transfer(struct sim *s);
void snapshot(struct sim *s, int k);

/* net.c */
void netSend(struct sim *s, int from_slot, const struct raft_message *m);
void netDeliverDue(struct sim *s);
void netClear(struct sim *s);

/* check.c */
void checkInit(struct sim *s);
void checkClose(struct sim *s);
void checkPersist(struct sim *s, struct snode *n, const struct raft_entry *e, size_t cnt);
void checkSnapshotInstall(struct sim *s, struct snode *n, const struct ssnap *d);
void checkApply(struct sim *s, struct snode *n, const struct raft_entry *e);
void checkReadState(struct sim *s, struct snode *n, uint64_t ctx, uint64_t index);
void checkStep(struct sim *s);
uint64_t pentryChainAt(const struct snode *n, uint64_t index, bool *ok);

#endif
