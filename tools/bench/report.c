/*
 * tools/bench/report.c — print a result for people or for scripts.
 *
 * Requests/s counts successful requests only, so a server answering errors
 * fast never looks fast. Latencies are of successful requests.
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void print_latency(const struct bench_hist *h, const char *indent)
{
	if (h->count == 0) {
		printf("%slatency: no successful requests\n", indent);
		return;
	}
	printf("%slatency ms: avg %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  min %.3f\n",
	       indent, ms(h->sum / h->count), ms(bench_hist_quantile(h, 0.5)),
	       ms(bench_hist_quantile(h, 0.9)), ms(bench_hist_quantile(h, 0.99)),
	       ms(bench_hist_quantile(h, 0.999)), ms(h->max), ms(h->min));
}

/* One line per power of two between the fastest and the slowest answer. */
static void print_histogram(const struct bench_hist *h)
{
	if (h->count == 0)
		return;
	int lo = 63 - __builtin_clzll(h->min | 1), hi = 63 - __builtin_clzll(h->max | 1);
	/* Merge the fastest buckets if the range is wide, to keep 16 lines. */
	if (hi - lo > 15)
		lo = hi - 15;
	uint64_t counts[64] = {0}, top = 1;
	for (int e = lo; e <= hi; e++) {
		uint64_t a = e == lo ? 0 : 1ull << e, b = e == 63 ? UINT64_MAX : 1ull << (e + 1);
		counts[e] = bench_hist_count_between(h, a, b);
		if (counts[e] > top)
			top = counts[e];
	}
	printf("  histogram (ms):\n");
	for (int e = lo; e <= hi; e++) {
		char bar[41];
		int n = (int)((counts[e] * 40 + top - 1) / top);
		memset(bar, '#', (size_t)n);
		bar[n] = 0;
		printf("    %10.3f .. %-10.3f %10llu |%s\n", e == lo ? 0.0 : ms(1ull << e),
		       ms(e == 63 ? UINT64_MAX : 1ull << (e + 1)), (unsigned long long)counts[e], bar);
	}
}

