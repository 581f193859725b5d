/*
 * raft/log.h — the in-memory Raft log: every entry after the compaction
 * point, with the indexes that say how far it is durable, committed and
 * applied. Entries hold one batch reference each.
 */
#ifndef METAD_RAFT_LOG_H
#define METAD_RAFT_LOG_H

#include "raft/raft.h"

struct raftLog {
	struct raft_entry *ents; /* live entries are ents[head .. head + n) */
	size_t head, n, cap;
	uint64_t offset;      /* index just before the first entry held */
	uint64_t offset_term; /* term of that index (known: it was compacted or snapshotted) */
	uint64_t stable;      /* last index the caller has made durable */
	uint64_t committed;
	uint64_t applied; /* last index handed to the caller to apply */
};

void logInit(struct raftLog *l, uint64_t offset, uint64_t offset_term);
void logClose(struct raftLog *l);

static inline uint64_t logFirstIndex(const struct raftLog *l)
{
	return l->offset + 1;
}

static inline uint64_t logLastIndex(const struct raftLog *l)
{
	return l->offset + l->n;
}

/* Entry at index i, which must be in (offset, last]. */
static inline struct raft_entry *logAt(const struct raftLog *l, uint64_t i)
{
	return &l->ents[l->head + (size_t)(i - l->offset - 1)];
}

/* Term at i. Errors: RAFT_COMPACTED (i < offset), RAFT_UNAVAILABLE (i > last). */
int logTerm(const struct raftLog *l, uint64_t i, uint64_t *term);
/* Term at i, or 0 when it is not known. */
uint64_t logTermOr0(const struct raftLog *l, uint64_t i);
static inline uint64_t logLastTerm(const struct raftLog *l)
{
	return logTermOr0(l, logLastIndex(l));
}
bool logMatchTerm(const struct raftLog *l, uint64_t i, uint64_t term);
/* Raft's "at least as up-to-date" comparison (paper §5.4.1). */
bool logIsUpToDate(const struct raftLog *l, uint64_t last_index, uint64_t last_term);

/* Append copies of e[0..n) at last+1, taking a batch reference per entry.
 * Errors: RAFT_NOMEM (log unchanged). */
int logAppend(struct raftLog *l, const struct raft_entry *e, size_t n);
/* Make room for n more entries without failing later. */
int logReserve(struct raftLog *l, size_t n);
/* Drop entries >= from; stable falls back if needed. */
void logTruncate(struct raftLog *l, uint64_t from);
/* Drop entries <= upto (which must be <= last). */
void logCompact(struct raftLog *l, uint64_t upto);
/* Forget all entries; the log restarts after (index, term) (snapshot install). */
void logReset(struct raftLog *l, uint64_t index, uint64_t term);

/* The largest i <= index with term(i) <= term (or unknown), and its term.
 * Used to skip a whole conflicting term on a rejected append. */
uint64_t logFindConflictByTerm(const struct raftLog *l, uint64_t index, uint64_t term,
			       uint64_t *found_term);

void logCommitTo(struct raftLog *l, uint64_t index);

#endif
