/*
 * tests/fuzz/fuzz_gateway_json.c — any bytes as the body of an HTTP call
 * to etcd's JSON gateway on the client port: the first byte picks the
 * route (so the request message), the rest is the body, read as the
 * gateway reads it (one JSON object; for a stream, several one after
 * another). What converts must pack and unpack again as protobuf, and
 * convert back to JSON; nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcdapi/gateway.h"

#define MAX_MSGS 64 /* as the gateway's limit of requests per stream body */

static size_t n_routes;

static void round_trip(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return;
	if (protobuf_c_message_pack(m, buf) != len)
		abort();
	ProtobufCMessage *again = protobuf_c_message_unpack(d, NULL, len, buf);
	if (again == NULL)
		abort(); /* what we pack must unpack */
	json_t *j = gw_pb_to_json(again);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	free(text);
	json_decref(j);
	protobuf_c_message_free_unpacked(again, NULL);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (n_routes == 0)
		while (gw_route_nth(n_routes) != NULL)
			n_routes++;
	if (size < 1 || n_routes == 0)
		return 0;
	const struct gw_route *r = gw_route_nth(data[0] % n_routes);
	const char *body = (const char *)data + 1;
	size_t len = size - 1, off = 0;
	for (int n = 0; n < MAX_MSGS && r->in != NULL; n++) {
		while (off < len && strchr(" \n\r\t", body[off]) != NULL && body[off] != 0)
			off++;
		if (off == len)
			break;
		json_error_t je;
		json_t *j = json_loadb(body + off, len - off, JSON_DISABLE_EOF_CHECK, &je);
		if (j == NULL || je.position <= 0)
			break;
		off += (size_t)je.position;
		ProtobufCMessage *m = NULL;
		char err[256];
		if (gw_json_to_pb(r->in, j, &m, err, sizeof(err)) == 0) {
			round_trip(r->in, m);
			gw_pb_free(m);
		}
		json_decref(j);
		if (!r->client_stream)
			break;
	}
	return 0;
}
