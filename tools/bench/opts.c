/*
 * tools/bench/opts.c — parse metad-bench's command line.
 *
 * Options may come before or after the subcommand (GNU getopt permutes), as
 * with etcd's benchmark. Endpoints are checked to be loopback addresses: the
 * tool is a load generator and must never be pointed at someone else's host.
 */
#include "opts.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_ENDPOINTS = 256, OPT_CONNS, OPT_CLIENTS, OPT_THREADS, OPT_TOTAL, OPT_DURATION,
	OPT_RATE, OPT_TIMEOUT, OPT_KEY_SIZE, OPT_VAL_SIZE, OPT_KEY_SPACE, OPT_SEQUENTIAL,
	OPT_KEY_PREFIX, OPT_CACERT, OPT_CERT, OPT_KEY, OPT_JSON, OPT_NO_PROGRESS,
	OPT_CONSISTENCY, OPT_LIMIT, OPT_COUNT_ONLY, OPT_RW_RATIO, OPT_TXN_OPS, OPT_STREAMS,
	OPT_WATCHERS, OPT_WATCH_WAIT, OPT_TTL, OPT_PUT_RATE, OPT_PUT_TOTAL, OPT_USER, OPT_TOKEN,
	OPT_REPLY_THREAD, OPT_ENGINE, OPT_HELP,
};

static const struct option long_opts[] = {
	{"endpoints", required_argument, 0, OPT_ENDPOINTS},
	{"conns", required_argument, 0, OPT_CONNS},
	{"clients", required_argument, 0, OPT_CLIENTS},
	{"threads", required_argument, 0, OPT_THREADS},
	{"total", required_argument, 0, OPT_TOTAL},
	{"duration", required_argument, 0, OPT_DURATION},
	{"rate", required_argument, 0, OPT_RATE},
	{"timeout", required_argument, 0, OPT_TIMEOUT},
	{"key-size", required_argument, 0, OPT_KEY_SIZE},
	{"val-size", required_argument, 0, OPT_VAL_SIZE},
	{"key-space-size", required_argument, 0, OPT_KEY_SPACE},
	{"sequential-keys", no_argument, 0, OPT_SEQUENTIAL},
	{"key-prefix", required_argument, 0, OPT_KEY_PREFIX},
	{"cacert", required_argument, 0, OPT_CACERT},
	{"cert", required_argument, 0, OPT_CERT},
	{"key", required_argument, 0, OPT_KEY},
	{"user", required_argument, 0, OPT_USER},
	{"token", required_argument, 0, OPT_TOKEN},
	{"json", no_argument, 0, OPT_JSON},
	{"no-progress", no_argument, 0, OPT_NO_PROGRESS},
	{"consistency", required_argument, 0, OPT_CONSISTENCY},
	{"limit", required_argument, 0, OPT_LIMIT},
	{"count-only", no_argument, 0, OPT_COUNT_ONLY},
	{"rw-ratio", required_argument, 0, OPT_RW_RATIO},
	{"txn-ops", required_argument, 0, OPT_TXN_OPS},
	{"streams", required_argument, 0, OPT_STREAMS},
	{"watchers-per-stream", required_argument, 0, OPT_WATCHERS},
	{"watch-wait", required_argument, 0, OPT_WATCH_WAIT},
	{"ttl", required_argument, 0, OPT_TTL},
	/* etcd's watch-latency spellings of --rate and --total */
	{"put-rate", required_argument, 0, OPT_PUT_RATE},
	{"put-total", required_argument, 0, OPT_PUT_TOTAL},
	{"reply-thread", no_argument, 0, OPT_REPLY_THREAD},
	{"engine", required_argument, 0, OPT_ENGINE},
	{"help", no_argument, 0, OPT_HELP},
	{0, 0, 0, 0},
};

