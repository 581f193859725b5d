/*
 * core/auth_token.c — etcd's "simple" tokens: random text naming a user,
 * valid for --auth-token-ttl after its last use.
 *
 * A token is chosen by the member that checked the password and travels in
 * the Authenticate log entry, so every member registers the same token and
 * a client may use it anywhere. Expiry is checked when a token is used and
 * expired ones are swept when new ones are added: no timer thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

#define TOKEN_LETTERS 16

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static void token_drop(struct core_auth *a, size_t i)
{
	free(a->tokens[i].token);
	free(a->tokens[i].user);
	a->tokens[i] = a->tokens[--a->n_tokens];
}

int auth_token_add(struct core_auth *a, const char *token, const char *user)
{
	int64_t now = now_ms();
	char *t = strdup(token), *u = strdup(user);
	if (t == NULL || u == NULL) {
		free(t);
		free(u);
		return CORE_ENOMEM;
	}
	pthread_mutex_lock(&a->tmu);
	for (size_t i = 0; i < a->n_tokens;) {
		if (a->tokens[i].expires_ms <= now || strcmp(a->tokens[i].token, token) == 0)
			token_drop(a, i);
		else
			i++;
	}
	if (a->n_tokens == a->cap_tokens) {
		size_t cap = a->cap_tokens ? a->cap_tokens * 2 : 16;
		struct auth_token *v = realloc(a->tokens, cap * sizeof(*v));
		if (v == NULL) {
			pthread_mutex_unlock(&a->tmu);
			free(t);
			free(u);
			return CORE_ENOMEM;
		}
		a->tokens = v;
		a->cap_tokens = cap;
	}
	a->tokens[a->n_tokens++] = (struct auth_token){t, u, now + a->token_ttl_ms};
	pthread_mutex_unlock(&a->tmu);
	return CORE_OK;
}

void auth_token_drop_user(struct core_auth *a, const char *user)
{
	pthread_mutex_lock(&a->tmu);
	for (size_t i = 0; i < a->n_tokens;) {
		if (strcmp(a->tokens[i].user, user) == 0)
			token_drop(a, i);
		else
			i++;
	}
	pthread_mutex_unlock(&a->tmu);
}

void auth_token_clear(struct core_auth *a)
{
	pthread_mutex_lock(&a->tmu);
	while (a->n_tokens > 0)
		token_drop(a, a->n_tokens - 1);
	pthread_mutex_unlock(&a->tmu);
}

void auth_tokens_free(struct core_auth *a)
{
	auth_token_clear(a);
	free(a->tokens);
	a->tokens = NULL;
	a->cap_tokens = 0;
}

int core_auth_token_user(struct core *c, const char *token, size_t len, char *user)
{
	struct core_auth *a = c->auth;
	int64_t now = now_ms();
	int err = CORE_EINVALID_AUTH_TOKEN;
	pthread_mutex_lock(&a->tmu);
	/* Linear: a member holds one token per logged-in client session, and
	 * clients reuse theirs for every call. */
	for (size_t i = 0; i < a->n_tokens; i++) {
		struct auth_token *t = &a->tokens[i];
		if (strlen(t->token) != len || memcmp(t->token, token, len) != 0)
			continue;
		if (t->expires_ms <= now) {
			token_drop(a, i);
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
	return err;
}
