/*
 * core/auth_internal.h — the auth store's in-memory model, shared by the
 * files of core/auth*.c. Not for callers (they use core/auth.h).
 *
 * Model: users and roles in name-sorted arrays, guarded by one rwlock that
 * only the writer thread (applying a log entry) takes for writing. enabled
 * and revision are also atomics so the hot path reads them without the lock.
 */
#ifndef METAD_CORE_AUTH_INTERNAL_H
#define METAD_CORE_AUTH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.pb-c.h"

#include "core/auth.h"

struct core;
struct reply;
struct db_session;

struct auth_perm {
	int type; /* enum core_perm */
	uint8_t *key;
	size_t key_len;
	uint8_t *end; /* NULL/0: the key alone; "\0": every key >= key */
	size_t end_len;
};

struct auth_role {
	char *name;
	struct auth_perm *perms; /* sorted by key, as etcd keeps them */
	size_t n_perms;
};

struct auth_user {
	char *name;
	char *hash; /* bcrypt crypt string; NULL for a no-password user */
	bool no_password;
	char **roles; /* sorted */
	size_t n_roles;
};

struct auth_token {
	struct auth_token *next; /* hash chain */
	char *token;
	char *user;
	int64_t expires_ms; /* CLOCK_MONOTONIC */
};

struct auth_jwt;

struct core_auth {
	pthread_rwlock_t lock;
	_Atomic bool enabled;
	_Atomic uint64_t revision;
	/* Bumped (auth_changed) with the lock held for writing after every
	 * change of users, roles or tokens: threads' copies (auth_cache.c)
	 * hold for one generation. id: the store's, unique in the process. */
	_Atomic uint64_t gen;
	_Atomic uint64_t id;
	struct auth_user **users; /* sorted by name */
	size_t n_users;
	struct auth_role **roles; /* sorted by name */
	size_t n_roles;

	int bcrypt_cost;
	int64_t token_ttl_ms;
	pthread_mutex_t tmu; /* tokens: a hash table, every call looks its token up */
	struct auth_token **buckets;
	size_t n_buckets, n_tokens;
	_Atomic uint64_t token_seq;
	struct auth_jwt *jwt; /* --auth-token jwt,...: signed tokens instead of the table */
};

/* Start-up: load the store from the auth table (c->wsession, before the
 * log replay) into c->auth, and set up tokens (--auth-token). DB_* code,
 * with a message in err. */
int auth_open(struct core *c, char *err, size_t errlen);
void auth_free(struct core_auth *a);
/* Load the store again after a snapshot replaced it (node thread). */
int auth_reload(struct core *c);

/* Apply an auth log entry (cases 20.. of InternalRequest) inside the
 * writer's transaction. CORE_EINTERNAL for any other case. */
int auth_apply(struct core *c, struct db_session *s, struct reply *r,
	       const Metadpb__InternalRequest *req, ProtobufCMessage **msg);

/* The writer's side of core_auth_caller_begin: put this thread's recorded
 * identity (if any, then forgotten) into the entry about to be proposed.
 * ir->auth_user points into thread-local memory until the next begin. */
void auth_stamp(Metadpb__InternalRequest *ir);
/*
 * At apply, before anything else (auth_recheck.c), inside the writer's
 * transaction on session s: CORE_OK, or the error that refuses req. A
 * stamped entry is refused when the auth store changed since its check
 * (auth_apply_check_revision); otherwise, as its permissions are those it
 * was checked against, only what the auth revision does not cover is
 * checked again: WRITE on every key now attached to a lease the entry
 * revokes or that one of its puts joins (auth_req_leases).
 */
int auth_apply_check(struct core *c, struct db_session *s, const Metadpb__InternalRequest *req);
int auth_apply_check_revision(struct core *c, const Metadpb__InternalRequest *req);
/* Calls fn for each lease req needs WRITE on the keys of (LeaseRevoke's;
 * each Put's that joins a lease, nested txns and both branches included),
 * until fn returns other than CORE_OK; returns that, or CORE_OK. */
typedef int (*auth_lease_fn)(void *arg, int64_t lease);
int auth_req_leases(const Metadpb__InternalRequest *req, auth_lease_fn fn, void *arg);
/* perm on every key attached to lease, read through session s (which may
 * hold the writer's open transaction). Callers check auth is on and user
 * not empty. */
int auth_lease_keys_check(struct core *c, struct db_session *s, const char *user, int64_t lease,
			  enum core_perm perm);

/* ---- the threads' copies (auth_cache.c) ---- */
/* After any change of users, roles or tokens, with the lock held for
 * writing (the model's and the token table's changers call it). */
void auth_changed(struct core_auth *a);
int64_t auth_now_ms(void); /* CLOCK_MONOTONIC */

