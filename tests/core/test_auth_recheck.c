/*
 * tests/core/test_auth_recheck.c — a client's write checked again when a
 * real single-member core applies it (auth_recheck.c), and the Lock and
 * Election writes carrying their caller there.
 *
 * A request's arrival check happens in etcdapi; here the test records the
 * caller itself (core_auth_caller_begin, as etcdapi does after a passing
 * check) and then changes what the check saw before the write is applied:
 * a key outside the caller's grant attached to the lease, or an auth
 * revision that moved on. Both must refuse the write at apply.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/auth.h"
#include "core/core.h"
#include "tests/core/core_fixture.h"
#include "tests/expect.h"

static struct core *c;

/* As client "who" checked at auth revision rev (NULL: the server's own). */
static void as(const char *who, uint64_t rev)
{
	if (who != NULL)
		core_auth_caller_begin(who, rev);
}

static int put(const char *who, uint64_t rev, const char *key, int64_t lease)
{
	struct waiter w;
	waiter_init(&w);
	Etcdserverpb__PutRequest q = ETCDSERVERPB__PUT_REQUEST__INIT;
	q.key.data = (uint8_t *)key;
	q.key.len = strlen(key);
	q.value.data = (uint8_t *)"v";
	q.value.len = 1;
	q.lease = lease;
	as(who, rev);
	core_put(c, &q, done, &w);
	core_auth_caller_end();
	return wait_err(&w, false);
}

/* A txn whose failure branch holds a nested txn that puts key with lease. */
static int nested_lease_put(const char *who, uint64_t rev, const char *key, int64_t lease)
{
	struct waiter w;
	waiter_init(&w);
	Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
	p.key.data = (uint8_t *)key;
	p.key.len = strlen(key);
	p.lease = lease;
	Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
	Etcdserverpb__RequestOp nop = ETCDSERVERPB__REQUEST_OP__INIT;
	op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	op.request_put = &p;
	Etcdserverpb__RequestOp *ops[1] = {&op}, *nops[1] = {&nop};
	Etcdserverpb__TxnRequest inner = ETCDSERVERPB__TXN_REQUEST__INIT, outer = inner;
	inner.n_success = 1;
	inner.success = ops;
	nop.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	nop.request_txn = &inner;
	outer.n_failure = 1;
	outer.failure = nops;
	as(who, rev);
	core_txn(c, &outer, done, &w);
	core_auth_caller_end();
	return wait_err(&w, false);
}

static bool exists(const char *key)
{
	struct waiter w;
	waiter_init(&w);
	Etcdserverpb__RangeRequest q = ETCDSERVERPB__RANGE_REQUEST__INIT;
	q.key.data = (uint8_t *)key;
	q.key.len = strlen(key);
	core_range(c, &q, done, &w);
	if (wait_err(&w, true) != CORE_OK)
		return false;
	bool found = ((Etcdserverpb__RangeResponse *)w.r->msg)->count > 0;
	core_reply_free(w.r);
	return found;
}

static int64_t grant(void)
{
	struct waiter w;
	waiter_init(&w);
	Etcdserverpb__LeaseGrantRequest q = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	q.ttl = 600;
	core_lease_grant(c, &q, done, &w);
	if (wait_err(&w, true) != CORE_OK)
		return 0;
	int64_t id = ((Etcdserverpb__LeaseGrantResponse *)w.r->msg)->id;
	core_reply_free(w.r);
	return id;
}

static int revoke(const char *who, uint64_t rev, int64_t lease)
{
	struct waiter w;
	waiter_init(&w);
	Etcdserverpb__LeaseRevokeRequest q = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	q.id = lease;
	as(who, rev);
	core_lease_revoke(c, &q, done, &w);
	core_auth_caller_end();
	return wait_err(&w, false);
}

static int lock(const char *who, uint64_t rev, const char *name, int64_t lease)
{
	struct waiter w;
	waiter_init(&w);
	V3lockpb__LockRequest q = V3LOCKPB__LOCK_REQUEST__INIT;
	q.name.data = (uint8_t *)name;
	q.name.len = strlen(name);
	q.lease = lease;
	as(who, rev);
	core_lock(c, &q, done, &w);
	/* No core_auth_caller_end here: the lock must have taken the caller,
	 * so the next write of this thread is the server's own (checked by
	 * the caller of this helper). */
	return wait_err(&w, false);
}

