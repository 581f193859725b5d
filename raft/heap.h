/*
 * raft/heap.h — the library's allocator, swappable through raft_set_heap so
 * tests can inject allocation failures, and the batch (refcounted bytes) type.
 */
#ifndef METAD_RAFT_HEAP_H
#define METAD_RAFT_HEAP_H

#include <stdatomic.h>
#include <stddef.h>

#include "raft/raft.h"

void *raftMalloc(size_t size);
void *raftRealloc(void *ptr, size_t size);
void raftFree(void *ptr);

/* Header in front of the bytes of every batch. */
struct raft_batch {
	atomic_uint refs;
	uint32_t len;
	/* bytes follow, 8-aligned */
};

static inline uint8_t *batchBytes(struct raft_batch *b)
{
	return (uint8_t *)(b + 1);
}

#endif
