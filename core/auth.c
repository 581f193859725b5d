/*
 * core/auth.c — the auth store's entry points: start-up load, the Auth
 * service's requests (changes go through the log, reads come from memory)
 * and the password work that precedes a proposal.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"
#include "storage/auth.h"

#define DEFAULT_BCRYPT_COST 10 /* etcd's (bcrypt.DefaultCost) */
#define DEFAULT_TOKEN_TTL_S 300

/* ---- start-up ---- */

static int load_one(void *arg, int kind, const char *name, size_t name_len, const uint8_t *val,
		    size_t val_len)
{
	struct core_auth *a = arg;
	switch (kind) {
	case AUTH_REC_META:
		if (name_len == 7 && memcmp(name, "enabled", 7) == 0 && val_len == 1)
			atomic_store(&a->enabled, val[0] != 0);
		else if (name_len == 8 && memcmp(name, "revision", 8) == 0 && val_len == 8) {
			uint64_t rev = 0;
			for (int i = 0; i < 8; i++)
				rev = (rev << 8) | val[i];
			atomic_store(&a->revision, rev);
		}
		return DB_OK;
	case AUTH_REC_USER: {
		struct auth_user *u = auth_user_unpack(val, val_len);
		if (u == NULL)
			return DB_CORRUPT;
		if (!auth_put_user(a, u)) {
			auth_user_free(u);
			return DB_NOMEM;
		}
		return DB_OK;
	}
	case AUTH_REC_ROLE: {
		struct auth_role *r = auth_role_unpack(val, val_len);
		if (r == NULL)
			return DB_CORRUPT;
		if (!auth_put_role(a, r)) {
			auth_role_free(r);
			return DB_NOMEM;
		}
		return DB_OK;
	}
	default:
		return DB_CORRUPT;
	}
}

int auth_open(struct core *c, char *err, size_t errlen)
{
	struct core_auth *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		snprintf(err, errlen, "auth store: out of memory");
		return DB_NOMEM;
	}
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->tmu, NULL);
	a->bcrypt_cost = c->cfg.bcrypt_cost > 0 ? c->cfg.bcrypt_cost : DEFAULT_BCRYPT_COST;
	a->token_ttl_ms =
		(c->cfg.auth_token_ttl_s > 0 ? c->cfg.auth_token_ttl_s : DEFAULT_TOKEN_TTL_S) * 1000;
	const char *tok = c->cfg.auth_token;
	if (tok != NULL && strncmp(tok, "jwt", 3) == 0 && (tok[3] == 0 || tok[3] == ',') &&
	    auth_jwt_open(a, tok, err, errlen) != 0) {
		auth_free(a);
		return DB_INVALID;
	}
	int rv = auth_store_load(c->wsession, load_one, a);
	if (rv != DB_OK) {
		snprintf(err, errlen, "auth store: %s", db_strerror(rv));
		auth_free(a);
		return rv;
	}
	/* etcd's store starts at revision 1; a store never changed has none
	 * on disk, and the first change writes 2. */
	if (atomic_load(&a->revision) == 0)
		atomic_store(&a->revision, 1);
	c->auth = a;
	return DB_OK;
}

/* A snapshot replaced the store: the users and roles are the new store's.
 * Tokens stay (they name users; one whose user is gone stops working). */
int auth_reload(struct core *c)
{
	struct core_auth *a = c->auth;
	pthread_rwlock_wrlock(&a->lock);
	for (size_t i = 0; i < a->n_users; i++)
		auth_user_free(a->users[i]);
	for (size_t i = 0; i < a->n_roles; i++)
		auth_role_free(a->roles[i]);
	a->n_users = a->n_roles = 0;
	atomic_store(&a->enabled, false);
	atomic_store(&a->revision, 0);
	int rv = auth_store_load(c->wsession, load_one, a);
	if (atomic_load(&a->revision) == 0)
		atomic_store(&a->revision, 1);
	auth_changed(a);
	pthread_rwlock_unlock(&a->lock);
	return rv;
}

