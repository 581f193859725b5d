/*
 * core/auth_model.c — users and roles in memory, and their on-disk form.
 *
 * On disk a user is etcd's authpb.User and a role etcd's authpb.Role (the
 * bytes etcd keeps in its authUsers/authRoles buckets), so the records mean
 * the same thing in both and tools can read them with etcd's protos.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.pb-c.h"

#include "core/auth_internal.h"

void auth_user_free(struct auth_user *u)
{
	if (u == NULL)
		return;
	for (size_t i = 0; i < u->n_roles; i++)
		free(u->roles[i]);
	free(u->roles);
	free(u->name);
	free(u->hash);
	free(u);
}

void auth_role_free(struct auth_role *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n_perms; i++) {
		free(r->perms[i].key);
		free(r->perms[i].end);
	}
	free(r->perms);
	free(r->name);
	free(r);
}

/* Index of name in a sorted array of objects whose first field is the
 * name, or where it would go (*found says which). */
static size_t search(void *const *v, size_t n, const char *name, bool *found)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(*(char *const *)v[mid], name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct auth_user *auth_find_user(struct core_auth *a, const char *name)
{
	bool found;
	size_t i = search((void *const *)a->users, a->n_users, name, &found);
	return found ? a->users[i] : NULL;
}

struct auth_role *auth_find_role(struct core_auth *a, const char *name)
{
	bool found;
	size_t i = search((void *const *)a->roles, a->n_roles, name, &found);
	return found ? a->roles[i] : NULL;
}

bool auth_user_has_role(const struct auth_user *u, const char *role)
{
	for (size_t i = 0; i < u->n_roles; i++)
		if (strcmp(u->roles[i], role) == 0)
			return true;
	return false;
}

/* Insert or replace obj (first field: its name) in a sorted array. */
static bool put_sorted(void ***v, size_t *n, void *obj, void (*free_fn)(void *))
{
	bool found;
	size_t i = search((void *const *)*v, *n, *(char **)obj, &found);
	if (found) {
		free_fn((*v)[i]);
		(*v)[i] = obj;
		return true;
	}
	void **nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (nv == NULL)
		return false;
	memmove(nv + i + 1, nv + i, (*n - i) * sizeof(*nv));
	nv[i] = obj;
	*v = nv;
	(*n)++;
	return true;
}

static void remove_sorted(void **v, size_t *n, const char *name, void (*free_fn)(void *))
{
	bool found;
	size_t i = search((void *const *)v, *n, name, &found);
	if (!found)
		return;
	free_fn(v[i]);
	memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
	(*n)--;
}

static void user_free_v(void *p)
{
	auth_user_free(p);
}

static void role_free_v(void *p)
{
	auth_role_free(p);
}

/* Every change ends the threads' copies of grants and tokens (auth_cache.c). */
bool auth_put_user(struct core_auth *a, struct auth_user *u)
{
	bool ok = put_sorted((void ***)&a->users, &a->n_users, u, user_free_v);
	auth_changed(a);
	return ok;
}

bool auth_put_role(struct core_auth *a, struct auth_role *r)
{
	bool ok = put_sorted((void ***)&a->roles, &a->n_roles, r, role_free_v);
	auth_changed(a);
	return ok;
}

void auth_remove_user(struct core_auth *a, const char *name)
{
	remove_sorted((void **)a->users, &a->n_users, name, user_free_v);
	auth_changed(a);
}

void auth_remove_role(struct core_auth *a, const char *name)
{
	remove_sorted((void **)a->roles, &a->n_roles, name, role_free_v);
	auth_changed(a);
}

uint8_t *auth_user_pack(const struct auth_user *u, size_t *len)
{
	Authpb__User m = AUTHPB__USER__INIT;
	Authpb__UserAddOptions o = AUTHPB__USER_ADD_OPTIONS__INIT;
	m.name.data = (uint8_t *)u->name;
	m.name.len = strlen(u->name);
	if (u->hash != NULL) {
		m.password.data = (uint8_t *)u->hash;
		m.password.len = strlen(u->hash);
	}
	m.roles = u->roles;
	m.n_roles = u->n_roles;
	o.no_password = u->no_password;
	m.options = &o;
	*len = authpb__user__get_packed_size(&m);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf != NULL)
		authpb__user__pack(&m, buf);
	return buf;
}

