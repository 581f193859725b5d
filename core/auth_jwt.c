/*
 * core/auth_jwt.c — etcd's "jwt" tokens: signed claims {exp, revision,
 * username} that any member can verify with the public key, so nothing is
 * stored and nothing goes through the log.
 *
 * --auth-token jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256,ttl=5m as
 * etcd takes it. RS256/384/512, PS256/384/512 and ES256/384/512, with
 * OpenSSL. A member given only the public key verifies but cannot issue.
 * The token carries the auth revision it was issued at: once the store
 * changes, requests with it get "revision of auth store is old", and
 * clientv3 logs in again (etcd's behaviour).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

#define DEFAULT_JWT_TTL_S 300 /* etcd: 5 minutes */

struct auth_jwt {
	char alg[8];          /* "RS256", ... */
	char header_b64[64];  /* base64url of {"alg":...,"typ":"JWT"} */
	const EVP_MD *md;
	int kind;             /* 'R' (PKCS#1 v1.5), 'P' (PSS), 'E' (ECDSA) */
	size_t ec_len;        /* bytes of r and of s in an ES signature */
	EVP_PKEY *priv;       /* NULL: verify only */
	EVP_PKEY *pub;
	int64_t ttl_s;
};

/* ---- base64url without padding (RFC 7515) ---- */

static char *b64url(const uint8_t *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (out == NULL)
		return NULL;
	int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	while (len > 0 && out[len - 1] == '=')
		len--;
	out[len] = 0;
	for (int i = 0; i < len; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

/* Decoded bytes (malloc'd, *n set), NULL if s is not base64url. */
static uint8_t *unb64url(const char *s, size_t len, size_t *n)
{
	if (len % 4 == 1)
		return NULL;
	size_t padded = (len + 3) / 4 * 4;
	char *t = malloc(padded + 1);
	uint8_t *out = malloc(padded / 4 * 3 + 1);
	if (t == NULL || out == NULL) {
		free(t);
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '+' || c == '/' || c == '=')
			c = '!'; /* not base64url: make the decode fail */
		t[i] = c;
	}
	for (size_t i = len; i < padded; i++)
		t[i] = '=';
	t[padded] = 0;
	int got = EVP_DecodeBlock(out, (const unsigned char *)t, (int)padded);
	free(t);
	if (got < 0) {
		free(out);
		return NULL;
	}
	*n = (size_t)got - (padded - len); /* DecodeBlock counts the padding */
	/* Canonical only: spare low bits in the last character would give one
	 * token many spellings. */
	char *again = b64url(out, *n);
	bool same = again != NULL && strlen(again) == len && memcmp(again, s, len) == 0;
	free(again);
	if (!same) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- options ---- */

static EVP_PKEY *read_key(const char *path, bool priv, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "cannot open %s", path);
		return NULL;
	}
	EVP_PKEY *k = priv ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
			   : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL)
		snprintf(err, errlen, "%s holds no PEM %s key", path, priv ? "private" : "public");
	return k;
}

/* A Go duration's whole seconds ("5m", "30s", "1h"); -1 if not one. */
static int64_t duration_s(const char *v)
{
	char *end;
	long long n = strtoll(v, &end, 10);
	if (end == v || n < 0)
		return -1;
	if (strcmp(end, "s") == 0)
		return n;
	if (strcmp(end, "m") == 0)
		return n * 60;
	if (strcmp(end, "h") == 0)
		return n * 3600;
	return -1;
}