void auth_free(struct core_auth *a)
{
	if (a == NULL)
		return;
	for (size_t i = 0; i < a->n_users; i++)
		auth_user_free(a->users[i]);
	for (size_t i = 0; i < a->n_roles; i++)
		auth_role_free(a->roles[i]);
	free(a->users);
	free(a->roles);
	auth_tokens_free(a);
	auth_jwt_free(a->jwt);
	pthread_rwlock_destroy(&a->lock);
	pthread_mutex_destroy(&a->tmu);
	free(a);
}

/* ---- changes: one log entry each ---- */

#define SUBMIT(c, field, kase, req, cb, arg)                                                       \
	do {                                                                                       \
		Metadpb__InternalRequest ir_ = METADPB__INTERNAL_REQUEST__INIT;                     \
		ir_.request_case = METADPB__INTERNAL_REQUEST__REQUEST_##kase;                       \
		ir_.field = (void *)(req);                                                          \
		writer_submit(c, &ir_, cb, arg);                                                    \
	} while (0)

void core_auth_enable(struct core *c, core_done_fn cb, void *arg)
{
	Etcdserverpb__AuthEnableRequest q = ETCDSERVERPB__AUTH_ENABLE_REQUEST__INIT;
	SUBMIT(c, auth_enable, AUTH_ENABLE, &q, cb, arg);
}

void core_auth_disable(struct core *c, core_done_fn cb, void *arg)
{
	Etcdserverpb__AuthDisableRequest q = ETCDSERVERPB__AUTH_DISABLE_REQUEST__INIT;
	SUBMIT(c, auth_disable, AUTH_DISABLE, &q, cb, arg);
}

void core_auth_user_delete(struct core *c, const Etcdserverpb__AuthUserDeleteRequest *req,
			   core_done_fn cb, void *arg)
{
	SUBMIT(c, auth_user_delete, AUTH_USER_DELETE, req, cb, arg);
}

void core_auth_user_grant_role(struct core *c, const Etcdserverpb__AuthUserGrantRoleRequest *req,
			       core_done_fn cb, void *arg)
{
	SUBMIT(c, auth_user_grant_role, AUTH_USER_GRANT_ROLE, req, cb, arg);
}

void core_auth_user_revoke_role(struct core *c, const Etcdserverpb__AuthUserRevokeRoleRequest *req,
				core_done_fn cb, void *arg)
{
	SUBMIT(c, auth_user_revoke_role, AUTH_USER_REVOKE_ROLE, req, cb, arg);
}

void core_auth_role_add(struct core *c, const Etcdserverpb__AuthRoleAddRequest *req,
			core_done_fn cb, void *arg)
{
	SUBMIT(c, auth_role_add, AUTH_ROLE_ADD, req, cb, arg);
}

void core_auth_role_delete(struct core *c, const Etcdserverpb__AuthRoleDeleteRequest *req,
			   core_done_fn cb, void *arg)
{
	SUBMIT(c, auth_role_delete, AUTH_ROLE_DELETE, req, cb, arg);
}

void core_auth_role_grant_permission(struct core *c,
				     const Etcdserverpb__AuthRoleGrantPermissionRequest *req,
				     core_done_fn cb, void *arg)
{
	SUBMIT(c, auth_role_grant_permission, AUTH_ROLE_GRANT_PERMISSION, req, cb, arg);
}

void core_auth_role_revoke_permission(struct core *c,
				      const Etcdserverpb__AuthRoleRevokePermissionRequest *req,
				      core_done_fn cb, void *arg)
{
	SUBMIT(c, auth_role_revoke_permission, AUTH_ROLE_REVOKE_PERMISSION, req, cb, arg);
}

/*
 * The crypt string to store for a new password: hashed here (bcrypt, slow)
 * from password, or taken from hashed (etcd's hashedPassword: base64 of a
 * bcrypt hash). The log never carries the plain password.
 */
