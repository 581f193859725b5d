/*
 * server/flags.c — parsing etcd-style flags (--flag value, --flag=value,
 * single or double dash, booleans without a value).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcdapi/http_access.h"
#include "server/config_file.h"
#include "server/flags.h"

/*
 * etcd 3.4 server flags that have no effect in metad: accepted with a
 * warning (capnslog's package levels; Go's profiler). README.md's flags
 * table says why for each.
 */
static const char *const ignored_value_flags[] = {
	"log-package-levels", NULL,
};
static const char *const ignored_bool_flags[] = {
	"enable-pprof", NULL,
};
/* Flags that only matter to what metad refuses (the v2 proxy, discovery):
 * accepted and checked as etcd checks them, with no effect of their own. */
static const char *const proxy_ms_flags[] = {
	"proxy-failure-wait", "proxy-refresh-interval", "proxy-dial-timeout",
	"proxy-write-timeout", "proxy-read-timeout", NULL,
};

void flags_note(struct flags *f, const char *level, const char *fmt, ...)
{
	if (f->n_notes == FLAGS_MAX_NOTES)
		return;
	struct flags_note *n = &f->notes[f->n_notes++];
	n->level = level;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->text, sizeof(n->text), fmt, ap);
	va_end(ap);
}

void flags_usage(void)
{
	printf("Usage: metad [flags]\n"
	       "  A metadata and coordination server that speaks etcd's v3 gRPC API.\n\n"
	       "  --name 'default'                         human-readable name for this member\n"
	       "  --data-dir '${name}.metad'               path to the data directory\n"
	       "  --wal-dir ''                             own directory for the write-ahead log\n"
	       "  --listen-client-urls 'http://localhost:2379'    URLs to listen on for clients\n"
	       "  --listen-metrics-urls ''                 extra URLs serving /metrics and /health (http://)\n"
	       "  --metrics 'basic'                        extensive adds gRPC handling-time histograms\n"
	       "  --cors '*'                               origins (URLs) the HTTP endpoints allow for CORS\n"
	       "  --host-whitelist '*'                     Host names plain HTTP requests may use\n"
	       "  --import-etcd-snapshot ''                (metad) start from an etcd snapshot or backend file\n"
	       "  --auto-tls 'false'                       self-signed certificate under the data dir for https client URLs\n"
	       "  --config-file ''                       etcd YAML config file (the other flags and ETCD_* are then ignored)\n"
	       "  --advertise-client-urls 'http://localhost:2379' client URLs advertised to the cluster\n"
	       "  --listen-peer-urls 'http://localhost:2380'      URLs to listen on for peers\n"
	       "  --initial-advertise-peer-urls 'http://localhost:2380' peer URLs advertised\n"
	       "  --initial-cluster 'default=http://localhost:2380'  initial cluster configuration\n"
	       "  --initial-cluster-state 'new'            new or existing\n"
	       "  --initial-cluster-token 'etcd-cluster'   cluster token\n"
	       "  --heartbeat-interval '100'               time (ms) of a heartbeat interval\n"
	       "  --election-timeout '1000'                time (ms) for an election to time out\n"
	       "  --snapshot-count '100000'                applied entries between snapshots\n"
	       "  --experimental-snapshot-catchup-entries '5000'  entries kept behind a snapshot for\n"
	       "                                           slow followers (etcd 3.5.14's flag)\n"
	       "  --pre-vote 'true'                        run a pre-vote round before an election\n"
	       "  --strict-reconfig-check 'true'           refuse reconfigurations that would lose quorum\n"
	       "  --peer-cert-file '' --peer-key-file ''   TLS for peer traffic\n"
	       "  --peer-trusted-ca-file ''                CA for peer certificates\n"
	       "  --peer-client-cert-auth 'false'          require peer client certificates\n"
	       "  --peer-auto-tls 'false'                  self-signed peer certificate under the data dir\n"
	       "  --peer-crl-file ''                       refuse peer certificates this CRL revokes\n"
	       "  --peer-cert-allowed-cn ''                the CN a peer's certificate must have\n"
	       "  --peer-cert-allowed-hostname ''          a name a peer's certificate must be valid for\n"
	       "  --experimental-peer-skip-client-san-verification 'false'  no check of a peer\n"
	       "                                           client certificate's SANs against its address\n"
	       "  --force-new-cluster 'false'              restart as the only member, keeping the data\n"
	       "  --experimental-enable-lease-checkpoint 'true'  a new leader keeps leases' remaining TTL\n"
	       "  --experimental-lease-checkpoint-interval '5m0s' how often the leader records them\n"
	       "  --max-request-bytes '1572864'            largest client request accepted\n"
	       "  --max-txn-ops '128'                      most operations in one txn\n"
	       "  --quota-backend-bytes '0'                backend size quota (0 = 2 GiB)\n"
	       "  --max-concurrent-streams '4294967295'    streams per client connection\n"
	       "  --experimental-watch-progress-notify-interval '10m0s'  progress notification period\n"
	       "  --watch-queue-bytes '1048576'            bytes a Watch stream may have waiting to be\n"
	       "                                           sent; past it its watchers fall behind and\n"
	       "                                           catch up from the store when the client reads\n"
	       "  --cert-file '' --key-file ''             TLS for client traffic\n"
	       "  --trusted-ca-file ''                     CA for client certificates\n"
	       "  --client-cert-auth 'false'               require client certificates\n"
	       "  --client-crl-file ''                     refuse client certificates this CRL revokes\n"
	       "  --client-cert-allowed-hostname ''        a name client certificates must be valid for\n"
	       "  --cipher-suites ''                       TLS 1.2 cipher suites (IANA names, comma-separated)\n"
	       "  --tls-min-version 'TLS1.2'               TLS1.2 or TLS1.3\n"
	       "  --auth-token 'simple'                    simple, or jwt,pub-key=F,priv-key=F,sign-method=RS256,ttl=5m\n"
	       "  --auth-token-ttl '300'                   seconds a simple token lives after its last use\n"
	       "  --bcrypt-cost '10'                       bcrypt cost of stored password hashes (4-31)\n"
	       "  --auto-compaction-mode 'periodic'        periodic (retention is a duration) or\n"
	       "                                           revision (retention is a revision count)\n"
	       "  --auto-compaction-retention '0'          history to keep: 0 = no auto-compaction;\n"
	       "                                           periodic: '1h', '30m', or a number of hours\n"
	       "  --grpc-keepalive-min-time '5s'           clients pinging more often get GOAWAY\n"
	       "  --grpc-keepalive-interval '2h'           ping a connection idle this long\n"
	       "  --grpc-keepalive-timeout '20s'           ... and close it after this without answer\n"
	       "  --logger 'zap'                           zap (capnslog is accepted; zap is used)\n"
	       "  --log-level 'info'                       debug, info, warn, error, panic or fatal\n"
	       "  --log-outputs 'default'                  stderr, stdout or files, comma-separated\n"
	       "  --experimental-initial-corrupt-check 'false'  compare HashKV with the peers\n"
	       "                                           before serving; refuse to start on a mismatch\n"
	       "  --experimental-corrupt-check-time '0s'   leader's periodic check (CORRUPT alarm)\n"
	       "  --backend-batch-interval ''              checkpoint period (default 30s)\n"
	       "  --backend-batch-limit '0'                applied entries that start a checkpoint\n"
	       "  --experimental-compaction-batch-limit '1000'  history entries per compaction step\n"
	       "  --experimental-warning-apply-duration '100ms'  warn of slower applies\n"
	       "  --max-snapshots '5' --max-wals '5'       metad keeps fewer files than any limit\n"
	       "  --version                                print the version and exit\n"
	       "  -h, --help                               print this help and exit\n"
	       "Every other etcd 3.4 server flag is accepted: the v2 API, the v2 proxy and\n"
	       "discovery are refused when asked for; README.md's flags table has them all.\n");
}

