/*
 * etcdapi/maintenance.c — Maintenance and Cluster: what etcdctl's endpoint
 * and member commands need from a single member, and UNIMPLEMENTED for the
 * rest until their issues land.
 */
#include <string.h>

#include <stdio.h>

#include "core/alarm.h"
#include "etcdapi/authz.h"
#include "etcdapi/call.h"
#include "etcdapi/offload.h"

#include "rpc.pb-c.h"

static void status(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	struct core *core = api_core(call);
	struct core_status st;
	core_status(core, &st);
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	core_fill_header(core, &h, st.revision);
	Etcdserverpb__StatusResponse resp = ETCDSERVERPB__STATUS_RESPONSE__INIT;
	resp.header = &h;
	resp.version = (char *)CORE_ETCD_VERSION;
	resp.dbsize = (int64_t)st.db_size;
	resp.dbsizeinuse = (int64_t)st.db_size_in_use;
	resp.leader = st.leader;
	resp.raftindex = st.raft_index;
	resp.raftterm = st.raft_term;
	resp.raftappliedindex = st.applied_index;
	resp.islearner = core_is_learner(core);
	/* etcd: "no leader", then each alarm in protobuf's compact text. */
	struct core_alarm alarms[16];
	size_t n = core_alarms(core, alarms, 16);
	if (n > 16)
		n = 16;
	char text[17][64];
	char *errs[17];
	size_t ne = 0;
	if (st.leader == 0)
		snprintf(errs[ne] = text[ne], sizeof(text[ne]), "%s", core_strerror(CORE_ENO_LEADER)),
			ne++;
	for (size_t i = 0; i < n; i++, ne++) {
		const char *name = core_alarm_name(alarms[i].type);
		int len = snprintf(errs[ne] = text[ne], sizeof(text[ne]), "memberID:%llu ",
				   (unsigned long long)alarms[i].member);
		if (alarms[i].type != 0 && len > 0 && (size_t)len < sizeof(text[ne])) {
			if (name != NULL)
				snprintf(text[ne] + len, sizeof(text[ne]) - (size_t)len, "alarm:%s ", name);
			else
				snprintf(text[ne] + len, sizeof(text[ne]) - (size_t)len, "alarm:%d ",
					 alarms[i].type);
		}
	}
	resp.errors = errs;
	resp.n_errors = ne;
	api_finish_msg(call, &resp.base);
}

static void move_leader(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_admin(call)) /* etcd's authMaintenanceServer: root only */
		return;
	api_authz_end(); /* nothing the client wrote is proposed */
	core_move_leader(api_core(call), (const Etcdserverpb__MoveLeaderRequest *)req, api_core_done,
			 call);
}

static void member_add(struct api_call *call, const ProtobufCMessage *req)
{
	/* etcd: membership changes need the root role. Checked only now: a
	 * membership change is not refused at apply like a client's write. */
	if (!api_authz_admin(call))
		return;
	api_authz_end();
	core_member_add(api_core(call), (const Etcdserverpb__MemberAddRequest *)req, api_core_done,
			call);
}

static void member_remove(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_admin(call))
		return;
	api_authz_end();
	core_member_remove(api_core(call), (const Etcdserverpb__MemberRemoveRequest *)req,
			   api_core_done, call);
}

static void member_update(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_admin(call))
		return;
	api_authz_end();
	core_member_update(api_core(call), (const Etcdserverpb__MemberUpdateRequest *)req,
			   api_core_done, call);
}

static void member_promote(struct api_call *call, const ProtobufCMessage *req)
{
	if (!api_authz_admin(call))
		return;
	api_authz_end();
	core_member_promote(api_core(call), (const Etcdserverpb__MemberPromoteRequest *)req,
			    api_core_done, call);
}

static void member_list(struct api_call *call, const ProtobufCMessage *req)
{
	core_member_list(api_core(call), (const Etcdserverpb__MemberListRequest *)req, api_core_done,
			 call);
}

static void finish_core_err(struct api_call *call, int err)
{
	api_finish_status(call, (grpc_status_code)core_grpc_code(err), core_strerror(err));
}

static void hash_kv_now(struct api_call *call, const ProtobufCMessage *req)
{
	const Etcdserverpb__HashKVRequest *q = (const Etcdserverpb__HashKVRequest *)req;
	struct core *core = api_core(call);
	uint32_t hash = 0;
	int64_t compact = 0, at = 0;
	int err = core_hash_kv(core, q->revision, &hash, &compact, &at);
	if (err != CORE_OK) {
		finish_core_err(call, err);
		return;
	}
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	core_fill_header(core, &h, 0);
	Etcdserverpb__HashKVResponse resp = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
	resp.header = &h;
	resp.hash = hash;
	resp.compact_revision = compact;
	resp.hash_revision = at;
	api_finish_msg(call, &resp.base);
}

/* etcd hashes its whole backend file; metad hashes the whole key history,
 * which is equally comparable across members. */
