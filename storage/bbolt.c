/*
 * storage/bbolt.c — a streaming writer of bbolt files (see bbolt.h).
 *
 * Page header: id u64, flags u16, count u16, overflow u32 (16 bytes, little
 * endian as bbolt writes on amd64). Leaf element: flags u32, pos u32, ksize
 * u32, vsize u32; branch element: pos u32, ksize u32, pgid u64; pos counts
 * from the element itself to its key, key then value follow the elements.
 * A bucket's value in its parent is {root pgid u64, sequence u64} with the
 * leaf flag 1. The meta page holds magic, version 2, page size, flags, the
 * root bucket, freelist page, high-water page id, txid and an FNV-1a 64
 * checksum of the fields before it.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/bbolt.h"
#include "storage/db.h"

#define PAGE BBOLT_PAGE_SIZE
#define HDR 16
#define ELEM 16
#define FLAG_BRANCH 0x01
#define FLAG_LEAF 0x02
#define FLAG_META 0x04
#define FLAG_FREELIST 0x10
#define MAX_BUCKETS 64
#define MAX_PER_PAGE 0xFFFF

struct elem {
	const uint8_t *key;
	size_t key_len;
	const uint8_t *val; /* leaf: value; branch: NULL */
	size_t val_len;
	uint64_t pgid;      /* branch: child page */
	uint32_t flags;     /* leaf: 1 for a bucket */
};

struct ref { /* a written page and its first key, for the level above */
	uint8_t *key;
	size_t key_len;
	uint64_t pgid;
};

struct refs {
	struct ref *v;
	size_t n, cap;
};

struct bucket {
	char *name;
	uint64_t root;
};

struct bbolt_writer {
	int fd;             /* file mode; -1 in sink mode */
	bbolt_emit_fn emit; /* sink mode; NULL there: layout only */
	void *emit_arg;
	bool layout_only;
	uint8_t head[BBOLT_HEAD_BYTES]; /* pages 0-2, once finished */
	uint64_t next_pgid;
	/* the leaf being filled: its elements point into kv */
	uint8_t *kv;
	size_t kv_len, kv_cap;
	struct elem *el;
	size_t n, cap;
	size_t bytes; /* HDR + elements + keys + values so far */
	uint8_t *last;
	size_t last_len;
	bool have_last;
	struct refs leaves;
	struct bucket buckets[MAX_BUCKETS];
	size_t n_buckets;
	bool in_bucket;
	uint8_t *page;
	size_t page_cap;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int write_at(struct bbolt_writer *w, uint64_t pgid, const uint8_t *buf, size_t len)
{
	if (w->fd < 0) {
		if (pgid < 3) { /* the head: kept for the caller */
			memcpy(w->head + pgid * PAGE, buf, len);
			return DB_OK;
		}
		return w->emit ? w->emit(w->emit_arg, buf, len) : DB_OK;
	}
	off_t off = (off_t)(pgid * PAGE);
	while (len > 0) {
		ssize_t r = pwrite(w->fd, buf, len, off);
		if (r <= 0)
			return DB_IO;
		buf += r;
		len -= (size_t)r;
		off += r;
	}
	return DB_OK;
}

/* Write elements e[0..n) as one leaf or branch page (with overflow pages
 * when they do not fit one); *pgid gets its id. */
static int write_page(struct bbolt_writer *w, uint16_t flags, const struct elem *e, size_t n,
		      uint64_t *pgid)
{
	size_t size = HDR + n * ELEM;
	for (size_t i = 0; i < n; i++)
		size += e[i].key_len + (flags == FLAG_LEAF ? e[i].val_len : 0);
	size_t pages = (size + PAGE - 1) / PAGE;
	if (pages == 0)
		pages = 1;
	if (w->layout_only) { /* where it goes is all a dry run needs */
		*pgid = w->next_pgid;
		w->next_pgid += pages;
		return DB_OK;
	}
	if (pages * PAGE > w->page_cap) {
		uint8_t *np = realloc(w->page, pages * PAGE);
		if (np == NULL)
			return DB_NOMEM;
		w->page = np;
		w->page_cap = pages * PAGE;
	}
	uint8_t *p = w->page;
	memset(p, 0, pages * PAGE);
	*pgid = w->next_pgid;
	w->next_pgid += pages;
	put64(p, *pgid);
	put16(p + 8, flags);
	put16(p + 10, (uint16_t)n);
	put32(p + 12, (uint32_t)(pages - 1));
	size_t data = HDR + n * ELEM;
	for (size_t i = 0; i < n; i++) {
		uint8_t *el = p + HDR + i * ELEM;
		uint32_t pos = (uint32_t)(data - (HDR + i * ELEM));
		if (flags == FLAG_LEAF) {
			put32(el, e[i].flags);
			put32(el + 4, pos);
			put32(el + 8, (uint32_t)e[i].key_len);
			put32(el + 12, (uint32_t)e[i].val_len);
		} else {
			put32(el, pos);
			put32(el + 4, (uint32_t)e[i].key_len);
			put64(el + 8, e[i].pgid);
		}
		memcpy(p + data, e[i].key, e[i].key_len);
		data += e[i].key_len;
		if (flags == FLAG_LEAF && e[i].val_len > 0) {
			memcpy(p + data, e[i].val, e[i].val_len);
			data += e[i].val_len;
		}
	}
	return write_at(w, *pgid, p, pages * PAGE);
}

static int refs_push(struct refs *r, const uint8_t *key, size_t len, uint64_t pgid)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct ref *nv = realloc(r->v, cap * sizeof(*nv));
		if (nv == NULL)
			return DB_NOMEM;
		r->v = nv;
		r->cap = cap;
	}
	uint8_t *k = malloc(len ? len : 1);
	if (k == NULL)
		return DB_NOMEM;
	memcpy(k, key, len);
	r->v[r->n++] = (struct ref){k, len, pgid};
	return DB_OK;
}