static int in(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

static int parse_bool(const char *name, const char *v, int *out)
{
	if (v == NULL || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*out = 1;
	else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*out = 0;
	else {
		fprintf(stderr, "invalid boolean value \"%s\" for flag -%s\n", v, name);
		return -1;
	}
	return 0;
}

static int parse_u64(const char *name, const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || x > max) {
		fprintf(stderr, "invalid value \"%s\" for flag -%s\n", v, name);
		return -1;
	}
	*out = x;
	return 0;
}

/* A Go duration ("10m", "1m30s", "500ms", "2h") in nanoseconds. */
static int parse_duration_ns(const char *name, const char *v, int64_t *out)
{
	double total = 0;
	const char *p = v;
	if (*p == 0)
		goto bad;
	while (*p) {
		char *end;
		errno = 0;
		double x = strtod(p, &end);
		if (end == p || errno || x < 0)
			goto bad;
		p = end;
		double unit;
		if (strncmp(p, "ms", 2) == 0) {
			unit = 1e6;
			p += 2;
		} else if (strncmp(p, "us", 2) == 0) {
			unit = 1e3;
			p += 2;
		} else if (strncmp(p, "ns", 2) == 0) {
			unit = 1;
			p += 2;
		} else if (*p == 's') {
			unit = 1e9;
			p++;
		} else if (*p == 'm') {
			unit = 60e9;
			p++;
		} else if (*p == 'h') {
			unit = 3600e9;
			p++;
		} else if (*p == 0 && x == 0) {
			unit = 0;
		} else {
			goto bad;
		}
		total += x * unit;
	}
	if (total >= 9.2e18)
		goto bad;
	*out = (int64_t)total;
	return 0;
bad:
	fprintf(stderr, "invalid value \"%s\" for flag -%s: time: invalid duration\n", v, name);
	return -1;
}

/* The same in milliseconds, rounded up: a flag's 0 means "off" or "the
 * default", which a positive sub-millisecond value must not become. */
static int parse_duration_ms(const char *name, const char *v, int64_t *out)
{
	int64_t ns;
	if (parse_duration_ns(name, v, &ns) != 0)
		return -1;
	*out = ns / 1000000 + (ns % 1000000 != 0);
	return 0;
}

/* Split a comma-separated URL list into dst (pointing into a copy). */
static int split_urls(struct flags *f, const char *name, const char *v, const char **dst, size_t *n)
{
	size_t len = strlen(v) + 1;
	char *copy = malloc(len + sizeof(char *));
	if (copy == NULL)
		return -1;
	/* Chain the copies so flags_free can release them. */
	memcpy(copy, &f->url_storage, sizeof(char *));
	f->url_storage = copy;
	char *s = copy + sizeof(char *);
	memcpy(s, v, len);
	*n = 0;
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		if (*n == FLAGS_MAX_URLS) {
			fprintf(stderr, "too many URLs for flag -%s\n", name);
			return -1;
		}
		dst[(*n)++] = tok;
	}
	if (*n == 0 && dst == f->listen_metrics_urls)
		return 0; /* etcd's default: none */
	if (*n == 0) {
		fprintf(stderr, "empty URL list for flag -%s\n", name);
		return -1;
	}
	return 0;
}