static int password_hash(struct core *c, const char *password, const char *hashed, char *out)
{
	if (hashed != NULL && hashed[0] != 0) {
		size_t n = strlen(hashed);
		if (n % 4 != 0 || n / 4 * 3 >= AUTH_HASH_MAX)
			return CORE_ENO_PASSWORD_USER; /* etcd's answer to a bad hashedPassword */
		int len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)hashed, (int)n);
		if (len < 0)
			return CORE_ENO_PASSWORD_USER;
		while (len > 0 && hashed[n - 1] == '=') { /* DecodeBlock counts padding */
			len--;
			n--;
		}
		out[len] = 0;
		return strlen(out) == (size_t)len && out[0] == '$' ? CORE_OK : CORE_ENO_PASSWORD_USER;
	}
	const char *pw = password ? password : "";
	return auth_passwd_hash(c->auth->bcrypt_cost, pw, strlen(pw), out, AUTH_HASH_MAX);
}

void core_auth_user_add(struct core *c, const Etcdserverpb__AuthUserAddRequest *req,
			core_done_fn cb, void *arg)
{
	Etcdserverpb__AuthUserAddRequest q = *req;
	char hash[AUTH_HASH_MAX];
	q.password = (char *)"";
	q.hashedpassword = (char *)"";
	bool no_password = req->options != NULL && req->options->no_password;
	if (!no_password && req->name != NULL && req->name[0] != 0) {
		int err = password_hash(c, req->password, req->hashedpassword, hash);
		if (err != CORE_OK) {
			reply_fail(cb, arg, err);
			return;
		}
		q.hashedpassword = hash;
	}
	SUBMIT(c, auth_user_add, AUTH_USER_ADD, &q, cb, arg);
	explicit_bzero(hash, sizeof(hash));
}

void core_auth_user_change_password(struct core *c,
				    const Etcdserverpb__AuthUserChangePasswordRequest *req,
				    core_done_fn cb, void *arg)
{
	Etcdserverpb__AuthUserChangePasswordRequest q = *req;
	char hash[AUTH_HASH_MAX];
	int err = password_hash(c, req->password, req->hashedpassword, hash);
	if (err != CORE_OK) {
		reply_fail(cb, arg, err);
		return;
	}
	q.password = (char *)"";
	q.hashedpassword = hash;
	SUBMIT(c, auth_user_change_password, AUTH_USER_CHANGE_PASSWORD, &q, cb, arg);
	explicit_bzero(hash, sizeof(hash));
}

static void jwt_reply(struct core *c, const char *user, uint64_t rev, core_done_fn cb, void *arg)
{
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	char *token = NULL;
	int err = auth_jwt_sign(c->auth, user, rev, &token);
	Etcdserverpb__AuthenticateResponse *m = arena_alloc(&r->arena, sizeof(*m));
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	if (err == CORE_OK && (m == NULL || h == NULL))
		err = CORE_ENOMEM;
	if (err == CORE_OK) {
		etcdserverpb__authenticate_response__init(m);
		m->header = h;
		if ((m->token = arena_dup(&r->arena, token, strlen(token) + 1)) == NULL)
			err = CORE_ENOMEM;
	}
	free(token);
	reply_done(r, err, err == CORE_OK ? &m->base : NULL, cb, arg);
}

void core_authenticate(struct core *c, const Etcdserverpb__AuthenticateRequest *req,
		       core_done_fn cb, void *arg)
{
	struct core_auth *a = c->auth;
	if (!core_auth_enabled(c)) {
		reply_fail(cb, arg, CORE_EAUTH_NOT_ENABLED);
		return;
	}
	char hash[AUTH_HASH_MAX] = "";
	int err = CORE_OK;
	pthread_rwlock_rdlock(&a->lock);
	uint64_t rev = atomic_load(&a->revision); /* the hash below is this revision's */
	const struct auth_user *u = auth_find_user(a, req->name ? req->name : "");
	if (u == NULL)
		err = CORE_EAUTH_FAILED;
	else if (u->no_password)
		err = CORE_ENO_PASSWORD_USER;
	else if (u->hash == NULL || strlen(u->hash) >= sizeof(hash))
		err = CORE_EAUTH_FAILED;
	else
		strcpy(hash, u->hash);
	pthread_rwlock_unlock(&a->lock);
	/* bcrypt outside the lock: it takes tens of milliseconds. */
	const char *pw = req->password ? req->password : "";
	if (err == CORE_OK && !auth_passwd_ok(hash, pw, strlen(pw)))
		err = CORE_EAUTH_FAILED;
	if (a->jwt != NULL) {
		/* Nothing to store: the token is signed here, at the revision the
		 * password was checked at, and is stale once the store moves on. */
		if (err == CORE_OK)
			jwt_reply(c, req->name, rev, cb, arg);
		else
			reply_fail(cb, arg, err);
		return;
	}
	char token[64];
	if (err == CORE_OK)
		err = auth_token_new(a, token);
	if (err != CORE_OK) {
		reply_fail(cb, arg, err);
		return;
	}
	Metadpb__InternalAuthenticate ia = METADPB__INTERNAL_AUTHENTICATE__INIT;
	ia.name = req->name;
	ia.simple_token = token;
	ia.checked_hash = hash;
	SUBMIT(c, authenticate, AUTHENTICATE, &ia, cb, arg);
}