static void refs_clear(struct refs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].key);
	r->n = 0;
}

int bbolt_writer_open(int fd, struct bbolt_writer **out)
{
	struct bbolt_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return DB_NOMEM;
	w->fd = fd;
	w->next_pgid = 3; /* 0, 1: meta; 2: freelist */
	*out = w;
	return DB_OK;
}

int bbolt_writer_open_sink(bbolt_emit_fn emit, void *arg, struct bbolt_writer **out)
{
	int rv = bbolt_writer_open(-1, out);
	if (rv == DB_OK) {
		(*out)->emit = emit;
		(*out)->emit_arg = arg;
		(*out)->layout_only = emit == NULL;
	}
	return rv;
}

const uint8_t *bbolt_writer_head(const struct bbolt_writer *w)
{
	return w->head;
}

int bbolt_bucket_begin(struct bbolt_writer *w, const char *name)
{
	if (w->in_bucket || w->n_buckets == MAX_BUCKETS)
		return DB_INVALID;
	w->buckets[w->n_buckets].name = strdup(name);
	if (w->buckets[w->n_buckets].name == NULL)
		return DB_NOMEM;
	w->in_bucket = true;
	w->n = 0;
	w->kv_len = 0;
	w->bytes = HDR;
	w->have_last = false;
	refs_clear(&w->leaves);
	return DB_OK;
}

static int flush_leaf(struct bbolt_writer *w)
{
	uint64_t pgid;
	int rv = write_page(w, FLAG_LEAF, w->el, w->n, &pgid);
	if (rv == DB_OK)
		rv = refs_push(&w->leaves, w->n ? w->el[0].key : (const uint8_t *)"", w->n ? w->el[0].key_len : 0,
			       pgid);
	w->n = 0;
	w->kv_len = 0;
	w->bytes = HDR;
	return rv;
}