static void defaults(struct flags *f)
{
	memset(f, 0, sizeof(*f));
	f->name = "default";
	f->listen_client_urls[0] = "http://localhost:2379";
	f->n_listen_client_urls = 1;
	f->advertise_client_urls[0] = "http://localhost:2379";
	f->n_advertise_client_urls = 1;
	f->listen_peer_urls[0] = "http://localhost:2380";
	f->n_listen_peer_urls = 1;
	f->initial_advertise_peer_urls[0] = "http://localhost:2380";
	f->n_initial_advertise_peer_urls = 1;
	f->initial_cluster_state = "new";
	f->initial_cluster_token = "etcd-cluster";
	f->max_request_bytes = 1572864;
	f->max_txn_ops = 128;
	f->quota_backend_bytes = 0;
	f->max_concurrent_streams = UINT32_MAX;
	f->watch_progress_ms = 10 * 60 * 1000;
	f->watch_queue_bytes = 1u << 20;
	f->heartbeat_ms = 100;
	f->election_ms = 1000;
	f->snapshot_count = 100000;
	f->catchup_entries = 5000;
	f->pre_vote = 1; /* etcd 3.5's default */
	f->strict_reconfig_check = 1;
	/* etcd leaves lease checkpoints off by default; metad keeps a lease's
	 * remaining TTL across leader changes unless told not to. */
	f->lease_checkpoint = 1;
	f->lease_checkpoint_ms = 5 * 60 * 1000;
	f->bcrypt_cost = 10;
	f->auth_token_ttl_s = 300;
	f->logger = "zap"; /* etcd 3.4's default is capnslog, which 3.5 removed */
	f->log_level = "info";
	f->log_outputs = "default";
	f->grpc_keepalive_min_ms = 5000;
	f->grpc_keepalive_interval_ms = 2 * 3600 * 1000;
	f->grpc_keepalive_timeout_ms = 20000;
	f->compaction_batch_limit = 1000;
	f->warning_apply_ns = 100 * 1000000;
	f->proxy = "off";
	f->auto_compaction_mode_s = "periodic";
	f->auto_compaction_retention_s = "0"; /* off */
}

/* The flags of issue 15 (log, WAL, keepalive, corruption checks, backend
 * batching, v2/proxy/discovery refusals) and issue 14's --cors,
 * --host-whitelist and --metrics; *handled says whether name was one. */