/* A user's grants, flattened: every permission of every role. */
enum { AUTH_GRANTS_NO_USER, AUTH_GRANTS_ROOT, AUTH_GRANTS_PERMS };
struct auth_grants {
	int kind;
	struct auth_perm *perms; /* AUTH_GRANTS_PERMS: n of them */
	size_t n;
	uint8_t *bytes; /* auth_grants_locked's key bytes */
};
/* The thread's copy of user's grants (made now, under the read lock, if
 * the store changed since), valid until this thread's next call; NULL if
 * they do not fit a thread's copy. Not with the lock held. */
const struct auth_grants *auth_cache_grants(struct core_auth *a, const char *user);
/* With the lock held: user's grants into g (allocated; auth_grants_free).
 * False when out of memory. */
bool auth_grants_locked(struct core_auth *a, const char *user, struct auth_grants *g);
void auth_grants_free(struct auth_grants *g);
/* The thread's copy of the last token it resolved: true, with its user
 * (CORE_AUTH_USER_MAX bytes) and revision claim, if token is it and it is
 * still to be taken from the copy. put records a resolution made at
 * generation gen (read before the lookup), to be taken until until_ms. */
bool auth_cache_token_get(struct core_auth *a, const char *token, size_t len, char *user,
			  uint64_t *rev);
void auth_cache_token_put(struct core_auth *a, uint64_t gen, const char *token, size_t len,
			  const char *user, uint64_t rev, int64_t until_ms);
/* How long a simple token's resolution is taken from the copy: a second,
 * or the TTL if shorter (so never past the expiry the lookup set). */
int64_t auth_cache_token_window_ms(const struct core_auth *a);

/* Lookups; call with the lock held (either mode). */
struct auth_user *auth_find_user(struct core_auth *a, const char *name);
struct auth_role *auth_find_role(struct core_auth *a, const char *name);
bool auth_user_has_role(const struct auth_user *u, const char *role);

/* Model changes and their encodings (auth_model.c). */
void auth_user_free(struct auth_user *u);
void auth_role_free(struct auth_role *r);
/* Insert or replace (ownership moves to the model); false when out of memory. */
bool auth_put_user(struct core_auth *a, struct auth_user *u);
bool auth_put_role(struct core_auth *a, struct auth_role *r);
void auth_remove_user(struct core_auth *a, const char *name);
void auth_remove_role(struct core_auth *a, const char *name);
/* authpb.User / authpb.Role bytes (malloc'd, caller frees); NULL when out of memory. */
uint8_t *auth_user_pack(const struct auth_user *u, size_t *len);
uint8_t *auth_role_pack(const struct auth_role *r, size_t *len);
struct auth_user *auth_user_unpack(const uint8_t *data, size_t len);
struct auth_role *auth_role_unpack(const uint8_t *data, size_t len);

/* Tokens (auth_token.c). */
/* A fresh random token text (NUL-terminated, <= 64 bytes with the NUL). */
int auth_token_new(struct core_auth *a, char out[64]);
int auth_token_add(struct core_auth *a, const char *token, const char *user);
void auth_token_drop_user(struct core_auth *a, const char *user);
void auth_token_clear(struct core_auth *a);
void auth_tokens_free(struct core_auth *a);

/* JWT tokens (auth_jwt.c). opts: "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=..."
 * sets a->jwt, or returns -1 with a message in err. */
int auth_jwt_open(struct core_auth *a, const char *opts, char *err, size_t errlen);
void auth_jwt_free(struct auth_jwt *j);
/* A token for user at auth revision rev (*token malloc'd). CORE_EINTERNAL
 * on a member that holds only the public key. */
int auth_jwt_sign(struct core_auth *a, const char *user, uint64_t rev, char **token);
/* The user (CORE_AUTH_USER_MAX bytes) and revision a valid, unexpired
 * token of ours names; CORE_EINVALID_AUTH_TOKEN otherwise. */
int auth_jwt_verify(struct core_auth *a, const char *token, size_t len, char *user, uint64_t *rev);
/* The same, with the token's exp claim (seconds since the epoch). */
int auth_jwt_verify_exp(struct core_auth *a, const char *token, size_t len, char *user,
			uint64_t *rev, long long *exp_s);

/* Passwords (auth_passwd.c): bcrypt through libxcrypt. */
/* Hash pw at cost into out (a crypt string); CORE_OK or CORE_EINTERNAL. */
int auth_passwd_hash(int cost, const char *pw, size_t pw_len, char *out, size_t cap);
/* Whether pw matches hash, compared in constant time. */
bool auth_passwd_ok(const char *hash, const char *pw, size_t pw_len);
/* CRYPT_OUTPUT_SIZE, as a plain number for callers' buffers. */
#define AUTH_HASH_MAX 384

#endif
