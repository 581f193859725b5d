/*
 * core/members.c — the member list: etcd's ids, bootstrap from
 * --initial-cluster, published attributes, storage in raft_state.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytes.h"
#include "core/members.h"
#include "storage/raftlog.h"

#define BLOB "members"

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
	return ok ? core_get_be64(md) : 0;
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
	return ok ? core_get_be64(md) : 0;
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

static bool same_urls(char *const *a, size_t na, const char *const *b, size_t nb);

int members_open(struct members *m, struct db_session *s, const char *initial_cluster,
		 const char *token, const char *name, const char *const *peer_urls, size_t n,
		 uint64_t *self_id, char *err, size_t errlen)
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
	for (size_t i = 0; i < m->list->n_members && me == NULL; i++)
		if (m->list->members[i]->name[0] == 0 &&
		    same_urls(m->list->members[i]->peerurls, m->list->members[i]->n_peerurls, peer_urls, n))
			me = m->list->members[i];
	if (me == NULL) {
		snprintf(err, errlen, "couldn't find local name \"%s\" in the stored member list", name);
		return -1;
	}
	*self_id = me->id;
	return 0;
}

bool members_stored(struct db_session *s)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	if (rlog_load_blob(s, BLOB, &buf, &len) != DB_OK)
		return false;
	free(buf);
	return true;
}

/* Same set of URLs (both lists as given; order does not matter). */
static bool same_urls(char *const *a, size_t na, const char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		bool found = false;
		for (size_t k = 0; k < nb && !found; k++)
			found = strcmp(a[i], b[k]) == 0;
		if (!found)
			return false;
	}
	return true;
}

int members_join(struct members *m, struct db_session *s, const uint8_t *fetched, size_t len,
		 const char *const *peer_urls, size_t n, uint64_t *self_id, char *err,
		 size_t errlen)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	m->list = etcdserverpb__member_list_response__unpack(NULL, len, fetched);
	if (m->list == NULL || m->list->header == NULL) {
		snprintf(err, errlen, "the member list from the cluster does not decode");
		return -1;
	}
	m->cluster_id = m->list->header->cluster_id;
	Etcdserverpb__Member *me = NULL;
	for (size_t i = 0; i < m->list->n_members && me == NULL; i++)
		if (same_urls(m->list->members[i]->peerurls, m->list->members[i]->n_peerurls, peer_urls,
			      n))
			me = m->list->members[i];
	if (me == NULL) {
		/* etcd: the member must have been added (member add) first. */
		snprintf(err, errlen,
			 "error validating peerURLs: member not found in the cluster's member list "
			 "(add it with 'etcdctl member add' first)");
		return -1;
	}
	*self_id = me->id;
	int rv = save(m, s);
	if (rv != DB_OK) {
		snprintf(err, errlen, "saving the member list: %s", db_strerror(rv));
		return -1;
	}
	return 0;
}

int members_reload(struct members *m, struct db_session *s)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = rlog_load_blob(s, BLOB, &buf, &len);
	if (rv != DB_OK)
		return rv;
	Etcdserverpb__MemberListResponse *list = etcdserverpb__member_list_response__unpack(NULL, len, buf);
	free(buf);
	if (list == NULL)
		return DB_CORRUPT;
	pthread_mutex_lock(&m->mu);
	Etcdserverpb__MemberListResponse *old = m->list;
	m->list = list;
	pthread_mutex_unlock(&m->mu);
	if (old != NULL)
		etcdserverpb__member_list_response__free_unpacked(old, NULL);
	return DB_OK;
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

/* Replace the list by the old one without skip (0: none) and with add (if
 * not NULL), as one unpacked allocation again, and store it. Under mu. */
static int rebuild_locked(struct members *m, struct db_session *s, uint64_t skip,
			  const Etcdserverpb__Member *add)
{
	Etcdserverpb__MemberListResponse *old = m->list;
	Etcdserverpb__Member **v = calloc(old->n_members + 1, sizeof(*v));
	if (v == NULL)
		return DB_NOMEM;
	size_t n = 0;
	for (size_t i = 0; i < old->n_members; i++)
		if (old->members[i]->id != skip)
			v[n++] = old->members[i];
	if (add != NULL)
		v[n++] = (Etcdserverpb__Member *)add;
	qsort(v, n, sizeof(*v), cmp_member);
	Etcdserverpb__MemberListResponse tmp = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
	tmp.n_members = n;
	tmp.members = v;
	int rv = normalise(m, &tmp);
	free(v);
	if (rv != DB_OK)
		return rv;
	etcdserverpb__member_list_response__free_unpacked(old, NULL);
	return save(m, s);
}

static Etcdserverpb__Member *find_id(Etcdserverpb__MemberListResponse *l, uint64_t id)
{
	for (size_t i = 0; i < l->n_members; i++)
		if (l->members[i]->id == id)
			return l->members[i];
	return NULL;
}

int members_apply_attr(struct members *m, struct db_session *s, const Etcdserverpb__Member *attr)
{
	pthread_mutex_lock(&m->mu);
	Etcdserverpb__Member *target = find_id(m->list, attr->id);
	int rv = DB_OK;
	if (target != NULL) { /* else removed meanwhile: nothing to do */
		Etcdserverpb__Member mb = *target;
		mb.name = attr->name ? attr->name : (char *)"";
		mb.n_clienturls = attr->n_clienturls;
		mb.clienturls = attr->clienturls;
		rv = rebuild_locked(m, s, attr->id, &mb);
	}
	pthread_mutex_unlock(&m->mu);
	return rv;
}