static int set_value_more(struct flags *f, const char *name, const char *v, int *handled)
{
	uint64_t u;
	*handled = 1;
	if (strcmp(name, "wal-dir") == 0)
		f->wal_dir = v[0] ? v : NULL;
	else if (strcmp(name, "logger") == 0)
		f->logger = v;
	else if (strcmp(name, "log-level") == 0)
		f->log_level = v;
	else if (strcmp(name, "log-outputs") == 0)
		f->log_outputs = v;
	else if (strcmp(name, "grpc-keepalive-min-time") == 0)
		return parse_duration_ms(name, v, &f->grpc_keepalive_min_ms);
	else if (strcmp(name, "grpc-keepalive-interval") == 0)
		return parse_duration_ms(name, v, &f->grpc_keepalive_interval_ms);
	else if (strcmp(name, "grpc-keepalive-timeout") == 0)
		return parse_duration_ms(name, v, &f->grpc_keepalive_timeout_ms);
	else if (strcmp(name, "experimental-corrupt-check-time") == 0)
		return parse_duration_ms(name, v, &f->corrupt_check_ms);
	else if (strcmp(name, "experimental-warning-apply-duration") == 0)
		return parse_duration_ns(name, v, &f->warning_apply_ns);
	else if (strcmp(name, "backend-batch-interval") == 0)
		return v[0] ? parse_duration_ms(name, v, &f->backend_batch_interval_ms) : 0;
	else if (strcmp(name, "backend-batch-limit") == 0)
		return parse_u64(name, v, UINT32_MAX, &f->backend_batch_limit);
	else if (strcmp(name, "experimental-compaction-batch-limit") == 0) {
		if (parse_u64(name, v, INT32_MAX, &f->compaction_batch_limit))
			return -1;
	} else if (strcmp(name, "max-snapshots") == 0 || strcmp(name, "max-wals") == 0) {
		/* Retention caps: metad keeps less than any of them (README). */
		if (parse_u64(name, v, UINT32_MAX, &u))
			return -1;
		if (u == 0)
			flags_note(f, "warn", "--%s 0 (keep every file) is not honoured: metad keeps %s", name,
				   name[4] == 's' ? "only the newest snapshot file"
						  : "no log file beyond what the last checkpoint needs");
	} else if (strcmp(name, "proxy") == 0) {
		if (strcmp(v, "off") && strcmp(v, "readonly") && strcmp(v, "on")) {
			fprintf(stderr, "invalid value \"%s\" for flag -%s: invalid value\n", v, name);
			return -1;
		}
		f->proxy = v;
	} else if (in(proxy_ms_flags, name)) {
		return parse_u64(name, v, UINT32_MAX, &u);
	} else if (strcmp(name, "discovery-fallback") == 0) {
		if (strcmp(v, "exit") && strcmp(v, "proxy")) {
			fprintf(stderr, "invalid value \"%s\" for flag -%s: invalid value\n", v, name);
			return -1;
		}
	} else if (strcmp(name, "discovery") == 0 || strcmp(name, "discovery-srv") == 0) {
		/* name is the parser's buffer: keep a literal */
		if (v[0])
			f->discovery = name[9] == 0 ? "discovery" : "discovery-srv";
	} else if (strcmp(name, "discovery-proxy") == 0 || strcmp(name, "discovery-srv-name") == 0) {
		/* Only used by discovery, which is refused. */
	} else if (strcmp(name, "experimental-enable-v2v3") == 0) {
		f->v2v3_prefix = v[0] ? v : NULL;
	} else if (strcmp(name, "experimental-backend-bbolt-freelist-type") == 0) {
		/* bbolt's internals: there is no bbolt under metad. */
	} else if (strcmp(name, "cors") == 0) {
		char why[512];
		if (api_access_cors_check(v, why, sizeof(why)) != 0) {
			fprintf(stderr, "invalid value \"%s\" for flag -%s: %s\n", v, name, why);
			return -1;
		}
		f->cors = v;
	} else if (strcmp(name, "host-whitelist") == 0) {
		f->host_whitelist = v;
	} else if (strcmp(name, "metrics") == 0) {
		/* etcd checks no value: anything but "extensive" is basic */
		f->metrics_extensive = strcmp(v, "extensive") == 0;
		if (!f->metrics_extensive && strcmp(v, "basic") != 0)
			flags_note(f, "warn", "--metrics %s is neither basic nor extensive: serving "
					      "basic metrics, as etcd does", v);
	} else {
		*handled = 0;
	}
	return 0;
}

