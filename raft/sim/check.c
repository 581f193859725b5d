/*
 * raft/sim/check.c — the simulator's checker. It keeps the truth (every
 * committed entry, as first seen committed anywhere) and a map from
 * (index, term) to the hash of the whole log prefix, and checks after every
 * step: election safety, log matching, leader completeness, state machine
 * safety, that no committed entry is lost or changed, and that ReadIndex
 * answers are linearizable.
 */
#include <stdlib.h>
#include <string.h>

#include "raft/sim/sim_int.h"

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		abort();
	}
	return p;
}

void checkInit(struct sim *s)
{
	s->t_cap = 1024;
	s->t_term = xrealloc(NULL, s->t_cap * sizeof(uint64_t));
	s->t_hash = xrealloc(NULL, s->t_cap * sizeof(uint64_t));
	s->t_chain = xrealloc(NULL, s->t_cap * sizeof(uint64_t));
	s->t_sm = xrealloc(NULL, s->t_cap * sizeof(uint64_t));
	s->t_cterm = xrealloc(NULL, s->t_cap * sizeof(uint64_t));
	s->t_n = 0;
	s->t_term[0] = s->t_hash[0] = s->t_chain[0] = s->t_sm[0] = 0;
	s->leaders_cap = 256;
	s->leaders = calloc(s->leaders_cap, sizeof(uint64_t));
	s->lm_cap = 4096;
	s->lm = calloc(s->lm_cap, sizeof(*s->lm));
	s->lm_n = 0;
	if (s->leaders == NULL || s->lm == NULL) {
		abort();
	}
}

void checkClose(struct sim *s)
{
	free(s->t_term);
	free(s->t_hash);
	free(s->t_chain);
	free(s->t_sm);
	free(s->t_cterm);
	free(s->leaders);
	free(s->lm);
}

static uint64_t chainOf(uint64_t prev, const struct raft_entry *e)
{
	return simHash(simHash(prev, e->term), simEntryHash(e));
}

/* Record the chain of (index, term), or compare with the one recorded. */
static void lmCheck(struct sim *s, uint64_t index, uint64_t term, uint64_t chain)
{
	if (2 * (s->lm_n + 1) > s->lm_cap) {
		struct lmslot *old = s->lm;
		uint64_t oldcap = s->lm_cap;
		s->lm_cap *= 2;
		s->lm = calloc(s->lm_cap, sizeof(*s->lm));
		if (s->lm == NULL) {
			abort();
		}
		for (uint64_t i = 0; i < oldcap; i++) {
			if (old[i].index != 0) {
				uint64_t h = simHash(old[i].index, old[i].term) & (s->lm_cap - 1);
				while (s->lm[h].index != 0) {
					h = (h + 1) & (s->lm_cap - 1);
				}
				s->lm[h] = old[i];
			}
		}
		free(old);
	}
	uint64_t h = simHash(index, term) & (s->lm_cap - 1);
	while (s->lm[h].index != 0) {
		if (s->lm[h].index == index && s->lm[h].term == term) {
			if (s->lm[h].chain != chain) {
				simViolation(s, "log matching: two logs hold index %llu term %llu with "
						"different prefixes",
					     (unsigned long long)index, (unsigned long long)term);
			}
			return;
		}
		h = (h + 1) & (s->lm_cap - 1);
	}
	s->lm[h] = (struct lmslot){index, term, chain};
	s->lm_n++;
}

static void truthAdd(struct sim *s, const struct raft_entry *e, uint64_t chain, uint64_t cterm)
{
	if (s->t_n + 2 > s->t_cap) {
		s->t_cap *= 2;
		s->t_term = xrealloc(s->t_term, s->t_cap * sizeof(uint64_t));
		s->t_hash = xrealloc(s->t_hash, s->t_cap * sizeof(uint64_t));
		s->t_chain = xrealloc(s->t_chain, s->t_cap * sizeof(uint64_t));
		s->t_sm = xrealloc(s->t_sm, s->t_cap * sizeof(uint64_t));
		s->t_cterm = xrealloc(s->t_cterm, s->t_cap * sizeof(uint64_t));
	}
	uint64_t i = ++s->t_n;
	uint64_t h = simEntryHash(e);
	s->t_term[i] = e->term;
	s->t_hash[i] = h;
	s->t_chain[i] = chain;
	s->t_cterm[i] = cterm;
	s->t_sm[i] = e->type == RAFT_ENTRY_NORMAL ? simHash(s->t_sm[i - 1], h) : s->t_sm[i - 1];
	simTrace(s, "committed %llu (term %llu)", (unsigned long long)i, (unsigned long long)e->term);
}

