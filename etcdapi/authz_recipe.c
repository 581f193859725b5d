/*
 * etcdapi/authz_recipe.c — permission checks of the Lock and Election
 * services, whose calls read and write keys under a name's prefix.
 *
 * etcd serves both through its own client, so the caller needs what the
 * clientv3 recipes do with its token: READ on name + "/" as a prefix (they
 * range over it and watch it) and WRITE on its own key, name/<lease hex>,
 * or on the whole prefix when that key is not known yet (lease 0: a fresh
 * lease is granted first). A refusal reaches the client as etcd's does:
 * gRPC Unknown with the error's text. A passing write check records the
 * caller, as the KV writes' checks do, so the recipe's own Put, Txn and
 * Delete are checked again at apply as this caller, at this revision
 * (WRITE on the keys of a lease a put joins included).
 */
#include <stdlib.h>
#include <string.h>

#include "core/reserved.h"
#include "etcdapi/authz.h"

static bool refuse(struct api_call *call, int err)
{
	if (err == CORE_OK)
		return true;
	api_finish_status(call, GRPC_STATUS_UNKNOWN, core_strerror(err));
	return false;
}

/* name + "/" and its prefix end, malloc'd into *pfx (plen) and *end (elen). */
static bool prefix_of(const uint8_t *name, size_t len, uint8_t **pfx, size_t *plen, uint8_t **end,
		      size_t *elen)
{
	*pfx = malloc(len + 1);
	*end = malloc(len + 1);
	if (*pfx == NULL || *end == NULL) {
		free(*pfx);
		free(*end);
		return false;
	}
	if (len > 0)
		memcpy(*pfx, name, len);
	(*pfx)[len] = '/';
	*plen = len + 1;
	memcpy(*end, *pfx, *plen);
	*elen = *plen;
	while (*elen > 0 && (*end)[*elen - 1] == 0xff)
		(*elen)--;
	if (*elen == 0) { /* all 0xff: every key >= the prefix */
		(*end)[0] = 0;
		*elen = 1;
	} else {
		(*end)[*elen - 1]++;
	}
	return true;
}

/* The auth checks (auth on); user is set to the caller. */
static int permitted(struct core *c, struct api_call *call, char *user, const uint8_t *name,
		     size_t name_len, bool has_name, const uint8_t *key, size_t key_len, bool write)
{
	int err = api_caller(call, user);
	if (err != CORE_OK)
		return err;
	if (has_name) {
		uint8_t *pfx, *end;
		size_t plen, elen;
		if (!prefix_of(name, name_len, &pfx, &plen, &end, &elen))
			return CORE_ENOMEM;
		err = core_auth_check_range(c, user, CORE_PERM_READ, pfx, plen, end, elen);
		if (err == CORE_OK && write && key == NULL)
			err = core_auth_check_range(c, user, CORE_PERM_WRITE, pfx, plen, end, elen);
		free(pfx);
		free(end);
	}
	if (err == CORE_OK && write && key != NULL)
		err = core_auth_check_range(c, user, CORE_PERM_WRITE, key, key_len, NULL, 0);
	return err;
}

/* A write to a key only the controllers write is refused as any other
 * client's (core/reserved.h): the recipe's own key, or its whole prefix
 * while that key is not known. */
static int reserved(struct core *c, const char *user, const uint8_t *name, size_t name_len,
		    bool has_name, const uint8_t *key, size_t key_len)
{
	if (key != NULL)
		return core_reserved_check_range(c, user, key, key_len, NULL, 0);
	if (!has_name)
		return CORE_OK;
	uint8_t *pfx, *end;
	size_t plen, elen;
	if (!prefix_of(name, name_len, &pfx, &plen, &end, &elen))
		return CORE_ENOMEM;
	int err = core_reserved_check_range(c, user, pfx, plen, end, elen);
	free(pfx);
	free(end);
	return err;
}

int api_authz_recipe_err(struct api_call *call, const uint8_t *name, size_t name_len,
			 bool has_name, const uint8_t *key, size_t key_len, bool write)
{
	struct core *c = api_core(call);
	uint64_t rev = core_auth_revision(c); /* before the check, as write_check */
	char user[CORE_AUTH_USER_MAX];
	user[0] = 0;
	bool on = core_auth_enabled(c);
	int err = on ? permitted(c, call, user, name, name_len, has_name, key, key_len, write)
		     : CORE_OK;
	if (err == CORE_OK && write)
		err = reserved(c, user, name, name_len, has_name, key, key_len);
	/* The recipe's writes are checked again at apply as this caller; with
	 * auth off, refused if applied after it is turned on, as a KV write. */
	if (err == CORE_OK && write)
		core_auth_caller_begin(on ? user : "", rev);
	return err;
}

bool api_authz_recipe(struct api_call *call, const uint8_t *name, size_t name_len, bool has_name,
		      const uint8_t *key, size_t key_len, bool write)
{
	return refuse(call,
		      api_authz_recipe_err(call, name, name_len, has_name, key, key_len, write));
}
