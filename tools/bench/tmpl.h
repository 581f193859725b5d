/*
 * tools/bench/tmpl.h — precomputed request bytes with holes for keys.
 *
 * A request is packed by protobuf-c once, at start-up; per request the tool
 * only copies those bytes and writes the key (and, for watch latency, a send
 * timestamp at the start of the value) into known offsets. The offsets are
 * found by packing the same message with different filler bytes in the
 * holes and diffing, which works for any nesting (Txn ops) and never
 * mistakes a length or tag byte for key bytes.
 */
#ifndef METAD_BENCH_TMPL_H
#define METAD_BENCH_TMPL_H

#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_TMPL_MAX_KEYS 64
#define BENCH_STAMP_LEN 8

struct bench_tmpl {
	uint8_t *buf;                         /* packed bytes, owned */
	size_t len;
	int nkeys;
	size_t key_size;
	size_t key_off[BENCH_TMPL_MAX_KEYS];
	int has_stamp;
	size_t stamp_off;
};

/* Packs msg into t. keys[i] (key_size bytes each) and stamp (8 bytes, may be
 * NULL) are buffers msg points into; their content is overwritten. Returns 0,
 * or non-zero (out of memory, or the holes could not be located). */
int bench_tmpl_build(struct bench_tmpl *t, const ProtobufCMessage *msg, uint8_t *const *keys,
		     int nkeys, size_t key_size, uint8_t *stamp);

void bench_tmpl_free(struct bench_tmpl *t);

/* A fresh slice of the template with key i set to key number knum[i] and the
 * stamp (if any) set to stamp. Ownership of the slice moves to the caller. */
grpc_slice bench_tmpl_render(const struct bench_tmpl *t, const char *prefix,
			     const uint64_t *knum, uint64_t stamp);

/* Writes key number k as prefix + zero-padded decimal, exactly key_size
 * bytes (high digits dropped if they do not fit). */
void bench_key_format(uint8_t *dst, size_t key_size, const char *prefix, uint64_t k);

/* Fills buf with pseudo-random bytes from seed (values are incompressible,
 * as etcd's benchmark makes them). */
void bench_fill_random(uint8_t *buf, size_t len, uint64_t seed);

/* xorshift64*: per-client random numbers without locks. */
static inline uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

#endif
