/*
 * tools/scale/lease_keepalive.c — scale check: N leases kept alive by ONE
 * client over ONE LeaseKeepAlive stream (as clientv3 does), each renewed once
 * per PERIOD seconds, for DURATION seconds. Counts keep-alives answered with
 * TTL 0 (an expired or unknown lease) and prints the figures. A C client so
 * the client is not the limit (a Python one tops out near 13,000/s).
 *
 * Messages are hand-encoded (field 1 = TTL or ID), to need nothing but gRPC.
 * Build: cc -O2 -o lease_keepalive tools/scale/lease_keepalive.c -lgrpc -lgpr
 * Run:   lease_keepalive HOST:PORT [leases=100000] [ttl=15] [period_s=5] [duration_s=30]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* Top-level varint field `field` of a message (0 if absent). */
static uint64_t get_field(const uint8_t *p, size_t len, unsigned field)
{
	size_t i = 0;
	while (i < len) {
		uint64_t key = 0, v = 0;
		for (int s = 0; i < len; s += 7) {
			key |= (uint64_t)(p[i] & 0x7f) << s;
			if (!(p[i++] & 0x80))
				break;
		}
		unsigned wt = key & 7;
		if (wt == 0) {
			for (int s = 0; i < len; s += 7) {
				v |= (uint64_t)(p[i] & 0x7f) << s;
				if (!(p[i++] & 0x80))
					break;
			}
			if ((key >> 3) == field)
				return v;
		} else if (wt == 2) {
			uint64_t l = 0;
			for (int s = 0; i < len; s += 7) {
				l |= (uint64_t)(p[i] & 0x7f) << s;
				if (!(p[i++] & 0x80))
					break;
			}
			i += l;
		} else {
			return 0;
		}
	}
	return 0;
}

static grpc_byte_buffer *msg1(uint64_t v)
{
	uint8_t b[16];
	b[0] = 0x08; /* field 1, varint */
	size_t n = 1 + put_varint(b + 1, v);
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)b, n);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return bb;
}

static grpc_slice read_all(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	grpc_byte_buffer_reader_init(&rd, bb);
	grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	return s;
}

struct unary {
	grpc_call *call;
	grpc_metadata_array md, tmd;
	grpc_byte_buffer *req, *resp;
	grpc_status_code status;
	grpc_slice details;
};

static void die(const char *what)
{
	fprintf(stderr, "lease_keepalive: %s\n", what);
	exit(1);
}

