/*
 * core/auth_stamp.c — a client's write carries who it was checked as.
 *
 * Permission checks run when a request arrives, on the thread that serves
 * it; the write is applied later (after other writes, possibly after an
 * auth change). The checking thread records the identity and the auth
 * revision it checked at; writer_submit stamps them into the log entry; and
 * apply refuses the entry if the auth store has moved on since, as etcd's
 * isOpPermitted does. Every member decides alike: the decision depends only
 * on the entry and the auth state the log has built so far.
 */
#include <string.h>

#include "core/auth_internal.h"
#include "core/core_internal.h"

static _Thread_local bool have;
static _Thread_local uint64_t caller_rev;
static _Thread_local char caller[CORE_AUTH_USER_MAX];

uint64_t core_auth_revision(struct core *c)
{
	return atomic_load(&c->auth->revision);
}

void core_auth_caller_begin(const char *user, uint64_t rev)
{
	size_t n = user ? strlen(user) : 0;
	if (n >= sizeof(caller))
		n = 0; /* cannot be a stored user's token: checks refused it */
	memcpy(caller, user, n);
	caller[n] = 0;
	caller_rev = rev;
	have = true;
}

void core_auth_caller_end(void)
{
	have = false;
}

void auth_stamp(Metadpb__InternalRequest *ir)
{
	if (!have)
		return;
	have = false;
	ir->auth_user = caller;
	ir->auth_revision = caller_rev;
}

int auth_apply_check(struct core *c, const Metadpb__InternalRequest *req)
{
	struct core_auth *a = c->auth;
	if (req->auth_revision == 0 || !atomic_load(&a->enabled))
		return CORE_OK; /* not a client's write, or nothing to check */
	/* Authenticate carries its own check (the password hash); enabling
	 * auth is refused below only if someone changed the store first. */
	if (req->request_case == METADPB__INTERNAL_REQUEST__REQUEST_AUTHENTICATE)
		return CORE_OK;
	if (req->auth_user == NULL || req->auth_user[0] == 0)
		return CORE_EUSER_EMPTY; /* checked while auth was off */
	if (req->auth_revision < atomic_load(&a->revision))
		return CORE_EAUTH_OLD_REVISION;
	/* Same revision: the check ran against exactly this store. */
	return CORE_OK;
}