int bbolt_put(struct bbolt_writer *w, const uint8_t *key, size_t key_len, const uint8_t *val,
	      size_t val_len)
{
	if (!w->in_bucket || key_len == 0)
		return DB_INVALID;
	if (w->have_last) {
		size_t m = key_len < w->last_len ? key_len : w->last_len;
		int c = memcmp(key, w->last, m);
		if (c < 0 || (c == 0 && key_len <= w->last_len))
			return DB_INVALID;
	}
	size_t need = ELEM + key_len + val_len;
	if (w->n > 0 && (w->bytes + need > PAGE || w->n == MAX_PER_PAGE)) {
		int rv = flush_leaf(w);
		if (rv != DB_OK)
			return rv;
	}
	if (w->kv_len + key_len + val_len > w->kv_cap) {
		size_t cap = (w->kv_len + key_len + val_len) * 2 + PAGE;
		uint8_t *nk = realloc(w->kv, cap);
		if (nk == NULL)
			return DB_NOMEM;
		/* re-point the elements into the moved buffer */
		for (size_t i = 0; i < w->n; i++) {
			w->el[i].key = nk + (w->el[i].key - w->kv);
			w->el[i].val = nk + (w->el[i].val - w->kv);
		}
		w->kv = nk;
		w->kv_cap = cap;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct elem *ne = realloc(w->el, cap * sizeof(*ne));
		if (ne == NULL)
			return DB_NOMEM;
		w->el = ne;
		w->cap = cap;
	}
	uint8_t *k = w->kv + w->kv_len;
	memcpy(k, key, key_len);
	if (val_len && !w->layout_only)
		memcpy(k + key_len, val, val_len);
	w->kv_len += key_len + val_len;
	w->el[w->n++] = (struct elem){k, key_len, k + key_len, val_len, 0, 0};
	w->bytes += need;
	w->last = k;
	w->last_len = key_len;
	w->have_last = true;
	return DB_OK;
}

int bbolt_leaf_break(struct bbolt_writer *w)
{
	if (!w->in_bucket)
		return DB_INVALID;
	return w->n > 0 ? flush_leaf(w) : DB_OK;
}

int bbolt_bucket_append(struct bbolt_writer *w, struct bbolt_writer *part)
{
	if (!w->in_bucket || !part->in_bucket || !w->layout_only || !part->layout_only || w->fd >= 0 ||
	    part->fd >= 0)
		return DB_INVALID;
	if (part->n == 0 && part->leaves.n == 0)
		return DB_OK; /* nothing: no break either */
	int rv = bbolt_leaf_break(w);
	if (rv == DB_OK)
		rv = bbolt_leaf_break(part);
	if (rv == DB_OK && w->have_last && part->leaves.n > 0) { /* keys go on ascending */
		const struct ref *f = &part->leaves.v[0];
		size_t m = f->key_len < w->last_len ? f->key_len : w->last_len;
		int c = memcmp(f->key, w->last, m);
		if (c < 0 || (c == 0 && f->key_len <= w->last_len))
			rv = DB_INVALID;
	}
	/* part's pages were numbered from 3, as any writer's */
	uint64_t base = w->next_pgid - 3;
	for (size_t i = 0; i < part->leaves.n && rv == DB_OK; i++)
		rv = refs_push(&w->leaves, part->leaves.v[i].key, part->leaves.v[i].key_len,
			       part->leaves.v[i].pgid + base);
	if (rv != DB_OK)
		return rv;
	w->next_pgid += part->next_pgid - 3;
	/* part's last key is the one to go on from; w's buffer is empty now */
	if (part->last_len > w->kv_cap) {
		uint8_t *nk = realloc(w->kv, part->last_len + PAGE);
		if (nk == NULL)
			return DB_NOMEM;
		w->kv = nk;
		w->kv_cap = part->last_len + PAGE;
	}
	memcpy(w->kv, part->last, part->last_len);
	w->last = w->kv;
	w->last_len = part->last_len;
	w->have_last = true;
	return DB_OK;
}

