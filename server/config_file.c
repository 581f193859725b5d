/*
 * server/config_file.c — etcd's YAML config file, parsed with libyaml's
 * document API, and ETCD_* environment variables.
 *
 * ETCD-COMPAT: etcd's config file uses the flag names as keys, with TLS
 * settings nested under client-transport-security and
 * peer-transport-security (cert-file, key-file, client-cert-auth,
 * trusted-ca-file, auto-tls, crl-file, ...). When --config-file is given,
 * etcd ignores the other flags and the environment; metad does the same.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "server/config_file.h"

extern char **environ;

/* Strings handed to the flag setters, which keep pointers to them. */
struct kept {
	struct kept *next;
	char s[];
};
static struct kept *kept_list;

static const char *keep(const char *s, size_t len)
{
	struct kept *k = malloc(sizeof(*k) + len + 1);
	if (k == NULL)
		return NULL;
	memcpy(k->s, s, len);
	k->s[len] = 0;
	k->next = kept_list;
	kept_list = k;
	return k->s;
}

void config_file_free(void)
{
	while (kept_list != NULL) {
		struct kept *next = kept_list->next;
		free(kept_list);
		kept_list = next;
	}
}

static int set(struct flags *f, const char *name, const char *value, size_t len)
{
	const char *v = keep(value, len);
	if (v == NULL) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	return flags_set(f, name, v);
}

/* A scalar or a list of scalars as one flag value. */
static int set_node(struct flags *f, yaml_document_t *doc, const char *name, yaml_node_t *v)
{
	if (v->type == YAML_SCALAR_NODE) {
		const char *s = (const char *)v->data.scalar.value;
		size_t len = v->data.scalar.length;
		/* null (~, null, empty) leaves the default */
		if (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0))
			return 0;
		return set(f, name, s, len);
	}
	if (v->type == YAML_SEQUENCE_NODE) {
		char buf[8192];
		size_t o = 0;
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++) {
			yaml_node_t *e = yaml_document_get_node(doc, *it);
			if (e == NULL || e->type != YAML_SCALAR_NODE) {
				fprintf(stderr, "config file: %s: a list of plain values is expected\n",
					name);
				return -1;
			}
			if (o + e->data.scalar.length + 2 > sizeof(buf)) {
				fprintf(stderr, "config file: %s: value too long\n", name);
				return -1;
			}
			if (o > 0)
				buf[o++] = ',';
			memcpy(buf + o, e->data.scalar.value, e->data.scalar.length);
			o += e->data.scalar.length;
		}
		return o ? set(f, name, buf, o) : 0;
	}
	fprintf(stderr, "config file: %s: unexpected mapping\n", name);
	return -1;
}

/* client-transport-security: {cert-file: ...} -> --cert-file ... */
static int set_security(struct flags *f, yaml_document_t *doc, yaml_node_t *map, bool peer)
{
	if (map->type != YAML_MAPPING_NODE)
		return 0; /* null: nothing set */
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		yaml_node_t *v = yaml_document_get_node(doc, p->value);
		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
			continue;
		const char *key = (const char *)k->data.scalar.value;
		char name[160];
		if (strcmp(key, "crl-file") == 0)
			snprintf(name, sizeof(name), "%s-crl-file", peer ? "peer" : "client");
		else if (strcmp(key, "allowed-cn") == 0 || strcmp(key, "allowed-hostname") == 0)
			snprintf(name, sizeof(name), "%s-cert-%s", peer ? "peer" : "client", key);
		else
			snprintf(name, sizeof(name), "%s%s", peer ? "peer-" : "", key);
		if (set_node(f, doc, name, v) != 0)
			return -1;
	}
	return 0;
}

int config_file_load(struct flags *f, const char *path)
{
	FILE *in = fopen(path, "rb");
	if (in == NULL) {
		fprintf(stderr, "open %s: no such file or directory\n", path);
		return -1;
	}
	yaml_parser_t parser;
	yaml_document_t doc;
	int rv = -1;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, in);
	if (!yaml_parser_load(&parser, &doc)) {
		fprintf(stderr, "error converting YAML to JSON: yaml: line %zu: %s\n",
			parser.problem_mark.line + 1, parser.problem ? parser.problem : "bad YAML");
		yaml_parser_delete(&parser);
		fclose(in);
		return -1;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root == NULL) {
		rv = 0; /* an empty file sets nothing */
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		fprintf(stderr, "config file %s: a mapping of flag names is expected\n", path);
		goto out;
	}
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);
		if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE)
			continue;
		const char *key = (const char *)k->data.scalar.value;
		int r;
		if (strcmp(key, "client-transport-security") == 0)
			r = set_security(f, &doc, v, false);
		else if (strcmp(key, "peer-transport-security") == 0)
			r = set_security(f, &doc, v, true);
		else if (strcmp(key, "config-file") == 0)
			r = 0;
		else
			r = set_node(f, &doc, key, v);
		if (r != 0)
			goto out;
	}
	rv = 0;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(in);
	return rv;
}

int config_env_load(struct flags *f)
{
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, "ETCD_", 5) != 0)
			continue;
		const char *eq = strchr(*e, '=');
		if (eq == NULL || eq - *e - 5 <= 0 || eq - *e - 5 >= 128)
			continue;
		char name[128];
		size_t n = (size_t)(eq - *e - 5);
		for (size_t i = 0; i < n; i++) {
			char c = (*e)[5 + i];
			name[i] = c == '_' ? '-' : (char)tolower((unsigned char)c);
		}
		name[n] = 0;
		/* etcd's own switches, not flags */
		if (strcmp(name, "unsupported-arch") == 0 || strcmp(name, "config-file") == 0)
			continue;
		if (!flags_known(name)) {
			flags_note(f, "warn", "unrecognized environment variable %.*s", (int)(eq - *e), *e);
			continue;
		}
		if (set(f, name, eq + 1, strlen(eq + 1)) != 0)
			return -1;
	}
	return 0;
}