static void print_text(const struct bench_result *r)
{
	const struct bench_stats *s = &r->stats;
	printf("Summary (%s):\n", r->workload);
	printf("  total time: %.4f s\n", r->seconds);
	if (r->is_watch) {
		printf("  watchers: %llu  puts: %llu  events: %llu of %llu expected\n",
		       (unsigned long long)r->watchers, (unsigned long long)r->puts,
		       (unsigned long long)s->events, (unsigned long long)r->events_expected);
		printf("  events/s delivered: %.1f (over %.4f s)\n",
		       r->event_seconds > 0 ? (double)s->events / r->event_seconds : 0.0,
		       r->event_seconds);
		printf("  put -> event delay, per event:\n");
	} else {
		printf("  requests: %llu ok, %llu errors\n", (unsigned long long)s->ok,
		       (unsigned long long)s->errors);
		printf("  requests/s: %.1f\n", r->seconds > 0 ? (double)s->ok / r->seconds : 0.0);
	}
	print_latency(&s->lat[BENCH_KIND_ALL], "  ");
	uint64_t n = s->ok + s->errors;
	if (r->seconds > 0 && n > 0)
		printf("  client CPU: %.2f s, %.1f%% of one core, %.1f us per request\n",
		       r->client_cpu_s, 100 * r->client_cpu_s / r->seconds, 1e6 * r->client_cpu_s / (double)n);
	static const char *const kname[BENCH_KIND__N] = {"", "reads", "writes"};
	for (int k = BENCH_KIND_READ; k < BENCH_KIND__N; k++) {
		if (s->kind_ok[k] == 0)
			continue;
		printf("  %s: %llu ok, %.1f/s\n", kname[k], (unsigned long long)s->kind_ok[k],
		       r->seconds > 0 ? (double)s->kind_ok[k] / r->seconds : 0.0);
		print_latency(&s->lat[k], "    ");
	}
	print_histogram(&s->lat[BENCH_KIND_ALL]);
	if (s->errors == 0) {
		printf("  errors: 0\n");
		return;
	}
	printf("  errors: %llu (", (unsigned long long)s->errors);
	const char *sep = "";
	for (int i = 0; i < BENCH_STATUS_CODES; i++)
		if (s->err_by_code[i]) {
			printf("%s%s %llu", sep, bench_status_name((grpc_status_code)i),
			       (unsigned long long)s->err_by_code[i]);
			sep = ", ";
		}
	printf(")\n");
	if (r->have_first_error)
		printf("  first error: %s: %s\n", bench_status_name(r->first_code), r->first_msg);
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void json_latency(const struct bench_hist *h)
{
	if (h->count == 0) {
		printf("null");
		return;
	}
	printf("{\"avg\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f,"
	       "\"min\":%.4f}",
	       ms(h->sum / h->count), ms(bench_hist_quantile(h, 0.5)),
	       ms(bench_hist_quantile(h, 0.9)), ms(bench_hist_quantile(h, 0.99)),
	       ms(bench_hist_quantile(h, 0.999)), ms(h->max), ms(h->min));
}

static void print_json(const struct bench_result *r)
{
	const struct bench_stats *s = &r->stats;
	printf("{\"workload\":");
	json_string(r->workload);
	/* watch: ok counts events, and the rate is events delivered per second. */
	double rps = r->seconds > 0 ? (double)s->ok / r->seconds : 0.0;
	if (r->is_watch)
		rps = r->event_seconds > 0 ? (double)s->events / r->event_seconds : 0.0;
	printf(",\"seconds\":%.6f,\"ok\":%llu,\"errors\":%llu,\"rps\":%.2f,\"latency_ms\":",
	       r->seconds, (unsigned long long)s->ok, (unsigned long long)s->errors, rps);
	json_latency(&s->lat[BENCH_KIND_ALL]);
	static const char *const kname[BENCH_KIND__N] = {"", "reads", "writes"};
	for (int k = BENCH_KIND_READ; k < BENCH_KIND__N; k++) {
		if (s->kind_ok[k] == 0)
			continue;
		printf(",\"%s\":{\"ok\":%llu,\"rps\":%.2f,\"latency_ms\":", kname[k],
		       (unsigned long long)s->kind_ok[k],
		       r->seconds > 0 ? (double)s->kind_ok[k] / r->seconds : 0.0);
		json_latency(&s->lat[k]);
		printf("}");
	}
	if (r->is_watch)
		printf(",\"watchers\":%llu,\"puts\":%llu,\"events\":%llu,\"events_expected\":%llu,"
		       "\"events_per_sec\":%.2f",
		       (unsigned long long)r->watchers, (unsigned long long)r->puts,
		       (unsigned long long)s->events, (unsigned long long)r->events_expected,
		       r->event_seconds > 0 ? (double)s->events / r->event_seconds : 0.0);
	uint64_t n = s->ok + s->errors;
	printf(",\"client_cpu_s\":%.3f,\"client_cpu_us_per_req\":%.2f", r->client_cpu_s,
	       n ? 1e6 * r->client_cpu_s / (double)n : 0.0);
	printf(",\"error_codes\":{");
	const char *sep = "";
	for (int i = 0; i < BENCH_STATUS_CODES; i++)
		if (s->err_by_code[i]) {
			printf("%s\"%s\":%llu", sep, bench_status_name((grpc_status_code)i),
			       (unsigned long long)s->err_by_code[i]);
			sep = ",";
		}
	printf("},\"first_error\":");
	if (r->have_first_error) {
		printf("{\"code\":\"%s\",\"message\":", bench_status_name(r->first_code));
		json_string(r->first_msg);
		printf("}");
	} else {
		printf("null");
	}
	printf("}\n");
}

void bench_report_print(const struct bench_result *r, int json)
{
	if (json)
		print_json(r);
	else
		print_text(r);
	fflush(stdout);
}
