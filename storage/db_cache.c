/*
 * storage/db_cache.c — the cache's size while whole-store scans run.
 */
#include <stdio.h>

#include "storage/db_internal.h"

static int resize(struct db *db, uint64_t mb)
{
	char cfg[64];
	snprintf(cfg, sizeof(cfg), "cache_size=%lluM", (unsigned long long)mb);
	return db->conn->reconfigure(db->conn, cfg);
}

int db_cache_boost(struct db *db, uint64_t extra_mb)
{
	int rv = 0;
	pthread_mutex_lock(&db->cache_mu);
	if (extra_mb > db->boost_mb) {
		rv = resize(db, db->cache_mb + extra_mb);
		if (rv == 0)
			db->boost_mb = extra_mb;
	}
	if (rv == 0)
		db->boost_users++;
	pthread_mutex_unlock(&db->cache_mu);
	return rv == 0 ? DB_OK : DB_IO;
}

void db_cache_boost_end(struct db *db)
{
	pthread_mutex_lock(&db->cache_mu);
	if (db->boost_users > 0 && --db->boost_users == 0 && db->boost_mb > 0) {
		/* WiredTiger evicts down to the smaller size on its own threads */
		if (resize(db, db->cache_mb) == 0)
			db->boost_mb = 0;
	}
	pthread_mutex_unlock(&db->cache_mu);
}
