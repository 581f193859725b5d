/*
 * etcdapi/handback.h — sends queued for the completion-queue thread.
 */
#ifndef METAD_ETCDAPI_HANDBACK_H
#define METAD_ETCDAPI_HANDBACK_H

#include "etcdapi/call.h"

/* Queue the call's final batch (its status already set) for the thread of
 * the call's completion queue, which starts it with api_call_send_finish. */
void api_handback(struct api_call *call);

#endif
