/*
 * core/peer_none.c — stand-in until the peer transport (core/peer.c) lands:
 * a single member sends nothing.
 */
#include "core/peer.h"

bool peer_send(struct peer_transport *t, uint64_t id, const uint8_t *data, size_t len)
{
	(void)t;
	(void)id;
	(void)data;
	(void)len;
	return false;
}
