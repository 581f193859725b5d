/*
 * storage/lease.c — the `lease` table: BE64(id) -> varint TTL.
 *
 * Big-endian ids keep the table in id order, so LeaseLeases and start-up
 * recovery are one scan.
 */
#include "storage/codec_internal.h"
#include "storage/db_internal.h"
#include "storage/lease.h"

int lease_store_put(struct db_session *s, int64_t id, int64_t ttl)
{
	if (!s->in_txn)
		return DB_INVALID;
	uint8_t k[8], v[VARINT_MAX];
	be64_put(k, (uint64_t)id);
	size_t vlen = (size_t)(varint_put(v, (uint64_t)ttl) - v);
	WT_CURSOR *c = db_cursor(s, DB_TBL_LEASE);
	WT_ITEM key = {.data = k, .size = sizeof(k)}, val = {.data = v, .size = vlen};
	c->set_key(c, &key);
	c->set_value(c, &val);
	int rv = c->insert(c);
	c->reset(c);
	return db_wt_error(rv);
}

int lease_store_delete(struct db_session *s, int64_t id)
{
	if (!s->in_txn)
		return DB_INVALID;
	uint8_t k[8];
	be64_put(k, (uint64_t)id);
	WT_CURSOR *c = db_cursor(s, DB_TBL_LEASE);
	WT_ITEM key = {.data = k, .size = sizeof(k)};
	c->set_key(c, &key);
	int rv = c->remove(c); /* overwrite cursor: absent is fine */
	c->reset(c);
	return db_wt_error(rv);
}

int lease_store_load(struct db_session *s, lease_store_fn fn, void *arg)
{
	int own, rv;
	if ((rv = db_read_begin(s, &own)) != DB_OK)
		return rv;
	WT_CURSOR *c = db_cursor(s, DB_TBL_LEASE);
	while ((rv = c->next(c)) == 0) {
		WT_ITEM k, v;
		if ((rv = c->get_key(c, &k)) != 0 || (rv = c->get_value(c, &v)) != 0)
			break;
		uint64_t ttl;
		const uint8_t *vp = v.data;
		if (k.size != 8 || varint_get(vp, vp + v.size, &ttl) == NULL) {
			rv = DB_CORRUPT;
			goto out;
		}
		int stop = fn(arg, (int64_t)be64_get(k.data), (int64_t)ttl);
		if (stop) {
			rv = stop;
			goto out;
		}
	}
	rv = rv == WT_NOTFOUND ? DB_OK : db_wt_error(rv);
out:
	db_read_end(s, own);
	return rv;
}