/* *created: the campaign key's create revision, when it wins. */
static int campaign(const char *who, uint64_t rev, const char *name, int64_t lease,
		    int64_t *created)
{
	struct waiter w;
	waiter_init(&w);
	V3electionpb__CampaignRequest q = V3ELECTIONPB__CAMPAIGN_REQUEST__INIT;
	q.name.data = (uint8_t *)name;
	q.name.len = strlen(name);
	q.lease = lease;
	q.value.data = (uint8_t *)"me";
	q.value.len = 2;
	as(who, rev);
	core_campaign(c, &q, done, &w);
	int err = wait_err(&w, true);
	if (err == CORE_OK)
		*created = ((V3electionpb__CampaignResponse *)w.r->msg)->leader->rev;
	if (w.r != NULL)
		core_reply_free(w.r);
	return err;
}

static int proclaim(const char *who, uint64_t rev, const char *key, int64_t created,
		    int64_t lease)
{
	struct waiter w;
	waiter_init(&w);
	V3electionpb__LeaderKey lk = V3ELECTIONPB__LEADER_KEY__INIT;
	lk.key.data = (uint8_t *)key;
	lk.key.len = strlen(key);
	lk.lease = lease;
	lk.rev = created;
	V3electionpb__ProclaimRequest q = V3ELECTIONPB__PROCLAIM_REQUEST__INIT;
	q.leader = &lk;
	q.value.data = (uint8_t *)"x";
	q.value.len = 1;
	as(who, rev);
	core_proclaim(c, &q, done, &w);
	core_auth_caller_end();
	return wait_err(&w, false);
}

static size_t n_leases(void)
{
	struct waiter w;
	waiter_init(&w);
	core_lease_leases(c, done, &w);
	if (wait_err(&w, true) != CORE_OK)
		return 0;
	size_t n = ((Etcdserverpb__LeaseLeasesResponse *)w.r->msg)->n_leases;
	core_reply_free(w.r);
	return n;
}

/* ---- the auth store, through the log as any admin change ---- */

static void setup_auth(void)
{
	struct waiter w;
	Authpb__UserAddOptions nopw = AUTHPB__USER_ADD_OPTIONS__INIT;
	nopw.no_password = true;
	const char *users[2] = {"root", "alice"};
	for (int i = 0; i < 2; i++) {
		Etcdserverpb__AuthUserAddRequest q = ETCDSERVERPB__AUTH_USER_ADD_REQUEST__INIT;
		q.name = (char *)users[i];
		q.options = &nopw;
		waiter_init(&w);
		core_auth_user_add(c, &q, done, &w);
		EXPECT(wait_err(&w, false) == CORE_OK);
	}
	Etcdserverpb__AuthRoleAddRequest ra = ETCDSERVERPB__AUTH_ROLE_ADD_REQUEST__INIT;
	ra.name = "rw";
	waiter_init(&w);
	core_auth_role_add(c, &ra, done, &w);
	EXPECT(wait_err(&w, false) == CORE_OK);
	Authpb__Permission perm = AUTHPB__PERMISSION__INIT;
	perm.permtype = AUTHPB__PERMISSION__TYPE__READWRITE;
	perm.key.data = (uint8_t *)"/a/";
	perm.key.len = 3;
	perm.range_end.data = (uint8_t *)"/a0";
	perm.range_end.len = 3;
	Etcdserverpb__AuthRoleGrantPermissionRequest gp =
		ETCDSERVERPB__AUTH_ROLE_GRANT_PERMISSION_REQUEST__INIT;
	gp.name = "rw";
	gp.perm = &perm;
	waiter_init(&w);
	core_auth_role_grant_permission(c, &gp, done, &w);
	EXPECT(wait_err(&w, false) == CORE_OK);
	const char *grants[2][2] = {{"root", "root"}, {"alice", "rw"}};
	for (int i = 0; i < 2; i++) {
		Etcdserverpb__AuthUserGrantRoleRequest g =
			ETCDSERVERPB__AUTH_USER_GRANT_ROLE_REQUEST__INIT;
		g.user = (char *)grants[i][0];
		g.role = (char *)grants[i][1];
		waiter_init(&w);
		core_auth_user_grant_role(c, &g, done, &w);
		EXPECT(wait_err(&w, false) == CORE_OK);
	}
	waiter_init(&w);
	core_auth_enable(c, done, &w);
	EXPECT(wait_err(&w, false) == CORE_OK);
	EXPECT(core_auth_enabled(c));
}

/* ---- the tests ---- */

/* LeaseRevoke deletes the keys the lease holds when it is applied: alice,
 * checked when her lease held /a/ keys only, must not delete /secret that
 * root attached to it before her revoke was applied. */
