/*
 * tests/core/test_auth_cache.c — the threads' copies of grants and tokens
 * (core/auth_cache.c): a check after any change of the store sees the
 * change; a copy never outlives its store nor serves another; a user whose
 * grants do not fit a copy is still checked right; a simple token is never
 * taken past its expiry, nor after its user's tokens were dropped; and
 * threads checking while the store changes see one state or the other.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"
#include "tests/expect.h"

static struct core_auth *store_new(void)
{
	struct core_auth *a = calloc(1, sizeof(*a));
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->tmu, NULL);
	atomic_store(&a->enabled, true);
	a->token_ttl_ms = 60000;
	return a;
}

/* A role named name granting type on the prefix (or, n > 1, on n keys
 * prefix0000.. each); key bytes are copied. */
static struct auth_role *role(const char *name, int type, const char *prefix, int n)
{
	struct auth_role *r = calloc(1, sizeof(*r));
	r->name = strdup(name);
	r->perms = calloc((size_t)n, sizeof(*r->perms));
	for (int i = 0; i < n; i++) {
		struct auth_perm *p = &r->perms[r->n_perms++];
		char key[64];
		if (n == 1)
			snprintf(key, sizeof(key), "%s", prefix);
		else
			snprintf(key, sizeof(key), "%s%04d", prefix, i);
		p->type = type;
		p->key_len = strlen(key);
		p->key = (uint8_t *)strdup(key);
		if (n == 1) { /* the prefix: [prefix, prefix+1) */
			p->end = (uint8_t *)strdup(key);
			p->end[p->key_len - 1]++;
			p->end_len = p->key_len;
		}
	}
	return r;
}

static struct auth_user *user(const char *name, const char *role_name)
{
	struct auth_user *u = calloc(1, sizeof(*u));
	u->name = strdup(name);
	u->roles = calloc(1, sizeof(char *));
	if (role_name != NULL) {
		u->roles[0] = strdup(role_name);
		u->n_roles = 1;
	}
	return u;
}

static int chk(struct core *c, const char *u, int perm, const char *key)
{
	return core_auth_check_range(c, u, perm, (const uint8_t *)key, strlen(key), NULL, 0);
}

/* With the lock held for writing, as the writer changes the store. */
static void put_role(struct core_auth *a, struct auth_role *r)
{
	pthread_rwlock_wrlock(&a->lock);
	auth_put_role(a, r);
	pthread_rwlock_unlock(&a->lock);
}

static void test_changes_are_seen(void)
{
	struct core c = {0};
	c.auth = store_new();
	auth_put_role(c.auth, role("r", CORE_PERM_READWRITE, "/a/", 1));
	auth_put_user(c.auth, user("alice", "r"));
	auth_put_user(c.auth, user("root", "root"));
	EXPECT(chk(&c, "alice", CORE_PERM_WRITE, "/a/x") == CORE_OK);
	EXPECT(chk(&c, "alice", CORE_PERM_WRITE, "/b/x") == CORE_EPERMISSION_DENIED);
	/* The role now grants /b/ only, READ only: the next checks see it. */
	put_role(c.auth, role("r", CORE_PERM_READ, "/b/", 1));
	EXPECT(chk(&c, "alice", CORE_PERM_WRITE, "/a/x") == CORE_EPERMISSION_DENIED);
	EXPECT(chk(&c, "alice", CORE_PERM_READ, "/b/x") == CORE_OK);
	EXPECT(chk(&c, "alice", CORE_PERM_WRITE, "/b/x") == CORE_EPERMISSION_DENIED);
	/* Another user in between, then back: each answered as itself. */
	EXPECT(core_auth_check_admin(&c, "root") == CORE_OK);
	EXPECT(core_auth_check_admin(&c, "alice") == CORE_EPERMISSION_DENIED);
	EXPECT(chk(&c, "alice", CORE_PERM_READ, "/b/x") == CORE_OK);
	pthread_rwlock_wrlock(&c.auth->lock);
	auth_remove_user(c.auth, "alice");
	pthread_rwlock_unlock(&c.auth->lock);
	EXPECT(chk(&c, "alice", CORE_PERM_READ, "/b/x") == CORE_EPERMISSION_DENIED);
	EXPECT(core_auth_check_admin(&c, "alice") == CORE_EUSER_NOT_FOUND);
	EXPECT(core_auth_check_user(&c, "alice") == CORE_EUSER_NOT_FOUND);
	auth_free(c.auth);

	/* A new store (maybe at the same address, at the same generation)
	 * with the same names: nothing of the old one's copy is used. */
	c.auth = store_new();
	auth_put_role(c.auth, role("r", CORE_PERM_READ, "/z/", 1));
	auth_put_user(c.auth, user("alice", "r"));
	EXPECT(chk(&c, "alice", CORE_PERM_READ, "/b/x") == CORE_EPERMISSION_DENIED);
	EXPECT(chk(&c, "alice", CORE_PERM_READ, "/z/x") == CORE_OK);
	auth_free(c.auth);
}