static int set_value(struct flags *f, const char *name, const char *v)
{
	uint64_t u;
	int handled;
	if (strcmp(name, "name") == 0)
		f->name = v;
	else if (strcmp(name, "data-dir") == 0)
		f->data_dir = v;
	else if (strcmp(name, "listen-client-urls") == 0)
		return split_urls(f, name, v, f->listen_client_urls, &f->n_listen_client_urls);
	else if (strcmp(name, "import-etcd-snapshot") == 0)
		f->import_etcd_snapshot = v;
	else if (strcmp(name, "listen-metrics-urls") == 0)
		return split_urls(f, name, v, f->listen_metrics_urls, &f->n_listen_metrics_urls);
	else if (strcmp(name, "advertise-client-urls") == 0)
		return split_urls(f, name, v, f->advertise_client_urls, &f->n_advertise_client_urls);
	else if (strcmp(name, "listen-peer-urls") == 0)
		return split_urls(f, name, v, f->listen_peer_urls, &f->n_listen_peer_urls);
	else if (strcmp(name, "initial-advertise-peer-urls") == 0)
		return split_urls(f, name, v, f->initial_advertise_peer_urls,
				  &f->n_initial_advertise_peer_urls);
	else if (strcmp(name, "initial-cluster") == 0)
		f->initial_cluster = v;
	else if (strcmp(name, "initial-cluster-state") == 0) {
		if (strcmp(v, "new") && strcmp(v, "existing")) {
			fprintf(stderr, "invalid value \"%s\" for flag -%s: must be new or existing\n", v,
				name);
			return -1;
		}
		f->initial_cluster_state = v;
	} else if (strcmp(name, "initial-cluster-token") == 0)
		f->initial_cluster_token = v;
	else if (strcmp(name, "cert-file") == 0)
		f->cert_file = v;
	else if (strcmp(name, "key-file") == 0)
		f->key_file = v;
	else if (strcmp(name, "trusted-ca-file") == 0)
		f->trusted_ca_file = v;
	else if (strcmp(name, "client-crl-file") == 0)
		f->client_crl_file = v;
	else if (strcmp(name, "client-cert-allowed-hostname") == 0)
		f->client_cert_allowed_hostname = v[0] ? v : NULL; /* '' is etcd's unset */
	else if (strcmp(name, "peer-crl-file") == 0)
		f->peer_crl_file = v;
	else if (strcmp(name, "peer-cert-allowed-cn") == 0)
		f->peer_cert_allowed_cn = v[0] ? v : NULL; /* '' is etcd's unset */
	else if (strcmp(name, "peer-cert-allowed-hostname") == 0)
		f->peer_cert_allowed_hostname = v[0] ? v : NULL; /* '' is etcd's unset */
	else if (strcmp(name, "cipher-suites") == 0)
		f->cipher_suites = v;
	else if (strcmp(name, "tls-min-version") == 0) {
		/* etcd's values; nothing below TLS 1.2 is served */
		if (strcmp(v, "TLS1.2") != 0 && strcmp(v, "TLS1.3") != 0) {
			fprintf(stderr, "unexpected TLS version %s (must be one of: TLS1.2, TLS1.3)\n",
				v);
			return -1;
		}
		f->tls_min_13 = strcmp(v, "TLS1.3") == 0;
	}
	else if (strcmp(name, "peer-cert-file") == 0)
		f->peer_cert_file = v;
	else if (strcmp(name, "peer-key-file") == 0)
		f->peer_key_file = v;
	else if (strcmp(name, "peer-trusted-ca-file") == 0)
		f->peer_trusted_ca_file = v;
	else if (strcmp(name, "heartbeat-interval") == 0) {
		if (parse_u64(name, v, 50000, &u))
			return -1;
		f->heartbeat_ms = (int64_t)u;
	} else if (strcmp(name, "election-timeout") == 0) {
		if (parse_u64(name, v, 50000, &u))
			return -1;
		f->election_ms = (int64_t)u;
	} else if (strcmp(name, "snapshot-count") == 0) {
		if (parse_u64(name, v, UINT64_MAX, &u))
			return -1;
		f->snapshot_count = u;
	} else if (strcmp(name, "experimental-snapshot-catchup-entries") == 0) {
		if (parse_u64(name, v, UINT64_MAX, &u))
			return -1;
		f->catchup_entries = u;
	}
	else if (strcmp(name, "max-request-bytes") == 0) {
		if (parse_u64(name, v, UINT32_MAX, &u))
			return -1;
		f->max_request_bytes = u;
	} else if (strcmp(name, "max-txn-ops") == 0) {
		if (parse_u64(name, v, UINT32_MAX, &u))
			return -1;
		f->max_txn_ops = (uint32_t)u;
	} else if (strcmp(name, "quota-backend-bytes") == 0) {
		if (parse_u64(name, v, INT64_MAX, &u))
			return -1;
		f->quota_backend_bytes = (int64_t)u;
	} else if (strcmp(name, "max-concurrent-streams") == 0) {
		if (parse_u64(name, v, UINT32_MAX, &u))
			return -1;
		f->max_concurrent_streams = (uint32_t)u;
	} else if (strcmp(name, "experimental-watch-progress-notify-interval") == 0) {
		if (parse_duration_ms(name, v, &f->watch_progress_ms))
			return -1;
	} else if (strcmp(name, "experimental-lease-checkpoint-interval") == 0) {
		if (parse_duration_ms(name, v, &f->lease_checkpoint_ms))
			return -1;
	} else if (strcmp(name, "watch-queue-bytes") == 0) {
		if (parse_u64(name, v, UINT64_MAX, &u))
			return -1;
		f->watch_queue_bytes = u;
	} else if (strcmp(name, "auth-token") == 0) {
		/* etcd: "simple" or "jwt,pub-key=...,...". Only simple tokens
		 * exist so far; refusing jwt beats quietly handing out simple
		 * tokens to a deployment that asked for signed ones. */
		if (strcmp(v, "simple") != 0 && strncmp(v, "jwt,", 4) != 0) {
			fprintf(stderr, "invalid value \"%s\" for flag -%s: simple or jwt,...\n", v,
				name);
			return -1;
		}
		f->auth_token = v; /* jwt options are checked when the keys are loaded */
	} else if (strcmp(name, "bcrypt-cost") == 0) {
		if (parse_u64(name, v, 31, &u))
			return -1;
		if (u < 4) { /* etcd falls back to its default for a cost bcrypt refuses */
			flags_note(f, "warn", "--bcrypt-cost %s is below bcrypt's minimum 4; using 10", v);
			u = 10;
		}
		f->bcrypt_cost = (int)u;
	} else if (strcmp(name, "auth-token-ttl") == 0) {
		if (parse_u64(name, v, INT32_MAX, &u))
			return -1;
		f->auth_token_ttl_s = (int64_t)u;
	} else if (strcmp(name, "auto-compaction-mode") == 0) {
		f->auto_compaction_mode_s = v; /* checked once every flag is read */
	} else if (strcmp(name, "auto-compaction-retention") == 0) {
		f->auto_compaction_retention_s = v; /* its unit depends on the mode */
	} else if (set_value_more(f, name, v, &handled) != 0) {
		return -1;
	} else if (handled) {
		return 0;
	} else if (in(ignored_value_flags, name)) {
		flags_note(f, "warn", "flag --%s has no effect in metad yet; ignored", name);
	} else {
		fprintf(stderr, "flag provided but not defined: -%s\n", name);
		return -1;
	}
	return 0;
}

