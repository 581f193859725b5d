/*
 * etcdapi/kv.c — the KV service: decode, hand to core, reply.
 */
#include "etcdapi/authz.h"
#include "etcdapi/call.h"
#include "etcdapi/offload.h"

#include "rpc.pb-c.h"

/* Point reads and small pages answer on the CQ thread; a range that may
 * scan many keys runs on a worker so it cannot stall other calls. */
#define INLINE_RANGE_LIMIT 1000

static void range_now(struct api_call *call, const ProtobufCMessage *req)
{
	core_range(api_core(call), (const Etcdserverpb__RangeRequest *)req, api_core_done, call);
}

static void kv_range(struct api_call *call, const ProtobufCMessage *req)
{
	const Etcdserverpb__RangeRequest *q = (const Etcdserverpb__RangeRequest *)req;
	if (!api_authz_range(call, q))
		return;
	if (q->range_end.len > 0 && (q->limit <= 0 || q->limit > INLINE_RANGE_LIMIT))
		api_offload(call, range_now);
	else
		range_now(call, req);
}

/* KV handlers hold no lock, so a lone write may commit on this thread
 * (core_commit_inline): one thread hand-off fewer on its path. The call's
 * request lives until its answer is sent (core_write_kept). */
static void kv_put(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_put(call, (const Etcdserverpb__PutRequest *)req))
		return;
	core_commit_inline(true);
	core_write_kept(api_core(call), req, api_core_done, call);
	core_commit_inline(false);
	api_authz_end();
}

static void kv_delete_range(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_delete(call, (const Etcdserverpb__DeleteRangeRequest *)req))
		return;
	core_commit_inline(true);
	core_write_kept(api_core(call), req, api_core_done, call);
	core_commit_inline(false);
	api_authz_end();
}

static void kv_txn(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_txn(call, (const Etcdserverpb__TxnRequest *)req))
		return;
	core_commit_inline(true);
	core_write_kept(api_core(call), req, api_core_done, call);
	core_commit_inline(false);
	api_authz_end();
}

static void kv_compact(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_admin(call)) /* the whole key space's history: root only */
		return;
	core_compact(api_core(call), (const Etcdserverpb__CompactionRequest *)req, api_core_done, call);
	api_authz_end();
}

/* The hot methods keep many calls armed per completion queue. */
struct api_method api_kv_methods[] = {
	{"/etcdserverpb.KV/Range", &etcdserverpb__range_request__descriptor, kv_range, 0, 64, NULL, 0},
	{"/etcdserverpb.KV/Put", &etcdserverpb__put_request__descriptor, kv_put, 0, 64, NULL, 0},
	{"/etcdserverpb.KV/DeleteRange", &etcdserverpb__delete_range_request__descriptor,
	 kv_delete_range, 0, 16, NULL, 0},
	{"/etcdserverpb.KV/Txn", &etcdserverpb__txn_request__descriptor, kv_txn, 0, 64, NULL, 0},
	{"/etcdserverpb.KV/Compact", &etcdserverpb__compaction_request__descriptor, kv_compact, 0, 2,
	 NULL, 0},
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};
