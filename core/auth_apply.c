/*
 * core/auth_apply.c — applying auth log entries (etcd's auth store changes).
 *
 * Runs on the writer thread inside the batch's transaction, holding the
 * model's write lock, so checks and readers see a change all at once. Each
 * change checks everything that can refuse it first, then writes the
 * record, then the model, and bumps auth_revision as etcd does (AuthEnable
 * and no-op grants excepted). A storage failure here aborts the process, as
 * the writer does: the log still holds the entry, and replay redoes it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"
#include "storage/auth.h"

#define ROOT "root"

static void must(int rv, const char *what)
{
	if (rv != DB_OK) {
		core_log("fatal", "auth store %s: %s", what, db_strerror(rv));
		abort();
	}
}

static void save_user(struct db_session *s, const struct auth_user *u)
{
	size_t len;
	uint8_t *b = auth_user_pack(u, &len);
	if (b == NULL)
		must(DB_NOMEM, "pack user");
	must(auth_store_put(s, AUTH_REC_USER, u->name, strlen(u->name), b, len), "put user");
	free(b);
}

static void save_role(struct db_session *s, const struct auth_role *r)
{
	size_t len;
	uint8_t *b = auth_role_pack(r, &len);
	if (b == NULL)
		must(DB_NOMEM, "pack role");
	must(auth_store_put(s, AUTH_REC_ROLE, r->name, strlen(r->name), b, len), "put role");
	free(b);
}

static void bump_revision(struct core_auth *a, struct db_session *s)
{
	uint64_t rev = atomic_load(&a->revision) + 1;
	uint8_t v[8];
	for (int i = 7; i >= 0; i--)
		v[7 - i] = (uint8_t)(rev >> (8 * i));
	must(auth_store_put(s, AUTH_REC_META, "revision", 8, v, 8), "put revision");
	atomic_store(&a->revision, rev);
}

static void save_enabled(struct db_session *s, bool on)
{
	uint8_t v = on;
	must(auth_store_put(s, AUTH_REC_META, "enabled", 7, &v, 1), "put enabled");
}

/* A copy of u (roles too), for copy-on-write changes of the model. */
static struct auth_user *user_copy(const struct auth_user *u)
{
	struct auth_user *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->name = strdup(u->name);
	d->hash = u->hash ? strdup(u->hash) : NULL;
	d->no_password = u->no_password;
	d->roles = calloc(u->n_roles + 1, sizeof(char *)); /* + 1: room for a grant */
	bool ok = d->name && d->roles && (!u->hash || d->hash);
	for (size_t i = 0; ok && i < u->n_roles; i++) {
		ok = (d->roles[i] = strdup(u->roles[i])) != NULL;
		d->n_roles += ok;
	}
	if (!ok) {
		auth_user_free(d);
		return NULL;
	}
	return d;
}

static struct auth_role *role_copy(const struct auth_role *r, size_t extra)
{
	struct auth_role *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->name = strdup(r->name);
	d->perms = calloc(r->n_perms + extra + 1, sizeof(*d->perms));
	bool ok = d->name && d->perms;
	for (size_t i = 0; ok && i < r->n_perms; i++) {
		const struct auth_perm *p = &r->perms[i];
		struct auth_perm *q = &d->perms[i];
		q->type = p->type;
		q->key = malloc(p->key_len + 1);
		q->end = p->end_len ? malloc(p->end_len) : NULL;
		d->n_perms++;
		ok = q->key && (!p->end_len || q->end);
		if (ok) {
			if (p->key_len)
				memcpy(q->key, p->key, p->key_len);
			q->key_len = p->key_len;
			if (p->end_len)
				memcpy(q->end, p->end, p->end_len);
			q->end_len = p->end_len;
		}
	}
	if (!ok) {
		auth_role_free(d);
		return NULL;
	}
	return d;
}

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t m = an < bn ? an : bn;
	int c = m ? memcmp(a, b, m) : 0;
	return c ? c : (an > bn) - (an < bn);
}

