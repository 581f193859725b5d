/*
 * tests/fuzz/fuzz_auth_token.c — any bytes as a token from call metadata:
 * a simple-token lookup, and a JWT verification against an ES256 key made
 * at start. Nothing may crash, and nothing but a token we issued may pass.
 */
#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tests/fuzz/fuzz_common.h"

static struct core_auth *jwt;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	char dir[] = "/tmp/metad-fuzz-XXXXXX";
	if (mkdtemp(dir) == NULL)
		abort();
	char priv[128], opts[512], err[256];
	snprintf(priv, sizeof(priv), "%s/priv.pem", dir);
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	FILE *f = fopen(priv, "w");
	if (k == NULL || f == NULL || PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) != 1)
		abort();
	fclose(f);
	EVP_PKEY_free(k);
	snprintf(opts, sizeof(opts), "jwt,priv-key=%s,sign-method=ES256", priv);
	jwt = calloc(1, sizeof(*jwt));
	if (jwt == NULL || auth_jwt_open(jwt, opts, err, sizeof(err)) != 0)
		abort();
	unlink(priv);
	rmdir(dir);
	/* One real simple token, so lookups walk a non-empty table. */
	struct core *c = fuzz_core();
	auth_token_add(c->auth, "AAAAAAAAAAAAAAAA.1", "alice");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct core *c = fuzz_core();
	char user[CORE_AUTH_USER_MAX];
	uint64_t rev;
	int err = core_auth_token_user(c, (const char *)data, size, user, &rev);
	if (err == CORE_OK && (size != 18 || memcmp(data, "AAAAAAAAAAAAAAAA.1", 18) != 0))
		abort();
	if (auth_jwt_verify(jwt, (const char *)data, size, user, &rev) == CORE_OK)
		abort(); /* an unsigned input verified: a forgery */
	return 0;
}
