/*
 * tests/fuzz/fuzz_common.h — a core with just an auth store, for harnesses
 * that exercise the auth code without a database: users alice (READWRITE
 * on prefix /a/, READ on /k, WRITE from /z) and root.
 */
#ifndef METAD_TESTS_FUZZ_COMMON_H
#define METAD_TESTS_FUZZ_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

static inline void fuzz_grant(struct auth_role *r, int type, const char *key, const char *end,
			      size_t end_len)
{
	struct auth_perm *p = &r->perms[r->n_perms++];
	p->type = type;
	p->key_len = strlen(key);
	p->key = (uint8_t *)strdup(key);
	p->end_len = end_len;
	p->end = end_len ? malloc(end_len) : NULL;
	if (end_len)
		memcpy(p->end, end, end_len);
}

static inline struct auth_user *fuzz_user(const char *name, const char *role)
{
	struct auth_user *u = calloc(1, sizeof(*u));
	u->name = strdup(name);
	u->roles = calloc(1, sizeof(char *));
	u->roles[0] = strdup(role);
	u->n_roles = 1;
	return u;
}

/* Lives for the process: harness inputs come and go, the store stays. */
static inline struct core *fuzz_core(void)
{
	static struct core c;
	if (c.auth != NULL)
		return &c;
	struct core_auth *a = calloc(1, sizeof(*a));
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->tmu, NULL);
	atomic_store(&a->enabled, true);
	atomic_store(&a->revision, 5);
	a->token_ttl_ms = 60000;
	struct auth_role *r = calloc(1, sizeof(*r));
	r->name = strdup("r1");
	r->perms = calloc(4, sizeof(*r->perms));
	fuzz_grant(r, CORE_PERM_READWRITE, "/a/", "/a0", 3);
	fuzz_grant(r, CORE_PERM_READ, "/k", NULL, 0);
	fuzz_grant(r, CORE_PERM_WRITE, "/z", "", 1);
	auth_put_role(a, r);
	auth_put_user(a, fuzz_user("alice", "r1"));
	auth_put_user(a, fuzz_user("root", "root"));
	c.auth = a;
	return &c;
}

#endif
