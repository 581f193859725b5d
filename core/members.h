/*
 * core/members.h — cluster membership as etcd names it (core-private).
 *
 * Member and cluster ids are derived exactly as etcd derives them, so a
 * member started with another --initial-cluster-token belongs to another
 * cluster and is refused by its peers. The list is kept as a packed
 * etcdserverpb.MemberListResponse in raft_state (written inside the apply
 * transaction when a member publishes its name and client URLs), so restart
 * and every member agree on it.
 */
#ifndef METAD_CORE_MEMBERS_H
#define METAD_CORE_MEMBERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "rpc.pb-c.h"

struct db_session;

/* Raft's limit (RAFT_MAX_MEMBERS), voters and learners together. */
#define MEMBERS_MAX 32

struct members {
	pthread_mutex_t mu;
	Etcdserverpb__MemberListResponse *list; /* unpacked; header unused */
	uint64_t cluster_id;
	/* Raft's configuration in force (set by the node): the list shows its
	 * members, learners as such; records of members whose addition never
	 * took effect stay hidden. Empty until the node first sets it. */
	struct raft_conf conf;
	/* Members removed while this process ran: they are told so when they
	 * next call (etcd answers a removed member's messages the same way). */
	uint64_t removed[MEMBERS_MAX];
	size_t n_removed;
};

/* etcd's member id: sha1 over the sorted peer URLs, the cluster token and
 * (for a member added at runtime) the Unix time, first 8 bytes big-endian. */
uint64_t members_id(const char *const *peer_urls, size_t n, const char *token, int64_t unix_time);
/* etcd's cluster id: sha1 over the sorted member ids, big-endian. */
uint64_t members_cluster_id(const uint64_t *ids, size_t n);

/*
 * Load the stored list, or on a first start build it from --initial-cluster
 * ("name=url,name=url,..."), store it, and find this member by name (on a
 * restart: by name, or by its advertised peer URLs before it published).
 * Errors (-1, err filled, etcd's wording): the name is not in the list, a
 * malformed list, storage failure.
 */
int members_open(struct members *m, struct db_session *s, const char *initial_cluster,
		 const char *token, const char *name, const char *const *peer_urls, size_t n,
		 uint64_t *self_id, char *err, size_t errlen);

/*
 * A member joining an existing cluster (--initial-cluster-state existing)
 * with nothing stored: take the list fetched from the members already there
 * (a packed MemberListResponse whose header carries the cluster id), find
 * this member by its advertised peer URLs, and store it. Errors as above,
 * in etcd's words where etcd has them.
 */
int members_join(struct members *m, struct db_session *s, const uint8_t *fetched, size_t len,
		 const char *const *peer_urls, size_t n, uint64_t *self_id, char *err,
		 size_t errlen);
/* Whether a member list is stored (a member that started before). */
bool members_stored(struct db_session *s);
void members_close(struct members *m);
/* A snapshot replaced the stored list: read it again (the conf view and
 * the removed ids stay). DB_* code. */
int members_reload(struct members *m, struct db_session *s);

/* Voter and learner ids, for Raft's initial configuration. */
size_t members_ids(struct members *m, uint64_t *ids, bool *learner, size_t cap);
/* Peer URLs of id (a strdup'ed copy, NULL-terminated array; free with
 * members_free_urls), NULL if unknown. */
char **members_peer_urls(struct members *m, uint64_t id, size_t *n);
void members_free_urls(char **urls, size_t n);
/* Name of id is set (it has published its attributes). */
bool members_published(struct members *m, uint64_t id);

/* Apply a member's published attributes (name, client URLs), inside the
 * caller's open transaction. */
int members_apply_attr(struct members *m, struct db_session *s, const Etcdserverpb__Member *attr);

/* Insert or replace (by id) a member's record; remove one. Inside the
 * caller's open transaction (apply). */
int members_put(struct members *m, struct db_session *s, const Etcdserverpb__Member *mb);
int members_remove(struct members *m, struct db_session *s, uint64_t id);
/* Every member but id goes (--force-new-cluster). */
int members_keep_only(struct members *m, struct db_session *s, uint64_t id);
/* A copy of id's record with its peer URLs replaced (for MemberUpdate);
 * false if unknown. *out is freed with members_free_member. */
bool members_get(struct members *m, uint64_t id, Etcdserverpb__Member **out);
void members_free_member(Etcdserverpb__Member *mb);
/* Whether another member in the configuration already has one of urls. */
bool members_urls_taken(struct members *m, char *const *urls, size_t n, uint64_t except);

/* A member was removed / whether id was removed (this process's memory). */
void members_mark_removed(struct members *m, uint64_t id);
bool members_was_removed(struct members *m, uint64_t id);
/* Whether id is in the configuration in force. */
bool members_in_conf(struct members *m, uint64_t id);

/* The node: Raft's configuration changed. */
void members_set_conf(struct members *m, const struct raft_conf *conf);

/* A packed MemberListResponse without header, malloc'ed (caller frees):
 * the members in the configuration in force (all before it is known). */
uint8_t *members_pack(struct members *m, size_t *len);

#endif
