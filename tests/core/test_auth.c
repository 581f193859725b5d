/*
 * tests/core/test_auth.c — the auth store's checks without a server: range
 * coverage by the union of a user's grants (prefix, single key, from-key,
 * adjacent grants, "\0" ends, inverted ranges), the root role, admin
 * checks, txns checked in both branches and nested, the on-disk encodings,
 * bcrypt hashes (ours and Go's "$2a$"), and simple tokens.
 */
#include <crypt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"
#include "tests/expect.h"

static struct core_auth *auth_new(void)
{
	struct core_auth *a = calloc(1, sizeof(*a));
	pthread_rwlock_init(&a->lock, NULL);
	pthread_mutex_init(&a->tmu, NULL);
	atomic_store(&a->enabled, true);
	a->token_ttl_ms = 60000;
	return a;
}

static void grant(struct auth_role *r, int type, const char *key, const char *end, size_t end_len)
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

static struct auth_user *user(const char *name, const char *role)
{
	struct auth_user *u = calloc(1, sizeof(*u));
	u->name = strdup(name);
	u->roles = calloc(1, sizeof(char *));
	if (role != NULL) {
		u->roles[0] = strdup(role);
		u->n_roles = 1;
	}
	return u;
}

/* alice: r1 = readwrite prefix /a/, read /k, write from /z, read [/m, /p)
 * and [/p, /r) (adjacent: together [/m, /r)). root: the root role. */
static void setup(struct core *c)
{
	struct core_auth *a = auth_new();
	struct auth_role *r = calloc(1, sizeof(*r));
	r->name = strdup("r1");
	r->perms = calloc(8, sizeof(*r->perms));
	grant(r, CORE_PERM_READWRITE, "/a/", "/a0", 3);
	grant(r, CORE_PERM_READ, "/k", NULL, 0);
	grant(r, CORE_PERM_READ, "/m", "/p", 2);
	grant(r, CORE_PERM_READ, "/p", "/r", 2);
	grant(r, CORE_PERM_WRITE, "/z", "", 1);
	auth_put_role(a, r);
	auth_put_user(a, user("alice", "r1"));
	auth_put_user(a, user("root", "root"));
	auth_put_user(a, user("nobody", NULL));
	memset(c, 0, sizeof(*c));
	c->auth = a;
}

static int chk(struct core *c, const char *u, int perm, const char *key, const char *end,
	       size_t end_len)
{
	return core_auth_check_range(c, u, perm, (const uint8_t *)key, strlen(key),
				     (const uint8_t *)end, end_len);
}

#define RD CORE_PERM_READ
#define WR CORE_PERM_WRITE
#define OK CORE_OK
#define NO CORE_EPERMISSION_DENIED

static void test_ranges(void)
{
	struct core c;
	setup(&c);
	EXPECT(chk(&c, "alice", RD, "/a/x", NULL, 0) == OK);
	EXPECT(chk(&c, "alice", WR, "/a/x", NULL, 0) == OK);
	EXPECT(chk(&c, "alice", RD, "/a/", "/a0", 3) == OK);
	EXPECT(chk(&c, "alice", RD, "/a/b", "/a/c", 4) == OK);
	EXPECT(chk(&c, "alice", RD, "/a/", "/b", 2) == NO);  /* wider than the grant */
	EXPECT(chk(&c, "alice", RD, "/a/", "", 1) == NO);    /* "\0": every key >= /a/ */
	EXPECT(chk(&c, "alice", RD, "/a", "/a0", 3) == NO);  /* starts before it */
	EXPECT(chk(&c, "alice", RD, "/a0", NULL, 0) == NO);  /* the end is exclusive */
	EXPECT(chk(&c, "alice", RD, "/k", NULL, 0) == OK);
	EXPECT(chk(&c, "alice", RD, "/k", "/k\0", 3) == OK); /* [k, k+"\0") is the key */
	EXPECT(chk(&c, "alice", RD, "/k", "/l", 2) == NO);
	EXPECT(chk(&c, "alice", RD, "/k0", NULL, 0) == NO);
	EXPECT(chk(&c, "alice", WR, "/k", NULL, 0) == NO);
	EXPECT(chk(&c, "alice", WR, "/z", NULL, 0) == OK);
	EXPECT(chk(&c, "alice", WR, "/zzz", "", 1) == OK);
	EXPECT(chk(&c, "alice", WR, "/z", "", 1) == OK);
	EXPECT(chk(&c, "alice", WR, "/y", "", 1) == NO);
	EXPECT(chk(&c, "alice", RD, "/z", NULL, 0) == NO);
	EXPECT(chk(&c, "alice", RD, "/m", "/r", 2) == OK);  /* two adjacent grants */
	EXPECT(chk(&c, "alice", RD, "/n", "/q", 2) == OK);
	EXPECT(chk(&c, "alice", RD, "/m", "/r\0", 3) == NO);
	EXPECT(chk(&c, "alice", RD, "/a/z", "/a/a", 4) == NO); /* inverted */
	EXPECT(chk(&c, "alice", CORE_PERM_READWRITE, "/a/x", NULL, 0) == OK);
	EXPECT(chk(&c, "alice", CORE_PERM_READWRITE, "/k", NULL, 0) == NO);
	EXPECT(chk(&c, "root", WR, "", "", 1) == OK);
	EXPECT(chk(&c, "nobody", RD, "/a/x", NULL, 0) == NO);
	EXPECT(chk(&c, "ghost", RD, "/a/x", NULL, 0) == NO);
	EXPECT(chk(&c, "", RD, "/a/x", NULL, 0) == CORE_EUSER_EMPTY);
	EXPECT(core_auth_check_admin(&c, "root") == OK);
	EXPECT(core_auth_check_admin(&c, "alice") == NO);
	EXPECT(core_auth_check_admin(&c, "ghost") == CORE_EUSER_NOT_FOUND);
	EXPECT(core_auth_check_admin(&c, "") == CORE_EUSER_EMPTY);
	atomic_store(&c.auth->enabled, false);
	EXPECT(chk(&c, "", WR, "/b", NULL, 0) == OK);
	EXPECT(core_auth_check_admin(&c, "") == OK);
	auth_free(c.auth);
}

