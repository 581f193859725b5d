/*
 * tests/fuzz/fuzz_request.c — any bytes as a client request or a log
 * entry: the first byte picks the message (Range, Put, DeleteRange, Txn
 * and their validation; the internal request a log entry holds, through
 * apply's auth checks; any other request message of every service), the
 * rest is its wire bytes. A client's request that the client port takes
 * must pack into something that unpacks again: a log entry every member
 * can apply.
 */
#include "etcdapi/wire.h"
#include "tests/fuzz/fuzz_common.h"
#include "v3election.pb-c.h"
#include "v3lock.pb-c.h"

/* Unpacked only (their checks run in core with a store): these first, so
 * the seed corpus keeps its meaning, then every other request message of
 * every service (plain_init). */
static const ProtobufCMessageDescriptor *const first[] = {
	&etcdserverpb__watch_request__descriptor,
	&etcdserverpb__lease_grant_request__descriptor,
	&etcdserverpb__lease_time_to_live_request__descriptor,
	&etcdserverpb__compaction_request__descriptor,
	&etcdserverpb__authenticate_request__descriptor,
	&etcdserverpb__auth_user_add_request__descriptor,
	&etcdserverpb__auth_role_grant_permission_request__descriptor,
	&etcdserverpb__auth_role_revoke_permission_request__descriptor,
	&v3lockpb__lock_request__descriptor,
	&v3electionpb__proclaim_request__descriptor,
};
#define N_FIRST (sizeof(first) / sizeof(first[0]))

static const ProtobufCServiceDescriptor *const services[] = {
	&etcdserverpb__kv__descriptor,		&etcdserverpb__watch__descriptor,
	&etcdserverpb__lease__descriptor,	&etcdserverpb__cluster__descriptor,
	&etcdserverpb__maintenance__descriptor, &etcdserverpb__auth__descriptor,
	&v3lockpb__lock__descriptor,		&v3electionpb__election__descriptor,
};

#define PLAIN_MAX 96
static const ProtobufCMessageDescriptor *plain[PLAIN_MAX];
static size_t n_plain;

static void plain_add(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < n_plain; i++)
		if (plain[i] == d)
			return;
	if (n_plain < PLAIN_MAX)
		plain[n_plain++] = d;
}

static void plain_init(void)
{
	for (size_t i = 0; i < N_FIRST; i++)
		plain_add(first[i]);
	for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++)
		for (unsigned m = 0; m < services[s]->n_methods; m++)
			plain_add(services[s]->methods[m].input);
}

/*
 * The client port's check after unpacking (etcdapi/wire.c), then what a
 * write needs: a message that passes packs into a log entry every member
 * can unpack again. False when the check refuses m (as the port would).
 */
static bool passes(const ProtobufCMessage *m)
{
	char why[256];
	if (wire_refused(m, why, sizeof(why)))
		return false;
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return false;
	if (protobuf_c_message_pack(m, buf) != len)
		abort();
	ProtobufCMessage *again = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	if (again == NULL || protobuf_c_message_get_packed_size(again) != len)
		abort(); /* an entry no member could apply */
	protobuf_c_message_free_unpacked(again, NULL);
	free(buf);
	return true;
}

/* Every lease an entry names is looked at: count them, refuse none. */
static int count_lease(void *arg, int64_t lease)
{
	(void)lease;
	(*(size_t *)arg)++;
	return CORE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (n_plain == 0)
		plain_init();
	unsigned which = data[0] % (5 + n_plain);
	data++;
	size--;
	switch (which) {
	case 0: {
		Etcdserverpb__RangeRequest *q = etcdserverpb__range_request__unpack(NULL, size, data);
		if (q != NULL && passes(&q->base))
			(void)validate_range(q);
		if (q != NULL)
			etcdserverpb__range_request__free_unpacked(q, NULL);
		break;
	}
	case 1: {
		Etcdserverpb__PutRequest *q = etcdserverpb__put_request__unpack(NULL, size, data);
		if (q != NULL && passes(&q->base))
			(void)validate_put(q);
		if (q != NULL)
			etcdserverpb__put_request__free_unpacked(q, NULL);
		break;
	}
	case 2: {
		Etcdserverpb__DeleteRangeRequest *q =
			etcdserverpb__delete_range_request__unpack(NULL, size, data);
		if (q != NULL && passes(&q->base))
			(void)validate_delete(q);
		if (q != NULL)
			etcdserverpb__delete_range_request__free_unpacked(q, NULL);
		break;
	}
	case 3: {
		Etcdserverpb__TxnRequest *q = etcdserverpb__txn_request__unpack(NULL, size, data);
		if (q != NULL && passes(&q->base)) {
			(void)validate_txn(q, 128);
			(void)txn_is_readonly(q);
		}
		if (q != NULL)
			etcdserverpb__txn_request__free_unpacked(q, NULL);
		break;
	}
	case 4: {
		Metadpb__InternalRequest *q = metadpb__internal_request__unpack(NULL, size, data);
		if (q != NULL) {
			/* Apply's checks, but for the lease keys' lookup (no store here). */
			size_t n = 0;
			(void)auth_apply_check_revision(fuzz_core(), q);
			(void)auth_req_leases(q, count_lease, &n);
			metadpb__internal_request__free_unpacked(q, NULL);
		}
		break;
	}
	default: {
		ProtobufCMessage *m = protobuf_c_message_unpack(plain[which - 5], NULL, size, data);
		if (m != NULL) {
			(void)passes(m);
			protobuf_c_message_free_unpacked(m, NULL);
		}
		break;
	}
	}
	return 0;
}
