/*
 * core/auth_cache.c — the checks every request makes with auth on, without
 * the store's locks on the hot path.
 *
 * With auth on, each request resolves its token (the token table, under a
 * mutex; a JWT, an ECDSA or RSA verification) and checks its keys against
 * the user's roles (the store, under a rwlock). Each thread keeps instead
 * the last token it resolved and the grants of the last user it checked,
 * copied out of the store, for one generation of it: every change of users,
 * roles or tokens bumps auth->gen while the writer holds the lock
 * (auth_changed), so a thread that sees the generation its copy was made at
 * uses the copy, which is what it would have read under the lock an instant
 * before. A copy is made under the read lock, and only if it fits the
 * thread's fixed buffers (no allocation, nothing to free at thread exit);
 * a user with more grants is checked under the lock every time.
 *
 * Tokens: a simple token is taken from the copy for at most a second (or
 * its TTL, if shorter) after the table last said yes and refreshed its
 * expiry, so it is never used past its expiry; etcd refreshes the expiry on
 * every use, metad at least once a second while the token is in use. A JWT
 * is taken from the copy for at most a second and never past its exp.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

#define CACHED_TOKEN_MAX 1024 /* longer tokens (large JWTs) are not kept */
#define CACHED_PERMS_MAX 64
#define CACHED_BYTES_MAX 4096
#define TOKEN_WINDOW_MS 1000

static _Atomic uint64_t next_store_id;

struct token_copy {
	uint64_t store; /* auth_store_id of the store it came from; 0: none */
	uint64_t gen;
	size_t len;
	char token[CACHED_TOKEN_MAX];
	char user[CORE_AUTH_USER_MAX];
	uint64_t rev;     /* a JWT's revision claim */
	int64_t until_ms; /* CLOCK_MONOTONIC: taken from here until then */
};

struct grants_copy {
	uint64_t store;
	uint64_t gen;
	char user[CORE_AUTH_USER_MAX];
	struct auth_grants g;
	struct auth_perm perms[CACHED_PERMS_MAX];
	uint8_t bytes[CACHED_BYTES_MAX];
};

static _Thread_local struct token_copy tok;
static _Thread_local struct grants_copy gc;

int64_t auth_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void auth_changed(struct core_auth *a)
{
	atomic_fetch_add_explicit(&a->gen, 1, memory_order_release);
}

/* A store's id, unique in the process (a store freed and another allocated
 * at the same address must not look like it): given at first use. */
static uint64_t store_id(struct core_auth *a)
{
	uint64_t id = atomic_load_explicit(&a->id, memory_order_acquire);
	if (id != 0)
		return id;
	uint64_t mine = atomic_fetch_add(&next_store_id, 1) + 1, none = 0;
	if (atomic_compare_exchange_strong(&a->id, &none, mine))
		return mine;
	return none; /* another thread gave it one first */
}

/* ---- tokens ---- */

bool auth_cache_token_get(struct core_auth *a, const char *token, size_t len, char *user,
			  uint64_t *rev)
{
	if (tok.store != store_id(a) || tok.len != len || len == 0 ||
	    tok.gen != atomic_load_explicit(&a->gen, memory_order_acquire) ||
	    memcmp(tok.token, token, len) != 0 || auth_now_ms() >= tok.until_ms)
		return false;
	memcpy(user, tok.user, strlen(tok.user) + 1);
	*rev = tok.rev;
	return true;
}

void auth_cache_token_put(struct core_auth *a, uint64_t gen, const char *token, size_t len,
			  const char *user, uint64_t rev, int64_t until_ms)
{
	size_t n = strlen(user);
	if (len == 0 || len > CACHED_TOKEN_MAX || n >= CORE_AUTH_USER_MAX)
		return;
	tok.store = store_id(a);
	tok.gen = gen;
	tok.len = len;
	memcpy(tok.token, token, len);
	memcpy(tok.user, user, n + 1);
	tok.rev = rev;
	tok.until_ms = until_ms;
}