uint8_t *auth_role_pack(const struct auth_role *r, size_t *len)
{
	Authpb__Role m = AUTHPB__ROLE__INIT;
	Authpb__Permission *ps = calloc(r->n_perms ? r->n_perms : 1, sizeof(*ps));
	Authpb__Permission **pp = calloc(r->n_perms ? r->n_perms : 1, sizeof(*pp));
	uint8_t *buf = NULL;
	if (ps != NULL && pp != NULL) {
		for (size_t i = 0; i < r->n_perms; i++) {
			authpb__permission__init(&ps[i]);
			ps[i].permtype = (Authpb__Permission__Type)r->perms[i].type;
			ps[i].key.data = r->perms[i].key;
			ps[i].key.len = r->perms[i].key_len;
			ps[i].range_end.data = r->perms[i].end;
			ps[i].range_end.len = r->perms[i].end_len;
			pp[i] = &ps[i];
		}
		m.name.data = (uint8_t *)r->name;
		m.name.len = strlen(r->name);
		m.keypermission = pp;
		m.n_keypermission = r->n_perms;
		*len = authpb__role__get_packed_size(&m);
		buf = malloc(*len ? *len : 1);
		if (buf != NULL)
			authpb__role__pack(&m, buf);
	}
	free(ps);
	free(pp);
	return buf;
}

/* A C string of stored bytes (a zero-length field may have no data). */
static char *dup_str(const ProtobufCBinaryData *b)
{
	return b->len > 0 ? strndup((const char *)b->data, b->len) : strdup("");
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

struct auth_user *auth_user_unpack(const uint8_t *data, size_t len)
{
	Authpb__User *m = authpb__user__unpack(NULL, len, data);
	if (m == NULL)
		return NULL;
	struct auth_user *u = calloc(1, sizeof(*u));
	bool ok = u != NULL;
	if (ok) {
		u->name = dup_str(&m->name);
		u->no_password = m->options != NULL && m->options->no_password;
		if (m->password.len > 0)
			u->hash = dup_str(&m->password);
		u->roles = calloc(m->n_roles ? m->n_roles : 1, sizeof(char *));
		ok = u->name != NULL && u->roles != NULL && (m->password.len == 0 || u->hash != NULL);
		for (size_t i = 0; ok && i < m->n_roles; i++) {
			ok = (u->roles[i] = strdup(m->roles[i])) != NULL;
			u->n_roles += ok;
		}
	}
	authpb__user__free_unpacked(m, NULL);
	if (!ok) {
		auth_user_free(u);
		return NULL;
	}
	return u;
}

struct auth_role *auth_role_unpack(const uint8_t *data, size_t len)
{
	Authpb__Role *m = authpb__role__unpack(NULL, len, data);
	if (m == NULL)
		return NULL;
	struct auth_role *r = calloc(1, sizeof(*r));
	bool ok = r != NULL;
	if (ok) {
		r->name = dup_str(&m->name);
		r->perms = calloc(m->n_keypermission ? m->n_keypermission : 1, sizeof(*r->perms));
		ok = r->name != NULL && r->perms != NULL;
		for (size_t i = 0; ok && i < m->n_keypermission; i++) {
			const Authpb__Permission *p = m->keypermission[i];
			struct auth_perm *q = &r->perms[i];
			q->type = (int)p->permtype;
			q->key = dup_bytes(p->key.data, p->key.len);
			q->key_len = p->key.len;
			if (p->range_end.len > 0) {
				q->end = dup_bytes(p->range_end.data, p->range_end.len);
				q->end_len = p->range_end.len;
			}
			r->n_perms++;
			ok = q->key != NULL && (p->range_end.len == 0 || q->end != NULL);
		}
	}
	authpb__role__free_unpacked(m, NULL);
	if (!ok) {
		auth_role_free(r);
		return NULL;
	}
	return r;
}
