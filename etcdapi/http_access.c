/*
 * etcdapi/http_access.c — --host-whitelist and --cors on the client
 * port's HTTP endpoints, as etcd's access controller does them (see
 * http_access.h). URLs and Host headers are split with uriparser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uriparser/Uri.h>

#include "core/core.h"
#include "etcdapi/http_access.h"

/* etcd's addCORSHeader values */
#define CORS_METHODS "POST, GET, OPTIONS, PUT, DELETE"
#define CORS_HEADERS "accept, content-type, authorization"

struct api_access {
	bool any_origin, any_host; /* "*" */
	char **origins, **hosts;   /* the lists otherwise (NULL-terminated) */
};

static size_t range_len(const UriTextRangeA *r)
{
	return r->first == NULL ? 0 : (size_t)(r->afterLast - r->first);
}

/* One --cors item, trimmed (Go's strings.TrimSpace), checked as etcd's
 * types.NewURLs checks it; its normalised form (the scheme in lower case,
 * as Go's url.URL.String() has it) goes to *out when out is not NULL. */
static int cors_item(const char *s, size_t len, char **out, char *err, size_t errlen)
{
	while (len > 0 && strchr(" \t\n\v\f\r", s[0]) != NULL)
		s++, len--;
	while (len > 0 && strchr(" \t\n\v\f\r", s[len - 1]) != NULL)
		len--;
	char *item = strndup(s, len);
	if (item == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	UriUriA u;
	if (uriParseSingleUriA(&u, item, NULL) != URI_SUCCESS) {
		snprintf(err, errlen, "parse \"%s\": invalid URL", item);
		free(item);
		return -1;
	}
	size_t sl = range_len(&u.scheme);
	const char *why = NULL;
	if (!((sl == 4 && strncasecmp(u.scheme.first, "http", 4) == 0) ||
	      (sl == 5 && strncasecmp(u.scheme.first, "https", 5) == 0) ||
	      (sl == 4 && strncasecmp(u.scheme.first, "unix", 4) == 0) ||
	      (sl == 5 && strncasecmp(u.scheme.first, "unixs", 5) == 0)))
		why = "URL scheme must be http, https, unix, or unixs";
	else if (u.hostText.first == NULL || u.portText.first == NULL)
		why = "URL address does not have the form \"host:port\"";
	else if (u.pathHead != NULL || u.absolutePath)
		why = "URL must not contain a path";
	uriFreeUriMembersA(&u);
	if (why != NULL) {
		snprintf(err, errlen, "%s: %s", why, item);
		free(item);
		return -1;
	}
	for (size_t i = 0; i < sl; i++)
		item[i] = (char)(item[i] | 0x20); /* ASCII letters, digits, + - . */
	if (out != NULL)
		*out = item;
	else
		free(item);
	return 0;
}

/* Split list at commas into a NULL-terminated array (items as they are, or
 * cors items checked and normalised). */
static int split(const char *list, bool cors, char ***out, char *err, size_t errlen)
{
	size_t n = 1;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	char **v = calloc(n + 1, sizeof(*v));
	if (v == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out = v;
	for (size_t i = 0; i < n; i++) {
		size_t l = strcspn(list, ",");
		if (cors) {
			if (cors_item(list, l, &v[i], err, errlen) != 0)
				return -1;
		} else if ((v[i] = strndup(list, l)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		list += l + (list[l] == ',');
	}
	return 0;
}

static void free_list(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

static bool listed(char *const *v, const char *s)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

int api_access_cors_check(const char *cors, char *err, size_t errlen)
{
	/* etcd takes "*" alone as the exception; in a list it is no URL */
	if (strcmp(cors, "*") == 0)
		return 0;
	char **v = NULL;
	int rv = split(cors, true, &v, err, errlen);
	free_list(v);
	return rv;
}

struct api_access *api_access_new(const char *cors, const char *hosts)
{
	struct api_access *a = calloc(1, sizeof(*a));
	char err[256];
	if (a == NULL)
		return NULL;
	a->any_origin = cors == NULL || strcmp(cors, "*") == 0;
	if (!a->any_origin && split(cors, true, &a->origins, err, sizeof(err)) != 0)
		goto fail;
	/* etcd's flag keeps every item, an empty one too (Host ""), and lets
	 * every Host in when one of them is "*" */
	if (hosts != NULL && split(hosts, false, &a->hosts, err, sizeof(err)) != 0)
		goto fail;
	a->any_host = hosts == NULL || listed(a->hosts, "*");
	return a;
fail:
	api_access_free(a);
	return NULL;
}

void api_access_free(struct api_access *a)
{
	if (a == NULL)
		return;
	free_list(a->origins);
	free_list(a->hosts);
	free(a);
}

/* Host's name as etcd compares it: Host without its port when it splits as
 * host:port, else Host unchanged ("" for NULL). Malloc'd; NULL when out of
 * memory. */
static char *hostname(const char *host)
{
	if (host == NULL)
		host = ""; /* HTTP/1.0 without Host: Go's req.Host is "" */
	size_t len = strlen(host);
	char *url = malloc(len + 8);
	if (url == NULL)
		return NULL;
	memcpy(url, "http://", 7);
	memcpy(url + 7, host, len + 1);
	/* Only a bare host:port is split, as Go's net.SplitHostPort splits it
	 * (an IPv6 address loses its brackets); anything else is compared whole. */
	UriUriA u;
	char *name = NULL;
	if (uriParseSingleUriA(&u, url, NULL) == URI_SUCCESS) {
		if (u.portText.first != NULL && u.hostText.first != NULL && u.userInfo.first == NULL &&
		    u.pathHead == NULL && !u.absolutePath && u.query.first == NULL &&
		    u.fragment.first == NULL)
			name = strndup(u.hostText.first, range_len(&u.hostText));
		else
			name = strdup(host);
		uriFreeUriMembersA(&u);
	} else {
		name = strdup(host);
	}
	free(url);
	return name;
}

/* host as Go's %q verb writes it, for the 421 text: quoted, with \" \\ and
 * control bytes escaped (bytes past ASCII as \x.., where Go would keep a
 * printable UTF-8 rune). Malloc'd; NULL when out of memory. */
static char *go_quote(const char *host)
{
	static const char raw[] = "\"\\\a\b\f\n\r\t\v", named[] = "\"\\abfnrtv";
	char *out = malloc(strlen(host) * 4 + 3), *o = out;
	if (out == NULL)
		return NULL;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
		const char *esc = strchr(raw, *p);
		if (esc != NULL) {
			*o++ = '\\';
			*o++ = named[esc - raw];
		} else if (*p < 0x20 || *p >= 0x7f) {
			o += sprintf(o, "\\x%02x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o++ = '"';
	*o = 0;
	return out;
}

static enum MHD_Result refuse_host(struct MHD_Connection *conn, const char *name)
{
	core_log_kv("warn", "rejecting HTTP request to prevent DNS rebinding attacks", "{s:s}",
		    "host", name);
	char *quoted = go_quote(name), *body = NULL;
	if (quoted == NULL)
		return MHD_NO;
	/* etcd's errCVE20185702 text, written by Go's http.Error (+ "\n") */
	int n = asprintf(&body,
			 "\n"
			 "etcd received your request, but the Host header was unrecognized.\n"
			 "\n"
			 "To fix this, choose one of the following options:\n"
			 "- Enable TLS, then any HTTPS request will be allowed.\n"
			 "- Add the hostname you want to use to the whitelist in settings.\n"
			 "  - e.g. etcd --host-whitelist %s\n"
			 "\n"
			 "This requirement has been added to help prevent \"DNS Rebinding\" "
			 "attacks (CVE-2018-5702).\n"
			 "\n",
			 quoted);
	free(quoted);
	if (n < 0)
		return MHD_NO;
	struct MHD_Response *r =
		MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result rv = MHD_queue_response(conn, 421, r);
	MHD_destroy_response(r);
	return rv;
}

bool api_access_answer(const struct api_access *a, struct MHD_Connection *conn,
		       const char *method, bool tls, const char **allow, enum MHD_Result *rv)
{
	*allow = NULL;
	if (!tls && !a->any_host) {
		const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
		char *name = hostname(host);
		if (name == NULL) {
			*rv = MHD_NO;
			return true;
		}
		if (!listed(a->hosts, name)) {
			*rv = refuse_host(conn, name);
			free(name);
			return true;
		}
		free(name);
	}
	if (a->any_origin) {
		*allow = "*";
	} else {
		/* no Origin is "", in no list (etcd's URLs have a scheme) */
		const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
		if (origin != NULL && listed(a->origins, origin))
			*allow = origin;
	}
	if (strcmp(method, "OPTIONS") != 0)
		return false;
	/* a preflight, or any OPTIONS: 200 and no body, whatever the path */
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"",
								 MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		*rv = MHD_NO;
		return true;
	}
	api_access_cors_headers(r, *allow);
	*rv = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return true;
}

void api_access_cors_headers(struct MHD_Response *r, const char *allow)
{
	if (allow == NULL)
		return;
	MHD_add_response_header(r, "Access-Control-Allow-Methods", CORS_METHODS);
	MHD_add_response_header(r, "Access-Control-Allow-Origin", allow);
	MHD_add_response_header(r, "Access-Control-Allow-Headers", CORS_HEADERS);
}