int64_t auth_cache_token_window_ms(const struct core_auth *a)
{
	return a->token_ttl_ms > 0 && a->token_ttl_ms < TOKEN_WINDOW_MS ? a->token_ttl_ms
									 : TOKEN_WINDOW_MS;
}

/* ---- grants ---- */

/* With the lock held: user's grants, every permission of every role,
 * flattened into g (perms and their key bytes into the given buffers).
 * False if they do not fit. */
static bool flatten(struct core_auth *a, const char *user, struct auth_grants *g,
		    struct auth_perm *perms, size_t max, uint8_t *bytes, size_t cap)
{
	const struct auth_user *u = auth_find_user(a, user);
	g->perms = perms;
	g->n = 0;
	g->bytes = NULL;
	if (u == NULL) {
		g->kind = AUTH_GRANTS_NO_USER;
		return true;
	}
	if (auth_user_has_role(u, "root")) {
		g->kind = AUTH_GRANTS_ROOT;
		return true;
	}
	g->kind = AUTH_GRANTS_PERMS;
	size_t used = 0;
	for (size_t i = 0; i < u->n_roles; i++) {
		const struct auth_role *r = auth_find_role(a, u->roles[i]);
		for (size_t j = 0; r != NULL && j < r->n_perms; j++) {
			const struct auth_perm *p = &r->perms[j];
			if (g->n == max || p->key_len > cap - used || p->end_len > cap - used - p->key_len)
				return false;
			struct auth_perm *q = &perms[g->n++];
			q->type = p->type;
			q->key = bytes + used;
			q->key_len = p->key_len;
			if (p->key_len > 0)
				memcpy(q->key, p->key, p->key_len);
			used += p->key_len;
			q->end = p->end_len ? bytes + used : NULL;
			q->end_len = p->end_len;
			if (p->end_len > 0)
				memcpy(q->end, p->end, p->end_len);
			used += p->end_len;
		}
	}
	return true;
}

const struct auth_grants *auth_cache_grants(struct core_auth *a, const char *user)
{
	uint64_t id = store_id(a);
	if (gc.store == id && gc.gen == atomic_load_explicit(&a->gen, memory_order_acquire) &&
	    strcmp(gc.user, user) == 0)
		return &gc.g;
	size_t n = strlen(user);
	if (n >= CORE_AUTH_USER_MAX)
		return NULL;
	pthread_rwlock_rdlock(&a->lock);
	uint64_t gen = atomic_load_explicit(&a->gen, memory_order_acquire); /* stable: locked */
	bool fits = flatten(a, user, &gc.g, gc.perms, CACHED_PERMS_MAX, gc.bytes, CACHED_BYTES_MAX);
	pthread_rwlock_unlock(&a->lock);
	if (!fits) {
		gc.store = 0;
		return NULL;
	}
	gc.store = id;
	gc.gen = gen;
	memcpy(gc.user, user, n + 1);
	return &gc.g;
}

bool auth_grants_locked(struct core_auth *a, const char *user, struct auth_grants *g)
{
	size_t max = 0, cap = 0;
	const struct auth_user *u = auth_find_user(a, user);
	for (size_t i = 0; u != NULL && i < u->n_roles; i++) {
		const struct auth_role *r = auth_find_role(a, u->roles[i]);
		for (size_t j = 0; r != NULL && j < r->n_perms; j++) {
			max++;
			cap += r->perms[j].key_len + r->perms[j].end_len;
		}
	}
	struct auth_perm *perms = malloc((max ? max : 1) * sizeof(*perms));
	uint8_t *bytes = malloc(cap ? cap : 1);
	if (perms == NULL || bytes == NULL || !flatten(a, user, g, perms, max, bytes, cap)) {
		free(perms);
		free(bytes);
		return false;
	}
	g->bytes = bytes;
	return true;
}

void auth_grants_free(struct auth_grants *g)
{
	free(g->perms);
	free(g->bytes);
}
