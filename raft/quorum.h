/*
 * raft/quorum.h — majority arithmetic over the voters of one configuration.
 */
#ifndef METAD_RAFT_QUORUM_H
#define METAD_RAFT_QUORUM_H

#include <stddef.h>
#include <stdint.h>

/* The largest value that a majority of v[0..n) reaches (v is reordered).
 * n == 0 yields UINT64_MAX so that an empty voter set never blocks. */
uint64_t quorumValue(uint64_t *v, size_t n);

enum { VOTE_PENDING = 0, VOTE_WON, VOTE_LOST };

/* Election outcome from granted/rejected counts among n voters. */
int quorumVoteResult(size_t granted, size_t rejected, size_t n);

#endif
