/*
 * controllers/mqtt_internal.h — the MQTT controller's mirror of
 * /_meta/mqtt/, shared by mqtt.c (events), mqtt_sessions.c (session
 * hand-over, expiry, wills, subscriptions, topics) and mqtt_groups.c
 * (shared-subscription group leaders, connectors).
 */
#ifndef METAD_CONTROLLERS_MQTT_INTERNAL_H
#define METAD_CONTROLLERS_MQTT_INTERNAL_H

#include "controllers/ctl_internal.h"
#include "controllers/strmap.h"
#include "core/core.h"

#define M_ROOT CTL_PREFIX "mqtt/"
#define M_SESSIONS M_ROOT "sessions/"
#define M_PRESENCE M_ROOT "presence/"
#define M_WILLS M_ROOT "wills/"
#define M_TIMERS M_ROOT "will-timers/"
#define M_EXPIRING M_ROOT "expiring/"
#define M_FIRE M_ROOT "will-fire/"
#define M_SUBS M_ROOT "subs/"
#define M_SHARE M_ROOT "share/"
#define M_CONNECTORS M_ROOT "connectors/"
#define M_ASSIGN M_ROOT "connector-assign/"
#define M_TOPICS M_ROOT "topics/"
#define M_RETAINED M_ROOT "retained/"
#define M_DELETE_TOPIC M_ROOT "requests/delete-topic/"
#define M_KIND "broker"
#define M_BATCH 32 /* sessions reaped per Txn: two compares and up to four ops each */
#define M_ID_MAX 128

/* Mirrors are keyed "<tenant>/<name>". */
struct msession {
	int64_t mod_rev, lease, expiry_s;
	char broker[M_ID_MAX];
};
struct mwill {
	int64_t mod_rev, delay_s;
	char *value; /* the will as the broker wrote it (copied to will-fire) */
	size_t len;
};
struct mgroup {
	int64_t leader_rev; /* mod_revision of its leader key; 0 = none */
	char leader[M_ID_MAX];
	size_t n_members;
	char (*members)[M_ID_MAX];
};
struct mconnector {
	bool spec;          /* its connectors/ key exists */
	int64_t assign_rev; /* 0 = not assigned */
	char broker[M_ID_MAX];
};

struct mctl {
	struct strmap sessions; /* -> struct msession* */
	struct strmap presence; /* -> char* broker id */
	struct strmap wills;    /* -> struct mwill* */
	struct strmap timers;   /* -> (void*)1: a will timer is running */
	struct strmap groups;   /* -> struct mgroup* */
	struct strmap connectors; /* -> struct mconnector* */
	/* Groups and connectors changed by the current watch response, checked
	 * once it is all in (a group's members may join in one Txn). */
	struct strmap dirty_groups, dirty_connectors;
	/* expiring/<broker>/<epoch>/<expiry_s> records -> (void*)create_revision */
	struct strmap expiring;
	/* sessions this controller deleted: their DELETE needs nothing more */
	struct strmap reaped;
};

/* mqtt_sessions.c */
void m_broker_down(struct ctl *rt, struct mctl *m, const char *broker);
void m_session_gone(struct ctl *rt, struct mctl *m, const char *tc);
void m_timer_gone(struct ctl *rt, struct mctl *m, const char *tc);
/* An expiring record went (its lease ran out): reap the sessions it covers.
 * bee = "<broker>/<epoch>/<expiry_s>", since = its create_revision. */
void m_expiring_gone(struct ctl *rt, struct mctl *m, const char *bee, int64_t since);
void m_reconnected(struct ctl *rt, struct mctl *m, const char *tc);
void m_delete_topic(struct ctl *rt, const struct ctl_kv *kv);
/* After the listing: sessions whose broker is gone and that hold no lease. */
void m_sessions_synced(struct ctl *rt, struct mctl *m);

/* mqtt_groups.c */
void m_group_check(struct ctl *rt, struct mctl *m, const char *tg);
void m_connector_check(struct ctl *rt, struct mctl *m, const char *tn);
void m_groups_broker_down(struct ctl *rt, struct mctl *m, const char *broker);
void m_groups_synced(struct ctl *rt, struct mctl *m);
/* Broker loads from the mirror: groups led (lead_load), connectors (load). */
void m_account(struct ctl *rt, struct mctl *m);

/* A broker that is registered and alive. */
bool m_broker_alive(struct ctl *rt, const char *id);

#endif