static void test_revoke_rechecks_keys(uint64_t rev)
{
	int64_t l = grant();
	EXPECT(l != 0);
	EXPECT(put(NULL, 0, "/a/x", l) == CORE_OK);
	EXPECT(revoke("alice", rev, l) == CORE_OK); /* the lease holds /a/ keys alone */
	l = grant();
	EXPECT(put(NULL, 0, "/a/x", l) == CORE_OK);
	EXPECT(put(NULL, 0, "/secret", l) == CORE_OK); /* between check and apply */
	EXPECT(revoke("alice", rev, l) == CORE_EPERMISSION_DENIED);
	EXPECT(exists("/secret") && exists("/a/x"));
	EXPECT(revoke("root", rev, l) == CORE_OK); /* root may */
	EXPECT(!exists("/secret") && !exists("/a/x"));
}

/* A Put joining a lease needs WRITE on the keys it holds when applied: a
 * lone Put, and one deep in a txn's failure branch. */
static void test_lease_put_rechecks_keys(uint64_t rev)
{
	int64_t l = grant();
	EXPECT(put(NULL, 0, "/a/y", l) == CORE_OK);
	EXPECT(put("alice", rev, "/a/z", l) == CORE_OK); /* the lease holds /a/ only */
	EXPECT(put(NULL, 0, "/secret2", l) == CORE_OK);  /* between check and apply */
	EXPECT(put("alice", rev, "/a/z", l) == CORE_EPERMISSION_DENIED);
	EXPECT(nested_lease_put("alice", rev, "/a/z", l) == CORE_EPERMISSION_DENIED);
	EXPECT(put("alice", rev, "/a/z", 0) == CORE_OK); /* no lease: nothing else to check */
	EXPECT(put("root", rev, "/a/z", l) == CORE_OK);
	EXPECT(nested_lease_put("root", rev, "/a/w", l) == CORE_OK);
	EXPECT(put("alice", rev - 1, "/a/z", 0) == CORE_EAUTH_OLD_REVISION);
}

/* Lock and Campaign write after a lease grant, on another thread: their
 * writes carry the caller and the revision of its check; the grant of
 * their session lease does not (etcd checks no right on LeaseGrant), so a
 * refusal with the lease granted is the key's write refused. */
static void test_recipes_carry_the_caller(uint64_t rev)
{
	size_t leases = n_leases();
	EXPECT(lock("alice", rev - 1, "/a/lk", 0) == CORE_EAUTH_OLD_REVISION);
	EXPECT(n_leases() == leases + 1);
	/* The lock took the caller: this thread's next write is the server's. */
	EXPECT(put(NULL, 0, "/outside", 0) == CORE_OK);
	int64_t l = grant();
	EXPECT(lock("alice", rev - 1, "/a/lk", l) == CORE_EAUTH_OLD_REVISION);
	EXPECT(lock("alice", rev, "/a/lk", 0) == CORE_OK);
	int64_t held = grant();
	EXPECT(put(NULL, 0, "/secret3", held) == CORE_OK);
	EXPECT(lock("alice", rev, "/a/lk2", held) == CORE_EPERMISSION_DENIED);
	int64_t created = 0;
	leases = n_leases();
	EXPECT(campaign("alice", rev - 1, "/a/el", 0, &created) == CORE_EAUTH_OLD_REVISION);
	EXPECT(n_leases() == leases + 1);
	EXPECT(put(NULL, 0, "/outside", 0) == CORE_OK);
	EXPECT(campaign("alice", rev, "/a/el2", held, &created) == CORE_EPERMISSION_DENIED);
	int64_t mine = grant();
	EXPECT(campaign("alice", rev, "/a/el3", mine, &created) == CORE_OK);
	char key[64];
	snprintf(key, sizeof(key), "/a/el3/%llx", (unsigned long long)mine);
	EXPECT(exists(key) && created > 0);
	EXPECT(proclaim("alice", rev - 1, key, created, mine) == CORE_EAUTH_OLD_REVISION);
	EXPECT(proclaim("alice", rev, key, created, held) == CORE_EPERMISSION_DENIED);
	EXPECT(proclaim("alice", rev, key, created, mine) == CORE_OK);
}

int main(void)
{
	char dir[] = "/tmp/metad-test-recheck-XXXXXX";
	c = fixture_open(dir);
	setup_auth();
	uint64_t rev = core_auth_revision(c);
	EXPECT(rev > 1);
	test_revoke_rechecks_keys(rev);
	test_lease_put_rechecks_keys(rev);
	test_recipes_carry_the_caller(rev);
	EXPECT(core_auth_revision(c) == rev);
	return fixture_close(c, dir, "test_auth_recheck", failures);
}