/* The current term of a running node (an observer of commits). */
static uint64_t nodeTerm(const struct snode *n)
{
	struct raft_status st;
	raft_status(n->r, &st);
	return st.term;
}

/* An entry some node considers committed at e->index. */
static void checkCommitted(struct sim *s, struct snode *n, const struct raft_entry *e)
{
	uint64_t i = e->index;
	uint64_t term = nodeTerm(n);
	if (i <= s->t_n && term < s->t_cterm[i]) {
		s->t_cterm[i] = term;
	}
	if (i <= s->t_n) {
		if (s->t_term[i] != e->term || s->t_hash[i] != simEntryHash(e)) {
			simViolation(s, "state machine safety: node %llu has term %llu at committed "
					"index %llu, committed was term %llu",
				     (unsigned long long)n->id, (unsigned long long)e->term,
				     (unsigned long long)i, (unsigned long long)s->t_term[i]);
		}
	} else if (i == s->t_n + 1) {
		truthAdd(s, e, chainOf(s->t_chain[i - 1], e), term);
	} else {
		simViolation(s, "commit gap: node %llu commits %llu but only %llu known",
			     (unsigned long long)n->id, (unsigned long long)i,
			     (unsigned long long)s->t_n);
	}
}

uint64_t pentryChainAt(const struct snode *n, uint64_t index, bool *ok)
{
	*ok = true;
	if (index + 1 == n->first) {
		return n->base_chain;
	}
	if (index >= n->first && index < n->first + n->n) {
		return n->log[index - n->first].chain;
	}
	*ok = false;
	return 0;
}

void checkPersist(struct sim *s, struct snode *n, const struct raft_entry *e, size_t cnt)
{
	for (size_t k = 0; k < cnt; k++) {
		uint64_t idx = e[k].index;
		if (idx < n->first || idx > n->first + n->n) {
			simViolation(s, "node %llu persists index %llu outside its log [%llu, %llu]",
				     (unsigned long long)n->id, (unsigned long long)idx,
				     (unsigned long long)n->first,
				     (unsigned long long)(n->first + n->n));
			return;
		}
		size_t keep = (size_t)(idx - n->first);
		for (size_t j = keep; j < n->n; j++) {
			pentryFree(&n->log[j]);
		}
		n->n = keep;
		uint64_t prev = keep == 0 ? n->base_chain : n->log[keep - 1].chain;
		if (n->n == n->cap) {
			n->cap = n->cap ? 2 * n->cap : 64;
			n->log = xrealloc(n->log, n->cap * sizeof(*n->log));
		}
		struct pentry *p = &n->log[n->n++];
		p->term = e[k].term;
		p->index = idx;
		p->type = e[k].type;
		p->len = e[k].len;
		p->data = NULL;
		if (p->len > sizeof(p->inl)) {
			p->data = xrealloc(NULL, p->len);
		}
		if (p->len > 0) {
			memcpy((uint8_t *)pentryData(p), e[k].data, p->len);
		}
		p->chain = chainOf(prev, &e[k]);
		lmCheck(s, idx, p->term, p->chain);
	}
}

void checkSnapshotInstall(struct sim *s, struct snode *n, const struct ssnap *d)
{
	if (d->index > s->t_n) {
		simViolation(s, "node %llu installs snapshot %llu beyond the commit point %llu",
			     (unsigned long long)n->id, (unsigned long long)d->index,
			     (unsigned long long)s->t_n);
	} else if (s->t_chain[d->index] != d->chain || s->t_sm[d->index] != d->sm) {
		simViolation(s, "node %llu installs snapshot %llu that differs from the committed "
				"log",
			     (unsigned long long)n->id, (unsigned long long)d->index);
	}
	for (size_t j = 0; j < n->n; j++) {
		pentryFree(&n->log[j]);
	}
	n->n = 0;
	n->first = d->index + 1;
	n->base_chain = d->chain;
	n->applied = d->index;
	n->sm = d->sm;
	if (n->obs_commit < d->index) {
		n->obs_commit = d->index;
	}
}

