/*
 * core/auth_passwd.c — bcrypt password hashes through libxcrypt.
 *
 * "$2b$" hashes at --bcrypt-cost (etcd's default 10), which also verify
 * etcd's Go "$2a$" hashes (hashedPassword copied from an etcd cluster).
 * Both calls cost tens of milliseconds by design: callers run them on
 * worker threads, never on a thread that serves other calls.
 */
#include <stdlib.h>
#include <string.h>

#include <crypt.h>
#include <openssl/crypto.h>

#include "core/auth_internal.h"

int auth_passwd_hash(int cost, const char *pw, size_t pw_len, char *out, size_t cap)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	/* NULL random bytes: libxcrypt reads them from the OS. */
	if (crypt_gensalt_rn("$2b$", (unsigned long)cost, NULL, 0, salt, sizeof(salt)) == NULL)
		return CORE_EINTERNAL;
	char *phrase = strndup(pw, pw_len);
	struct crypt_data *cd = calloc(1, sizeof(*cd)); /* ~32 KiB: not on the stack */
	int err = CORE_EINTERNAL;
	if (phrase != NULL && cd != NULL) {
		const char *h = crypt_r(phrase, salt, cd);
		/* libxcrypt fails with a "*"-led string, never a hash. */
		if (h != NULL && h[0] == '$' && strlen(h) < cap) {
			strcpy(out, h);
			err = CORE_OK;
		}
		explicit_bzero(phrase, pw_len);
	}
	free(phrase);
	if (cd != NULL)
		explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return err;
}

bool auth_passwd_ok(const char *hash, const char *pw, size_t pw_len)
{
	if (hash == NULL || hash[0] != '$')
		return false;
	char *phrase = strndup(pw, pw_len);
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	bool ok = false;
	if (phrase != NULL && cd != NULL) {
		const char *h = crypt_r(phrase, hash, cd);
		size_t n = strlen(hash);
		/* Same length first (not secret: the hash format fixes it), then
		 * every byte, in constant time. */
		ok = h != NULL && strlen(h) == n && CRYPTO_memcmp(h, hash, n) == 0;
		explicit_bzero(phrase, pw_len);
	}
	free(phrase);
	if (cd != NULL)
		explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}