void bench_opts_usage(void)
{
	fputs(
	    "usage: metad-bench COMMAND [options]\n"
	    "commands:\n"
	    "  put              Put requests (--key-size --val-size --key-space-size --sequential-keys)\n"
	    "  range [KEY [END]] Range requests (--consistency l|s, --limit, --count-only)\n"
	    "  txn-put          Txn requests of --txn-ops puts each\n"
	    "  txn-mixed [KEY [END]] Txn-wrapped ranges and puts, --rw-ratio reads per write\n"
	    "  watch            events/s delivered to --streams x --watchers-per-stream watchers\n"
	    "  watch-latency    put -> event delay (defaults: --rate 100 --total 1000)\n"
	    "  lease-keepalive  keep-alive round trips, one lease and stream per client (--ttl)\n"
	    "  status           Maintenance.Status: the trivial RPC, to show the tool's own ceiling\n"
	    "  serve-null       a server answering every call with an empty OK message, on the\n"
	    "                   first --endpoints address (until Ctrl-C or --duration): the ceiling\n"
	    "options:\n"
	    "  --endpoints LIST   comma-separated [http[s]://]host:port, loopback only (127.0.0.1:2379)\n"
	    "  --conns N          gRPC connections (1)      --clients N  requests in flight (1)\n"
	    "  --threads N        completion-queue threads (0: min(conns, CPUs))\n"
	    "  --total N          requests (10000)          --duration S  stop after S seconds\n"
	    "  --rate R           requests/s cap (0: none)  --timeout S   per-request deadline (30)\n"
	    "  --key-size N (8)  --val-size N (8)  --key-space-size N (1)  --sequential-keys\n"
	    "  --key-prefix P     prefix counted inside --key-size\n"
	    "  --cacert F --cert F --key F   TLS (implied by https:// endpoints or --cacert)\n"
	    "  --user NAME:PASSWORD  log in first; every request carries the token\n"
	    "  --token T          every request carries token T (no login)\n"
	    "  --json             one JSON object on stdout\n"
	    "  --no-progress      no progress bar even on a terminal\n"
	    "  --streams N (10) --watchers-per-stream N (10) --watch-wait S (5)  watch\n"
	    "  --ttl S (60)       lease-keepalive lease TTL\n"
	    "  --reply-thread     serve-null answers from a second thread, as metad answers writes\n"
	    "  --engine h2|grpc   unary calls on nghttp2 (default, cleartext only) or gRPC core\n",
	    stderr);
}

static int parse_u64(const char *name, const char *s, uint64_t *out)
{
	char *end;
	/* Accept 1_000_000 and 1e6 style counts as people type them. */
	char buf[64];
	size_t n = 0;
	for (const char *p = s; *p && n + 1 < sizeof(buf); p++)
		if (*p != '_')
			buf[n++] = *p;
	buf[n] = 0;
	double d = strtod(buf, &end);
	if (end == buf || *end != 0 || d < 0 || d > 1e18) {
		fprintf(stderr, "metad-bench: --%s: not a count: %s\n", name, s);
		return 1;
	}
	*out = (uint64_t)d;
	return 0;
}

static int parse_int(const char *name, const char *s, int lo, int *out)
{
	uint64_t v;
	if (parse_u64(name, s, &v) != 0)
		return 1;
	if (v > 100000000ull || (int)v < lo) {
		fprintf(stderr, "metad-bench: --%s: out of range: %s\n", name, s);
		return 1;
	}
	*out = (int)v;
	return 0;
}

static int parse_double(const char *name, const char *s, double *out)
{
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end != 0 || d < 0) {
		fprintf(stderr, "metad-bench: --%s: not a non-negative number: %s\n", name, s);
		return 1;
	}
	*out = d;
	return 0;
}

/* host is loopback: 127.0.0.0/8, ::1 or localhost. */
static int is_loopback(const char *host, size_t len)
{
	if (len == 9 && strncmp(host, "localhost", 9) == 0)
		return 1;
	if (len == 5 && strncmp(host, "[::1]", 5) == 0)
		return 1;
	if (len >= 4 && strncmp(host, "127.", 4) == 0) {
		for (size_t i = 4; i < len; i++)
			if (!((host[i] >= '0' && host[i] <= '9') || host[i] == '.'))
				return 0;
		return 1;
	}
	return 0;
}