int auth_jwt_open(struct core_auth *a, const char *opts, char *err, size_t errlen)
{
	struct auth_jwt *j = calloc(1, sizeof(*j));
	char *copy = strdup(opts);
	const char *pub = NULL, *priv = NULL, *method = NULL;
	int rv = -1;
	if (j == NULL || copy == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	j->ttl_s = DEFAULT_JWT_TTL_S;
	char *save = NULL;
	char *tok = strtok_r(copy, ",", &save); /* "jwt" */
	while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
		char *eq = strchr(tok, '=');
		if (eq == NULL) {
			snprintf(err, errlen, "invalid auth token option %s", tok);
			goto out;
		}
		*eq = 0;
		if (strcmp(tok, "pub-key") == 0)
			pub = eq + 1;
		else if (strcmp(tok, "priv-key") == 0)
			priv = eq + 1;
		else if (strcmp(tok, "sign-method") == 0)
			method = eq + 1;
		else if (strcmp(tok, "ttl") == 0) {
			if ((j->ttl_s = duration_s(eq + 1)) <= 0) {
				snprintf(err, errlen, "invalid jwt ttl %s", eq + 1);
				goto out;
			}
		} else {
			snprintf(err, errlen, "unknown auth token option %s", tok);
			goto out;
		}
	}
	if (method == NULL || strlen(method) != 5 || strchr("RPE", method[0]) == NULL ||
	    method[1] != 'S') {
		snprintf(err, errlen, "jwt sign-method must be RS, PS or ES 256/384/512");
		goto out;
	}
	int bits = atoi(method + 2);
	j->md = bits == 256 ? EVP_sha256() : bits == 384 ? EVP_sha384() : bits == 512 ? EVP_sha512() : NULL;
	if (j->md == NULL) {
		snprintf(err, errlen, "jwt sign-method must be RS, PS or ES 256/384/512");
		goto out;
	}
	j->kind = method[0];
	j->ec_len = bits == 256 ? 32 : bits == 384 ? 48 : 66;
	strcpy(j->alg, method);
	if (pub == NULL && priv == NULL) {
		snprintf(err, errlen, "jwt needs pub-key or priv-key");
		goto out;
	}
	if (priv != NULL && (j->priv = read_key(priv, true, err, errlen)) == NULL)
		goto out;
	if (pub != NULL && (j->pub = read_key(pub, false, err, errlen)) == NULL)
		goto out;
	if (j->pub == NULL) { /* a private key verifies as well */
		EVP_PKEY_up_ref(j->priv);
		j->pub = j->priv;
	}
	int type = EVP_PKEY_get_base_id(j->pub);
	if ((j->kind == 'E') != (type == EVP_PKEY_EC) ||
	    (j->kind != 'E' && type != EVP_PKEY_RSA)) {
		snprintf(err, errlen, "jwt key does not fit sign-method %s", method);
		goto out;
	}
	if (j->priv != NULL && EVP_PKEY_eq(j->priv, j->pub) != 1) {
		snprintf(err, errlen, "jwt public and private keys don't match");
		goto out;
	}
	char header[64];
	snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", method);
	char *h = b64url((const uint8_t *)header, strlen(header));
	if (h == NULL || strlen(h) >= sizeof(j->header_b64)) {
		free(h);
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	strcpy(j->header_b64, h);
	free(h);
	a->jwt = j;
	j = NULL;
	rv = 0;
out:
	free(copy);
	auth_jwt_free(j);
	return rv;
}

void auth_jwt_free(struct auth_jwt *j)
{
	if (j == NULL)
		return;
	EVP_PKEY_free(j->priv);
	EVP_PKEY_free(j->pub);
	free(j);
}

/* ---- sign and verify ---- */

static bool digest_init(EVP_MD_CTX *ctx, const struct auth_jwt *j, EVP_PKEY *k, bool sign)
{
	EVP_PKEY_CTX *pctx = NULL;
	int ok = sign ? EVP_DigestSignInit(ctx, &pctx, j->md, NULL, k)
		      : EVP_DigestVerifyInit(ctx, &pctx, j->md, NULL, k);
	if (ok == 1 && j->kind == 'P')
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(
			     pctx, sign ? RSA_PSS_SALTLEN_DIGEST : RSA_PSS_SALTLEN_AUTO) == 1;
	return ok == 1;
}

/* JSON string body of s (no quotes), escaped; NULL if out of memory. */
static char *json_escape(const char *s)
{
	char *out = malloc(strlen(s) * 6 + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			o += sprintf(o, "\\%c", c);
		else if (c < 0x20)
			o += sprintf(o, "\\u%04x", c);
		else
			*o++ = (char)c;
	}
	*o = 0;
	return out;
}

int auth_jwt_sign(struct core_auth *a, const char *user, uint64_t rev, char **token)
{
	const struct auth_jwt *j = a->jwt;
	if (j->priv == NULL)
		return CORE_EINTERNAL; /* verify-only member */
	char *name = json_escape(user);
	if (name == NULL)
		return CORE_ENOMEM;
	size_t plen = strlen(name) + 96;
	char *payload = malloc(plen);
	if (payload == NULL) {
		free(name);
		return CORE_ENOMEM;
	}
	/* Go's encoder writes claims in key order: the same bytes as etcd's. */
	snprintf(payload, plen, "{\"exp\":%lld,\"revision\":%llu,\"username\":\"%s\"}",
		 (long long)time(NULL) + j->ttl_s, (unsigned long long)rev, name);
	free(name);
	char *p64 = b64url((const uint8_t *)payload, strlen(payload));
	free(payload);
	if (p64 == NULL)
		return CORE_ENOMEM;
	size_t slen = strlen(j->header_b64) + 1 + strlen(p64);
	char *signing = malloc(slen + 1);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t *sig = NULL, *raw = NULL;
	size_t siglen = 0;
	int err = CORE_EINTERNAL;
	if (signing == NULL || ctx == NULL)
		goto out;
	snprintf(signing, slen + 1, "%s.%s", j->header_b64, p64);
	if (!digest_init(ctx, j, j->priv, true) ||
	    EVP_DigestSign(ctx, NULL, &siglen, (const uint8_t *)signing, slen) != 1 ||
	    (sig = malloc(siglen)) == NULL ||
	    EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)signing, slen) != 1)
		goto out;
	if (j->kind == 'E') { /* DER -> r || s, each padded to the curve size (JWS) */
		const uint8_t *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
		raw = es ? malloc(2 * j->ec_len) : NULL;
		const BIGNUM *r, *s;
		if (raw != NULL) {
			ECDSA_SIG_get0(es, &r, &s);
			if (BN_bn2binpad(r, raw, (int)j->ec_len) < 0 ||
			    BN_bn2binpad(s, raw + j->ec_len, (int)j->ec_len) < 0) {
				free(raw);
				raw = NULL;
			}
		}
		ECDSA_SIG_free(es);
		if (raw == NULL)
			goto out;
		free(sig);
		sig = raw;
		siglen = 2 * j->ec_len;
	}
	char *s64 = b64url(sig, siglen);
	if (s64 == NULL)
		goto out;
	*token = malloc(slen + 1 + strlen(s64) + 1);
	if (*token != NULL) {
		sprintf(*token, "%s.%s", signing, s64);
		err = CORE_OK;
	} else {
		err = CORE_ENOMEM;
	}
	free(s64);