static int user_add(struct core_auth *a, struct db_session *s,
		    const Etcdserverpb__AuthUserAddRequest *q)
{
	if (q->name == NULL || q->name[0] == 0)
		return CORE_EUSER_EMPTY;
	if (auth_find_user(a, q->name) != NULL)
		return CORE_EUSER_EXISTS;
	struct auth_user *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return CORE_ENOMEM;
	u->no_password = q->options != NULL && q->options->no_password;
	u->name = strdup(q->name);
	u->roles = calloc(1, sizeof(char *));
	if (!u->no_password && q->hashedpassword && q->hashedpassword[0])
		u->hash = strdup(q->hashedpassword);
	if (!u->name || !u->roles || (!u->no_password && !u->hash)) {
		int err = u->name && u->roles && !(q->hashedpassword && q->hashedpassword[0])
				  ? CORE_ENO_PASSWORD_USER
				  : CORE_ENOMEM;
		auth_user_free(u);
		return err;
	}
	save_user(s, u);
	if (!auth_put_user(a, u)) {
		auth_user_free(u);
		return CORE_ENOMEM;
	}
	bump_revision(a, s);
	return CORE_OK;
}

static int user_delete(struct core_auth *a, struct db_session *s, const char *name)
{
	if (atomic_load(&a->enabled) && strcmp(name, ROOT) == 0)
		return CORE_EINVALID_AUTH_MGMT;
	if (auth_find_user(a, name) == NULL)
		return CORE_EUSER_NOT_FOUND;
	must(auth_store_delete(s, AUTH_REC_USER, name, strlen(name)), "delete user");
	auth_token_drop_user(a, name);
	auth_remove_user(a, name);
	bump_revision(a, s);
	return CORE_OK;
}

static int user_change_password(struct core_auth *a, struct db_session *s,
				const Etcdserverpb__AuthUserChangePasswordRequest *q)
{
	const struct auth_user *old = auth_find_user(a, q->name);
	if (old == NULL)
		return CORE_EUSER_NOT_FOUND;
	struct auth_user *u = user_copy(old);
	if (u == NULL)
		return CORE_ENOMEM;
	if (!u->no_password) { /* etcd keeps a no-password user without one */
		free(u->hash);
		u->hash = q->hashedpassword && q->hashedpassword[0] ? strdup(q->hashedpassword) : NULL;
		if (u->hash == NULL) {
			auth_user_free(u);
			return CORE_ENO_PASSWORD_USER;
		}
	}
	save_user(s, u);
	auth_token_drop_user(a, u->name);
	if (!auth_put_user(a, u)) {
		auth_user_free(u);
		return CORE_ENOMEM;
	}
	bump_revision(a, s);
	return CORE_OK;
}

static int user_grant_role(struct core_auth *a, struct db_session *s,
			   const Etcdserverpb__AuthUserGrantRoleRequest *q)
{
	const struct auth_user *old = auth_find_user(a, q->user);
	if (old == NULL)
		return CORE_EUSER_NOT_FOUND;
	/* The root role needs no record: granting it is how root is made. */
	if (strcmp(q->role, ROOT) != 0 && auth_find_role(a, q->role) == NULL)
		return CORE_EROLE_NOT_FOUND;
	if (auth_user_has_role(old, q->role))
		return CORE_OK; /* etcd ignores a repeated grant */
	struct auth_user *u = user_copy(old);
	char *role = strdup(q->role);
	if (u == NULL || role == NULL) {
		auth_user_free(u);
		free(role);
		return CORE_ENOMEM;
	}
	size_t i = 0;
	while (i < u->n_roles && strcmp(u->roles[i], role) < 0)
		i++;
	memmove(u->roles + i + 1, u->roles + i, (u->n_roles - i) * sizeof(char *));
	u->roles[i] = role;
	u->n_roles++;
	save_user(s, u);
	if (!auth_put_user(a, u)) {
		auth_user_free(u);
		return CORE_ENOMEM;
	}
	bump_revision(a, s);
	return CORE_OK;
}

