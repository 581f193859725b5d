/*
 * core/bytes.h — big-endian integers in byte buffers (the file formats and
 * keys core reads and writes: snapshot trailers, backups, etcd's bbolt
 * values, the members blob).
 */
#ifndef METAD_CORE_BYTES_H
#define METAD_CORE_BYTES_H

#include <stdint.h>

static inline void core_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t core_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void core_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint32_t core_get_be32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | p[i];
	return v;
}

#endif
