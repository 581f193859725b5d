/*
 * server/config_file.h — etcd's YAML configuration file (--config-file) and
 * ETCD_* environment variables, feeding the same setters as the flags.
 */
#ifndef METAD_SERVER_CONFIG_FILE_H
#define METAD_SERVER_CONFIG_FILE_H

#include "server/flags.h"

/* Set every key of the YAML file at path as the flag of the same name
 * (client-transport-security / peer-transport-security keys as the flags
 * they stand for; lists joined with commas). Returns 0, or -1 after
 * printing an error. The values live until config_file_free. */
int config_file_load(struct flags *f, const char *path);

/* Set flags from ETCD_<FLAG_NAME> variables (ETCD_DATA_DIR=... is
 * --data-dir=...), before the command line, which wins. Unknown ETCD_*
 * names get a warning, as etcd gives. Returns 0 or -1. */
int config_env_load(struct flags *f);

void config_file_free(void);

#endif