/* u without role; false if u does not hold it. */
static bool drop_role(struct auth_user *u, const char *role)
{
	for (size_t i = 0; i < u->n_roles; i++)
		if (strcmp(u->roles[i], role) == 0) {
			free(u->roles[i]);
			memmove(u->roles + i, u->roles + i + 1, (u->n_roles - i - 1) * sizeof(char *));
			u->n_roles--;
			return true;
		}
	return false;
}

static int user_revoke_role(struct core_auth *a, struct db_session *s,
			    const Etcdserverpb__AuthUserRevokeRoleRequest *q)
{
	if (atomic_load(&a->enabled) && strcmp(q->name, ROOT) == 0 && strcmp(q->role, ROOT) == 0)
		return CORE_EINVALID_AUTH_MGMT;
	const struct auth_user *old = auth_find_user(a, q->name);
	if (old == NULL)
		return CORE_EUSER_NOT_FOUND;
	if (!auth_user_has_role(old, q->role))
		return CORE_EROLE_NOT_GRANTED;
	struct auth_user *u = user_copy(old);
	if (u == NULL)
		return CORE_ENOMEM;
	drop_role(u, q->role);
	save_user(s, u);
	if (!auth_put_user(a, u)) {
		auth_user_free(u);
		return CORE_ENOMEM;
	}
	bump_revision(a, s);
	return CORE_OK;
}

static int role_add(struct core_auth *a, struct db_session *s, const char *name)
{
	if (name == NULL || name[0] == 0)
		return CORE_EROLE_EMPTY;
	if (auth_find_role(a, name) != NULL)
		return CORE_EROLE_EXISTS;
	struct auth_role *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->name = strdup(name)) == NULL ||
	    (r->perms = calloc(1, sizeof(*r->perms))) == NULL) {
		auth_role_free(r);
		return CORE_ENOMEM;
	}
	save_role(s, r);
	if (!auth_put_role(a, r)) {
		auth_role_free(r);
		return CORE_ENOMEM;
	}
	bump_revision(a, s);
	return CORE_OK;
}

static int role_delete(struct core_auth *a, struct db_session *s, const char *name)
{
	if (atomic_load(&a->enabled) && strcmp(name, ROOT) == 0)
		return CORE_EINVALID_AUTH_MGMT;
	if (auth_find_role(a, name) == NULL)
		return CORE_EROLE_NOT_FOUND;
	/* Users holding the role lose it in the same change, as in etcd. */
	for (size_t i = 0; i < a->n_users; i++) {
		if (!auth_user_has_role(a->users[i], name))
			continue;
		struct auth_user *u = user_copy(a->users[i]);
		if (u == NULL)
			must(DB_NOMEM, "copy user");
		drop_role(u, name);
		save_user(s, u);
		if (!auth_put_user(a, u))
			must(DB_NOMEM, "replace user");
	}
	must(auth_store_delete(s, AUTH_REC_ROLE, name, strlen(name)), "delete role");
	auth_remove_role(a, name);
	bump_revision(a, s);
	return CORE_OK;
}

