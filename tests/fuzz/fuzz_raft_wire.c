/*
 * tests/fuzz/fuzz_raft_wire.c — any bytes as what members send each other
 * and what the log stores: the first byte picks the decoder, the rest is
 * its input. Raft's own (raft/raft.proto, nanopb): message, log entry,
 * hard state, snapshot meta, conf change; what decodes must encode and
 * decode again to the same bytes. The peer transport's own calls
 * (internal.proto, protobuf-c): a forwarded call and its reply, a snapshot
 * fetch and its chunks, and the member list a joining member fetches; what
 * unpacks must pack and unpack again to the same size.
 */
#include <stdlib.h>
#include <string.h>

#include "etcdapi/wire.h"
#include "internal.pb-c.h"
#include "raft/raft.h"
#include "rpc.pb-c.h"

static const ProtobufCMessageDescriptor *const peer_msgs[] = {
	&metadpb__peer_call__descriptor,
	&metadpb__peer_reply__descriptor,
	&metadpb__snapshot_fetch__descriptor,
	&metadpb__snapshot_chunk__descriptor,
	&etcdserverpb__member_list_response__descriptor,
};
#define N_PEER_MSGS (sizeof(peer_msgs) / sizeof(peer_msgs[0]))

static void peer_msg(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, size, data);
	if (m == NULL)
		return;
	/* What the client port refuses (a field numbered 0) never reaches a
	 * member's own packing: members forward only what they unpacked from
	 * clients, after that check (etcdapi/wire.c). */
	char why[256];
	if (wire_refused(m, why, sizeof(why))) {
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf != NULL) {
		if (protobuf_c_message_pack(m, buf) != len)
			abort();
		ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, len, buf);
		if (m2 == NULL || protobuf_c_message_get_packed_size(m2) != len)
			abort(); /* our own packing must unpack to the same */
		protobuf_c_message_free_unpacked(m2, NULL);
		free(buf);
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

static void same_again(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen || (alen > 0 && memcmp(a, b, alen) != 0))
		abort();
}

static void message(const uint8_t *data, size_t size)
{
	struct raft_message m;
	memset(&m, 0, sizeof(m));
	if (raft_msg_decode(data, size, &m) != 0)
		return;
	size_t len = 0, len2 = 0;
	uint8_t *buf = NULL, *buf2 = NULL;
	if (raft_msg_encoded_size(&m, &len) == 0 && (buf = malloc(len + 1)) != NULL &&
	    raft_msg_encode(&m, buf, len, &len) == 0) {
		struct raft_message m2;
		memset(&m2, 0, sizeof(m2));
		if (raft_msg_decode(buf, len, &m2) != 0)
			abort(); /* our own encoding must decode */
		if (raft_msg_encoded_size(&m2, &len2) == 0 && (buf2 = malloc(len2 + 1)) != NULL &&
		    raft_msg_encode(&m2, buf2, len2, &len2) == 0)
			same_again(buf, len, buf2, len2);
		raft_message_release(&m2);
	}
	free(buf);
	free(buf2);
	raft_message_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t which = data[0] % (5 + N_PEER_MSGS);
	data++;
	size--;
	uint8_t out[4096], out2[4096];
	size_t len, len2;
	switch (which) {
	case 0:
		message(data, size);
		break;
	case 1: {
		struct raft_entry e;
		memset(&e, 0, sizeof(e));
		if (raft_entry_decode(data, size, &e) == 0 &&
		    raft_entry_encode(&e, out, sizeof(out), &len) == 0) {
			struct raft_entry e2;
			memset(&e2, 0, sizeof(e2));
			if (raft_entry_decode(out, len, &e2) != 0 ||
			    raft_entry_encode(&e2, out2, sizeof(out2), &len2) != 0)
				abort();
			same_again(out, len, out2, len2);
		}
		break;
	}
	case 2: {
		struct raft_hard_state hs, hs2;
		if (raft_hard_state_decode(data, size, &hs) == 0 &&
		    raft_hard_state_encode(&hs, out, sizeof(out), &len) == 0) {
			if (raft_hard_state_decode(out, len, &hs2) != 0 || hs2.term != hs.term ||
			    hs2.vote != hs.vote || hs2.commit != hs.commit)
				abort();
		}
		break;
	}
	case 3: {
		struct raft_snapshot_meta m, m2;
		memset(&m, 0, sizeof(m));
		if (raft_snapshot_meta_decode(data, size, &m) == 0 &&
		    raft_snapshot_meta_encode(&m, out, sizeof(out), &len) == 0) {
			memset(&m2, 0, sizeof(m2));
			if (raft_snapshot_meta_decode(out, len, &m2) != 0 || m2.index != m.index ||
			    m2.term != m.term)
				abort();
		}
		break;
	}
	case 4: {
		struct raft_conf_change cc, cc2;
		memset(&cc, 0, sizeof(cc));
		if (raft_conf_change_decode(data, size, &cc) == 0 &&
		    raft_conf_change_encode(&cc, out, sizeof(out), &len) == 0) {
			memset(&cc2, 0, sizeof(cc2));
			if (raft_conf_change_decode(out, len, &cc2) != 0 || cc2.type != cc.type)
				abort();
		}
		break;
	}
	default:
		peer_msg(peer_msgs[which - 5], data, size);
		break;
	}
	return 0;
}