static ProtobufCBinaryData bin(const char *s)
{
	ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
	return b;
}

static void test_txn(void)
{
	struct core c;
	setup(&c);
	Etcdserverpb__PutRequest ok_put = ETCDSERVERPB__PUT_REQUEST__INIT, bad_put = ok_put;
	ok_put.key = bin("/a/1");
	bad_put.key = bin("/b");
	Etcdserverpb__RequestOp ok_op = ETCDSERVERPB__REQUEST_OP__INIT, bad_op = ok_op;
	ok_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	ok_op.request_put = &ok_put;
	bad_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
	bad_op.request_put = &bad_put;
	Etcdserverpb__RequestOp *oks[] = {&ok_op}, *bads[] = {&bad_op};

	Etcdserverpb__TxnRequest t = ETCDSERVERPB__TXN_REQUEST__INIT;
	t.success = oks;
	t.n_success = 1;
	EXPECT(core_auth_check_txn(&c, "alice", &t) == OK);
	t.failure = bads; /* the branch that may never run is checked too */
	t.n_failure = 1;
	EXPECT(core_auth_check_txn(&c, "alice", &t) == NO);

	/* A nested txn's ops, two levels down. */
	Etcdserverpb__TxnRequest inner = ETCDSERVERPB__TXN_REQUEST__INIT, mid = inner, outer = inner;
	inner.success = bads;
	inner.n_success = 1;
	Etcdserverpb__RequestOp in_op = ETCDSERVERPB__REQUEST_OP__INIT, mid_op = in_op;
	in_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	in_op.request_txn = &inner;
	Etcdserverpb__RequestOp *in_ops[] = {&in_op};
	mid.failure = in_ops;
	mid.n_failure = 1;
	mid_op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN;
	mid_op.request_txn = &mid;
	Etcdserverpb__RequestOp *mid_ops[] = {&ok_op, &mid_op};
	outer.success = mid_ops;
	outer.n_success = 2;
	EXPECT(core_auth_check_txn(&c, "alice", &outer) == NO);
	inner.success = oks;
	EXPECT(core_auth_check_txn(&c, "alice", &outer) == OK);

	/* prev_kv on a write-only key reads it. */
	Etcdserverpb__PutRequest z = ETCDSERVERPB__PUT_REQUEST__INIT;
	z.key = bin("/z1");
	EXPECT(core_auth_check_put(&c, "alice", &z) == OK);
	z.prev_kv = 1;
	EXPECT(core_auth_check_put(&c, "alice", &z) == NO);
	Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	d.key = bin("/z1");
	d.range_end = bin("/z2");
	EXPECT(core_auth_check_delete(&c, "alice", &d) == OK);
	d.prev_kv = 1;
	EXPECT(core_auth_check_delete(&c, "alice", &d) == NO);

	/* A compare outside the grant. */
	Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
	cmp.key = bin("/b");
	Etcdserverpb__Compare *cmps[] = {&cmp};
	Etcdserverpb__TxnRequest tc = ETCDSERVERPB__TXN_REQUEST__INIT;
	tc.compare = cmps;
	tc.n_compare = 1;
	EXPECT(core_auth_check_txn(&c, "alice", &tc) == NO);
	cmp.key = bin("/k");
	EXPECT(core_auth_check_txn(&c, "alice", &tc) == OK);
	auth_free(c.auth);
}