static int role_grant_permission(struct core_auth *a, struct db_session *s,
				 const Etcdserverpb__AuthRoleGrantPermissionRequest *q)
{
	if (q->perm == NULL)
		return CORE_EPERMISSION_NOT_GIVEN;
	const struct auth_role *old = auth_find_role(a, q->name);
	if (old == NULL)
		return CORE_EROLE_NOT_FOUND;
	const Authpb__Permission *p = q->perm;
	struct auth_role *r = role_copy(old, 1);
	if (r == NULL)
		return CORE_ENOMEM;
	size_t i = 0;
	while (i < r->n_perms &&
	       bytes_cmp(r->perms[i].key, r->perms[i].key_len, p->key.data, p->key.len) < 0)
		i++;
	/* Same key and range: the type is updated in place, as etcd does. */
	size_t j = i;
	while (j < r->n_perms &&
	       bytes_cmp(r->perms[j].key, r->perms[j].key_len, p->key.data, p->key.len) == 0 &&
	       bytes_cmp(r->perms[j].end, r->perms[j].end_len, p->range_end.data, p->range_end.len))
		j++;
	if (j < r->n_perms &&
	    bytes_cmp(r->perms[j].key, r->perms[j].key_len, p->key.data, p->key.len) == 0) {
		r->perms[j].type = (int)p->permtype;
	} else {
		struct auth_perm np = {(int)p->permtype, malloc(p->key.len + 1), p->key.len,
				       p->range_end.len ? malloc(p->range_end.len) : NULL,
				       p->range_end.len};
		if (np.key == NULL || (p->range_end.len && np.end == NULL)) {
			free(np.key);
			free(np.end);
			auth_role_free(r);
			return CORE_ENOMEM;
		}
		if (p->key.len)
			memcpy(np.key, p->key.data, p->key.len);
		if (p->range_end.len)
			memcpy(np.end, p->range_end.data, p->range_end.len);
		memmove(r->perms + i + 1, r->perms + i, (r->n_perms - i) * sizeof(*r->perms));
		r->perms[i] = np;
		r->n_perms++;
	}
	save_role(s, r);
	if (!auth_put_role(a, r)) {
		auth_role_free(r);
		return CORE_ENOMEM;
	}
	bump_revision(a, s);
	return CORE_OK;
}

static int role_revoke_permission(struct core_auth *a, struct db_session *s,
				  const Etcdserverpb__AuthRoleRevokePermissionRequest *q)
{
	const struct auth_role *old = auth_find_role(a, q->role);
	if (old == NULL)
		return CORE_EROLE_NOT_FOUND;
	struct auth_role *r = role_copy(old, 0);
	if (r == NULL)
		return CORE_ENOMEM;
	size_t kept = 0;
	for (size_t i = 0; i < r->n_perms; i++) {
		struct auth_perm *p = &r->perms[i];
		if (bytes_cmp(p->key, p->key_len, q->key.data, q->key.len) == 0 &&
		    bytes_cmp(p->end, p->end_len, q->range_end.data, q->range_end.len) == 0) {
			free(p->key);
			free(p->end);
			continue;
		}
		r->perms[kept++] = *p;
	}
	if (kept == r->n_perms) {
		auth_role_free(r);
		return CORE_EPERMISSION_NOT_GRANTED;
	}
	r->n_perms = kept;
	save_role(s, r);
	if (!auth_put_role(a, r)) {
		auth_role_free(r);
		return CORE_ENOMEM;
	}
	bump_revision(a, s);
	return CORE_OK;
}

static int auth_enable(struct core_auth *a, struct db_session *s)
{
	if (atomic_load(&a->enabled))
		return CORE_OK; /* etcd: already on is not an error */
	const struct auth_user *root = auth_find_user(a, ROOT);
	if (root == NULL)
		return CORE_EROOT_USER_NOT_EXIST;
	if (!auth_user_has_role(root, ROOT))
		return CORE_EROOT_ROLE_NOT_EXIST;
	save_enabled(s, true);
	atomic_store(&a->enabled, true);
	return CORE_OK;
}

static int auth_disable(struct core_auth *a, struct db_session *s)
{
	if (!atomic_load(&a->enabled))
		return CORE_OK;
	save_enabled(s, false);
	bump_revision(a, s);
	atomic_store(&a->enabled, false);
	auth_token_clear(a); /* etcd's simple tokens end with auth */
	return CORE_OK;
}

static int authenticate(struct core_auth *a, const Metadpb__InternalAuthenticate *q)
{
	if (!atomic_load(&a->enabled))
		return CORE_EAUTH_NOT_ENABLED;
	const struct auth_user *u = auth_find_user(a, q->name);
	/* The password was checked against checked_hash before the proposal;
	 * a password changed since then makes that check worthless. */
	if (u == NULL || u->no_password || u->hash == NULL || q->checked_hash == NULL ||
	    strcmp(u->hash, q->checked_hash) != 0)
		return CORE_EAUTH_FAILED;
	return auth_token_add(a, q->simple_token, q->name);
}

