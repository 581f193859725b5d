/*
 * storage/mvcc_hash.c — HashKV: a checksum of the history, to compare replicas.
 *
 * Scheme: CRC-32C (Castagnoli, reflected, init/final xor 0xFFFFFFFF) over the
 * `kv` table entries with compact_rev < main <= rev, in (main, sub) order;
 * each entry contributes its 16-byte big-endian (main, sub) key followed by
 * its stored value bytes (flags, create, version, lease, chain link, key,
 * value; see mvcc_internal.h). Entries at or below compact_rev are excluded so the hash
 * does not change when compaction physically removes them. Replicas running
 * the same code and history hash equal.
 */
#include "storage/mvcc_internal.h"

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

/* Continue a CRC-32C over bytes; crc is the running, non-inverted value. */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
	return crc;
}

int mvcc_hash(struct mvcc *m, struct db_session *s, int64_t rev, uint32_t *hash,
	      int64_t *compact_rev)
{
	pthread_once(&crc_once, crc_init);
	int own, rv;
	int64_t cur, crev;
	if ((rv = db_read_begin(s, &own)) != DB_OK)
		return rv;
	if (own) {
		uint64_t ci;
		rv = mvcc_meta_load(s, &cur, &crev, &ci);
	} else {
		struct mvcc_txn_state *st;
		if ((rv = mvcc_txn_state(m, s, &st)) == DB_OK) {
			cur = st->rev;
			crev = st->compact_rev;
		}
	}
	if (rv != DB_OK)
		goto out;
	if (rev <= 0)
		rev = cur;
	if (rev > cur) {
		rv = DB_FUTURE_REV;
		goto out;
	}
	if (rev < crev) {
		rv = DB_COMPACTED;
		goto out;
	}
	WT_CURSOR *c = db_cursor(s, DB_TBL_KV);
	uint8_t start[MVCC_REV_BYTES];
	uint32_t crc = 0xFFFFFFFFu;
	mvcc_rev_key(crev + 1, 0, start);
	for (rv = mvcc_seek_ge(c, start, sizeof(start)); rv == 0; rv = c->next(c)) {
		WT_ITEM k, v;
		if ((rv = c->get_key(c, &k)) != 0 || (rv = c->get_value(c, &v)) != 0)
			break;
		if (k.size != MVCC_REV_BYTES) {
			rv = DB_CORRUPT;
			goto out_reset;
		}
		uint8_t lim[MVCC_REV_BYTES];
		mvcc_rev_key(rev + 1, 0, lim);
		if (mvcc_key_cmp(k.data, k.size, lim, sizeof(lim)) >= 0)
			break;
		crc = crc_update(crc, k.data, k.size);
		crc = crc_update(crc, v.data, v.size);
	}
	rv = (rv == WT_NOTFOUND || rv == 0) ? DB_OK : db_wt_error(rv);
	*hash = crc ^ 0xFFFFFFFFu;
	*compact_rev = crev;
out_reset:
	c->reset(c);
out:
	db_read_end(s, own);
	return rv;
}
