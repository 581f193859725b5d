/*
 * core/auth.h — users, roles, tokens and permission checks (etcd's auth
 * store), as core offers them to etcdapi.
 *
 * The store changes only through the write path: every change is a log
 * entry applied on the writer thread, so every member agrees on it and on
 * auth_revision. Reads (checks, UserGet, tokens) are served from an
 * in-memory copy under a reader lock. Password hashing (bcrypt) never runs
 * on the writer: it happens before the proposal, on the caller's thread,
 * which must therefore be a worker, not a gRPC completion-queue thread.
 */
#ifndef METAD_CORE_AUTH_H
#define METAD_CORE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Longest user name a caller identity holds (longer names never match). */
#define CORE_AUTH_USER_MAX 256

/* What a request asks to do with a range (authpb.Permission.Type values). */
enum core_perm { CORE_PERM_READ = 0, CORE_PERM_WRITE = 1, CORE_PERM_READWRITE = 2 };

/* Auth on? One atomic load: the price every request pays when it is off. */
bool core_auth_enabled(struct core *c);
/* The user a token stands for, copied into user (CORE_AUTH_USER_MAX
 * bytes), and the auth revision it holds: the current one for a simple
 * token (using one extends its life by the TTL, as etcd does), the one it
 * was issued at for a JWT. CORE_EINVALID_AUTH_TOKEN when unknown, forged or
 * expired. Thread-safe. */
int core_auth_token_user(struct core *c, const char *token, size_t len, char *user,
			 uint64_t *rev);

/*
 * Permission checks against the current store (CORE_OK when auth is off).
 * user "" (no token given) -> CORE_EUSER_EMPTY, as etcd. [key, end) follows
 * etcd's range rules: end empty = key alone, end "\0" = every key >= key.
 * A user holding the root role may do everything.
 */
int core_auth_check_range(struct core *c, const char *user, enum core_perm perm,
			  const uint8_t *key, size_t key_len, const uint8_t *end, size_t end_len);
/* Root role required (auth management, Compact, maintenance). Unknown
 * user -> CORE_EUSER_NOT_FOUND, as etcd's IsAdminPermitted. */
int core_auth_check_admin(struct core *c, const char *user);
/* Any user the store knows (calls etcd lets every authenticated user
 * make, such as listing alarms): CORE_EUSER_EMPTY, CORE_EUSER_NOT_FOUND. */
int core_auth_check_user(struct core *c, const char *user);
/* Every compare and every operation of both branches, nested txns
 * included: READ for compares and ranges, WRITE for puts and deletes, and
 * READ as well where prev_kv would return old values; a put with a lease
 * also needs WRITE on the keys the lease already holds. */
int core_auth_check_txn(struct core *c, const char *user, const Etcdserverpb__TxnRequest *t);
int core_auth_check_put(struct core *c, const char *user, const Etcdserverpb__PutRequest *p);
int core_auth_check_delete(struct core *c, const char *user,
			   const Etcdserverpb__DeleteRangeRequest *d);
/* perm on every key attached to lease (LeaseRevoke: WRITE, TimeToLive with
 * keys: READ, a Put joining the lease: WRITE, as etcd's checkLeasePuts). An
 * unknown lease holds no keys: CORE_OK, and the call answers for itself. */
int core_auth_check_lease(struct core *c, const char *user, int64_t lease, enum core_perm perm);
/* The auth revision now (etcd's authRevision; starts at 1). */
uint64_t core_auth_revision(struct core *c);

/*
 * Apply-time checks. A client's write is checked when it arrives; the log
 * entry it becomes carries who it was checked as and at which auth
 * revision, and apply refuses it with etcd's "revision of auth store is
 * old" if the store changed in between (or "user name is empty" if auth
 * was turned on). begin records that identity for the next write this
 * thread submits (the submit consumes it); end forgets it, for paths that
 * submitted nothing (reads, refusals). rev is the revision read before the
 * check.
 */
void core_auth_caller_begin(const char *user, uint64_t rev);
void core_auth_caller_end(void);

/*
 * A recorded caller kept for writes submitted later, possibly from another
 * thread: Lock and Campaign write their keys after a lease grant and
 * between waits, each write checked at apply as the caller, at the
 * revision the call was checked at. take moves this thread's recorded
 * caller into *who (the thread forgets it, so a lease grant submitted
 * meanwhile is not stamped); resume records it again for the next write,
 * to be followed by core_auth_caller_end once that write is submitted.
 * Nothing recorded (a write of the server's own): who->set is false and
 * resume records nothing.
 */
struct core_auth_caller {
	bool set;
	uint64_t rev;
	char user[CORE_AUTH_USER_MAX];
};
void core_auth_caller_take(struct core_auth_caller *who);
void core_auth_caller_resume(const struct core_auth_caller *who);

/* Whether user exists and holds role. */
bool core_auth_has_role(struct core *c, const char *user, const char *role);

/*
 * The Auth service. Requests are borrowed for the call; cb is called once
 * (inline for reads and refusals, else after the change is applied) with
 * the matching Auth*Response. Callers check admin rights first.
 */
void core_auth_enable(struct core *c, core_done_fn cb, void *arg);
void core_auth_disable(struct core *c, core_done_fn cb, void *arg);
void core_auth_status(struct core *c, core_done_fn cb, void *arg);
/* Slow (bcrypt): from a worker thread only. */
void core_authenticate(struct core *c, const Etcdserverpb__AuthenticateRequest *req,
		       core_done_fn cb, void *arg);
/* Slow (bcrypt) unless no_password or hashedPassword: worker thread only. */
void core_auth_user_add(struct core *c, const Etcdserverpb__AuthUserAddRequest *req,
			core_done_fn cb, void *arg);
void core_auth_user_change_password(struct core *c,
				    const Etcdserverpb__AuthUserChangePasswordRequest *req,
				    core_done_fn cb, void *arg);
void core_auth_user_get(struct core *c, const Etcdserverpb__AuthUserGetRequest *req,
			core_done_fn cb, void *arg);
void core_auth_user_list(struct core *c, core_done_fn cb, void *arg);
void core_auth_user_delete(struct core *c, const Etcdserverpb__AuthUserDeleteRequest *req,
			   core_done_fn cb, void *arg);
void core_auth_user_grant_role(struct core *c, const Etcdserverpb__AuthUserGrantRoleRequest *req,
			       core_done_fn cb, void *arg);
void core_auth_user_revoke_role(struct core *c, const Etcdserverpb__AuthUserRevokeRoleRequest *req,
				core_done_fn cb, void *arg);
void core_auth_role_add(struct core *c, const Etcdserverpb__AuthRoleAddRequest *req,
			core_done_fn cb, void *arg);
void core_auth_role_get(struct core *c, const Etcdserverpb__AuthRoleGetRequest *req,
			core_done_fn cb, void *arg);
void core_auth_role_list(struct core *c, core_done_fn cb, void *arg);
void core_auth_role_delete(struct core *c, const Etcdserverpb__AuthRoleDeleteRequest *req,
			   core_done_fn cb, void *arg);
void core_auth_role_grant_permission(struct core *c,
				     const Etcdserverpb__AuthRoleGrantPermissionRequest *req,
				     core_done_fn cb, void *arg);
void core_auth_role_revoke_permission(struct core *c,
				      const Etcdserverpb__AuthRoleRevokePermissionRequest *req,
				      core_done_fn cb, void *arg);

#endif
