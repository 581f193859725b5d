/*
 * etcdapi/metrics.c — counters and the Prometheus text exposition of
 * /metrics, with etcd's names and labels (etcd_server_*, etcd_mvcc_*,
 * etcd_debugging_mvcc_*, etcd_network_client_grpc_*, grpc_server_*,
 * process_*), for the figures metad has.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "core/alarm.h"
#include "core/metrics.h"
#include "etcdapi/metrics.h"

#define SLOTS 256 /* power of two, well above the number of methods */
#define CODES 17
/* --metrics extensive: etcd turns on grpc-go-prometheus's handling-time
 * histogram, in Prometheus' default buckets (client_golang's DefBuckets). */
#define HBUCKETS 11
static const uint64_t hbound_ns[HBUCKETS] = {
	5000000, 10000000, 25000000, 50000000, 100000000, 250000000, 500000000,
	1000000000, 2500000000, 5000000000, 10000000000,
};
static const char *const hbound_le[HBUCKETS] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

/* Cache-line aligned: a call's started and handled[OK] adds share one line,
 * and its histogram adds (hist_ns, a low bucket) one more. */
struct slot {
	_Alignas(64) const char *path;
	bool client_stream, server_stream;
	_Atomic uint64_t started;
	_Atomic uint64_t handled[CODES];
	_Atomic uint64_t msg_received, msg_sent;
	_Atomic uint64_t hist_ns;            /* handling time of the calls in hist */
	_Atomic uint64_t hist[HBUCKETS + 1]; /* calls per bucket (not cumulative), +Inf last */
};

static struct slot slots[SLOTS];
static _Atomic uint64_t recv_bytes, sent_bytes;
/* Set before the serving threads start, read-only after. */
static bool extensive;

static size_t hash(const char *p)
{
	uintptr_t v = (uintptr_t)p;
	v ^= v >> 17;
	v *= 0x9e3779b97f4a7c15ull;
	return (size_t)(v >> 40) & (SLOTS - 1);
}

static struct slot *find(const char *path)
{
	if (path == NULL)
		return NULL;
	for (size_t i = hash(path), k = 0; k < SLOTS; i = (i + 1) & (SLOTS - 1), k++) {
		if (slots[i].path == path)
			return &slots[i];
		if (slots[i].path == NULL)
			return NULL;
	}
	return NULL;
}

void api_metrics_register(const char *path, bool client_stream, bool server_stream)
{
	if (path == NULL || find(path) != NULL)
		return;
	for (size_t i = hash(path), k = 0; k < SLOTS; i = (i + 1) & (SLOTS - 1), k++)
		if (slots[i].path == NULL) {
			slots[i].path = path;
			slots[i].client_stream = client_stream;
			slots[i].server_stream = server_stream;
			return;
		}
}

