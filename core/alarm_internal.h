/*
 * core/alarm_internal.h — the alarm set inside core: loading, the checks
 * apply makes, applying Alarm entries, raising NOSPACE. Not for callers.
 */
#ifndef METAD_CORE_ALARM_INTERNAL_H
#define METAD_CORE_ALARM_INTERNAL_H

#include "core/alarm.h"
#include "core/core_internal.h"

/* Load the persisted set (core_open, before replay). DB_* code. */
int alarm_open(struct core *c);
void alarm_free(struct core *c);
/* Read the set again from storage (after a snapshot replaced the store). */
int alarm_reload(struct core *c);

/* Whether an active alarm refuses this entry (etcd's capped and corrupt
 * appliers): CORE_OK, CORE_ENOSPACE or CORE_ECORRUPT. Lock-free. */
int alarm_apply_check(struct core *c, const Metadpb__InternalRequest *req);

/* Apply an Alarm entry inside the writer's transaction. */
int apply_alarm(struct core *c, struct db_session *s, struct reply *r,
		const Etcdserverpb__AlarmRequest *q, ProtobufCMessage **msg);

/* A write was refused for the quota: propose NOSPACE for this member
 * unless it is active or already on its way (etcd raises it the same way). */
void alarm_raise_nospace(struct core *c);

#endif
