/*
 * storage/codec_internal.h — byte encodings shared by the storage tables.
 *
 * Big-endian integers go into table keys (so byte order is numeric order);
 * unsigned LEB128 varints go into values (small revisions take 1-3 bytes).
 * Decoders never read past `end` and report truncation by returning NULL.
 */
#ifndef METAD_STORAGE_CODEC_INTERNAL_H
#define METAD_STORAGE_CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

static inline void be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Longest varint of a uint64_t. */
#define VARINT_MAX 10

/* Write v at p; returns the byte after it. */
static inline uint8_t *varint_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Read a varint from [p, end); returns the byte after it, NULL if malformed. */
static inline const uint8_t *varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (p >= end)
			return NULL;
		uint8_t b = *p++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return p;
		}
	}
	return NULL;
}

#endif
