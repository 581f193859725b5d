/*
 * core/members.c — the member list: etcd's ids, bootstrap from
 * --initial-cluster, published attributes, storage in raft_state.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/members.h"
#include "storage/raftlog.h"

#define BLOB "members"

static uint64_t be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t members_id(const char *const *peer_urls, size_t n, const char *token, int64_t unix_time)
{
	const char **sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (sorted == NULL)
		return 0;
	memcpy(sorted, peer_urls, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1;
	for (size_t i = 0; ok && i < n; i++)
		ok = EVP_DigestUpdate(ctx, sorted[i], strlen(sorted[i])) == 1;
	ok = ok && EVP_DigestUpdate(ctx, token, strlen(token)) == 1;
	if (ok && unix_time != 0) {
		char t[32];
		int len = snprintf(t, sizeof(t), "%lld", (long long)unix_time);
		ok = EVP_DigestUpdate(ctx, t, (size_t)len) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	free(sorted);
	return ok ? be64(md) : 0;
}

uint64_t members_cluster_id(const uint64_t *ids, size_t n)
{
	uint64_t *sorted = malloc((n ? n : 1) * sizeof(*sorted));
	unsigned char *b = malloc(n ? 8 * n : 1);
	if (sorted == NULL || b == NULL) {
		free(sorted);
		free(b);
		return 0;
	}
	memcpy(sorted, ids, n * sizeof(*ids));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 8; k++)
			b[8 * i + k] = (unsigned char)(sorted[i] >> (56 - 8 * k));
	unsigned char md[EVP_MAX_MD_SIZE];
	int ok = EVP_Digest(b, 8 * n, md, NULL, EVP_sha1(), NULL) == 1;
	free(sorted);
	free(b);
	return ok ? be64(md) : 0;
}

/* ---- building the list from --initial-cluster ---- */

static void free_member(Etcdserverpb__Member *mb)
{
	if (mb == NULL)
		return;
	free(mb->name);
	members_free_urls(mb->peerurls, mb->n_peerurls);
	members_free_urls(mb->clienturls, mb->n_clienturls);
	free(mb);
}

/* Our own list (not from unpack): free member by member. */
static void free_built(Etcdserverpb__MemberListResponse *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n_members; i++)
		free_member(l->members[i]);
	free(l->members);
	free(l);
}

static Etcdserverpb__Member *find_name(Etcdserverpb__MemberListResponse *l, const char *name)
{
	for (size_t i = 0; i < l->n_members; i++)
		if (strcmp(l->members[i]->name, name) == 0)
			return l->members[i];
	return NULL;
}