void checkApply(struct sim *s, struct snode *n, const struct raft_entry *e)
{
	if (e->index != n->applied + 1) {
		simViolation(s, "node %llu applies %llu after %llu", (unsigned long long)n->id,
			     (unsigned long long)e->index, (unsigned long long)n->applied);
	}
	checkCommitted(s, n, e);
	bool ok;
	uint64_t chain = pentryChainAt(n, e->index, &ok);
	if (!ok) {
		simViolation(s, "node %llu applies %llu which it never persisted",
			     (unsigned long long)n->id, (unsigned long long)e->index);
	} else if (e->index <= s->t_n && chain != s->t_chain[e->index]) {
		simViolation(s, "node %llu applies %llu with a log prefix that differs from the "
				"committed one",
			     (unsigned long long)n->id, (unsigned long long)e->index);
	}
	if (e->type == RAFT_ENTRY_NORMAL) {
		n->sm = simHash(n->sm, simEntryHash(e));
	}
	n->applied = e->index;
	if (e->index <= s->t_n && n->sm != s->t_sm[e->index]) {
		simViolation(s, "node %llu state machine differs at %llu", (unsigned long long)n->id,
			     (unsigned long long)e->index);
	}
}

void checkReadState(struct sim *s, struct snode *n, uint64_t ctx, uint64_t index)
{
	for (int i = 0; i < s->n_reads; i++) {
		if (s->reads[i].ctx != ctx) {
			continue;
		}
		if (s->reads[i].slot != n - s->nodes) {
			simViolation(s, "read %llu answered on the wrong node", (unsigned long long)ctx);
		}
		if (index < s->reads[i].bound) {
			simViolation(s, "linearizability: read %llu got index %llu, but %llu was "
					"committed before it was issued",
				     (unsigned long long)ctx, (unsigned long long)index,
				     (unsigned long long)s->reads[i].bound);
		}
		s->st->reads++;
		s->reads[i] = s->reads[--s->n_reads];
		return;
	}
	/* Unknown ctx: a duplicate answer or an expired read; nothing to check. */
}

/* Raft's leader completeness: an entry committed in term T is in the log of
 * every leader of a term after T. (A leader of an older term may lack it: a
 * candidate paused across an election can win its stale term afterwards,
 * harmlessly, since nobody follows that term any more.) */
static void checkLeaderComplete(struct sim *s, struct snode *n)
{
	for (uint64_t i = 1; i <= s->t_n; i++) {
		if (s->t_cterm[i] >= n->obs_term) {
			continue;
		}
		const struct raft_entry *e;
		int rv = raft_log_entry(n->r, i, &e);
		if (rv == RAFT_COMPACTED) {
			continue; /* covered by the snapshot it holds */
		}
		if (rv != 0 || e->term != s->t_term[i] || simEntryHash(e) != s->t_hash[i]) {
			simViolation(s, "leader completeness: leader %llu of term %llu lacks committed "
					"entry %llu",
				     (unsigned long long)n->id, (unsigned long long)n->obs_term,
				     (unsigned long long)i);
			return;
		}
	}
}

void checkStep(struct sim *s)
{
	for (int k = 0; k < s->nslots; k++) {
		struct snode *n = &s->nodes[k];
		if (!n->alive || !n->up) {
			continue;
		}
		struct raft_status st;
		raft_status(n->r, &st);
		if (st.role == RAFT_LEADER && (n->obs_role != RAFT_LEADER || n->obs_term != st.term)) {
			while (st.term >= s->leaders_cap) {
				s->leaders = xrealloc(s->leaders, 2 * s->leaders_cap * sizeof(uint64_t));
				memset(s->leaders + s->leaders_cap, 0, s->leaders_cap * sizeof(uint64_t));
				s->leaders_cap *= 2;
			}
			if (s->leaders[st.term] == 0) {
				s->leaders[st.term] = st.id;
				s->st->elections++;
				simTrace(s, "leader %llu term %llu", (unsigned long long)st.id,
					 (unsigned long long)st.term);
			} else if (s->leaders[st.term] != st.id) {
				simViolation(s, "election safety: %llu and %llu both lead term %llu",
					     (unsigned long long)s->leaders[st.term],
					     (unsigned long long)st.id, (unsigned long long)st.term);
			}
			n->obs_term = st.term;
			checkLeaderComplete(s, n);
		}
		n->obs_role = st.role;
		n->obs_term = st.term;
		if (st.commit > n->obs_commit) {
			uint64_t from = n->obs_commit + 1;
			if (from < st.first_index) {
				from = st.first_index;
			}
			for (uint64_t i = from; i <= st.commit; i++) {
				const struct raft_entry *e;
				if (raft_log_entry(n->r, i, &e) == 0) {
					checkCommitted(s, n, e);
				}
			}
			n->obs_commit = st.commit;
		}
	}
}
