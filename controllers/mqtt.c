/*
 * controllers/mqtt.c — the MQTT controller (docs/controllers.md): not yet
 * acting; it only claims its prefix.
 */
#include <stdlib.h>

#include "controllers/ctl_internal.h"

static int mqtt_start(struct ctl *rt, void **state)
{
	(void)rt;
	*state = calloc(1, 1);
	return *state != NULL ? 0 : -1;
}

static void mqtt_event(struct ctl *rt, void *state, const struct ctl_event *ev)
{
	(void)rt;
	(void)state;
	(void)ev;
}

static void mqtt_stop(struct ctl *rt, void *state)
{
	(void)rt;
	free(state);
}

const struct ctl_ops ctl_mqtt_ops = {
	.name = "mqtt",
	.prefixes = {"mqtt/", NULL},
	.start = mqtt_start,
	.event = mqtt_event,
	.stop = mqtt_stop,
};