int members_put(struct members *m, struct db_session *s, const Etcdserverpb__Member *mb)
{
	pthread_mutex_lock(&m->mu);
	int rv = rebuild_locked(m, s, mb->id, mb);
	pthread_mutex_unlock(&m->mu);
	return rv;
}

int members_remove(struct members *m, struct db_session *s, uint64_t id)
{
	pthread_mutex_lock(&m->mu);
	int rv = find_id(m->list, id) ? rebuild_locked(m, s, id, NULL) : DB_OK;
	pthread_mutex_unlock(&m->mu);
	return rv;
}

int members_keep_only(struct members *m, struct db_session *s, uint64_t id)
{
	Etcdserverpb__Member *me = NULL;
	if (!members_get(m, id, &me))
		return DB_NOTFOUND;
	pthread_mutex_lock(&m->mu);
	Etcdserverpb__MemberListResponse *old = m->list;
	Etcdserverpb__MemberListResponse tmp = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
	tmp.n_members = 1;
	tmp.members = &me;
	int rv = normalise(m, &tmp);
	if (rv == DB_OK) {
		etcdserverpb__member_list_response__free_unpacked(old, NULL);
		rv = save(m, s);
	}
	pthread_mutex_unlock(&m->mu);
	members_free_member(me);
	return rv;
}

void members_free_member(Etcdserverpb__Member *mb)
{
	if (mb != NULL)
		etcdserverpb__member__free_unpacked(mb, NULL);
}

bool members_get(struct members *m, uint64_t id, Etcdserverpb__Member **out)
{
	*out = NULL;
	pthread_mutex_lock(&m->mu);
	Etcdserverpb__Member *mb = find_id(m->list, id);
	if (mb != NULL) {
		size_t len = etcdserverpb__member__get_packed_size(mb);
		uint8_t *buf = malloc(len ? len : 1);
		if (buf != NULL) {
			etcdserverpb__member__pack(mb, buf);
			*out = etcdserverpb__member__unpack(NULL, len, buf);
			free(buf);
		}
	}
	pthread_mutex_unlock(&m->mu);
	return *out != NULL;
}

static bool in_conf(const struct raft_conf *c, uint64_t id)
{
	return c->n_voters + c->n_learners == 0 || raft_conf_is_voter(c, id) ||
	       raft_conf_is_learner(c, id);
}

bool members_urls_taken(struct members *m, char *const *urls, size_t n, uint64_t except)
{
	bool taken = false;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->list->n_members && !taken; i++) {
		Etcdserverpb__Member *mb = m->list->members[i];
		if (mb->id == except || !in_conf(&m->conf, mb->id))
			continue;
		for (size_t k = 0; k < mb->n_peerurls && !taken; k++)
			for (size_t j = 0; j < n && !taken; j++)
				taken = strcmp(mb->peerurls[k], urls[j]) == 0;
	}
	pthread_mutex_unlock(&m->mu);
	return taken;
}

void members_mark_removed(struct members *m, uint64_t id)
{
	pthread_mutex_lock(&m->mu);
	if (m->n_removed == MEMBERS_MAX) /* oldest forgotten */
		memmove(m->removed, m->removed + 1, --m->n_removed * sizeof(*m->removed));
	m->removed[m->n_removed++] = id;
	pthread_mutex_unlock(&m->mu);
}

bool members_was_removed(struct members *m, uint64_t id)
{
	bool yes = false;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n_removed && !yes; i++)
		yes = m->removed[i] == id;
	pthread_mutex_unlock(&m->mu);
	return yes;
}

bool members_in_conf(struct members *m, uint64_t id)
{
	pthread_mutex_lock(&m->mu);
	bool yes = raft_conf_is_voter(&m->conf, id) || raft_conf_is_learner(&m->conf, id);
	pthread_mutex_unlock(&m->mu);
	return yes;
}

void members_set_conf(struct members *m, const struct raft_conf *conf)
{
	pthread_mutex_lock(&m->mu);
	m->conf = *conf;
	pthread_mutex_unlock(&m->mu);
}

uint8_t *members_pack(struct members *m, size_t *len)
{
	pthread_mutex_lock(&m->mu);
	Etcdserverpb__Member **v = calloc(m->list->n_members + 1, sizeof(*v));
	Etcdserverpb__Member *copies = calloc(m->list->n_members + 1, sizeof(*copies));
	uint8_t *buf = NULL;
	if (v != NULL && copies != NULL) {
		size_t n = 0;
		for (size_t i = 0; i < m->list->n_members; i++) {
			Etcdserverpb__Member *mb = m->list->members[i];
			if (!in_conf(&m->conf, mb->id))
				continue;
			copies[n] = *mb;
			copies[n].islearner = raft_conf_is_learner(&m->conf, mb->id);
			v[n] = &copies[n];
			n++;
		}
		Etcdserverpb__MemberListResponse tmp = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
		tmp.n_members = n;
		tmp.members = v;
		*len = etcdserverpb__member_list_response__get_packed_size(&tmp);
		buf = malloc(*len ? *len : 1);
		if (buf != NULL)
			etcdserverpb__member_list_response__pack(&tmp, buf);
	}
	free(v);
	free(copies);
	pthread_mutex_unlock(&m->mu);
	return buf;
}
