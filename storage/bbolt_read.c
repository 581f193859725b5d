/*
 * storage/bbolt_read.c — reading a bbolt file (an etcd backend or snapshot)
 * so metad can import it. The file is mapped read-only; every page id,
 * element offset and length is checked against the mapping before use, so
 * a damaged file gives DB_CORRUPT, never a bad read.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/bbolt.h"
#include "storage/db.h"

#define HDR 16
#define ELEM 16
#define MAX_DEPTH 64

struct bbolt_reader {
	const uint8_t *map;
	size_t len;
	uint32_t page;
	uint64_t root;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t fnv64a(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* Meta at the start of page data m: valid magic, version, checksum. */
static bool meta_ok(const uint8_t *m)
{
	return get32(m) == 0xED0CDAED && get32(m + 4) == 2 && get64(m + 56) == fnv64a(m, 56) &&
	       get32(m + 8) >= 512 && get32(m + 8) <= (1u << 20);
}

int bbolt_reader_open(const char *path, size_t limit, struct bbolt_reader **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return DB_IO;
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < 2 * HDR + 64) {
		close(fd);
		return DB_CORRUPT;
	}
	size_t len = (size_t)st.st_size;
	if (limit > 0 && limit < len)
		len = limit;
	void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return DB_IO;
	const uint8_t *m0 = (const uint8_t *)map + HDR;
	bool ok0 = meta_ok(m0);
	uint32_t psz = ok0 ? get32(m0 + 8) : 4096;
	const uint8_t *m1 = (size_t)psz + HDR + 64 <= len ? (const uint8_t *)map + psz + HDR : NULL;
	bool ok1 = m1 != NULL && meta_ok(m1) && get32(m1 + 8) == psz;
	const uint8_t *m = NULL;
	if (ok0 && ok1)
		m = get64(m1 + 48) > get64(m0 + 48) ? m1 : m0;
	else
		m = ok0 ? m0 : ok1 ? m1 : NULL;
	struct bbolt_reader *r = m ? calloc(1, sizeof(*r)) : NULL;
	if (r == NULL) {
		munmap(map, len);
		return m ? DB_NOMEM : DB_CORRUPT;
	}
	r->map = map;
	r->len = len;
	r->page = get32(m + 8);
	r->root = get64(m + 16);
	*out = r;
	return DB_OK;
}

void bbolt_reader_close(struct bbolt_reader *r)
{
	if (r == NULL)
		return;
	munmap((void *)r->map, r->len);
	free(r);
}

/* The page run of pgid: its start and length, or NULL. */
static const uint8_t *page_at(const struct bbolt_reader *r, uint64_t pgid, size_t *span)
{
	if (pgid > r->len / r->page)
		return NULL;
	size_t off = (size_t)pgid * r->page;
	if (off + HDR > r->len)
		return NULL;
	const uint8_t *p = r->map + off;
	size_t n = ((size_t)get32(p + 12) + 1) * r->page;
	if (n > r->len - off)
		return NULL;
	*span = n;
	return p;
}

struct scan {
	const struct bbolt_reader *r;
	bbolt_read_fn fn;
	void *arg;
	const char *want; /* root scan: find this bucket */
	uint8_t bucket[16];
	const uint8_t *inline_page;
	size_t inline_len;
	bool found;
};

/* Visit the page p (span bytes) and its children in key order. */
static int visit(struct scan *sc, const uint8_t *p, size_t span, int depth)
{
	if (depth > MAX_DEPTH || span < HDR)
		return DB_CORRUPT;
	uint16_t flags = get16(p + 8), count = get16(p + 10);
	if ((size_t)HDR + (size_t)count * ELEM > span)
		return DB_CORRUPT;
	for (uint16_t i = 0; i < count; i++) {
		const uint8_t *e = p + HDR + (size_t)i * ELEM;
		size_t at = HDR + (size_t)i * ELEM;
		if (flags & 0x01) { /* branch */
			size_t child_span;
			const uint8_t *c = page_at(sc->r, get64(e + 8), &child_span);
			if (c == NULL)
				return DB_CORRUPT;
			int rv = visit(sc, c, child_span, depth + 1);
			if (rv != DB_OK)
				return rv;
		} else if (flags & 0x02) { /* leaf */
			uint32_t eflags = get32(e), pos = get32(e + 4), ks = get32(e + 8),
				 vs = get32(e + 12);
			if ((size_t)pos + ks + vs > span - at)
				return DB_CORRUPT;
			const uint8_t *k = e + pos, *v = k + ks;
			if (sc->want != NULL) {
				if ((eflags & 1) && ks == strlen(sc->want) &&
				    memcmp(k, sc->want, ks) == 0 && vs >= 16) {
					memcpy(sc->bucket, v, 16);
					sc->inline_page = v + 16;
					sc->inline_len = vs - 16;
					sc->found = true;
				}
				continue;
			}
			if (eflags & 1)
				continue; /* a nested bucket: etcd has none */
			int rv = sc->fn(sc->arg, k, ks, v, vs);
			if (rv != 0)
				return rv;
		} else {
			return DB_CORRUPT;
		}
	}
	return DB_OK;
}

int bbolt_bucket_scan(struct bbolt_reader *r, const char *bucket, bbolt_read_fn fn, void *arg)
{
	struct scan sc = {.r = r, .want = bucket};
	size_t span;
	const uint8_t *root = page_at(r, r->root, &span);
	if (root == NULL)
		return DB_CORRUPT;
	int rv = visit(&sc, root, span, 0);
	if (rv != DB_OK)
		return rv;
	if (!sc.found)
		return DB_NOTFOUND;
	sc.want = NULL;
	sc.fn = fn;
	sc.arg = arg;
	uint64_t broot = get64(sc.bucket);
	if (broot == 0) /* inline bucket: its page follows the header */
		return visit(&sc, sc.inline_page, sc.inline_len, 0);
	const uint8_t *p = page_at(r, broot, &span);
	return p ? visit(&sc, p, span, 0) : DB_CORRUPT;
}
