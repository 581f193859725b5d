/*
 * etcdapi/auth.c — the Auth service: admin check, then core.
 *
 * Management needs the root role once auth is on (etcd's
 * needAdminPermission); UserGet of oneself and RoleGet of one's own role do
 * not. Calls that run bcrypt (Authenticate, UserAdd, UserChangePassword)
 * go to the worker threads, so the completion-queue thread never spends
 * tens of milliseconds on a hash while other calls wait.
 */
#include <string.h>

#include "core/auth.h"
#include "etcdapi/authz.h"
#include "etcdapi/offload.h"

#include "rpc.pb-c.h"

static void auth_enable(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (api_authz_admin(call))
		core_auth_enable(api_core(call), api_core_done, call);
	api_authz_end();
}

static void auth_disable(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (api_authz_admin(call))
		core_auth_disable(api_core(call), api_core_done, call);
	api_authz_end();
}

static void auth_status(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (api_authz_admin(call))
		core_auth_status(api_core(call), api_core_done, call);
	api_authz_end();
}

static void authenticate_now(struct api_call *call, const ProtobufCMessage *req)
{
	core_authenticate(api_core(call), (const Etcdserverpb__AuthenticateRequest *)req,
			  api_core_done, call);
}

static void authenticate(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	api_offload(call, authenticate_now);
}

/* The admin check of these two runs on the worker: it records the caller
 * for the write, and that record belongs to the thread that submits. */
static void user_add_now(struct api_call *call, const ProtobufCMessage *req)
{
	if (api_authz_admin(call))
		core_auth_user_add(api_core(call), (const Etcdserverpb__AuthUserAddRequest *)req,
				   api_core_done, call);
	api_authz_end();
}

static void user_add(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	api_offload(call, user_add_now);
}

static void user_change_password_now(struct api_call *call, const ProtobufCMessage *req)
{
	if (api_authz_admin(call))
		core_auth_user_change_password(
			api_core(call), (const Etcdserverpb__AuthUserChangePasswordRequest *)req,
			api_core_done, call);
	api_authz_end();
}

static void user_change_password(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	api_offload(call, user_change_password_now);
}

static void user_get(struct api_call *call, const ProtobufCMessage *req)
{
	const Etcdserverpb__AuthUserGetRequest *q = (const Etcdserverpb__AuthUserGetRequest *)req;
	struct core *c = api_core(call);
	if (core_auth_enabled(c)) {
		char user[CORE_AUTH_USER_MAX];
		if (!api_allowed(call, api_caller(call, user)))
			return;
		int err = core_auth_check_admin(c, user);
		/* Anyone may read their own user. */
		if (err != CORE_OK && !(user[0] && q->name && strcmp(q->name, user) == 0)) {
			api_allowed(call, err);
			return;
		}
	}
	core_auth_user_get(c, q, api_core_done, call);
}

static void role_get(struct api_call *call, const ProtobufCMessage *req)
{
	const Etcdserverpb__AuthRoleGetRequest *q = (const Etcdserverpb__AuthRoleGetRequest *)req;
	struct core *c = api_core(call);
	if (core_auth_enabled(c)) {
		char user[CORE_AUTH_USER_MAX];
		if (!api_allowed(call, api_caller(call, user)))
			return;
		int err = core_auth_check_admin(c, user);
		/* Anyone may read a role they hold. */
		if (err != CORE_OK && !(user[0] && q->role && core_auth_has_role(c, user, q->role))) {
			api_allowed(call, err);
			return;
		}
	}
	core_auth_role_get(c, q, api_core_done, call);
}

static void user_list(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (api_authz_admin(call))
		core_auth_user_list(api_core(call), api_core_done, call);
	api_authz_end();
}

static void role_list(struct api_call *call, const ProtobufCMessage *req)
{
	(void)req;
	if (api_authz_admin(call))
		core_auth_role_list(api_core(call), api_core_done, call);
	api_authz_end();
}

/* The management calls that only need the admin check. */
#define ADMIN_CALL(fn, core_fn, type)                                                              \
	static void fn(struct api_call *call, const ProtobufCMessage *req)                         \
	{                                                                                          \
		if (api_authz_admin(call))                                                         \
			core_fn(api_core(call), (const type *)req, api_core_done, call);           \
		api_authz_end();                                                                   \
	}

ADMIN_CALL(user_delete, core_auth_user_delete, Etcdserverpb__AuthUserDeleteRequest)
ADMIN_CALL(user_grant_role, core_auth_user_grant_role, Etcdserverpb__AuthUserGrantRoleRequest)
ADMIN_CALL(user_revoke_role, core_auth_user_revoke_role, Etcdserverpb__AuthUserRevokeRoleRequest)
ADMIN_CALL(role_add, core_auth_role_add, Etcdserverpb__AuthRoleAddRequest)
ADMIN_CALL(role_delete, core_auth_role_delete, Etcdserverpb__AuthRoleDeleteRequest)
ADMIN_CALL(role_grant_permission, core_auth_role_grant_permission,
	   Etcdserverpb__AuthRoleGrantPermissionRequest)
ADMIN_CALL(role_revoke_permission, core_auth_role_revoke_permission,
	   Etcdserverpb__AuthRoleRevokePermissionRequest)

#define AUTH_METHOD(name, desc, fn)                                                                \
	{"/etcdserverpb.Auth/" name, &etcdserverpb__##desc##__descriptor, fn, 0, 1, NULL, 0}

struct api_method api_auth_methods[] = {
	AUTH_METHOD("AuthEnable", auth_enable_request, auth_enable),
	AUTH_METHOD("AuthDisable", auth_disable_request, auth_disable),
	AUTH_METHOD("AuthStatus", auth_status_request, auth_status),
	/* Every client with --user starts here: keep a few armed. */
	{"/etcdserverpb.Auth/Authenticate", &etcdserverpb__authenticate_request__descriptor,
	 authenticate, 0, 4, NULL, 0},
	AUTH_METHOD("UserAdd", auth_user_add_request, user_add),
	AUTH_METHOD("UserGet", auth_user_get_request, user_get),
	AUTH_METHOD("UserList", auth_user_list_request, user_list),
	AUTH_METHOD("UserDelete", auth_user_delete_request, user_delete),
	AUTH_METHOD("UserChangePassword", auth_user_change_password_request, user_change_password),
	AUTH_METHOD("UserGrantRole", auth_user_grant_role_request, user_grant_role),
	AUTH_METHOD("UserRevokeRole", auth_user_revoke_role_request, user_revoke_role),
	AUTH_METHOD("RoleAdd", auth_role_add_request, role_add),
	AUTH_METHOD("RoleGet", auth_role_get_request, role_get),
	AUTH_METHOD("RoleList", auth_role_list_request, role_list),
	AUTH_METHOD("RoleDelete", auth_role_delete_request, role_delete),
	AUTH_METHOD("RoleGrantPermission", auth_role_grant_permission_request,
		    role_grant_permission),
	AUTH_METHOD("RoleRevokePermission", auth_role_revoke_permission_request,
		    role_revoke_permission),
	{NULL, NULL, NULL, 0, 0, NULL, 0},
};
