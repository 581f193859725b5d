/*
 * storage/mvcc_key.c — encodings of the mvcc tables (layouts in
 * mvcc_internal.h). WiredTiger compares 'u' keys bytewise, shorter prefix
 * first: raw user keys in `current` are then in etcd's order, and
 * big-endian (main, sub) keys in `kv` in revision order.
 */
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_internal.h"

void mvcc_rev_key(int64_t main, int64_t sub, uint8_t out[MVCC_REV_BYTES])
{
	be64_put(out, (uint64_t)main);
	be64_put(out + 8, (uint64_t)sub);
}

size_t mvcc_kv_val_max(size_t key_len, size_t value_len)
{
	return 1 + 6 * VARINT_MAX + key_len + value_len;
}

size_t mvcc_kv_val_encode(const struct mvcc_kv *kv, int tombstone, struct mvcc_revpair prev,
			  uint8_t *out)
{
	uint8_t *p = out;
	*p++ = tombstone ? 1 : 0;
	p = varint_put(p, (uint64_t)kv->create_revision);
	p = varint_put(p, (uint64_t)kv->version);
	p = varint_put(p, (uint64_t)kv->lease);
	p = varint_put(p, (uint64_t)prev.main);
	p = varint_put(p, (uint64_t)prev.sub);
	p = varint_put(p, kv->key_len);
	memcpy(p, kv->key, kv->key_len);
	p += kv->key_len;
	if (kv->value_len)
		memcpy(p, kv->value, kv->value_len);
	p += kv->value_len;
	return (size_t)(p - out);
}

int mvcc_kv_val_decode(const uint8_t *val, size_t len, struct mvcc_kv *kv, int *tombstone,
		       struct mvcc_revpair *prev)
{
	const uint8_t *p = val, *end = val + len;
	uint64_t create, version, lease, pmain, psub, klen;
	if (len < 1 || val[0] > 1)
		return DB_CORRUPT;
	*tombstone = *p++;
	if ((p = varint_get(p, end, &create)) == NULL || (p = varint_get(p, end, &version)) == NULL ||
	    (p = varint_get(p, end, &lease)) == NULL || (p = varint_get(p, end, &pmain)) == NULL ||
	    (p = varint_get(p, end, &psub)) == NULL || (p = varint_get(p, end, &klen)) == NULL)
		return DB_CORRUPT;
	if (klen > (uint64_t)(end - p))
		return DB_CORRUPT;
	kv->create_revision = (int64_t)create;
	kv->version = (int64_t)version;
	kv->lease = (int64_t)lease;
	if (prev != NULL) {
		prev->main = (int64_t)pmain;
		prev->sub = (int64_t)psub;
	}
	kv->key = p;
	kv->key_len = klen;
	p += klen;
	kv->value = p;
	kv->value_len = (size_t)(end - p);
	return DB_OK;
}

size_t mvcc_cur_val_encode(const struct mvcc_kv *kv, int64_t sub, uint8_t *out)
{
	uint8_t *p = out;
	p = varint_put(p, (uint64_t)kv->create_revision);
	p = varint_put(p, (uint64_t)kv->mod_revision);
	p = varint_put(p, (uint64_t)sub);
	p = varint_put(p, (uint64_t)kv->version);
	p = varint_put(p, (uint64_t)kv->lease);
	return (size_t)(p - out);
}

int mvcc_cur_val_decode(const uint8_t *val, size_t len, struct mvcc_kv *kv, int64_t *sub)
{
	const uint8_t *p = val, *end = val + len;
	uint64_t create, mod, s, version, lease;
	if ((p = varint_get(p, end, &create)) == NULL || (p = varint_get(p, end, &mod)) == NULL ||
	    (p = varint_get(p, end, &s)) == NULL || (p = varint_get(p, end, &version)) == NULL ||
	    (p = varint_get(p, end, &lease)) == NULL || p != end)
		return DB_CORRUPT;
	kv->create_revision = (int64_t)create;
	kv->mod_revision = (int64_t)mod;
	kv->version = (int64_t)version;
	kv->lease = (int64_t)lease;
	kv->value = NULL;
	kv->value_len = 0;
	*sub = (int64_t)s;
	return DB_OK;
}

int mvcc_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;
	if (c != 0)
		return c;
	return alen < blen ? -1 : (alen > blen ? 1 : 0);
}