static int parse_endpoints(struct bench_opts *o, const char *list)
{
	for (int i = 0; i < o->n_endpoints; i++)
		free(o->endpoints[i]);
	o->n_endpoints = 0;
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int tls = 0;
		if (len >= 7 && strncmp(p, "http://", 7) == 0) {
			p += 7;
			len -= 7;
		} else if (len >= 8 && strncmp(p, "https://", 8) == 0) {
			p += 8;
			len -= 8;
			tls = 1;
		}
		while (len > 0 && p[len - 1] == '/')
			len--;
		const char *colon = NULL;
		for (size_t i = len; i > 0; i--)
			if (p[i - 1] == ':') {
				colon = p + i - 1;
				break;
			}
		if (len == 0 || colon == NULL || colon == p + len - 1) {
			fprintf(stderr, "metad-bench: endpoint needs host:port: %.*s\n", (int)len, p);
			return 1;
		}
		if (!is_loopback(p, (size_t)(colon - p))) {
			fprintf(stderr, "metad-bench: refusing non-loopback endpoint %.*s "
				"(this tool only loads 127.0.0.0/8, ::1, localhost)\n", (int)len, p);
			return 1;
		}
		if (o->n_endpoints == BENCH_MAX_ENDPOINTS) {
			fprintf(stderr, "metad-bench: at most %d endpoints\n", BENCH_MAX_ENDPOINTS);
			return 1;
		}
		o->endpoints[o->n_endpoints] = strndup(p, len);
		if (o->endpoints[o->n_endpoints] == NULL)
			return 1;
		o->tls[o->n_endpoints++] = tls;
		p += len;
		if (*p == ',')
			p++;
	}
	if (o->n_endpoints == 0) {
		fprintf(stderr, "metad-bench: --endpoints is empty\n");
		return 1;
	}
	return 0;
}

static void defaults(struct bench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->conns = 1;
	o->clients = 1;
	o->total = 10000;
	o->timeout = 30;
	o->key_size = 8;
	o->val_size = 8;
	o->key_space = 1;
	o->key_prefix = "";
	o->progress = 1;
	o->consistency = 'l';
	o->limit = -1;
	o->rw_ratio = 1;
	o->txn_ops = 1;
	o->streams = 10;
	o->watchers_per_stream = 10;
	o->watch_wait = 5;
	o->lease_ttl = 60;
}

