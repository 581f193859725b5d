/*
 * core/alarm.h — etcd's member alarms, as callers see them.
 *
 * An alarm is (member id, type): NOSPACE (the backend passed
 * --quota-backend-bytes) or CORRUPT. Every change goes through the log, as
 * in etcd, so every member holds the same set; it is persisted with the
 * applied index. While NOSPACE is active, Put, a Txn with a (top-level) Put
 * and LeaseGrant are refused with "etcdserver: mvcc: database space
 * exceeded"; while CORRUPT is active, every KV write, Compact, LeaseGrant and
 * LeaseRevoke with "etcdserver: corrupt cluster". Reads go on.
 */
#ifndef METAD_CORE_ALARM_H
#define METAD_CORE_ALARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct core_alarm {
	uint64_t member;
	int type; /* ETCDSERVERPB__ALARM_TYPE__* */
};

/* Alarm RPC: GET (alarm NONE: every alarm), ACTIVATE, DEACTIVATE, answered
 * with an AlarmResponse once applied here (errors: the write path's, e.g.
 * CORE_ENO_LEADER, CORE_ETIMEOUT). req is borrowed for the call. */
void core_alarm(struct core *c, const Etcdserverpb__AlarmRequest *req, core_done_fn cb, void *arg);

/* The alarms active on this member, sorted by (type, member); at most max
 * are copied, the return value is how many there are. Thread-safe. */
size_t core_alarms(struct core *c, struct core_alarm *out, size_t max);

/* Whether an alarm of this type (0: of any type) is active. Lock-free. */
bool core_alarm_active(struct core *c, int type);

/* etcd's name of an alarm type ("NOSPACE", "CORRUPT"; "NONE" for 0), or
 * NULL for a type etcd does not name. */
const char *core_alarm_name(int type);

#endif
