/*
 * config.h - a gateway directory's baygate.ini.
 *
 * The file is read with inih and checked strictly: an unknown section or key,
 * a repeated key, a value out of range or a line too long for inih is an
 * error naming the file, the line and the key, never silently ignored (a typo
 * must not drop a setting). Relative paths in the file are relative to the
 * directory holding it; bg_config_load hands out absolute paths, and
 * bg_config_write stores paths inside that directory as relative ones, so a
 * gateway directory can be moved as a whole.
 *
 *     [city]       code = 440100           name = Guangzhou
 *     [federation] listen = tls+tcp://127.0.0.1:7440   recv_max_bytes = 4194304
 *                  relay_interval_s = 60   (offer our roster serial and CRL number to peers)
 *     [local]      socket = local.ipc      (the local API: ipc://<dir>/local.ipc)
 *     [store]      data_dir = data
 *     [pki]        key = city.key  cert = city.crt  ca = ca.crt  crl = crl.pem
 *                  roster = roster.pb      crl_warn_hours = 72
 *     [timeouts]   dial_ms = 5000  request_ms = 10000  handshake_ms = 5000
 *     [audit]      head_interval_s = 60      (sign a tree head at most this often)
 *                  witness_interval_s = 300  (fetch, check and cosign peers' heads)
 *     [api]        listen = 127.0.0.1:8080   (the HTTP API; off when absent)
 *     [rate]       KIND_per_s, KIND_burst, KIND_bytes_per_s, KIND_bytes_burst for each
 *                  KIND of request a peer makes (ping, snapshot, psi, status, witness):
 *                  requests per second and their burst, answer bytes per second and
 *                  their burst, per peer (daemon/rate.h); applied again at every reload
 *
 * [city] code and name are required; everything else has the default shown.
 * bg_config_write replaces the file atomically (temp, fsync, rename).
 */
#ifndef BG_CONFIG_H
/* recv_max_bytes: the roster's max_message_bytes bounds (a peer's answer is at most that),
 * so that no value a gateway starts with is one it could not run with; the daemon holds
 * the two equal at compile time. */
#define BG_CONFIG_RECV_MIN (16u * 1024u)
#define BG_CONFIG_RECV_MAX (64u * 1024u * 1024u)
#define BG_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define BG_CONFIG_FILE "baygate.ini"
#define BG_CONFIG_PATH_MAX 1024
/* In the data directory: the peers' snapshots the asking side keeps across restarts
 * (gateway/daemon/snapdisk.h), a cache that backups leave out. */
#define BG_CONFIG_SNAPSHOTS_DIR "snapshots"
#define BG_CONFIG_NAME_MAX 64
#define BG_CONFIG_URL_MAX 256
/* sun_path holds 108 bytes with the NUL: longer socket paths cannot work. */
#define BG_CONFIG_IPC_PATH_MAX 107

#define BG_CONFIG_LISTEN_DEFAULT "tls+tcp://127.0.0.1:7440"

/* The kinds of request [rate] limits, in the order of its keys. */
typedef enum bg_config_rate_kind {
    BG_CONFIG_RATE_PING,
    BG_CONFIG_RATE_SNAPSHOT,
    BG_CONFIG_RATE_PSI,
    BG_CONFIG_RATE_STATUS,
    BG_CONFIG_RATE_WITNESS,
    BG_CONFIG_RATE_KINDS
} bg_config_rate_kind;

/* One kind's [rate] keys: requests per second and burst, answer bytes per second and burst. */
typedef struct bg_config_rate {
    uint32_t per_s, burst;
    uint64_t bytes_per_s, bytes_burst;
} bg_config_rate;

typedef struct bg_config {
    char dir[BG_CONFIG_PATH_MAX]; /* absolute directory of the ini file */

    char city[7];                           /* [city] code: 6 digits */
    char name[BG_CONFIG_NAME_MAX + 1];      /* [city] name */
    char listen[BG_CONFIG_URL_MAX];         /* [federation] listen: tls+tcp://host:port */
    uint64_t recv_max_bytes;                /* [federation]: the largest answer taken from a peer */
    uint32_t relay_interval_s;              /* [federation]: relay offer rounds (daemon/relay.h) */
    char local_socket[BG_CONFIG_PATH_MAX];  /* [local] socket: absolute path */
    char local_url[BG_CONFIG_PATH_MAX + 8]; /* "ipc://" + local_socket (derived) */
    char data_dir[BG_CONFIG_PATH_MAX];      /* [store] data_dir */
    char key_path[BG_CONFIG_PATH_MAX];      /* [pki] key: the city's private key */
    char cert_path[BG_CONFIG_PATH_MAX];     /* [pki] cert: its certificate */
    char ca_path[BG_CONFIG_PATH_MAX];       /* [pki] ca: the federation CA certificate */
    char crl_path[BG_CONFIG_PATH_MAX];      /* [pki] crl: the federation CRL */
    char roster_path[BG_CONFIG_PATH_MAX];   /* [pki] roster: the signed roster */
    uint32_t crl_warn_hours;                /* [pki]: warn when the CRL expires sooner */
    uint32_t dial_ms, request_ms, handshake_ms;   /* [timeouts] */
    uint32_t head_interval_s, witness_interval_s; /* [audit] */
    char api_listen[BG_CONFIG_URL_MAX];           /* [api] listen: HOST:PORT, "" = off */
    bg_config_rate rate[BG_CONFIG_RATE_KINDS];    /* [rate] */
} bg_config;

/*
 * Fills cfg with defaults for a gateway in dir (made absolute; it need not
 * exist yet), city and name, and listen (NULL: the default). Checks them as
 * bg_config_load would.
 */
int bg_config_defaults(bg_config *cfg, const char *dir, const char *city, const char *name,
                       const char *listen, bg_err *err);

/* Reads and checks path. BG_ENOTFOUND if it does not exist, BG_EINVAL with
 * "path:line: ..." for anything wrong in it. */
int bg_config_load(const char *path, bg_config *cfg, bg_err *err);

/* Writes cfg to path: atomically replacing it if replace, else only if path
 * does not exist (BG_EEXIST). Paths under the file's directory are written
 * relative to it. Values that the format cannot hold are refused. */
int bg_config_write(const char *path, const bg_config *cfg, bool replace, bg_err *err);

/* Sets one value as the file would ("pki", "crl", "/x/crl.pem"): for
 * command-line overrides and tests. Relative paths are taken relative to
 * cfg->dir. */
int bg_config_set(bg_config *cfg, const char *section, const char *key, const char *value,
                  bg_err *err);

#endif
