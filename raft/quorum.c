/*
 * raft/quorum.c — majority arithmetic (see quorum.h).
 */
#include "raft/quorum.h"

uint64_t quorumValue(uint64_t *v, size_t n)
{
	if (n == 0) {
		return UINT64_MAX;
	}
	/* Insertion sort, descending: n is at most RAFT_MAX_MEMBERS. */
	for (size_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		size_t j = i;
		while (j > 0 && v[j - 1] < x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
	return v[n / 2];
}

int quorumVoteResult(size_t granted, size_t rejected, size_t n)
{
	size_t q = n / 2 + 1;
	if (granted >= q) {
		return VOTE_WON;
	}
	if (rejected > n - q) {
		return VOTE_LOST;
	}
	return VOTE_PENDING;
}
