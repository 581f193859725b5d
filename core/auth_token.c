/*
 * core/auth_token.c — etcd's "simple" tokens: random text naming a user,
 * valid for --auth-token-ttl after its last use.
 *
 * A token is chosen by the member that checked the password and travels in
 * the Authenticate log entry, so every member registers the same token and
 * a client may use it anywhere. Every request with auth on looks its token
 * up, so tokens sit in a hash table (one per logged-in client). Expiry is
 * checked when a token is used, and expired tokens are swept when a new one
 * is added (a login costs a bcrypt hash anyway): no timer thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

#define TOKEN_LETTERS 16
#define MIN_BUCKETS 64


/* FNV-1a: tokens are random already; this only spreads them. */
static size_t hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

int auth_token_new(struct core_auth *a, char out[64])
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	uint8_t rnd[TOKEN_LETTERS];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return CORE_EINTERNAL;
	for (int i = 0; i < TOKEN_LETTERS; i++)
		out[i] = letters[rnd[i] % 52]; /* 52 of 256: a slight bias, 16 letters ~ 91 bits */
	/* etcd appends the raft index; a per-member sequence keeps tokens
	 * made in the same instant apart just the same. */
	snprintf(out + TOKEN_LETTERS, 64 - TOKEN_LETTERS, ".%llu",
		 (unsigned long long)atomic_fetch_add(&a->token_seq, 1) + 1);
	return CORE_OK;
}

static void token_free(struct auth_token *t)
{
	free(t->token);
	free(t->user);
	free(t);
}

/* Remove every token for which drop(t, arg) says so. With tmu held. */
static void sweep(struct core_auth *a, bool (*drop)(const struct auth_token *, const void *),
		  const void *arg)
{
	for (size_t b = 0; b < a->n_buckets; b++) {
		struct auth_token **pp = &a->buckets[b];
		while (*pp != NULL) {
			struct auth_token *t = *pp;
			if (drop(t, arg)) {
				*pp = t->next;
				token_free(t);
				a->n_tokens--;
			} else {
				pp = &t->next;
			}
		}
	}
}

static bool expired(const struct auth_token *t, const void *now)
{
	return t->expires_ms <= *(const int64_t *)now;
}

static bool named(const struct auth_token *t, const void *text)
{
	return strcmp(t->token, text) == 0;
}

static bool of_user(const struct auth_token *t, const void *user)
{
	return strcmp(t->user, user) == 0;
}

static bool any(const struct auth_token *t, const void *arg)
{
	(void)t, (void)arg;
	return true;
}

/* Double the table when it holds more tokens than buckets. With tmu held;
 * out of memory just keeps the old table (chains grow, lookups still work). */
static void grow(struct core_auth *a)
{
	if (a->n_tokens < a->n_buckets && a->n_buckets > 0)
		return;
	size_t n = a->n_buckets ? a->n_buckets * 2 : MIN_BUCKETS;
	struct auth_token **nb = calloc(n, sizeof(*nb));
	if (nb == NULL)
		return;
	for (size_t b = 0; b < a->n_buckets; b++)
		while (a->buckets[b] != NULL) {
			struct auth_token *t = a->buckets[b];
			a->buckets[b] = t->next;
			size_t i = hash(t->token, strlen(t->token)) % n;
			t->next = nb[i];
			nb[i] = t;
		}
	free(a->buckets);
	a->buckets = nb;
	a->n_buckets = n;
}

int auth_token_add(struct core_auth *a, const char *token, const char *user)
{
	int64_t now = auth_now_ms();
	struct auth_token *t = calloc(1, sizeof(*t));
	if (t == NULL || (t->token = strdup(token)) == NULL || (t->user = strdup(user)) == NULL) {
		if (t != NULL)
			token_free(t);
		return CORE_ENOMEM;
	}
	t->expires_ms = now + a->token_ttl_ms;
	pthread_mutex_lock(&a->tmu);
	sweep(a, expired, &now);
	sweep(a, named, token); /* replayed: the same token again */
	grow(a);
	if (a->n_buckets == 0) {
		pthread_mutex_unlock(&a->tmu);
		token_free(t);
		return CORE_ENOMEM;
	}
	size_t i = hash(token, strlen(token)) % a->n_buckets;
	t->next = a->buckets[i];
	a->buckets[i] = t;
	a->n_tokens++;
	pthread_mutex_unlock(&a->tmu);
	return CORE_OK;
}

void auth_token_drop_user(struct core_auth *a, const char *user)
{
	pthread_mutex_lock(&a->tmu);
	sweep(a, of_user, user);
	auth_changed(a); /* a thread's copy may hold one of them */
	pthread_mutex_unlock(&a->tmu);
}

void auth_token_clear(struct core_auth *a)
{
	pthread_mutex_lock(&a->tmu);
	sweep(a, any, NULL);
	auth_changed(a);
	pthread_mutex_unlock(&a->tmu);
}

void auth_tokens_free(struct core_auth *a)
{
	auth_token_clear(a);
	free(a->buckets);
	a->buckets = NULL;
	a->n_buckets = 0;
}

int core_auth_token_user(struct core *c, const char *token, size_t len, char *user,
			 uint64_t *rev)
{
	struct core_auth *a = c->auth;
	/* Read before the lookup: a change meanwhile makes the copy stale. */
	uint64_t gen = atomic_load_explicit(&a->gen, memory_order_acquire);
	if (auth_cache_token_get(a, token, len, user, rev)) {
		if (a->jwt == NULL)
			*rev = atomic_load(&a->revision);
		return CORE_OK;
	}
	int64_t now = auth_now_ms();
	if (a->jwt != NULL) {
		long long exp;
		int jerr = auth_jwt_verify_exp(a, token, len, user, rev, &exp);
		/* exp counts whole seconds: up to a second less may be left. */
		long long left_ms = (exp - (long long)time(NULL) - 1) * 1000;
		if (jerr == CORE_OK && left_ms > 0)
			auth_cache_token_put(a, gen, token, len, user, *rev,
					     now + (left_ms < 1000 ? left_ms : 1000));
		return jerr;
	}
	*rev = atomic_load(&a->revision); /* a simple token never goes stale */
	int err = CORE_EINVALID_AUTH_TOKEN;
	pthread_mutex_lock(&a->tmu);
	struct auth_token **pp = a->n_buckets ? &a->buckets[hash(token, len) % a->n_buckets] : NULL;
	for (; pp != NULL && *pp != NULL; pp = &(*pp)->next) {
		struct auth_token *t = *pp;
		if (strlen(t->token) != len || memcmp(t->token, token, len) != 0)
			continue;
		if (t->expires_ms <= now) {
			*pp = t->next;
			token_free(t);
			a->n_tokens--;
			break;
		}
		size_t n = strlen(t->user);
		if (n < CORE_AUTH_USER_MAX) {
			memcpy(user, t->user, n + 1);
			t->expires_ms = now + a->token_ttl_ms; /* refreshed on use, as etcd */
			err = CORE_OK;
		}
		break;
	}
	pthread_mutex_unlock(&a->tmu);
	if (err == CORE_OK) /* its expiry is a TTL ahead now: safe to take for the window */
		auth_cache_token_put(a, gen, token, len, user, 0,
				     now + auth_cache_token_window_ms(a));
	return err;
}