static void test_encodings(void)
{
	struct auth_user *u = user("alice", "r1");
	u->hash = strdup("$2b$04$abcdefghijklmnopqrstuu");
	size_t len;
	uint8_t *b = auth_user_pack(u, &len);
	struct auth_user *v = auth_user_unpack(b, len);
	EXPECT(v != NULL && strcmp(v->name, "alice") == 0 && strcmp(v->hash, u->hash) == 0);
	EXPECT(v != NULL && v->n_roles == 1 && strcmp(v->roles[0], "r1") == 0 && !v->no_password);
	free(b);
	auth_user_free(v);
	auth_user_free(u);

	struct auth_role *r = calloc(1, sizeof(*r));
	r->name = strdup("r1");
	r->perms = calloc(2, sizeof(*r->perms));
	grant(r, CORE_PERM_WRITE, "/z", "", 1);
	grant(r, CORE_PERM_READ, "/k", NULL, 0);
	b = auth_role_pack(r, &len);
	struct auth_role *q = auth_role_unpack(b, len);
	EXPECT(q != NULL && q->n_perms == 2 && q->perms[0].type == CORE_PERM_WRITE);
	EXPECT(q != NULL && q->perms[0].end_len == 1 && q->perms[0].end[0] == 0);
	EXPECT(q != NULL && q->perms[1].end_len == 0 && q->perms[1].key_len == 2);
	free(b);
	auth_role_free(q);
	auth_role_free(r);
	EXPECT(auth_user_unpack((const uint8_t *)"\xff\xff", 2) == NULL);
}

static void test_passwords(void)
{
	char h[AUTH_HASH_MAX];
	EXPECT(auth_passwd_hash(4, "s3cret", 6, h, sizeof(h)) == CORE_OK);
	EXPECT(strncmp(h, "$2b$04$", 7) == 0);
	EXPECT(auth_passwd_ok(h, "s3cret", 6));
	EXPECT(!auth_passwd_ok(h, "s3creT", 6));
	EXPECT(!auth_passwd_ok(h, "", 0));
	EXPECT(!auth_passwd_ok("", "s3cret", 6));
	EXPECT(!auth_passwd_ok("*0", "s3cret", 6));
	/* Go's bcrypt writes "$2a$": such hashes (etcd's hashedPassword) verify. */
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data cd;
	memset(&cd, 0, sizeof(cd));
	EXPECT(crypt_gensalt_rn("$2a$", 4, NULL, 0, salt, sizeof(salt)) != NULL);
	const char *go = crypt_r("pw", salt, &cd);
	EXPECT(go != NULL && strncmp(go, "$2a$04$", 7) == 0);
	EXPECT(auth_passwd_ok(go, "pw", 2));
	EXPECT(!auth_passwd_ok(go, "px", 2));
}