out:
	EVP_MD_CTX_free(ctx);
	free(sig);
	free(signing);
	free(p64);
	return err;
}

static bool verify_sig(const struct auth_jwt *j, const char *msg, size_t len, const uint8_t *sig,
		       size_t siglen)
{
	uint8_t *der = NULL;
	if (j->kind == 'E') { /* r || s -> DER */
		if (siglen != 2 * j->ec_len)
			return false;
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, (int)j->ec_len, NULL);
		BIGNUM *s = BN_bin2bn(sig + j->ec_len, (int)j->ec_len, NULL);
		if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			ECDSA_SIG_free(es);
			return false;
		}
		int n = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (n <= 0)
			return false;
		sig = der;
		siglen = (size_t)n;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && digest_init(ctx, j, j->pub, false) &&
		  EVP_DigestVerify(ctx, sig, siglen, (const uint8_t *)msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return ok;
}

/* The number after "key": in a JSON object we signed ourselves. */
static bool claim_num(const char *json, const char *key, long long *out)
{
	char pat[32];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	if (p == NULL)
		return false;
	char *end;
	*out = strtoll(p + strlen(pat), &end, 10);
	return end != p + strlen(pat);
}

/* The string after "username": (JSON escapes undone) into user. */
static bool claim_user(const char *json, char *user)
{
	const char *p = strstr(json, "\"username\":\"");
	if (p == NULL)
		return false;
	p += strlen("\"username\":\"");
	size_t n = 0;
	for (; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			if (*p == 'u') { /* we only escape control bytes this way */
				unsigned v;
				if (sscanf(p + 1, "%4x", &v) != 1 || v > 0x7f)
					return false;
				c = (char)v;
				p += 4;
			} else if (*p == '"' || *p == '\\' || *p == '/') {
				c = *p;
			} else {
				return false;
			}
		}
		if (n + 1 >= CORE_AUTH_USER_MAX)
			return false;
		user[n++] = c;
	}
	user[n] = 0;
	return *p == '"' && n > 0;
}

int auth_jwt_verify(struct core_auth *a, const char *token, size_t len, char *user, uint64_t *rev)
{
	long long exp;
	return auth_jwt_verify_exp(a, token, len, user, rev, &exp);
}

int auth_jwt_verify_exp(struct core_auth *a, const char *token, size_t len, char *user,
			uint64_t *rev, long long *exp_s)
{
	const struct auth_jwt *j = a->jwt;
	const char *dot1 = memchr(token, '.', len);
	const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL)
		return CORE_EINVALID_AUTH_TOKEN;
	/* Only our own header: no "alg" from the token is ever trusted. */
	size_t hlen = strlen(j->header_b64);
	if ((size_t)(dot1 - token) != hlen || memcmp(token, j->header_b64, hlen) != 0)
		return CORE_EINVALID_AUTH_TOKEN;
	size_t siglen, plen;
	const char *s64 = dot2 + 1;
	uint8_t *sig = unb64url(s64, len - (size_t)(s64 - token), &siglen);
	if (sig == NULL)
		return CORE_EINVALID_AUTH_TOKEN;
	bool ok = verify_sig(j, token, (size_t)(dot2 - token), sig, siglen);
	free(sig);
	if (!ok)
		return CORE_EINVALID_AUTH_TOKEN;
	uint8_t *payload = unb64url(dot1 + 1, (size_t)(dot2 - dot1 - 1), &plen);
	if (payload == NULL)
		return CORE_EINVALID_AUTH_TOKEN;
	char *json = malloc(plen + 1);
	int err = CORE_EINVALID_AUTH_TOKEN;
	long long exp, r;
	if (json != NULL) {
		memcpy(json, payload, plen);
		json[plen] = 0;
		if (strlen(json) == plen && claim_num(json, "exp", &exp) &&
		    claim_num(json, "revision", &r) && r > 0 && claim_user(json, user) &&
		    exp > (long long)time(NULL)) {
			*rev = (uint64_t)r;
			*exp_s = exp;
			err = CORE_OK;
		}
	}
	free(json);
	free(payload);
	return err;
}