static int is_bool(const char *name)
{
	return strcmp(name, "client-cert-auth") == 0 || strcmp(name, "auto-tls") == 0 || strcmp(name, "peer-client-cert-auth") == 0 ||
	       strcmp(name, "peer-auto-tls") == 0 ||
	       strcmp(name, "experimental-peer-skip-client-san-verification") == 0 ||
	       strcmp(name, "pre-vote") == 0 || strcmp(name, "strict-reconfig-check") == 0 ||
	       strcmp(name, "force-new-cluster") == 0 ||
	       strcmp(name, "experimental-enable-lease-checkpoint") == 0 ||
	       strcmp(name, "experimental-initial-corrupt-check") == 0 ||
	       strcmp(name, "enable-v2") == 0 || strcmp(name, "debug") == 0 ||
	       strcmp(name, "initial-election-tick-advance") == 0 || strcmp(name, "help") == 0 ||
	       strcmp(name, "h") == 0 || strcmp(name, "version") == 0 || in(ignored_bool_flags, name);
}

static int set_bool(struct flags *f, const char *name, const char *v)
{
	int b;
	if (parse_bool(name, v, &b))
		return -1;
	if (strcmp(name, "client-cert-auth") == 0)
		f->client_cert_auth = b;
	else if (strcmp(name, "peer-client-cert-auth") == 0)
		f->peer_client_cert_auth = b;
	else if (strcmp(name, "pre-vote") == 0)
		f->pre_vote = b;
	else if (strcmp(name, "auto-tls") == 0)
		f->auto_tls = b;
	else if (strcmp(name, "peer-auto-tls") == 0)
		f->peer_auto_tls = b;
	else if (strcmp(name, "experimental-peer-skip-client-san-verification") == 0)
		f->peer_skip_client_san = b;
	else if (strcmp(name, "strict-reconfig-check") == 0)
		f->strict_reconfig_check = b;
	else if (strcmp(name, "force-new-cluster") == 0)
		f->force_new_cluster = b;
	else if (strcmp(name, "experimental-enable-lease-checkpoint") == 0)
		f->lease_checkpoint = b;
	else if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0)
		f->help = b;
	else if (strcmp(name, "version") == 0)
		f->version = b;
	else if (strcmp(name, "experimental-initial-corrupt-check") == 0)
		f->initial_corrupt_check = b;
	else if (strcmp(name, "enable-v2") == 0)
		f->enable_v2 = b;
	else if (strcmp(name, "initial-election-tick-advance") == 0)
		; /* a lone member leads at once, members wait one election timeout (README) */
	else if (strcmp(name, "debug") == 0) {
		f->debug = b;
		if (b)
			flags_note(f, "warn", "--debug is deprecated (etcd 3.5 removed it); "
					      "use --log-level=debug");
	} else if (b)
		flags_note(f, "warn", "flag --%s has no effect in metad; ignored", name);
	return 0;
}