static int push_str(char ***v, size_t *n, const char *s, size_t len)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL)
		return -1;
	*v = nv;
	if ((nv[*n] = strndup(s, len)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

static int cmp_member(const void *a, const void *b)
{
	const Etcdserverpb__Member *x = *(Etcdserverpb__Member *const *)a;
	const Etcdserverpb__Member *y = *(Etcdserverpb__Member *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static Etcdserverpb__MemberListResponse *parse_initial(const char *spec, const char *token,
							 char *err, size_t errlen)
{
	Etcdserverpb__MemberListResponse *l = calloc(1, sizeof(*l));
	if (l == NULL)
		goto nomem;
	etcdserverpb__member_list_response__init(l);
	for (const char *p = spec; *p;) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);
		if (eq == NULL || eq == p || eq + 1 == p + len) {
			snprintf(err, errlen, "invalid --initial-cluster %s: each member is name=url", spec);
			free_built(l);
			return NULL;
		}
		char *name = strndup(p, (size_t)(eq - p));
		if (name == NULL)
			goto nomem;
		Etcdserverpb__Member *mb = find_name(l, name);
		if (mb == NULL) {
			Etcdserverpb__Member **nm = realloc(l->members, (l->n_members + 1) * sizeof(*nm));
			mb = calloc(1, sizeof(*mb));
			if (nm != NULL)
				l->members = nm;
			if (nm == NULL || mb == NULL) {
				free(name);
				free(mb);
				goto nomem;
			}
			etcdserverpb__member__init(mb);
			mb->name = name;
			l->members[l->n_members++] = mb;
		} else {
			free(name);
		}
		if (push_str(&mb->peerurls, &mb->n_peerurls, eq + 1, (size_t)(p + len - eq - 1)) != 0)
			goto nomem;
		p += len;
		if (*p == ',')
			p++;
	}
	if (l->n_members == 0) {
		snprintf(err, errlen, "--initial-cluster is empty");
		free_built(l);
		return NULL;
	}
	if (l->n_members > MEMBERS_MAX) {
		snprintf(err, errlen, "--initial-cluster has more than %d members", MEMBERS_MAX);
		free_built(l);
		return NULL;
	}
	for (size_t i = 0; i < l->n_members; i++) {
		Etcdserverpb__Member *mb = l->members[i];
		qsort(mb->peerurls, mb->n_peerurls, sizeof(char *), cmp_str);
		mb->id = members_id((const char *const *)mb->peerurls, mb->n_peerurls, token, 0);
	}
	qsort(l->members, l->n_members, sizeof(*l->members), cmp_member);
	return l;
nomem:
	snprintf(err, errlen, "out of memory");
	free_built(l);
	return NULL;
}

/* ---- storage ---- */

/* The stored form carries the cluster id in the header. */
static int save(struct members *m, struct db_session *s)
{
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	h.cluster_id = m->cluster_id;
	Etcdserverpb__ResponseHeader *keep = m->list->header;
	m->list->header = &h;
	size_t len = etcdserverpb__member_list_response__get_packed_size(m->list);
	uint8_t *buf = malloc(len ? len : 1);
	int rv = DB_NOMEM;
	if (buf != NULL) {
		etcdserverpb__member_list_response__pack(m->list, buf);
		rv = rlog_save_blob(s, BLOB, buf, len);
	}
	m->list->header = keep;
	free(buf);
	return rv;
}

/* Replace m->list by a freshly unpacked copy of itself, so that it is
 * always one protobuf-c allocation (freed with free_unpacked). */
static int normalise(struct members *m, Etcdserverpb__MemberListResponse *built)
{
	size_t len = etcdserverpb__member_list_response__get_packed_size(built);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return DB_NOMEM;
	etcdserverpb__member_list_response__pack(built, buf);
	Etcdserverpb__MemberListResponse *l = etcdserverpb__member_list_response__unpack(NULL, len, buf);
	free(buf);
	if (l == NULL)
		return DB_NOMEM;
	m->list = l;
	return DB_OK;
}

int members_open(struct members *m, struct db_session *s, const char *initial_cluster,
		 const char *token, const char *name, uint64_t *self_id, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = rlog_load_blob(s, BLOB, &buf, &len);
	if (rv == DB_OK) {
		m->list = etcdserverpb__member_list_response__unpack(NULL, len, buf);
		free(buf);
		if (m->list == NULL) {
			snprintf(err, errlen, "stored member list does not decode");
			return -1;
		}
		m->cluster_id = m->list->header ? m->list->header->cluster_id : 0;
	} else if (rv == DB_NOTFOUND) {
		Etcdserverpb__MemberListResponse *built =
			parse_initial(initial_cluster, token, err, errlen);
		if (built == NULL)
			return -1;
		uint64_t ids[MEMBERS_MAX];
		for (size_t i = 0; i < built->n_members; i++)
			ids[i] = built->members[i]->id;
		m->cluster_id = members_cluster_id(ids, built->n_members);
		/* A member's name is known to the others only once it publishes
		 * it (etcd shows such members as unstarted); ours is known. */
		Etcdserverpb__Member *me = find_name(built, name);
		if (me == NULL) {
			snprintf(err, errlen,
				 "couldn't find local name \"%s\" in the initial cluster configuration",
				 name);
			free_built(built);
			return -1;
		}
		*self_id = me->id;
		for (size_t i = 0; i < built->n_members; i++)
			if (built->members[i] != me)
				built->members[i]->name[0] = 0;
		rv = normalise(m, built);
		free_built(built);
		if (rv == DB_OK)
			rv = save(m, s);
		if (rv != DB_OK) {
			snprintf(err, errlen, "saving the member list: %s", db_strerror(rv));
			return -1;
		}
		return 0;
	} else {
		snprintf(err, errlen, "loading the member list: %s", db_strerror(rv));
		return -1;
	}
	/* Restart: the stored list wins over the flags, as in etcd. */
	Etcdserverpb__Member *me = NULL;
	for (size_t i = 0; i < m->list->n_members; i++)
		if (strcmp(m->list->members[i]->name, name) == 0)
			me = m->list->members[i];
	if (me == NULL) {
		snprintf(err, errlen, "couldn't find local name \"%s\" in the stored member list", name);
		return -1;
	}
	*self_id = me->id;
	return 0;
}

void members_close(struct members *m)
{
	if (m->list != NULL)
		etcdserverpb__member_list_response__free_unpacked(m->list, NULL);
	m->list = NULL;
	pthread_mutex_destroy(&m->mu);
}

size_t members_ids(struct members *m, uint64_t *ids, bool *learner, size_t cap)
{
	pthread_mutex_lock(&m->mu);
	size_t n = 0;
	for (size_t i = 0; i < m->list->n_members && n < cap; i++, n++) {
		ids[n] = m->list->members[i]->id;
		learner[n] = m->list->members[i]->islearner;
	}
	pthread_mutex_unlock(&m->mu);
	return n;
}

void members_free_urls(char **urls, size_t n)
{
	if (urls == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(urls[i]);
	free(urls);
}

char **members_peer_urls(struct members *m, uint64_t id, size_t *n)
{
	char **v = NULL;
	*n = 0;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->list->n_members; i++) {
		Etcdserverpb__Member *mb = m->list->members[i];
		if (mb->id != id)
			continue;
		v = calloc(mb->n_peerurls + 1, sizeof(*v));
		for (size_t k = 0; v != NULL && k < mb->n_peerurls; k++) {
			if ((v[k] = strdup(mb->peerurls[k])) == NULL) {
				members_free_urls(v, k);
				v = NULL;
				break;
			}
		}
		if (v != NULL)
			*n = mb->n_peerurls;
	}
	pthread_mutex_unlock(&m->mu);
	return v;
}

bool members_published(struct members *m, uint64_t id)
{
	bool yes = false;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->list->n_members; i++)
		if (m->list->members[i]->id == id)
			yes = m->list->members[i]->name[0] != 0;
	pthread_mutex_unlock(&m->mu);
	return yes;
}

int members_apply_attr(struct members *m, struct db_session *s, const Etcdserverpb__Member *attr)
{
	pthread_mutex_lock(&m->mu);
	Etcdserverpb__Member *target = NULL;
	for (size_t i = 0; i < m->list->n_members; i++)
		if (m->list->members[i]->id == attr->id)
			target = m->list->members[i];
	if (target == NULL) { /* removed meanwhile: nothing to do */
		pthread_mutex_unlock(&m->mu);
		return DB_OK;
	}
	/* Swap the attributes in, pack, and rebuild the list as one unpacked
	 * allocation again; the old strings go with the old list. */
	char *name = target->name;
	size_t ncu = target->n_clienturls;
	char **cu = target->clienturls;
	target->name = attr->name ? attr->name : (char *)"";
	target->n_clienturls = attr->n_clienturls;
	target->clienturls = attr->clienturls;
	Etcdserverpb__MemberListResponse *old = m->list;
	int rv = normalise(m, old);
	target->name = name;
	target->n_clienturls = ncu;
	target->clienturls = cu;
	if (rv == DB_OK) {
		etcdserverpb__member_list_response__free_unpacked(old, NULL);
		rv = save(m, s);
	}
	pthread_mutex_unlock(&m->mu);
	return rv;
}

uint8_t *members_pack(struct members *m, size_t *len)
{
	pthread_mutex_lock(&m->mu);
	Etcdserverpb__ResponseHeader *keep = m->list->header;
	m->list->header = NULL;
	*len = etcdserverpb__member_list_response__get_packed_size(m->list);
	uint8_t *buf = malloc(*len ? *len : 1);
	if (buf != NULL)
		etcdserverpb__member_list_response__pack(m->list, buf);
	m->list->header = keep;
	pthread_mutex_unlock(&m->mu);
	return buf;
}
