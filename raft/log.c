/*
 * raft/log.c — the in-memory Raft log (see log.h). The array is a sliding
 * window: compaction advances head, and the live part is moved down only
 * when more than half the array is dead, so compaction is amortised O(1).
 */
#include <string.h>

#include "raft/heap.h"
#include "raft/log.h"

void logInit(struct raftLog *l, uint64_t offset, uint64_t offset_term)
{
	memset(l, 0, sizeof(*l));
	l->offset = offset;
	l->offset_term = offset_term;
	l->stable = offset;
	l->committed = offset;
	l->applied = offset;
}

void logClose(struct raftLog *l)
{
	raft_entries_unref(l->ents + l->head, l->n);
	raftFree(l->ents);
	l->ents = NULL;
	l->n = l->cap = l->head = 0;
}

int logTerm(const struct raftLog *l, uint64_t i, uint64_t *term)
{
	if (i == l->offset) {
		*term = l->offset_term;
		return 0;
	}
	if (i < l->offset) {
		return RAFT_COMPACTED;
	}
	if (i > logLastIndex(l)) {
		return RAFT_UNAVAILABLE;
	}
	*term = logAt(l, i)->term;
	return 0;
}

uint64_t logTermOr0(const struct raftLog *l, uint64_t i)
{
	uint64_t t = 0;
	if (logTerm(l, i, &t) != 0) {
		return 0;
	}
	return t;
}

bool logMatchTerm(const struct raftLog *l, uint64_t i, uint64_t term)
{
	uint64_t t;
	if (logTerm(l, i, &t) != 0) {
		return false;
	}
	return t == term;
}

bool logIsUpToDate(const struct raftLog *l, uint64_t last_index, uint64_t last_term)
{
	uint64_t my_term = logLastTerm(l);
	return last_term > my_term || (last_term == my_term && last_index >= logLastIndex(l));
}

int logReserve(struct raftLog *l, size_t want)
{
	if (l->head + l->n + want <= l->cap) {
		return 0;
	}
	if (l->head > 0 && l->n + want <= l->cap && l->head >= l->cap / 2) {
		memmove(l->ents, l->ents + l->head, l->n * sizeof(*l->ents));
		l->head = 0;
		return 0;
	}
	size_t cap = l->cap ? l->cap : 64;
	while (cap < l->n + want) {
		cap *= 2;
	}
	struct raft_entry *ents = raftMalloc(cap * sizeof(*ents));
	if (ents == NULL) {
		return RAFT_NOMEM;
	}
	if (l->n > 0) {
		memcpy(ents, l->ents + l->head, l->n * sizeof(*ents));
	}
	raftFree(l->ents);
	l->ents = ents;
	l->cap = cap;
	l->head = 0;
	return 0;
}

int logAppend(struct raftLog *l, const struct raft_entry *e, size_t n)
{
	if (n == 0) {
		return 0;
	}
	int rv = logReserve(l, n);
	if (rv != 0) {
		return rv;
	}
	memcpy(l->ents + l->head + l->n, e, n * sizeof(*e));
	raft_entries_ref(e, n);
	l->n += n;
	return 0;
}

void logTruncate(struct raftLog *l, uint64_t from)
{
	if (from > logLastIndex(l)) {
		return;
	}
	if (from <= l->offset) {
		from = l->offset + 1;
	}
	size_t keep = (size_t)(from - l->offset - 1);
	raft_entries_unref(l->ents + l->head + keep, l->n - keep);
	l->n = keep;
	if (l->stable >= from) {
		l->stable = from - 1;
	}
}

void logCompact(struct raftLog *l, uint64_t upto)
{
	if (upto <= l->offset) {
		return;
	}
	uint64_t term = logAt(l, upto)->term;
	size_t drop = (size_t)(upto - l->offset);
	raft_entries_unref(l->ents + l->head, drop);
	l->head += drop;
	l->n -= drop;
	l->offset = upto;
	l->offset_term = term;
	if (l->n == 0) {
		l->head = 0;
	}
}

void logReset(struct raftLog *l, uint64_t index, uint64_t term)
{
	raft_entries_unref(l->ents + l->head, l->n);
	l->head = 0;
	l->n = 0;
	l->offset = index;
	l->offset_term = term;
	l->stable = index;
	l->committed = index;
	l->applied = index;
}

uint64_t logFindConflictByTerm(const struct raftLog *l, uint64_t index, uint64_t term,
			       uint64_t *found_term)
{
	if (index > logLastIndex(l)) {
		index = logLastIndex(l);
	}
	for (;;) {
		uint64_t t;
		if (logTerm(l, index, &t) != 0) {
			*found_term = 0;
			return index;
		}
		if (t <= term) {
			*found_term = t;
			return index;
		}
		if (index == 0) {
			*found_term = 0;
			return 0;
		}
		index--;
	}
}

void logCommitTo(struct raftLog *l, uint64_t index)
{
	if (index > l->committed) {
		l->committed = index;
	}
}