/* More grants than a thread's copy holds: checked under the lock, rightly. */
static void test_many_grants(void)
{
	struct core c = {0};
	c.auth = store_new();
	auth_put_role(c.auth, role("big", CORE_PERM_READ, "/k/", 200));
	auth_put_user(c.auth, user("bob", "big"));
	EXPECT(chk(&c, "bob", CORE_PERM_READ, "/k/0000") == CORE_OK);
	EXPECT(chk(&c, "bob", CORE_PERM_READ, "/k/0199") == CORE_OK);
	EXPECT(chk(&c, "bob", CORE_PERM_READ, "/k/0200") == CORE_EPERMISSION_DENIED);
	EXPECT(chk(&c, "bob", CORE_PERM_WRITE, "/k/0001") == CORE_EPERMISSION_DENIED);
	EXPECT(core_auth_check_user(&c, "bob") == CORE_OK);
	auth_free(c.auth);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void test_tokens(void)
{
	struct core c = {0};
	c.auth = store_new();
	auth_put_user(c.auth, user("alice", NULL));
	char t[64], u[CORE_AUTH_USER_MAX];
	uint64_t rev;
	EXPECT(auth_token_new(c.auth, t) == CORE_OK);
	/* A TTL shorter than the copy's second: the copy lasts the TTL. */
	c.auth->token_ttl_ms = 150;
	EXPECT(auth_token_add(c.auth, t, "alice") == CORE_OK);
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_OK);
	EXPECT(strcmp(u, "alice") == 0);
	sleep_ms(50); /* used again within its TTL: refreshed, valid */
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_OK);
	sleep_ms(300); /* unused longer than its TTL: gone, copy or not */
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_EINVALID_AUTH_TOKEN);
	/* Dropped (password change, user delete): at once, not a second later. */
	c.auth->token_ttl_ms = 60000;
	EXPECT(auth_token_add(c.auth, t, "alice") == CORE_OK);
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_OK);
	auth_token_drop_user(c.auth, "alice");
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_EINVALID_AUTH_TOKEN);
	EXPECT(auth_token_add(c.auth, t, "alice") == CORE_OK);
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_OK);
	auth_token_clear(c.auth); /* auth disabled */
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_EINVALID_AUTH_TOKEN);
	/* Another token of the same length is not taken for it. */
	char t2[64];
	EXPECT(auth_token_new(c.auth, t2) == CORE_OK && auth_token_add(c.auth, t, "alice") == CORE_OK);
	EXPECT(core_auth_token_user(&c, t, strlen(t), u, &rev) == CORE_OK);
	memcpy(t2, t, strlen(t) + 1);
	t2[0] = t2[0] == 'a' ? 'b' : 'a';
	EXPECT(core_auth_token_user(&c, t2, strlen(t2), u, &rev) == CORE_EINVALID_AUTH_TOKEN);
	auth_free(c.auth);
}

/* Threads check while the writer swaps alice's role between two states;
 * every answer must be one of the two states', never a mix or a crash
 * (the ASan pass runs this too). */
struct race {
	struct core *c;
	_Atomic bool stop;
	_Atomic int bad, checks;
};

static void *checker(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->stop)) {
		int a = chk(r->c, "alice", CORE_PERM_READ, "/a/x");
		int b = chk(r->c, "alice", CORE_PERM_READ, "/b/x");
		/* State A grants /a/ only, state B /b/ only: each answer is
		 * OK or DENIED, whichever state the check saw. */
		if ((a != CORE_OK && a != CORE_EPERMISSION_DENIED) ||
		    (b != CORE_OK && b != CORE_EPERMISSION_DENIED))
			atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add(&r->checks, 1);
	}
	return NULL;
}

static void test_concurrent_changes(void)
{
	struct core c = {0};
	c.auth = store_new();
	auth_put_role(c.auth, role("r", CORE_PERM_READ, "/a/", 1));
	auth_put_user(c.auth, user("alice", "r"));
	struct race r = {.c = &c};
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, checker, &r);
	for (int i = 0; i < 2000; i++)
		put_role(c.auth, role("r", CORE_PERM_READ, i % 2 ? "/a/" : "/b/", 1));
	put_role(c.auth, role("r", CORE_PERM_READ, "/b/", 1));
	sleep_ms(20);
	/* The last state holds for every thread now. */
	EXPECT(chk(&c, "alice", CORE_PERM_READ, "/b/x") == CORE_OK);
	EXPECT(chk(&c, "alice", CORE_PERM_READ, "/a/x") == CORE_EPERMISSION_DENIED);
	atomic_store(&r.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	EXPECT(atomic_load(&r.bad) == 0 && atomic_load(&r.checks) > 0);
	auth_free(c.auth);
}

int main(void)
{
	test_changes_are_seen();
	test_many_grants();
	test_tokens();
	test_concurrent_changes();
	if (failures == 0)
		printf("test_auth_cache: all passed\n");
	return failures != 0;
}