/* A response whose only field is its header (field 1), built in r. */
static ProtobufCMessage *header_only(struct core *c, struct reply *r,
				     const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = arena_alloc(&r->arena, d->sizeof_message);
	Etcdserverpb__ResponseHeader *h = reply_header(c, r, 0);
	if (m == NULL || h == NULL)
		return NULL;
	protobuf_c_message_init(d, m);
	*(Etcdserverpb__ResponseHeader **)((char *)m + d->fields[0].offset) = h;
	return m;
}

int auth_apply(struct core *c, struct db_session *s, struct reply *r,
	       const Metadpb__InternalRequest *req, ProtobufCMessage **msg)
{
	struct core_auth *a = c->auth;
	const ProtobufCMessageDescriptor *d;
	int err;
	pthread_rwlock_wrlock(&a->lock);
	switch (req->request_case) {
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_ENABLE:
		d = &etcdserverpb__auth_enable_response__descriptor;
		err = auth_enable(a, s);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_DISABLE:
		d = &etcdserverpb__auth_disable_response__descriptor;
		err = auth_disable(a, s);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_USER_ADD:
		d = &etcdserverpb__auth_user_add_response__descriptor;
		err = user_add(a, s, req->auth_user_add);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_USER_DELETE:
		d = &etcdserverpb__auth_user_delete_response__descriptor;
		err = user_delete(a, s, req->auth_user_delete->name);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_USER_CHANGE_PASSWORD:
		d = &etcdserverpb__auth_user_change_password_response__descriptor;
		err = user_change_password(a, s, req->auth_user_change_password);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_USER_GRANT_ROLE:
		d = &etcdserverpb__auth_user_grant_role_response__descriptor;
		err = user_grant_role(a, s, req->auth_user_grant_role);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_USER_REVOKE_ROLE:
		d = &etcdserverpb__auth_user_revoke_role_response__descriptor;
		err = user_revoke_role(a, s, req->auth_user_revoke_role);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_ROLE_ADD:
		d = &etcdserverpb__auth_role_add_response__descriptor;
		err = role_add(a, s, req->auth_role_add->name);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_ROLE_DELETE:
		d = &etcdserverpb__auth_role_delete_response__descriptor;
		err = role_delete(a, s, req->auth_role_delete->role);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_ROLE_GRANT_PERMISSION:
		d = &etcdserverpb__auth_role_grant_permission_response__descriptor;
		err = role_grant_permission(a, s, req->auth_role_grant_permission);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTH_ROLE_REVOKE_PERMISSION:
		d = &etcdserverpb__auth_role_revoke_permission_response__descriptor;
		err = role_revoke_permission(a, s, req->auth_role_revoke_permission);
		break;
	case METADPB__INTERNAL_REQUEST__REQUEST_AUTHENTICATE:
		d = &etcdserverpb__authenticate_response__descriptor;
		err = authenticate(a, req->authenticate);
		break;
	default:
		pthread_rwlock_unlock(&a->lock);
		return CORE_EINTERNAL;
	}
	pthread_rwlock_unlock(&a->lock);
	if (err != CORE_OK)
		return err;
	ProtobufCMessage *m = header_only(c, r, d);
	if (m == NULL)
		return CORE_ENOMEM;
	if (req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_AUTHENTICATE) {
		Etcdserverpb__AuthenticateResponse *ar = (Etcdserverpb__AuthenticateResponse *)m;
		const char *t = req->authenticate->simple_token;
		if ((ar->token = arena_dup(&r->arena, t, strlen(t) + 1)) == NULL)
			return CORE_ENOMEM;
	}
	*msg = m;
	return CORE_OK;
}