static void hash_now(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	struct core *core = api_core(call);
	uint32_t hv = 0;
	int64_t compact = 0, at = 0;
	int err = core_hash_kv(core, 0, &hv, &compact, &at);
	if (err != CORE_OK) {
		finish_core_err(call, err);
		return;
	}
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	core_fill_header(core, &h, 0);
	Etcdserverpb__HashResponse resp = ETCDSERVERPB__HASH_RESPONSE__INIT;
	resp.header = &h;
	resp.hash = hv;
	api_finish_msg(call, &resp.base);
}

static void defragment_now(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	struct core *core = api_core(call);
	int err = core_defragment(core);
	if (err != CORE_OK) {
		finish_core_err(call, err);
		return;
	}
	Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
	core_fill_header(core, &h, 0);
	Etcdserverpb__DefragmentResponse resp = ETCDSERVERPB__DEFRAGMENT_RESPONSE__INIT;
	resp.header = &h;
	api_finish_msg(call, &resp.base);
}

/* Scans and rewrites run on a worker: the CQ thread stays responsive. */
static void hash_kv(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (!api_authz_admin(call)) /* etcd's authMaintenanceServer: root only */
		return;
	api_authz_end(); /* nothing is written */
	api_offload(call, hash_kv_now);
}

static void hash(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (!api_authz_admin(call)) /* etcd's authMaintenanceServer: root only */
		return;
	api_authz_end(); /* nothing is written */
	api_offload(call, hash_now);
}

static void defragment(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (!api_authz_admin(call)) /* etcd's authMaintenanceServer: root only */
		return;
	api_authz_end(); /* nothing is written */
	api_offload(call, defragment_now);
}

/* Every action goes through the log, as in etcd (GET too). With auth on,
 * as etcd 3.5 (3.5.28 made every Alarm call admin-only; 3.5.29 let any
 * authenticated user list alarms again, which etcdctl's endpoint health
 * does): GET needs a known user, ACTIVATE and DEACTIVATE the root role,
 * checked again at apply as any admin call. */
static void alarm_rpc(struct api_call *call, const ProtobufCMessage *req)
{
	const Etcdserverpb__AlarmRequest *q = (const Etcdserverpb__AlarmRequest *)req;
	if (q->action == ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET) {
		if (api_authz_user(call))
			core_alarm(api_core(call), q, api_core_done, call);
		return;
	}
	if (!api_authz_admin(call))
		return;
	core_alarm(api_core(call), q, api_core_done, call);
	api_authz_end();
}

/* Maintenance.Snapshot (snapshot.c). */
void api_snapshot(struct api_call *call, const ProtobufCMessage *req);

#define UNARY(path, desc) {path, &desc, NULL, 0, 1, NULL, 0}
#define STREAM(path) {path, NULL, NULL, 1, 1, NULL, 0}

struct api_method api_other_methods[] = {
	{"/etcdserverpb.Maintenance/Status", &etcdserverpb__status_request__descriptor, status, 0, 8,
	 NULL, 0},
	{"/etcdserverpb.Cluster/MemberList", &etcdserverpb__member_list_request__descriptor,
	 member_list, 0, 4, NULL, 0},
	{"/etcdserverpb.Maintenance/Alarm", &etcdserverpb__alarm_request__descriptor, alarm_rpc, 0, 2,
	 NULL, 0},
	{"/etcdserverpb.Cluster/MemberAdd", &etcdserverpb__member_add_request__descriptor,
	 member_add, 0, 1, NULL, 0},
	{"/etcdserverpb.Cluster/MemberRemove", &etcdserverpb__member_remove_request__descriptor,
	 member_remove, 0, 1, NULL, 0},
	{"/etcdserverpb.Cluster/MemberUpdate", &etcdserverpb__member_update_request__descriptor,
	 member_update, 0, 1, NULL, 0},
	{"/etcdserverpb.Cluster/MemberPromote", &etcdserverpb__member_promote_request__descriptor,
	 member_promote, 0, 1, NULL, 0},
	{"/etcdserverpb.Maintenance/Defragment", &etcdserverpb__defragment_request__descriptor,
	 defragment, 0, 1, NULL, 0},
	{"/etcdserverpb.Maintenance/Hash", &etcdserverpb__hash_request__descriptor, hash, 0, 1, NULL, 0},
	{"/etcdserverpb.Maintenance/HashKV", &etcdserverpb__hash_kvrequest__descriptor, hash_kv, 0, 2,
	 NULL, 0},
	{"/etcdserverpb.Maintenance/Snapshot", &etcdserverpb__snapshot_request__descriptor,
	 api_snapshot, 0, 1, NULL, 1},
	{"/etcdserverpb.Maintenance/MoveLeader", &etcdserverpb__move_leader_request__descriptor,
	 move_leader, 0, 1, NULL, 0},
	UNARY("/etcdserverpb.Maintenance/Downgrade", etcdserverpb__downgrade_request__descriptor),
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};