void api_metrics_set_extensive(bool on)
{
	extensive = on;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t api_metrics_started(const char *path, size_t bytes)
{
	atomic_fetch_add_explicit(&recv_bytes, bytes, memory_order_relaxed);
	struct slot *s = find(path);
	if (s != NULL) {
		atomic_fetch_add_explicit(&s->started, 1, memory_order_relaxed);
		/* the request of a unary or server-streaming call came with it */
		if (!s->client_stream)
			atomic_fetch_add_explicit(&s->msg_received, 1, memory_order_relaxed);
	}
	/* as grpc-go-prometheus: the clock is read only for the histogram */
	return extensive && s != NULL ? now_ns() : 0;
}

void api_metrics_handled(const char *path, int code, size_t bytes, uint64_t started)
{
	atomic_fetch_add_explicit(&sent_bytes, bytes, memory_order_relaxed);
	struct slot *s = find(path);
	if (s != NULL && code >= 0 && code < CODES)
		atomic_fetch_add_explicit(&s->handled[code], 1, memory_order_relaxed);
	/* grpc-go-prometheus counts a unary call's reply only on success; a
	 * stream counts each message (api_metrics_msg) */
	if (s != NULL && code == 0 && !s->client_stream && !s->server_stream)
		atomic_fetch_add_explicit(&s->msg_sent, 1, memory_order_relaxed);
	if (s == NULL || started == 0)
		return;
	uint64_t took = now_ns() - started;
	int b = 0;
	while (b < HBUCKETS && took > hbound_ns[b])
		b++;
	atomic_fetch_add_explicit(&s->hist[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->hist_ns, took, memory_order_relaxed);
}

void api_metrics_msg(const char *path, bool sent, size_t bytes)
{
	atomic_fetch_add_explicit(sent ? &sent_bytes : &recv_bytes, bytes, memory_order_relaxed);
	struct slot *s = find(path);
	if (s != NULL)
		atomic_fetch_add_explicit(sent ? &s->msg_sent : &s->msg_received, 1,
					  memory_order_relaxed);
}

/* ---- rendering ---- */

struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	for (int tries = 0; tries < 2 && !o->oom; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = (o->cap + (size_t)n) * 2;
		char *np = realloc(o->p, cap);
		if (np == NULL) {
			o->oom = true;
			return;
		}
		o->p = np;
		o->cap = cap;
	}
}

static void metric(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *code_names[CODES] = {
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
	"OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
};

static const char *grpc_type(const struct slot *s)
{
	if (s->client_stream && s->server_stream)
		return "bidi_stream";
	if (s->server_stream)
		return "server_stream";
	return "unary";
}

/* "/etcdserverpb.KV/Range" -> service "etcdserverpb.KV", method "Range". */
static void split(const char *path, char *svc, size_t svclen, const char **method)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash && slash > path ? (size_t)(slash - path - 1) : 0;
	if (n >= svclen)
		n = svclen - 1;
	memcpy(svc, path + 1, n);
	svc[n] = 0;
	*method = slash ? slash + 1 : path;
}

/* A method's grpc_method, grpc_service and grpc_type labels, as etcd's. */
static void labels_of(const struct slot *sl, char *buf, size_t cap)
{
	char svc[96];
	const char *m;
	split(sl->path, svc, sizeof(svc), &m);
	snprintf(buf, cap, "grpc_method=\"%s\",grpc_service=\"%s\",grpc_type=\"%s\"", m, svc,
		 grpc_type(sl));
}

/* One counter per method. */
static void per_method(struct out *o, const char *name, const char *help, size_t field)
{
	metric(o, name, "counter", help);
	for (size_t i = 0; i < SLOTS; i++) {
		if (slots[i].path == NULL)
			continue;
		char labels[256];
		labels_of(&slots[i], labels, sizeof(labels));
		const _Atomic uint64_t *v = (const _Atomic uint64_t *)((const char *)&slots[i] + field);
		put(o, "%s{%s} %llu\n", name, labels, (unsigned long long)atomic_load(v));
	}
}

/* grpc_server_handling_seconds: every method from the start, at zero, as
 * etcd's grpc_prometheus.Register leaves them. A scrape reads the buckets
 * one by one: the count is their total, so it matches the +Inf bucket. */
static void handling_histograms(struct out *o)
{
	metric(o, "grpc_server_handling_seconds", "histogram",
	       "Histogram of response latency (seconds) of gRPC that had been application-level "
	       "handled by the server.");
	for (size_t i = 0; i < SLOTS; i++) {
		if (slots[i].path == NULL)
			continue;
		char labels[256];
		labels_of(&slots[i], labels, sizeof(labels));
		uint64_t cum = 0;
		for (int b = 0; b <= HBUCKETS; b++) {
			cum += atomic_load_explicit(&slots[i].hist[b], memory_order_relaxed);
			put(o, "grpc_server_handling_seconds_bucket{%s,le=\"%s\"} %llu\n", labels,
			    b < HBUCKETS ? hbound_le[b] : "+Inf", (unsigned long long)cum);
		}
		double sum = (double)atomic_load_explicit(&slots[i].hist_ns, memory_order_relaxed) / 1e9;
		put(o, "grpc_server_handling_seconds_sum{%s} %.9g\n", labels, sum);
		put(o, "grpc_server_handling_seconds_count{%s} %llu\n", labels, (unsigned long long)cum);
	}
}

static void grpc_metrics(struct out *o)
{
	per_method(o, "grpc_server_started_total", "Total number of RPCs started on the server.",
		   offsetof(struct slot, started));
	metric(o, "grpc_server_handled_total", "counter",
	       "Total number of RPCs completed on the server, regardless of success or failure.");
	for (size_t i = 0; i < SLOTS; i++) {
		if (slots[i].path == NULL)
			continue;
		char labels[256];
		labels_of(&slots[i], labels, sizeof(labels));
		/* every code from the start, at zero, as grpc_prometheus.Register
		 * leaves them in etcd (an alert on absent() sees the same) */
		for (int c = 0; c < CODES; c++) {
			uint64_t v = atomic_load(&slots[i].handled[c]);
			put(o, "grpc_server_handled_total{grpc_code=\"%s\",%s} %llu\n", code_names[c],
			    labels, (unsigned long long)v);
		}
	}
	per_method(o, "grpc_server_msg_received_total",
		   "Total number of RPC stream messages received on the server.",
		   offsetof(struct slot, msg_received));
	per_method(o, "grpc_server_msg_sent_total",
		   "Total number of gRPC stream messages sent by the server.",
		   offsetof(struct slot, msg_sent));
	if (extensive)
		handling_histograms(o);
}

static uint64_t started_of(const char *method)
{
	uint64_t n = 0;
	for (size_t i = 0; i < SLOTS; i++)
		if (slots[i].path != NULL && strcmp(slots[i].path, method) == 0)
			n += atomic_load(&slots[i].started);
	return n;
}

/* A Prometheus histogram: cumulative buckets with etcd's bounds, +Inf,
 * sum and count. */
static void histogram(struct out *o, const char *name, const char *help, const struct core_hist *h)
{
	metric(o, name, "histogram", help);
	uint64_t cum = 0;
	for (int i = 0; i < CORE_HIST_BUCKETS; i++) {
		cum += h->bucket[i];
		put(o, "%s_bucket{le=\"%g\"} %llu\n", name, CORE_HIST_LE(i), (unsigned long long)cum);
	}
	cum += h->bucket[CORE_HIST_BUCKETS];
	put(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	put(o, "%s_sum %.9g\n", name, h->sum_s);
	put(o, "%s_count %llu\n", name, (unsigned long long)h->count);
}

static void process_metrics(struct out *o)
{
	long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
	unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
	long long rss = 0;
	FILE *f = fopen("/proc/self/stat", "r");
	if (f != NULL) {
		char buf[1024];
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = 0;
		fclose(f);
		const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
		if (p != NULL &&
		    sscanf(p + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
			   "%*d %llu %llu %lld",
			   &utime, &stime, &start, &vsize, &rss) != 5)
			utime = stime = start = vsize = 0, rss = 0;
	}
	double boot = 0;
	f = fopen("/proc/stat", "r");
	if (f != NULL) {
		char line[256];
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "btime %lf", &boot) == 1)
				break;
		fclose(f);
	}
	long fds = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		while (readdir(d) != NULL)
			fds++;
		closedir(d);
		fds -= 3; /* ".", ".." and the directory's own fd */
	}
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	metric(o, "process_cpu_seconds_total", "counter",
	       "Total user and system CPU time spent in seconds.");
	put(o, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / (double)ticks);
	metric(o, "process_open_fds", "gauge", "Number of open file descriptors.");
	put(o, "process_open_fds %ld\n", fds);
	metric(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
	put(o, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	metric(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
	put(o, "process_resident_memory_bytes %lld\n", rss * page);
	metric(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
	put(o, "process_virtual_memory_bytes %llu\n", vsize);
	metric(o, "process_start_time_seconds", "gauge",
	       "Start time of the process since unix epoch in seconds.");
	put(o, "process_start_time_seconds %.2f\n", boot + (double)start / (double)ticks);
}

char *api_metrics_render(struct core *c, size_t *len)
{
	struct out o = {0};
	struct core_metrics m;
	core_metrics(c, &m);
	metric(&o, "etcd_server_has_leader", "gauge",
	       "Whether or not a leader exists. 1 is existence, 0 is not.");
	put(&o, "etcd_server_has_leader %d\n", m.has_leader ? 1 : 0);
	metric(&o, "etcd_server_is_leader", "gauge",
	       "Whether or not this member is a leader. 1 if is, 0 otherwise.");
	put(&o, "etcd_server_is_leader %d\n", m.is_leader ? 1 : 0);
	metric(&o, "etcd_server_is_learner", "gauge",
	       "Whether or not this member is a learner. 1 if is, 0 otherwise.");
	put(&o, "etcd_server_is_learner %d\n", m.is_learner ? 1 : 0);
	metric(&o, "etcd_server_leader_changes_seen_total", "counter",
	       "The number of leader changes seen.");
	put(&o, "etcd_server_leader_changes_seen_total %llu\n",
	    (unsigned long long)m.leader_changes);
	metric(&o, "etcd_server_proposals_committed_total", "gauge",
	       "The total number of consensus proposals committed.");
	put(&o, "etcd_server_proposals_committed_total %llu\n",
	    (unsigned long long)m.committed_index);
	metric(&o, "etcd_server_proposals_applied_total", "gauge",
	       "The total number of consensus proposals applied.");
	put(&o, "etcd_server_proposals_applied_total %llu\n", (unsigned long long)m.applied_index);
	metric(&o, "etcd_server_proposals_failed_total", "counter",
	       "The total number of failed proposals seen.");
	put(&o, "etcd_server_proposals_failed_total %llu\n", (unsigned long long)m.proposals_failed);
	metric(&o, "etcd_server_proposals_pending", "gauge",
	       "The current number of pending proposals to commit.");
	put(&o, "etcd_server_proposals_pending %llu\n",
	    (unsigned long long)(m.last_index > m.committed_index ? m.last_index - m.committed_index
								 : 0));
	metric(&o, "etcd_server_id", "gauge",
	       "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.");
	put(&o, "etcd_server_id{server_id=\"%llx\"} 1\n", (unsigned long long)m.member_id);
	metric(&o, "etcd_server_version", "gauge",
	       "Which version is running. 1 for 'server_version' label with current version.");
	put(&o, "etcd_server_version{server_version=\"%s\"} 1\n", CORE_ETCD_VERSION);
	metric(&o, "etcd_cluster_version", "gauge",
	       "Which version is running. 1 for 'cluster_version' label with current cluster version");
	put(&o, "etcd_cluster_version{cluster_version=\"3.5\"} 1\n");
	metric(&o, "etcd_server_quota_backend_bytes", "gauge",
	       "Current backend storage quota size in bytes.");
	put(&o, "etcd_server_quota_backend_bytes %lld\n", (long long)m.quota);
	metric(&o, "etcd_server_alarms", "gauge", "Active alarms (metad: count of each type).");
	struct core_alarm al[64];
	size_t na = core_alarms(c, al, 64);
	int nospace = 0, corrupt = 0;
	for (size_t i = 0; i < na && i < 64; i++) {
		nospace += al[i].type == 1;
		corrupt += al[i].type == 2;
	}
	put(&o, "etcd_server_alarms{alarm_type=\"NOSPACE\"} %d\n", nospace);
	put(&o, "etcd_server_alarms{alarm_type=\"CORRUPT\"} %d\n", corrupt);
	metric(&o, "etcd_mvcc_db_total_size_in_bytes", "gauge",
	       "Total size of the underlying database physically allocated in bytes.");
	put(&o, "etcd_mvcc_db_total_size_in_bytes %llu\n", (unsigned long long)m.db_size);
	metric(&o, "etcd_mvcc_db_total_size_in_use_in_bytes", "gauge",
	       "Total size of the underlying database logically in use in bytes.");
	put(&o, "etcd_mvcc_db_total_size_in_use_in_bytes %llu\n", (unsigned long long)m.db_size);
	metric(&o, "etcd_debugging_mvcc_current_revision", "gauge",
	       "The current revision of store.");
	put(&o, "etcd_debugging_mvcc_current_revision %lld\n", (long long)m.revision);
	metric(&o, "etcd_debugging_mvcc_keys_total", "gauge", "Total number of keys.");
	put(&o, "etcd_debugging_mvcc_keys_total %lld\n", (long long)m.keys);
	metric(&o, "etcd_debugging_mvcc_compact_revision", "gauge",
	       "The revision of the last compaction in store.");
	put(&o, "etcd_debugging_mvcc_compact_revision %lld\n", (long long)m.compact_revision);
	metric(&o, "etcd_mvcc_put_total", "counter", "Total number of puts seen by this member.");
	put(&o, "etcd_mvcc_put_total %llu\n",
	    (unsigned long long)started_of("/etcdserverpb.KV/Put"));
	metric(&o, "etcd_mvcc_range_total", "counter",
	       "Total number of ranges seen by this member.");
	put(&o, "etcd_mvcc_range_total %llu\n",
	    (unsigned long long)started_of("/etcdserverpb.KV/Range"));
	metric(&o, "etcd_mvcc_delete_total", "counter",
	       "Total number of deletes seen by this member.");
	put(&o, "etcd_mvcc_delete_total %llu\n",
	    (unsigned long long)started_of("/etcdserverpb.KV/DeleteRange"));
	metric(&o, "etcd_mvcc_txn_total", "counter", "Total number of txns seen by this member.");
	put(&o, "etcd_mvcc_txn_total %llu\n",
	    (unsigned long long)started_of("/etcdserverpb.KV/Txn"));
	metric(&o, "etcd_disk_wal_fsync_total", "counter",
	       "metad: synced commits of the Raft log (one per write batch).");
	put(&o, "etcd_disk_wal_fsync_total %llu\n", (unsigned long long)m.log_commits);
	histogram(&o, "etcd_disk_wal_fsync_duration_seconds",
		  "The latency distributions of fsync called by WAL.", &m.wal_fsync);
	histogram(&o, "etcd_disk_backend_commit_duration_seconds",
		  "The latency distributions of commit called by backend.", &m.backend_commit);
	metric(&o, "etcd_network_client_grpc_received_bytes_total", "counter",
	       "The total number of bytes received from grpc clients.");
	put(&o, "etcd_network_client_grpc_received_bytes_total %llu\n",
	    (unsigned long long)atomic_load(&recv_bytes));
	metric(&o, "etcd_network_client_grpc_sent_bytes_total", "counter",
	       "The total number of bytes sent to grpc clients.");
	put(&o, "etcd_network_client_grpc_sent_bytes_total %llu\n",
	    (unsigned long long)atomic_load(&sent_bytes));
	grpc_metrics(&o);
	process_metrics(&o);
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	*len = o.len;
	return o.p;
}