int bench_opts_parse(struct bench_opts *o, int argc, char **argv)
{
	defaults(o);
	int rv = 0, c;
	int total_set = 0, rate_set = 0;
	const char *endpoints = "127.0.0.1:2379";
	opterr = 1;
	while (rv == 0 && (c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		const char *name = "";
		for (const struct option *lo = long_opts; lo->name; lo++)
			if (lo->val == c)
				name = lo->name;
		uint64_t u;
		switch (c) {
		case OPT_ENDPOINTS: endpoints = optarg; break;
		case OPT_CONNS: rv = parse_int(name, optarg, 1, &o->conns); break;
		case OPT_CLIENTS: rv = parse_int(name, optarg, 1, &o->clients); break;
		case OPT_THREADS: rv = parse_int(name, optarg, 0, &o->threads); break;
		case OPT_PUT_TOTAL:
		case OPT_TOTAL: rv = parse_u64(name, optarg, &o->total); total_set = 1; break;
		case OPT_DURATION: rv = parse_double(name, optarg, &o->duration); break;
		case OPT_PUT_RATE:
		case OPT_RATE: rv = parse_double(name, optarg, &o->rate); rate_set = 1; break;
		case OPT_TIMEOUT: rv = parse_double(name, optarg, &o->timeout); break;
		case OPT_KEY_SIZE: rv = parse_int(name, optarg, 1, &o->key_size); break;
		case OPT_VAL_SIZE: rv = parse_int(name, optarg, 0, &o->val_size); break;
		case OPT_KEY_SPACE:
			rv = parse_u64(name, optarg, &o->key_space);
			if (rv == 0 && o->key_space == 0) {
				fprintf(stderr, "metad-bench: --key-space-size must be positive\n");
				rv = 1;
			}
			break;
		case OPT_SEQUENTIAL: o->sequential = 1; break;
		case OPT_KEY_PREFIX: o->key_prefix = optarg; break;
		case OPT_CACERT: o->cacert = optarg; break;
		case OPT_CERT: o->cert = optarg; break;
		case OPT_KEY: o->key = optarg; break;
		case OPT_USER: o->user = optarg; break;
		case OPT_TOKEN: o->token = optarg; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_NO_PROGRESS: o->progress = 0; break;
		case OPT_REPLY_THREAD: o->reply_thread = 1; break;
		case OPT_ENGINE:
			if (strcmp(optarg, "grpc") == 0 || strcmp(optarg, "h2") == 0) {
				o->engine_grpc = strcmp(optarg, "grpc") == 0;
			} else {
				fprintf(stderr, "metad-bench: --engine: h2 or grpc, not %s\n", optarg);
				rv = 1;
			}
			break;
		case OPT_CONSISTENCY:
			if (strcmp(optarg, "l") != 0 && strcmp(optarg, "s") != 0) {
				fprintf(stderr, "metad-bench: --consistency is l or s\n");
				rv = 1;
			}
			o->consistency = optarg[0];
			break;
		case OPT_LIMIT: rv = parse_u64(name, optarg, &u); o->limit = (int64_t)u; break;
		case OPT_COUNT_ONLY: o->count_only = 1; break;
		case OPT_RW_RATIO: rv = parse_double(name, optarg, &o->rw_ratio); break;
		case OPT_TXN_OPS: rv = parse_int(name, optarg, 1, &o->txn_ops); break;
		case OPT_STREAMS: rv = parse_int(name, optarg, 1, &o->streams); break;
		case OPT_WATCHERS: rv = parse_int(name, optarg, 1, &o->watchers_per_stream); break;
		case OPT_WATCH_WAIT: rv = parse_double(name, optarg, &o->watch_wait); break;
		case OPT_TTL:
			rv = parse_u64(name, optarg, &u);
			o->lease_ttl = (int64_t)u;
			break;
		case OPT_HELP:
		case 'h':
			bench_opts_usage();
			return 2;
		default:
			bench_opts_usage();
			return 1;
		}
	}
	if (rv != 0)
		return rv;
	if (optind >= argc) {
		bench_opts_usage();
		return 1;
	}
	o->cmd = argv[optind++];
	while (optind < argc) {
		if (o->nargs == 2) {
			fprintf(stderr, "metad-bench: too many arguments\n");
			return 1;
		}
		o->args[o->nargs++] = argv[optind++];
	}
	/* watch-latency is a paced run by default, as in etcd (100 puts/s). */
	if (strcmp(o->cmd, "watch-latency") == 0) {
		if (!rate_set)
			o->rate = 100;
		if (!total_set)
			o->total = 1000;
	}
	if (o->total == 0 && o->duration == 0) {
		fprintf(stderr, "metad-bench: give --total or --duration: the run must end by itself\n");
		return 1;
	}
	if (strlen(o->key_prefix) >= (size_t)o->key_size) {
		fprintf(stderr, "metad-bench: --key-prefix must be shorter than --key-size\n");
		return 1;
	}
	if ((o->cert == NULL) != (o->key == NULL)) {
		fprintf(stderr, "metad-bench: --cert and --key go together\n");
		return 1;
	}
	return parse_endpoints(o, endpoints);
}

void bench_opts_free(struct bench_opts *o)
{
	for (int i = 0; i < o->n_endpoints; i++)
		free(o->endpoints[i]);
	o->n_endpoints = 0;
}
