/*
 * storage/mvcc_lease.c — which keys are attached to a lease.
 *
 * lease_keys is keyed by BE64(lease) + user key, so the keys of one lease are
 * one contiguous prefix scan; the lessor revokes a lease by deleting them.
 */
#include <string.h>

#include "storage/codec_internal.h"
#include "storage/mvcc_internal.h"

int mvcc_lease_keys(struct mvcc *m, struct db_session *s, int64_t lease, struct mvcc_kvlist *keys)
{
	(void)m;
	WT_CURSOR *c = db_cursor(s, DB_TBL_LEASE_KEYS);
	uint8_t prefix[8];
	be64_put(prefix, (uint64_t)lease);
	int own, rv;
	if ((rv = db_read_begin(s, &own)) != DB_OK)
		return rv;
	for (rv = mvcc_seek_ge(c, prefix, sizeof(prefix)); rv == 0; rv = c->next(c)) {
		WT_ITEM k;
		if ((rv = c->get_key(c, &k)) != 0)
			break;
		if (k.size < 8 || memcmp(k.data, prefix, 8) != 0)
			break;
		struct mvcc_kv kv = {.key = (const uint8_t *)k.data + 8, .key_len = k.size - 8};
		if ((rv = mvcc_kvlist_push_flags(keys, &kv, 1)) != DB_OK)
			goto out;
	}
	rv = (rv == WT_NOTFOUND) ? DB_OK : db_wt_error(rv);
out:
	c->reset(c);
	db_read_end(s, own);
	return rv;
}
