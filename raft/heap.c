/*
 * raft/heap.c — allocator hook and refcounted batches. Batches let one
 * proposal's payloads be shared by the log, outgoing messages and the apply
 * path without copying or allocating per entry.
 */
#include <stdlib.h>

#include "raft/heap.h"

static void *libcMalloc(void *data, size_t size)
{
	(void)data;
	return malloc(size);
}

static void *libcRealloc(void *data, void *ptr, size_t size)
{
	(void)data;
	return realloc(ptr, size);
}

static void libcFree(void *data, void *ptr)
{
	(void)data;
	free(ptr);
}

static struct raft_heap heap = {libcMalloc, libcRealloc, libcFree, NULL};

void raft_set_heap(const struct raft_heap *h)
{
	if (h == NULL) {
		heap = (struct raft_heap){libcMalloc, libcRealloc, libcFree, NULL};
	} else {
		heap = *h;
	}
}

void *raftMalloc(size_t size)
{
	return heap.malloc(heap.data, size);
}

void *raftRealloc(void *ptr, size_t size)
{
	return heap.realloc(heap.data, ptr, size);
}

void raftFree(void *ptr)
{
	if (ptr != NULL) {
		heap.free(heap.data, ptr);
	}
}

struct raft_batch *raft_batch_new(size_t len, uint8_t **data)
{
	if (len > UINT32_MAX) {
		return NULL;
	}
	struct raft_batch *b = raftMalloc(sizeof(*b) + len);
	if (b == NULL) {
		return NULL;
	}
	atomic_init(&b->refs, 1);
	b->len = (uint32_t)len;
	if (data != NULL) {
		*data = batchBytes(b);
	}
	return b;
}

void raft_batch_ref(struct raft_batch *b)
{
	if (b != NULL) {
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	}
}

void raft_batch_unref(struct raft_batch *b)
{
	if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
		raftFree(b);
	}
}

/* Consecutive entries usually share a batch: both walks below count runs
 * and touch each batch's count once per run. Returns the run at e[i]. */
static unsigned batch_run(const struct raft_entry *e, size_t n, size_t i)
{
	unsigned run = 0;
	for (size_t j = i; j < n && e[j].batch == e[i].batch; j++) {
		run++;
	}
	return run;
}

void raft_entries_ref(const struct raft_entry *e, size_t n)
{
	unsigned run;
	for (size_t i = 0; i < n; i += run) {
		run = batch_run(e, n, i);
		if (e[i].batch != NULL) {
			atomic_fetch_add_explicit(&e[i].batch->refs, run, memory_order_relaxed);
		}
	}
}

void raft_entries_unref(const struct raft_entry *e, size_t n)
{
	unsigned run;
	for (size_t i = 0; i < n; i += run) {
		struct raft_batch *b = e[i].batch;
		run = batch_run(e, n, i);
		if (b != NULL &&
		    atomic_fetch_sub_explicit(&b->refs, run, memory_order_acq_rel) == run) {
			raftFree(b);
		}
	}
}