/* Build branch levels over refs until one page remains; its id is the root. */
static int build_branches(struct bbolt_writer *w, struct refs *level, uint64_t *root)
{
	struct refs up = {0};
	int rv = DB_OK;
	struct elem *e = NULL;
	while (level->n > 1 && rv == DB_OK) {
		e = realloc(e, level->n * sizeof(*e));
		if (e == NULL)
			return DB_NOMEM;
		size_t start = 0, bytes = HDR;
		for (size_t i = 0; i <= level->n && rv == DB_OK; i++) {
			size_t need = i < level->n ? ELEM + level->v[i].key_len : 0;
			if (i == level->n || (i > start && (bytes + need > PAGE || i - start == MAX_PER_PAGE))) {
				for (size_t j = start; j < i; j++)
					e[j] = (struct elem){level->v[j].key, level->v[j].key_len, NULL, 0,
							     level->v[j].pgid, 0};
				uint64_t pgid;
				rv = write_page(w, FLAG_BRANCH, e + start, i - start, &pgid);
				if (rv == DB_OK)
					rv = refs_push(&up, level->v[start].key, level->v[start].key_len, pgid);
				start = i;
				bytes = HDR;
			}
			bytes += need;
		}
		refs_clear(level);
		struct refs t = *level;
		*level = up;
		up = t;
	}
	free(e);
	if (rv == DB_OK)
		*root = level->v[0].pgid;
	refs_clear(&up);
	free(up.v);
	return rv;
}

int bbolt_bucket_end(struct bbolt_writer *w)
{
	if (!w->in_bucket)
		return DB_INVALID;
	int rv = DB_OK;
	if (w->n > 0 || w->leaves.n == 0)
		rv = flush_leaf(w);
	uint64_t root = 0;
	if (rv == DB_OK)
		rv = build_branches(w, &w->leaves, &root);
	refs_clear(&w->leaves);
	w->buckets[w->n_buckets++].root = root;
	w->in_bucket = false;
	return rv;
}

static int name_cmp(const void *a, const void *b)
{
	const struct bucket *x = a, *y = b;
	return strcmp(x->name, y->name);
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

int bbolt_writer_finish(struct bbolt_writer *w, uint64_t *size)
{
	if (w->in_bucket)
		return DB_INVALID;
	qsort(w->buckets, w->n_buckets, sizeof(w->buckets[0]), name_cmp);
	struct elem e[MAX_BUCKETS];
	uint8_t vals[MAX_BUCKETS][16];
	for (size_t i = 0; i < w->n_buckets; i++) {
		put64(vals[i], w->buckets[i].root);
		put64(vals[i] + 8, 0); /* sequence */
		e[i] = (struct elem){(const uint8_t *)w->buckets[i].name, strlen(w->buckets[i].name),
				     vals[i], 16, 0, 1};
	}
	uint64_t root;
	bool dry = w->layout_only; /* the root page is small: build it anyway */
	w->layout_only = false;
	int rv = write_page(w, FLAG_LEAF, e, w->n_buckets, &root);
	w->layout_only = dry;
	if (rv != DB_OK)
		return rv;
	uint8_t p[PAGE];
	memset(p, 0, sizeof(p));
	put64(p, 2);
	put16(p + 8, FLAG_FREELIST);
	if ((rv = write_at(w, 2, p, PAGE)) != DB_OK)
		return rv;
	for (uint64_t id = 0; id < 2; id++) {
		memset(p, 0, sizeof(p));
		put64(p, id);
		put16(p + 8, FLAG_META);
		uint8_t *m = p + HDR;
		put32(m, 0xED0CDAED); /* magic */
		put32(m + 4, 2);      /* version */
		put32(m + 8, PAGE);
		put32(m + 12, 0);     /* flags */
		put64(m + 16, root);  /* root bucket: root page, sequence 0 */
		put64(m + 24, 0);
		put64(m + 32, 2);     /* freelist page */
		put64(m + 40, w->next_pgid);
		put64(m + 48, id);    /* txid */
		put64(m + 56, fnv64a(m, 56));
		if ((rv = write_at(w, id, p, PAGE)) != DB_OK)
			return rv;
	}
	if (w->fd >= 0 && ftruncate(w->fd, (off_t)(w->next_pgid * PAGE)) != 0)
		return DB_IO;
	*size = w->next_pgid * PAGE;
	return DB_OK;
}

void bbolt_writer_free(struct bbolt_writer *w)
{
	if (w == NULL)
		return;
	refs_clear(&w->leaves);
	free(w->leaves.v);
	for (size_t i = 0; i < w->n_buckets; i++)
		free(w->buckets[i].name);
	if (w->in_bucket)
		free(w->buckets[w->n_buckets].name);
	free(w->kv);
	free(w->el);
	free(w->page);
	free(w);
}