/* The value flags set_value knows (for ETCD_* variables: unknown names
 * are warned about, not refused). Keep in step with set_value. */
static const char *const value_flags[] = {
	"name", "data-dir", "listen-client-urls", "listen-metrics-urls", "import-etcd-snapshot", "advertise-client-urls",
	"listen-peer-urls", "initial-advertise-peer-urls", "initial-cluster",
	"initial-cluster-state", "initial-cluster-token", "cert-file", "key-file",
	"trusted-ca-file", "peer-cert-file", "peer-key-file", "peer-trusted-ca-file",
	"peer-crl-file", "peer-cert-allowed-cn", "peer-cert-allowed-hostname",
	"client-cert-allowed-hostname",
	"heartbeat-interval", "election-timeout", "snapshot-count", "max-request-bytes",
	"max-txn-ops", "quota-backend-bytes", "max-concurrent-streams",
	"experimental-watch-progress-notify-interval", "experimental-lease-checkpoint-interval",
	"watch-queue-bytes", "auth-token", "bcrypt-cost", "auth-token-ttl",
	"experimental-snapshot-catchup-entries", "auto-compaction-mode", "auto-compaction-retention",
	/* set_value_more's */
	"wal-dir", "logger", "log-level", "log-outputs", "grpc-keepalive-min-time",
	"grpc-keepalive-interval", "grpc-keepalive-timeout", "experimental-corrupt-check-time",
	"experimental-warning-apply-duration", "backend-batch-interval", "backend-batch-limit",
	"experimental-compaction-batch-limit", "max-snapshots", "max-wals", "proxy",
	"discovery-fallback", "discovery", "discovery-srv", "discovery-proxy", "discovery-srv-name",
	"experimental-enable-v2v3", "experimental-backend-bbolt-freelist-type",
	"cors", "host-whitelist", "metrics",
	NULL,
};

int flags_known(const char *name)
{
	return is_bool(name) || in(value_flags, name) || in(ignored_value_flags, name) ||
	       in(proxy_ms_flags, name);
}

int flags_set(struct flags *f, const char *name, const char *v)
{
	return is_bool(name) ? set_bool(f, name, v) : set_value(f, name, v);
}

/* --config-file FILE or --config-file=FILE on the command line, or NULL. */
static const char *config_file_arg(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-')
			continue;
		a += a[1] == '-' ? 2 : 1;
		if (strncmp(a, "config-file=", 12) == 0)
			return a + 12;
		if (strcmp(a, "config-file") == 0 && i + 1 < argc)
			return argv[i + 1];
	}
	return NULL;
}

/*
 * etcd's reading of --auto-compaction-retention: a bare non-negative integer
 * is hours in periodic mode and a revision count in revision mode; anything
 * else must be a Go duration (in revision mode etcd then takes its
 * nanoseconds as the count, and so does metad).
 */
