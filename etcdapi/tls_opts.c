/*
 * etcdapi/tls_opts.c — etcd's TLS options for OpenSSL and GnuTLS
 * (tls_opts.h). Names are looked up in the libraries' own tables: OpenSSL
 * knows each suite's IANA name, its own name and its two-byte id, and
 * GnuTLS names the parts of the suite with that id.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "etcdapi/tls_opts.h"

/* Append item to the ':'-separated list in out unless it is there;
 * false when out is full. */
static bool add_item(char *out, size_t len, const char *item)
{
	size_t il = strlen(item);
	for (const char *p = out; *p;) {
		size_t n = strcspn(p, ":");
		if (n == il && memcmp(p, item, il) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	size_t ol = strlen(out);
	int w = snprintf(out + ol, len - ol, "%s%s", ol ? ":" : "", item);
	return w >= 0 && (size_t)w < len - ol;
}

/* GnuTLS's key exchange, cipher and MAC of the suite with this id. */
static bool gnutls_items(uint16_t id, char *out, size_t len)
{
	unsigned char cs[2];
	gnutls_kx_algorithm_t kx;
	gnutls_cipher_algorithm_t cipher;
	gnutls_mac_algorithm_t mac;
	gnutls_protocol_t min;
	for (size_t i = 0; gnutls_cipher_suite_info(i, cs, &kx, &cipher, &mac, &min) != NULL; i++) {
		if (((uint16_t)cs[0] << 8 | cs[1]) != id)
			continue;
		char item[64];
		const char *parts[3] = {gnutls_kx_get_name(kx), gnutls_cipher_get_name(cipher),
					gnutls_mac_get_name(mac)};
		for (int k = 0; k < 3; k++) {
			if (parts[k] == NULL)
				return false;
			snprintf(item, sizeof(item), "+%s", parts[k]);
			if (!add_item(out, len, item))
				return false;
		}
		return true;
	}
	return false;
}

static const SSL_CIPHER *find_suite(STACK_OF(SSL_CIPHER) * all, const char *name)
{
	for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
		const char *std = SSL_CIPHER_standard_name(c);
		/* TLS 1.3's suites (0x13xx) are not chosen by --cipher-suites, as in Go */
		if (std != NULL && strcmp(std, name) == 0 &&
		    (SSL_CIPHER_get_protocol_id(c) & 0xff00) != 0x1300)
			return c;
	}
	return NULL;
}

int api_tls_ciphers(const char *names, char *openssl, size_t olen, char *gnutls, size_t glen,
		    char *err, size_t errlen)
{
	openssl[0] = gnutls[0] = 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "cipher suites: out of memory");
		return -1;
	}
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL");
	STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(ctx);
	int rv = 0;
	char name[128];
	for (const char *p = names; *p && rv == 0;) {
		size_t n = strcspn(p, ",");
		int w = snprintf(name, sizeof(name), "%.*s", (int)n, p);
		p += n + (p[n] == ',');
		while (w > 0 && name[w - 1] == ' ')
			name[--w] = 0;
		const char *nm = name + strspn(name, " ");
		if (*nm == 0)
			continue;
		const SSL_CIPHER *c = find_suite(all, nm);
		if (c == NULL) { /* Go's short CHACHA20 names */
			char longer[160];
			snprintf(longer, sizeof(longer), "%s_SHA256", nm);
			c = find_suite(all, longer);
		}
		if (c == NULL) {
			snprintf(err, errlen, "unexpected TLS cipher suite \"%s\"", nm);
			rv = -1;
		} else if (!add_item(openssl, olen, SSL_CIPHER_get_name(c))) {
			snprintf(err, errlen, "--cipher-suites: too many suites");
			rv = -1;
		} else {
			gnutls_items(SSL_CIPHER_get_protocol_id(c), gnutls, glen);
		}
	}
	if (rv == 0 && openssl[0] == 0) {
		snprintf(err, errlen, "--cipher-suites: no suite given");
		rv = -1;
	}
	if (rv == 0 && gnutls[0] == 0) {
		snprintf(err, errlen, "--cipher-suites: none of them is known to GnuTLS (HTTPS)");
		rv = -1;
	}
	SSL_CTX_free(ctx);
	return rv;
}

void api_tls_priorities(bool tls13_min, const char *ciphers, char *out, size_t len)
{
	/* TLS 1.2 at least, as etcd (and gRPC core for the gRPC side). */
	snprintf(out, len, "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1%s%s%s",
		 tls13_min ? ":-VERS-TLS1.2" : "",
		 ciphers && ciphers[0] ? ":-CIPHER-ALL:-MAC-ALL:-KX-ALL:" : "",
		 ciphers && ciphers[0] ? ciphers : "");
}

int api_tls_crl_dir(const char *flag, const char *crl_file, const char *dir, char *err,
		    size_t errlen)
{
	FILE *in = fopen(crl_file, "r");
	if (in == NULL) {
		snprintf(err, errlen, "%s %s: %s", flag, crl_file, strerror(errno));
		return -1;
	}
	char parent[4200];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = 0;
		mkdir(parent, 0700); /* <data-dir>/fixtures, as --auto-tls makes it */
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		fclose(in);
		return -1;
	}
	/* Only this file's CRLs: what an earlier start left goes. */
	DIR *d = opendir(dir);
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		char old[4300];
		if (strstr(e->d_name, ".r") == NULL)
			continue;
		snprintf(old, sizeof(old), "%s/%s", dir, e->d_name);
		unlink(old);
	}
	if (d != NULL)
		closedir(d);
	int n = 0, rv = 0;
	X509_CRL *crl;
	while (rv == 0 && (crl = PEM_read_X509_CRL(in, NULL, NULL, NULL)) != NULL) {
		char path[4300];
		unsigned long h = X509_NAME_hash_ex(X509_CRL_get_issuer(crl), NULL, NULL, NULL);
		struct stat st;
		for (int k = 0;; k++) { /* the next free .rN of this issuer */
			snprintf(path, sizeof(path), "%s/%08lx.r%d", dir, h, k);
			if (stat(path, &st) != 0)
				break;
		}
		FILE *out = fopen(path, "w");
		if (out == NULL || PEM_write_X509_CRL(out, crl) != 1) {
			snprintf(err, errlen, "cannot write %s", path);
			rv = -1;
		}
		if (out != NULL)
			fclose(out);
		X509_CRL_free(crl);
		n++;
	}
	fclose(in);
	if (rv == 0 && n == 0) {
		snprintf(err, errlen, "%s %s: no PEM CRL in it", flag, crl_file);
		rv = -1;
	}
	return rv;
}
