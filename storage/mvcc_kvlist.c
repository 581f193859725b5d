/*
 * storage/mvcc_kvlist.c — result lists of key-values that own their bytes.
 *
 * Range results can hold many thousands of keys; one malloc per key would
 * dominate a scan. Key and value bytes are therefore copied into an arena of
 * chunks (64 KiB, or one chunk per oversized entry), and the kv array grows by
 * doubling. Chunks never move, so pointers handed out stay valid until free.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/mvcc_internal.h"

#define CHUNK_SIZE (64 * 1024)

struct chunk {
	struct chunk *next; /* older chunk */
	size_t used;
	size_t cap;
	uint8_t data[];
};

void mvcc_kvlist_init(struct mvcc_kvlist *l)
{
	memset(l, 0, sizeof(*l));
}

void mvcc_kvlist_free(struct mvcc_kvlist *l)
{
	struct chunk *c = l->arena;
	while (c != NULL) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(l->kvs);
	mvcc_kvlist_init(l);
}

/* n bytes of arena space, or NULL. */
static uint8_t *arena_alloc(struct mvcc_kvlist *l, size_t n)
{
	struct chunk *c = l->arena;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > CHUNK_SIZE / 4 ? n : CHUNK_SIZE;
		struct chunk *nc = malloc(sizeof(*nc) + cap);
		if (nc == NULL)
			return NULL;
		nc->used = 0;
		nc->cap = cap;
		if (c != NULL && cap != CHUNK_SIZE) {
			/* An oversized entry: keep the partly used chunk current. */
			nc->next = c->next;
			c->next = nc;
			nc->used = n;
			return nc->data;
		}
		nc->next = c;
		l->arena = nc;
		c = nc;
	}
	uint8_t *p = c->data + c->used;
	c->used += n;
	return p;
}

int mvcc_kvlist_push_flags(struct mvcc_kvlist *l, const struct mvcc_kv *kv, int keys_only)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct mvcc_kv *kvs = realloc(l->kvs, cap * sizeof(*kvs));
		if (kvs == NULL)
			return DB_NOMEM;
		l->kvs = kvs;
		l->cap = cap;
	}
	size_t vlen = keys_only ? 0 : kv->value_len;
	uint8_t *p = NULL;
	if (kv->key_len + vlen > 0) {
		p = arena_alloc(l, kv->key_len + vlen);
		if (p == NULL)
			return DB_NOMEM;
	}
	struct mvcc_kv *d = &l->kvs[l->n];
	*d = *kv;
	d->key = p;
	if (kv->key_len)
		memcpy(p, kv->key, kv->key_len);
	d->value = p ? p + kv->key_len : NULL;
	d->value_len = vlen;
	if (vlen)
		memcpy(p + kv->key_len, kv->value, vlen);
	l->n++;
	return DB_OK;
}

int mvcc_kvlist_push(struct mvcc_kvlist *l, const struct mvcc_kv *kv)
{
	return mvcc_kvlist_push_flags(l, kv, 0);
}
