/*
 * server/autotls.c — the self-signed certificate of --auto-tls (see
 * autotls.h), made with OpenSSL's EVP and X509 APIs.
 *
 * ETCD-COMPAT: etcd writes <data-dir>/fixtures/client/{cert.pem,key.pem},
 * reuses them on restart, ignores --auto-tls when --cert-file/--key-file
 * are given, and (without --client-cert-auth) asks no client certificate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/autotls.h"

static int mkdirs(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(p, 0700) != 0 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* "https://10.0.0.1:2379" -> "10.0.0.1"; "https://[::1]:2379" -> "::1". */
static void url_host(const char *url, char *host, size_t len)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t n;
	if (*p == '[') {
		p++;
		n = strcspn(p, "]");
	} else {
		n = strcspn(p, ":/");
	}
	if (n >= len)
		n = len - 1;
	memcpy(host, p, n);
	host[n] = 0;
}

static int add_exts(X509 *x, const char *const *urls, size_t n)
{
	char list[4096] = "";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char host[256];
		url_host(urls[i], host, sizeof(host));
		if (host[0] == 0)
			continue;
		unsigned char buf[16];
		bool ip = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
		int w = snprintf(list + o, sizeof(list) - o, "%s%s:%s", o ? "," : "", ip ? "IP" : "DNS",
				 host);
		if (w < 0 || (size_t)w >= sizeof(list) - o)
			break;
		o += (size_t)w;
	}
	/* etcd's: a server certificate, not a CA */
	struct {
		int nid;
		const char *value;
	} exts[] = {
		{NID_key_usage, "critical,digitalSignature,keyEncipherment"},
		{NID_ext_key_usage, "serverAuth"},
		{NID_basic_constraints, "critical,CA:FALSE"},
		{NID_subject_alt_name, list},
	};
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if (exts[i].nid == NID_subject_alt_name && o == 0)
			continue;
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
		if (ext == NULL)
			return -1;
		int ok = X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
		if (ok != 1)
			return -1;
	}
	return 0;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	chmod(path, 0600);
	int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_X509(f, cert);
	return (fclose(f) == 0 && ok == 1) ? 0 : -1;
}

int autotls_make(const char *dir, const char *const *urls, size_t n, int years, char *cert,
		 char *key, size_t len, char *err, size_t errlen)
{
	snprintf(cert, len, "%s/cert.pem", dir);
	snprintf(key, len, "%s/key.pem", dir);
	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
		return 0;
	if (mkdirs(dir) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int rv = -1;
	unsigned char serial[16];
	if (pk == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ASN1_INTEGER *sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	BN_free(bn);
	if (sn == NULL)
		goto out;
	X509_set_serialNumber(x, sn);
	ASN1_INTEGER_free(sn);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), (long)(years > 0 ? years : 1) * 365 * 24 * 3600);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"etcd", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, pk);
	if (add_exts(x, urls, n) != 0 || X509_sign(x, pk, EVP_sha256()) == 0)
		goto out;
	if (write_pem(key, pk, NULL) != 0 || write_pem(cert, NULL, x) != 0)
		goto out;
	rv = 0;
out:
	if (rv != 0)
		snprintf(err, errlen, "cannot make a self-signed certificate in %s", dir);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rv;
}