static void test_tokens(void)
{
	struct core c;
	setup(&c);
	struct core_auth *a = c.auth;
	char t1[64], t2[64], u[CORE_AUTH_USER_MAX];
	uint64_t rv;
	EXPECT(auth_token_new(a, t1) == CORE_OK && auth_token_new(a, t2) == CORE_OK);
	EXPECT(strcmp(t1, t2) != 0 && strlen(t1) >= 18);
	EXPECT(auth_token_add(a, t1, "alice") == CORE_OK);
	EXPECT(auth_token_add(a, t2, "root") == CORE_OK);
	EXPECT(core_auth_token_user(&c, t1, strlen(t1), u, &rv) == CORE_OK && strcmp(u, "alice") == 0);
	EXPECT(core_auth_token_user(&c, t1, strlen(t1) - 1, u, &rv) == CORE_EINVALID_AUTH_TOKEN);
	EXPECT(core_auth_token_user(&c, "x", 1, u, &rv) == CORE_EINVALID_AUTH_TOKEN);
	auth_token_drop_user(a, "alice");
	EXPECT(core_auth_token_user(&c, t1, strlen(t1), u, &rv) == CORE_EINVALID_AUTH_TOKEN);
	EXPECT(core_auth_token_user(&c, t2, strlen(t2), u, &rv) == CORE_OK && strcmp(u, "root") == 0);
	a->token_ttl_ms = 0; /* born expired */
	EXPECT(auth_token_add(a, t1, "alice") == CORE_OK);
	EXPECT(core_auth_token_user(&c, t1, strlen(t1), u, &rv) == CORE_EINVALID_AUTH_TOKEN);
	auth_token_clear(a);
	EXPECT(core_auth_token_user(&c, t2, strlen(t2), u, &rv) == CORE_EINVALID_AUTH_TOKEN);
	/* Many tokens: the table grows and every one is still found. */
	a->token_ttl_ms = 60000;
	char many[300][64];
	for (int i = 0; i < 300; i++) {
		EXPECT(auth_token_new(a, many[i]) == CORE_OK);
		EXPECT(auth_token_add(a, many[i], i % 2 ? "alice" : "root") == CORE_OK);
	}
	EXPECT(a->n_tokens == 300 && a->n_buckets >= 256);
	int found = 0;
	for (int i = 0; i < 300; i++)
		found += core_auth_token_user(&c, many[i], strlen(many[i]), u, &rv) == CORE_OK &&
			 strcmp(u, i % 2 ? "alice" : "root") == 0;
	EXPECT(found == 300);
	auth_token_drop_user(a, "alice");
	EXPECT(a->n_tokens == 150);
	EXPECT(core_auth_token_user(&c, many[1], strlen(many[1]), u, &rv) == CORE_EINVALID_AUTH_TOKEN);
	EXPECT(core_auth_token_user(&c, many[2], strlen(many[2]), u, &rv) == CORE_OK);
	auth_free(a);
}

static void test_apply_check(void)
{
	struct core c;
	setup(&c);
	atomic_store(&c.auth->revision, 5);
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Metadpb__InternalRequest req = METADPB__INTERNAL_REQUEST__INIT, copy;
	req.request_case = METADPB__INTERNAL_REQUEST__REQUEST_PUT;
	req.put = &put;

	/* Nothing recorded: the request goes out as it is (core's own writes). */
	copy = req;
	auth_stamp(&copy);
	EXPECT(copy.auth_revision == 0 && copy.auth_user == req.auth_user);
	EXPECT(auth_apply_check_revision(&c, &copy) == CORE_OK);

	/* Recorded once, stamped once. */
	core_auth_caller_begin("alice", 5);
	auth_stamp(&copy);
	EXPECT(strcmp(copy.auth_user, "alice") == 0 && copy.auth_revision == 5);
	EXPECT(copy.put == &put);
	copy = req;
	auth_stamp(&copy);
	EXPECT(copy.auth_revision == 0);
	core_auth_caller_begin("alice", 5);
	core_auth_caller_end();
	auth_stamp(&copy);
	EXPECT(copy.auth_revision == 0);

	/* Kept for a later write (Lock, Campaign): take empties the thread,
	 * resume records the caller again; nothing taken, nothing resumed. */
	struct core_auth_caller who;
	core_auth_caller_begin("alice", 5);
	core_auth_caller_take(&who);
	auth_stamp(&copy);
	EXPECT(who.set && copy.auth_revision == 0);
	core_auth_caller_resume(&who);
	auth_stamp(&copy);
	EXPECT(strcmp(copy.auth_user, "alice") == 0 && copy.auth_revision == 5);
	core_auth_caller_take(&who);
	core_auth_caller_resume(&who);
	copy = req;
	auth_stamp(&copy);
	EXPECT(!who.set && copy.auth_revision == 0);

	/* Applied against the store as it is now. */
	copy = req;
	copy.auth_user = "alice";
	copy.auth_revision = 5;
	EXPECT(auth_apply_check_revision(&c, &copy) == CORE_OK);
	copy.auth_revision = 4; /* a grant or revoke came in between */
	EXPECT(auth_apply_check_revision(&c, &copy) == CORE_EAUTH_OLD_REVISION);
	copy.auth_user = ""; /* checked while auth was off, applied with it on */
	copy.auth_revision = 5;
	EXPECT(auth_apply_check_revision(&c, &copy) == CORE_EUSER_EMPTY);
	copy.request_case = METADPB__INTERNAL_REQUEST__REQUEST_AUTHENTICATE;
	EXPECT(auth_apply_check_revision(&c, &copy) == CORE_OK); /* its hash is its check */
	copy.request_case = METADPB__INTERNAL_REQUEST__REQUEST_PUT;
	atomic_store(&c.auth->enabled, false);
	EXPECT(auth_apply_check_revision(&c, &copy) == CORE_OK);
	auth_free(c.auth);
}