static void next_ok(grpc_completion_queue *cq, void *tag)
{
	grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE || (tag && ev.tag != tag))
		die("unexpected completion");
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: lease_keepalive HOST:PORT [leases] [ttl] [period_s] [duration_s]");
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000;
	int ttl = argc > 3 ? atoi(argv[3]) : 15;
	double period = argc > 4 ? atof(argv[4]) : 5;
	double duration = argc > 5 ? atof(argv[5]) : 30;
	grpc_init();
	grpc_channel_credentials *cr = grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create(argv[1], cr, NULL);
	grpc_channel_credentials_release(cr);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	gpr_timespec dl = gpr_inf_future(GPR_CLOCK_REALTIME);
	grpc_slice grant = grpc_slice_from_static_string("/etcdserverpb.Lease/LeaseGrant");
	grpc_slice ka = grpc_slice_from_static_string("/etcdserverpb.Lease/LeaseKeepAlive");
	int64_t *ids = calloc(n, sizeof(*ids));

	/* 1. grant, WINDOW at a time */
	enum { WINDOW = 512 };
	struct unary *u = calloc(WINDOW, sizeof(*u));
	double t0 = now_s();
	for (size_t done = 0; done < n;) {
		size_t k = n - done < WINDOW ? n - done : WINDOW;
		for (size_t i = 0; i < k; i++) {
			struct unary *x = &u[i];
			memset(x, 0, sizeof(*x));
			x->call = grpc_channel_create_call(ch, NULL, 0, cq, grant, NULL, dl, NULL);
			grpc_metadata_array_init(&x->md);
			grpc_metadata_array_init(&x->tmd);
			x->req = msg1((uint64_t)ttl);
			grpc_op ops[6];
			memset(ops, 0, sizeof(ops));
			ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
			ops[1].op = GRPC_OP_SEND_MESSAGE;
			ops[1].data.send_message.send_message = x->req;
			ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
			ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
			ops[3].data.recv_initial_metadata.recv_initial_metadata = &x->md;
			ops[4].op = GRPC_OP_RECV_MESSAGE;
			ops[4].data.recv_message.recv_message = &x->resp;
			ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
			ops[5].data.recv_status_on_client.trailing_metadata = &x->tmd;
			ops[5].data.recv_status_on_client.status = &x->status;
			ops[5].data.recv_status_on_client.status_details = &x->details;
			if (grpc_call_start_batch(x->call, ops, 6, x, NULL) != GRPC_CALL_OK)
				die("start_batch");
		}
		for (size_t i = 0; i < k; i++)
			next_ok(cq, NULL);
		for (size_t i = 0; i < k; i++) {
			struct unary *x = &u[i];
			if (x->status != GRPC_STATUS_OK || x->resp == NULL)
				die("LeaseGrant failed");
			grpc_slice s = read_all(x->resp);
			ids[done + i] = (int64_t)get_field(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), 2);
			grpc_slice_unref(s);
			grpc_byte_buffer_destroy(x->req);
			grpc_byte_buffer_destroy(x->resp);
			grpc_slice_unref(x->details);
			grpc_metadata_array_destroy(&x->md);
			grpc_metadata_array_destroy(&x->tmd);
			grpc_call_unref(x->call);
		}
		done += k;
	}
	double gs = now_s() - t0;
	printf("granted %zu leases (TTL %d s) in %.1f s (%.0f/s)\n", n, ttl, gs, n / gs);

	/* 2. one keep-alive stream: a paced send loop and a receive loop on
	 * one CQ (one SEND and one RECV in flight). */
	grpc_call *call = grpc_channel_create_call(ch, NULL, 0, cq, ka, NULL, dl, NULL);
	grpc_metadata_array md;
	grpc_metadata_array_init(&md);
	grpc_op op[2];
	memset(op, 0, sizeof(op));
	op[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	static int tag_start, tag_send, tag_recv;
	if (grpc_call_start_batch(call, op, 1, &tag_start, NULL) != GRPC_CALL_OK)
		die("start");
	next_ok(cq, &tag_start);
	grpc_byte_buffer *rbuf = NULL, *sbuf = NULL;
	memset(op, 0, sizeof(op));
	op[0].op = GRPC_OP_RECV_MESSAGE;
	op[0].data.recv_message.recv_message = &rbuf;
	int recv_first = 1;
	double per_s = n / period, start = now_s();
	uint64_t sent = 0, got = 0, zero = 0;
	int sending = 0, receiving = 0;
	double lag_max = 0;
	while (now_s() - start < duration) {
		if (!receiving) {
			grpc_op r;
			memset(&r, 0, sizeof(r));
			r.op = recv_first ? GRPC_OP_RECV_INITIAL_METADATA : GRPC_OP_RECV_MESSAGE;
			if (recv_first)
				r.data.recv_initial_metadata.recv_initial_metadata = &md;
			else
				r.data.recv_message.recv_message = &rbuf;
			if (grpc_call_start_batch(call, &r, 1, &tag_recv, NULL) != GRPC_CALL_OK)
				die("recv");
			receiving = 1;
		}
		double due = start + sent / per_s;
		if (!sending && now_s() >= due) {
			if (now_s() - due > lag_max)
				lag_max = now_s() - due;
			sbuf = msg1((uint64_t)ids[sent % n]);
			grpc_op s;
			memset(&s, 0, sizeof(s));
			s.op = GRPC_OP_SEND_MESSAGE;
			s.data.send_message.send_message = sbuf;
			if (grpc_call_start_batch(call, &s, 1, &tag_send, NULL) != GRPC_CALL_OK)
				die("send");
			sending = 1;
			sent++;
		}
		gpr_timespec wait = sending ? gpr_inf_future(GPR_CLOCK_MONOTONIC)
					    : gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
							   gpr_time_from_micros(
								   (int64_t)((due - now_s()) * 1e6) + 1,
								   GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(cq, wait, NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT)
			continue;
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			die("stream failed");
		if (ev.tag == &tag_send) {
			grpc_byte_buffer_destroy(sbuf);
			sending = 0;
		} else if (ev.tag == &tag_recv) {
			receiving = 0;
			if (recv_first) {
				recv_first = 0;
				continue;
			}
			if (rbuf == NULL)
				die("stream ended");
			grpc_slice s = read_all(rbuf);
			if (get_field(GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), 3) == 0)
				zero++;
			grpc_slice_unref(s);
			grpc_byte_buffer_destroy(rbuf);
			rbuf = NULL;
			got++;
		}
	}
	double el = now_s() - start;
	printf("keep-alive: %llu sent, %llu answered in %.1f s (%.0f/s, target %.0f/s), "
	       "max send lag %.3f s, %llu answered TTL=0\n",
	       (unsigned long long)sent, (unsigned long long)got, el, got / el, per_s, lag_max,
	       (unsigned long long)zero);
	printf("RESULT: %s\n", zero == 0 ? "no lease expired" : "LEASES EXPIRED");
	grpc_call_cancel(call, NULL);
	/* drain what is outstanding, then leave (the server revokes nothing:
	 * the leases expire ttl seconds later) */
	for (int k = sending + receiving; k > 0; k--)
		grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (rbuf)
		grpc_byte_buffer_destroy(rbuf);
	grpc_metadata_array_destroy(&md);
	grpc_call_unref(call);
	free(ids);
	free(u);
	grpc_channel_destroy(ch);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	       GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	grpc_shutdown();
	(void)op;
	return zero == 0 ? 0 : 1;
}
