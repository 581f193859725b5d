/*
 * tools/bench/tmpl.c — request templates (see tmpl.h for the why).
 */
#include "tmpl.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *pack(const ProtobufCMessage *msg, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(msg);
	uint8_t *out = malloc(*len ? *len : 1);
	if (out != NULL)
		protobuf_c_message_pack(msg, out);
	return out;
}

static void fill_holes(uint8_t *const *keys, int nkeys, size_t key_size, uint8_t *stamp,
		       uint8_t kfill, uint8_t sfill)
{
	for (int i = 0; i < nkeys; i++)
		memset(keys[i], kfill, key_size);
	if (stamp)
		memset(stamp, sfill, BENCH_STAMP_LEN);
}

/* Offsets where a and b differ, grouped into runs of `run` bytes. */
static int diff_runs(const uint8_t *a, const uint8_t *b, size_t len, size_t run, size_t *offs,
		     int want)
{
	int n = 0;
	size_t i = 0;
	while (i < len) {
		if (a[i] == b[i]) {
			i++;
			continue;
		}
		if (n == want || i + run > len)
			return -1;
		for (size_t j = 0; j < run; j++)
			if (a[i + j] == b[i + j])
				return -1; /* a hole is contiguous */
		offs[n++] = i;
		i += run;
	}
	return n;
}

int bench_tmpl_build(struct bench_tmpl *t, const ProtobufCMessage *msg, uint8_t *const *keys,
		     int nkeys, size_t key_size, uint8_t *stamp)
{
	memset(t, 0, sizeof(*t));
	if (nkeys > BENCH_TMPL_MAX_KEYS)
		return 1;
	size_t la, lb, lc;
	fill_holes(keys, nkeys, key_size, stamp, 'A', 'A');
	uint8_t *a = pack(msg, &la);
	fill_holes(keys, nkeys, key_size, stamp, 'B', 'A');
	uint8_t *b = pack(msg, &lb);
	fill_holes(keys, nkeys, key_size, stamp, 'A', 'B');
	uint8_t *c = pack(msg, &lc);
	int rv = 1;
	if (a == NULL || b == NULL || c == NULL || la != lb || la != lc)
		goto out;
	if (diff_runs(a, b, la, key_size, t->key_off, nkeys) != nkeys)
		goto out;
	if (stamp) {
		if (diff_runs(a, c, la, BENCH_STAMP_LEN, &t->stamp_off, 1) != 1)
			goto out;
		t->has_stamp = 1;
	}
	t->buf = a;
	a = NULL;
	t->len = la;
	t->nkeys = nkeys;
	t->key_size = key_size;
	rv = 0;
out:
	free(a);
	free(b);
	free(c);
	return rv;
}

void bench_tmpl_free(struct bench_tmpl *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

void bench_key_format(uint8_t *dst, size_t key_size, const char *prefix, uint64_t k)
{
	size_t p = strlen(prefix);
	if (p > key_size)
		p = key_size;
	memcpy(dst, prefix, p);
	for (size_t i = key_size; i > p; i--) {
		dst[i - 1] = (uint8_t)('0' + k % 10);
		k /= 10;
	}
}

grpc_slice bench_tmpl_render(const struct bench_tmpl *t, const char *prefix,
			     const uint64_t *knum, uint64_t stamp)
{
	grpc_slice s = grpc_slice_malloc(t->len);
	uint8_t *p = GRPC_SLICE_START_PTR(s);
	memcpy(p, t->buf, t->len);
	for (int i = 0; i < t->nkeys; i++)
		bench_key_format(p + t->key_off[i], t->key_size, prefix, knum[i]);
	if (t->has_stamp)
		memcpy(p + t->stamp_off, &stamp, BENCH_STAMP_LEN);
	return s;
}

void bench_fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(bench_rand(&s) >> 56);
}