/* ---- reads: from memory, answered inline ---- */

static char **names_copy(struct reply *r, char *const *names, size_t n)
{
	char **v = arena_alloc(&r->arena, (n ? n : 1) * sizeof(char *));
	for (size_t i = 0; v != NULL && i < n; i++)
		if ((v[i] = arena_dup(&r->arena, names[i], strlen(names[i]) + 1)) == NULL)
			return NULL;
	return v;
}

void core_auth_status(struct core *c, core_done_fn cb, void *arg)
{
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	Etcdserverpb__AuthStatusResponse *m = arena_alloc(&r->arena, sizeof(*m));
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	if (m == NULL || h == NULL) {
		reply_done(r, CORE_ENOMEM, NULL, cb, arg);
		return;
	}
	etcdserverpb__auth_status_response__init(m);
	m->header = h;
	m->enabled = core_auth_enabled(c);
	m->authrevision = atomic_load(&c->auth->revision);
	reply_done(r, CORE_OK, &m->base, cb, arg);
}

void core_auth_user_get(struct core *c, const Etcdserverpb__AuthUserGetRequest *req,
			core_done_fn cb, void *arg)
{
	struct core_auth *a = c->auth;
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	Etcdserverpb__AuthUserGetResponse *m = arena_alloc(&r->arena, sizeof(*m));
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	int err = m && h ? CORE_OK : CORE_ENOMEM;
	pthread_rwlock_rdlock(&a->lock);
	const struct auth_user *u = auth_find_user(a, req->name ? req->name : "");
	if (err == CORE_OK && u == NULL)
		err = CORE_EUSER_NOT_FOUND;
	if (err == CORE_OK) {
		etcdserverpb__auth_user_get_response__init(m);
		m->header = h;
		m->roles = names_copy(r, u->roles, u->n_roles);
		m->n_roles = u->n_roles;
		if (m->roles == NULL)
			err = CORE_ENOMEM;
	}
	pthread_rwlock_unlock(&a->lock);
	reply_done(r, err, err == CORE_OK ? &m->base : NULL, cb, arg);
}

void core_auth_user_list(struct core *c, core_done_fn cb, void *arg)
{
	struct core_auth *a = c->auth;
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	Etcdserverpb__AuthUserListResponse *m = arena_alloc(&r->arena, sizeof(*m));
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	int err = m && h ? CORE_OK : CORE_ENOMEM;
	pthread_rwlock_rdlock(&a->lock);
	if (err == CORE_OK) {
		etcdserverpb__auth_user_list_response__init(m);
		m->header = h;
		m->users = arena_alloc(&r->arena, (a->n_users ? a->n_users : 1) * sizeof(char *));
		for (size_t i = 0; m->users != NULL && i < a->n_users; i++) {
			const char *n = a->users[i]->name;
			if ((m->users[i] = arena_dup(&r->arena, n, strlen(n) + 1)) == NULL)
				m->users = NULL;
		}
		m->n_users = a->n_users;
		if (m->users == NULL)
			err = CORE_ENOMEM;
	}
	pthread_rwlock_unlock(&a->lock);
	reply_done(r, err, err == CORE_OK ? &m->base : NULL, cb, arg);
}