/* A fresh key pair as PEM files under dir; returns the method's options. */
static void write_keys(const char *dir, const char *type, char *opts, size_t len,
		       const char *method, bool with_priv)
{
	EVP_PKEY *k = strcmp(type, "EC") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
					      : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	char priv[256], pub[256];
	snprintf(priv, sizeof(priv), "%s/%s-priv.pem", dir, type);
	snprintf(pub, sizeof(pub), "%s/%s-pub.pem", dir, type);
	FILE *f = fopen(priv, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	f = fopen(pub, "w");
	PEM_write_PUBKEY(f, k);
	fclose(f);
	EVP_PKEY_free(k);
	if (with_priv)
		snprintf(opts, len, "jwt,pub-key=%s,priv-key=%s,sign-method=%s,ttl=5m", pub, priv,
			 method);
	else
		snprintf(opts, len, "jwt,pub-key=%s,sign-method=%s", pub, method);
}

static void test_jwt(void)
{
	char dir[] = "/tmp/metad-jwt-XXXXXX";
	EXPECT(mkdtemp(dir) != NULL);
	const char *methods[][2] = {{"RS256", "RSA"}, {"PS384", "RSA"}, {"ES256", "EC"}};
	for (size_t m = 0; m < 3; m++) {
		struct core_auth *a = auth_new();
		char opts[1024], err[256] = "", *tok = NULL, user[CORE_AUTH_USER_MAX];
		uint64_t rev = 0;
		write_keys(dir, methods[m][1], opts, sizeof(opts), methods[m][0], true);
		EXPECT(auth_jwt_open(a, opts, err, sizeof(err)) == 0);
		EXPECT(auth_jwt_sign(a, "al\"ice", 7, &tok) == CORE_OK && tok != NULL);
		EXPECT(auth_jwt_verify(a, tok, strlen(tok), user, &rev) == CORE_OK);
		EXPECT(strcmp(user, "al\"ice") == 0 && rev == 7);
		/* Every single-byte change and every truncation is refused. */
		size_t n = strlen(tok);
		int accepted = 0;
		for (size_t i = 0; i < n; i++) {
			char saved = tok[i];
			tok[i] = saved == 'A' ? 'B' : 'A';
			accepted += auth_jwt_verify(a, tok, n, user, &rev) == CORE_OK;
			tok[i] = saved;
			accepted += auth_jwt_verify(a, tok, i, user, &rev) == CORE_OK;
		}
		EXPECT(accepted == 0);
		/* Random bytes never crash the decoder (run under ASan too). */
		unsigned seed = 12345;
		char junk[200];
		for (int r = 0; r < 2000; r++) {
			size_t len = (size_t)(rand_r(&seed) % sizeof(junk));
			for (size_t i = 0; i < len; i++) {
				int x = rand_r(&seed) % 8;
				junk[i] = x == 0 ? '.' : x == 1 ? tok[rand_r(&seed) % n] : (char)rand_r(&seed);
			}
			EXPECT(auth_jwt_verify(a, junk, len, user, &rev) != CORE_OK);
		}
		free(tok);
		auth_free(a);
		/* A member with only the public key verifies but cannot issue. */
		a = auth_new();
		char vopts[1024];
		snprintf(vopts, sizeof(vopts), "%s", opts);
		char *pk = strstr(vopts, ",priv-key=");
		char *rest = pk ? strchr(pk + 1, ',') : NULL;
		if (pk && rest)
			memmove(pk, rest, strlen(rest) + 1);
		EXPECT(auth_jwt_open(a, vopts, err, sizeof(err)) == 0);
		EXPECT(auth_jwt_sign(a, "x", 1, &tok) == CORE_EINTERNAL);
		auth_free(a);
	}
	/* Bad options are refused with a reason. */
	struct core_auth *a = auth_new();
	char err[256] = "";
	EXPECT(auth_jwt_open(a, "jwt,sign-method=HS256,pub-key=/x", err, sizeof(err)) != 0);
	EXPECT(auth_jwt_open(a, "jwt,pub-key=/nonexistent,sign-method=RS256", err, sizeof(err)) != 0);
	EXPECT(strstr(err, "/nonexistent") != NULL);
	EXPECT(auth_jwt_open(a, "jwt,bogus", err, sizeof(err)) != 0);
	auth_free(a);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	EXPECT(system(cmd) == 0);
}

int main(void)
{
	test_jwt();
	test_apply_check();
	test_ranges();
	test_txn();
	test_encodings();
	test_passwords();
	test_tokens();
	if (failures == 0)
		printf("test_auth: all passed\n");
	return failures != 0;
}
