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

#include "rpc.pb-c.h"

struct db_session;

/* Raft's limit (RAFT_MAX_MEMBERS), voters and learners together. */
#define MEMBERS_MAX 32

struct members {
	pthread_mutex_t mu;
	Etcdserverpb__MemberListResponse *list; /* unpacked; header unused */
	uint64_t cluster_id;
};

/* etcd's member id: sha1 over the sorted peer URLs, the cluster token and
 * (for a member added at runtime) the Unix time, first 8 bytes big-endian. */
uint64_t members_id(const char *const *peer_urls, size_t n, const char *token, int64_t unix_time);
/* etcd's cluster id: sha1 over the sorted member ids, big-endian. */
uint64_t members_cluster_id(const uint64_t *ids, size_t n);

/*
 * Load the stored list, or on a first start build it from --initial-cluster
 * ("name=url,name=url,..."), store it, and find this member by name.
 * Errors (-1, err filled, etcd's wording): the name is not in the list, a
 * malformed list, storage failure.
 */
int members_open(struct members *m, struct db_session *s, const char *initial_cluster,
		 const char *token, const char *name, uint64_t *self_id, char *err, size_t errlen);
void members_close(struct members *m);

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

/* A packed MemberListResponse without header, malloc'ed (caller frees). */
uint8_t *members_pack(struct members *m, size_t *len);

#endif
