/*
 * storage/mvcc_key.c — order-preserving encodings of the mvcc tables.
 *
 * The layouts are described in mvcc_internal.h. The one property everything
 * rests on: WiredTiger compares 'u' keys bytewise (shorter prefix first), so
 * an index key must sort by user key first and revision second. Escaping the
 * zero byte and ending with 00 01 gives that even when one user key is a
 * prefix of another or contains 00/FF bytes (tested in test_mvcc_key.c).
 */
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_internal.h"

size_t mvcc_escape_prefix(const uint8_t *key, size_t key_len, uint8_t *out)
{
	uint8_t *p = out;
	for (size_t i = 0; i < key_len; i++) {
		*p++ = key[i];
		if (key[i] == 0x00)
			*p++ = 0xFF;
	}
	return (size_t)(p - out);
}

size_t mvcc_escape_key(const uint8_t *key, size_t key_len, uint8_t *out)
{
	size_t n = mvcc_escape_prefix(key, key_len, out);
	out[n++] = MVCC_TERM0;
	out[n++] = MVCC_TERM1;
	return n;
}

void mvcc_rev_key(int64_t main, int64_t sub, uint8_t out[MVCC_REV_BYTES])
{
	be64_put(out, (uint64_t)main);
	be64_put(out + 8, (uint64_t)sub);
}

size_t mvcc_index_key(const uint8_t *key, size_t key_len, int64_t main, int64_t sub,
		      uint8_t *out)
{
	size_t n = mvcc_escape_key(key, key_len, out);
	mvcc_rev_key(main, sub, out + n);
	return n + MVCC_REV_BYTES;
}

int mvcc_index_key_decode(const uint8_t *ik, size_t ik_len, uint8_t *out, size_t *key_len,
			  size_t *group_len, int64_t *main, int64_t *sub)
{
	if (ik_len < 2 + MVCC_REV_BYTES)
		return DB_CORRUPT;
	size_t body = ik_len - MVCC_REV_BYTES;
	size_t n = 0;
	for (size_t i = 0; i < body; i++) {
		if (ik[i] != 0x00) {
			out[n++] = ik[i];
			continue;
		}
		if (i + 1 >= body)
			return DB_CORRUPT;
		if (ik[i + 1] == 0xFF) {
			out[n++] = 0x00;
			i++;
			continue;
		}
		/* The terminator must be the last thing before the revisions. */
		if (ik[i + 1] != MVCC_TERM1 || i + 2 != body)
			return DB_CORRUPT;
		*key_len = n;
		*group_len = body;
		*main = (int64_t)be64_get(ik + body);
		*sub = (int64_t)be64_get(ik + body + 8);
		return DB_OK;
	}
	return DB_CORRUPT;
}

size_t mvcc_kv_val_max(size_t key_len, size_t value_len)
{
	return 1 + 4 * VARINT_MAX + key_len + value_len;
}

size_t mvcc_kv_val_encode(const struct mvcc_kv *kv, int tombstone, uint8_t *out)
{
	uint8_t *p = out;
	*p++ = tombstone ? 1 : 0;
	p = varint_put(p, (uint64_t)kv->create_revision);
	p = varint_put(p, (uint64_t)kv->version);
	p = varint_put(p, (uint64_t)kv->lease);
	p = varint_put(p, kv->key_len);
	memcpy(p, kv->key, kv->key_len);
	p += kv->key_len;
	if (kv->value_len)
		memcpy(p, kv->value, kv->value_len);
	p += kv->value_len;
	return (size_t)(p - out);
}

int mvcc_kv_val_decode(const uint8_t *val, size_t len, struct mvcc_kv *kv, int *tombstone)
{
	const uint8_t *p = val, *end = val + len;
	uint64_t create, version, lease, klen;
	if (len < 1 || val[0] > 1)
		return DB_CORRUPT;
	*tombstone = *p++;
	if ((p = varint_get(p, end, &create)) == NULL || (p = varint_get(p, end, &version)) == NULL ||
	    (p = varint_get(p, end, &lease)) == NULL || (p = varint_get(p, end, &klen)) == NULL)
		return DB_CORRUPT;
	if (klen > (uint64_t)(end - p))
		return DB_CORRUPT;
	kv->create_revision = (int64_t)create;
	kv->version = (int64_t)version;
	kv->lease = (int64_t)lease;
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
