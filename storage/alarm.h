/*
 * storage/alarm.h — the member alarms (etcd's NOSPACE, CORRUPT) kept in the
 * meta table, so they survive a restart and travel with any copy of meta.
 *
 * Storage knows no wire format: the set is a list of (member id, alarm type)
 * pairs, written whole (alarms are few) in the writer's open transaction, so
 * a change commits with the applied index of the log entry that made it.
 */
#ifndef METAD_STORAGE_ALARM_H
#define METAD_STORAGE_ALARM_H

#include <stddef.h>
#include <stdint.h>

#include "storage/db.h"

struct alarm_rec {
	uint64_t member;
	uint32_t type;
};

/* Replace the stored set with recs[0..n). Only in an open transaction
 * (DB_INVALID otherwise). recs is borrowed. */
int alarm_store_save(struct db_session *s, const struct alarm_rec *recs, size_t n);

/* Read the stored set (own snapshot or the open transaction) into out, at
 * most max records; *n gets how many. DB_CORRUPT if the record does not
 * decode, DB_NOMEM if more than max are stored. No record: *n = 0. */
int alarm_store_load(struct db_session *s, struct alarm_rec *out, size_t max, size_t *n);

#endif