void core_auth_role_list(struct core *c, core_done_fn cb, void *arg)
{
	struct core_auth *a = c->auth;
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	Etcdserverpb__AuthRoleListResponse *m = arena_alloc(&r->arena, sizeof(*m));
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	int err = m && h ? CORE_OK : CORE_ENOMEM;
	pthread_rwlock_rdlock(&a->lock);
	if (err == CORE_OK) {
		etcdserverpb__auth_role_list_response__init(m);
		m->header = h;
		m->roles = arena_alloc(&r->arena, (a->n_roles ? a->n_roles : 1) * sizeof(char *));
		for (size_t i = 0; m->roles != NULL && i < a->n_roles; i++) {
			const char *n = a->roles[i]->name;
			if ((m->roles[i] = arena_dup(&r->arena, n, strlen(n) + 1)) == NULL)
				m->roles = NULL;
		}
		m->n_roles = a->n_roles;
		if (m->roles == NULL)
			err = CORE_ENOMEM;
	}
	pthread_rwlock_unlock(&a->lock);
	reply_done(r, err, err == CORE_OK ? &m->base : NULL, cb, arg);
}

static Authpb__Permission *perm_out(struct reply *r, int type, const uint8_t *key, size_t key_len,
				    const uint8_t *end, size_t end_len)
{
	Authpb__Permission *p = arena_alloc(&r->arena, sizeof(*p));
	if (p == NULL)
		return NULL;
	authpb__permission__init(p);
	p->permtype = (Authpb__Permission__Type)type;
	p->key.data = key_len ? arena_dup(&r->arena, key, key_len) : NULL;
	p->key.len = key_len;
	p->range_end.data = end_len ? arena_dup(&r->arena, end, end_len) : NULL;
	p->range_end.len = end_len;
	if ((key_len && !p->key.data) || (end_len && !p->range_end.data))
		return NULL;
	return p;
}

void core_auth_role_get(struct core *c, const Etcdserverpb__AuthRoleGetRequest *req,
			core_done_fn cb, void *arg)
{
	struct core_auth *a = c->auth;
	struct reply *r = reply_new();
	if (r == NULL) {
		reply_fail(cb, arg, CORE_ENOMEM);
		return;
	}
	Etcdserverpb__AuthRoleGetResponse *m = arena_alloc(&r->arena, sizeof(*m));
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	int err = m && h ? CORE_OK : CORE_ENOMEM;
	pthread_rwlock_rdlock(&a->lock);
	const char *name = req->role ? req->role : "";
	const struct auth_role *role = auth_find_role(a, name);
	if (err == CORE_OK && role == NULL)
		err = CORE_EROLE_NOT_FOUND;
	if (err == CORE_OK) {
		etcdserverpb__auth_role_get_response__init(m);
		m->header = h;
		if (strcmp(name, "root") == 0) {
			/* etcd shows the root role as READWRITE on everything. */
			static const uint8_t zero = 0;
			m->perm = arena_alloc(&r->arena, sizeof(*m->perm));
			if (m->perm && (m->perm[0] = perm_out(r, CORE_PERM_READWRITE, NULL, 0, &zero, 1)))
				m->n_perm = 1;
			else
				err = CORE_ENOMEM;
		} else {
			m->perm = arena_alloc(&r->arena, (role->n_perms ? role->n_perms : 1) *
								 sizeof(*m->perm));
			for (size_t i = 0; m->perm != NULL && i < role->n_perms; i++) {
				const struct auth_perm *p = &role->perms[i];
				if ((m->perm[i] = perm_out(r, p->type, p->key, p->key_len, p->end,
							   p->end_len)) == NULL)
					m->perm = NULL;
			}
			m->n_perm = role->n_perms;
			if (m->perm == NULL)
				err = CORE_ENOMEM;
		}
	}
	pthread_rwlock_unlock(&a->lock);
	reply_done(r, err, err == CORE_OK ? &m->base : NULL, cb, arg);
}