static int auto_compaction(struct flags *f)
{
	const char *mode = f->auto_compaction_mode_s, *v = f->auto_compaction_retention_s;
	if (strcmp(mode, "periodic") == 0)
		f->auto_compaction_mode = 0;
	else if (strcmp(mode, "revision") == 0)
		f->auto_compaction_mode = 1;
	else {
		fprintf(stderr, "error verifying flags, unknown auto-compaction-mode \"%s\". "
				"See 'etcd --help'.\n",
			mode);
		return -1;
	}
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (*v != 0 && *end == 0 && errno == 0 && n >= 0) {
		if (f->auto_compaction_mode == 1)
			f->auto_compaction_retention = n;
		else if (n > INT64_MAX / 3600000000000LL) {
			fprintf(stderr, "error parsing CompactionRetention: %s hours is too long\n", v);
			return -1;
		} else
			f->auto_compaction_retention = n * 3600000000000LL;
		return 0;
	}
	int64_t ms;
	if (parse_duration_ms("auto-compaction-retention", v, &ms) != 0)
		return -1;
	f->auto_compaction_retention = ms * 1000000;
	return 0;
}

/*
 * What etcd would do but metad cannot: refused before anything starts, so
 * an operator relying on it finds out at once (etcd's "error verifying
 * flags" wording). Returns 0 or -1 after printing the reason.
 */
static int refuse_unservable(struct flags *f)
{
	const char *why = NULL;
	if (f->enable_v2)
		why = "--enable-v2: metad serves only etcd's v3 API (v2 clients cannot be served)";
	else if (f->v2v3_prefix != NULL)
		why = "--experimental-enable-v2v3: metad serves only etcd's v3 API";
	else if (strcmp(f->proxy, "off") != 0)
		why = "--proxy: metad does not run etcd's v2 proxy (use grpc-proxy or point "
		      "clients at the members)";
	else if (f->discovery != NULL)
		why = strcmp(f->discovery, "discovery") == 0
			      ? "--discovery: metad does not bootstrap through a discovery service; "
				"start the members with --initial-cluster"
			      : "--discovery-srv: metad does not bootstrap from DNS SRV records; "
				"start the members with --initial-cluster";
	if (why != NULL) {
		fprintf(stderr, "error verifying flags, %s. See 'etcd --help'.\n", why);
		return -1;
	}
	return 0;
}

int flags_parse(struct flags *f, int argc, char **argv)
{
	defaults(f);
	/* etcd: with a config file, the other flags and ETCD_* are ignored. */
	const char *cfg = config_file_arg(argc, argv);
	if (cfg == NULL && getenv("ETCD_CONFIG_FILE") && getenv("ETCD_CONFIG_FILE")[0])
		cfg = getenv("ETCD_CONFIG_FILE");
	if (cfg != NULL) {
		if (config_file_load(f, cfg) != 0)
			return -1;
		flags_note(f, "info", "loaded server configuration from %s, other configuration "
				      "command line flags and environment variables will be ignored", cfg);
		argc = 1;
	} else if (config_env_load(f) != 0) {
		return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == 0) {
			fprintf(stderr, "'%s' is not a valid flag\n", a);
			return -1;
		}
		a += a[1] == '-' ? 2 : 1;
		char name[128];
		const char *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		if (nlen == 0 || nlen >= sizeof(name)) {
			fprintf(stderr, "bad flag syntax: %s\n", argv[i]);
			return -1;
		}
		memcpy(name, a, nlen);
		name[nlen] = 0;
		const char *v = eq ? eq + 1 : NULL;
		if (is_bool(name)) {
			if (set_bool(f, name, v))
				return -1;
			continue;
		}
		if (v == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr, "flag needs an argument: -%s\n", name);
				return -1;
			}
			v = argv[++i];
		}
		if (set_value(f, name, v))
			return -1;
	}
	/* etcd's config validation, in its words. */
	if (f->heartbeat_ms == 0) {
		fprintf(stderr, "--heartbeat-interval must be > 0\n");
		return -1;
	}
	if (f->election_ms < 5 * f->heartbeat_ms) {
		fprintf(stderr,
			"--election-timeout[%lldms] should be at least as 5 times as "
			"--heartbeat-interval[%lldms]\n",
			(long long)f->election_ms, (long long)f->heartbeat_ms);
		return -1;
	}
	if (auto_compaction(f) != 0 || refuse_unservable(f) != 0)
		return -1;
	if (f->debug) /* etcd 3.4: --debug is the debug log level */
		f->log_level = "debug";
	if (f->data_dir == NULL) {
		snprintf(f->data_dir_buf, sizeof(f->data_dir_buf), "%s.metad", f->name);
		f->data_dir = f->data_dir_buf;
	}
	return 0;
}

void flags_free(struct flags *f)
{
	config_file_free();
	while (f->url_storage != NULL) {
		char *next;
		memcpy(&next, f->url_storage, sizeof(char *));
		free(f->url_storage);
		f->url_storage = next;
	}
}
