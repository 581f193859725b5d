/*
 * core/hugearena.h — an allocator arena backed by transparent huge pages,
 * for the threads that bring much of the store into WiredTiger's cache at
 * once (a backup's layout run).
 */
#ifndef METAD_CORE_HUGEARENA_H
#define METAD_CORE_HUGEARENA_H

/*
 * From now on the calling thread allocates from that arena (memory freed
 * by other threads goes back to it). A no-op without jemalloc (sanitizer
 * builds) or when the arena cannot be made.
 */
void hugearena_enter(void);

#endif
