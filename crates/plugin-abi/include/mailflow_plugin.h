/*
 * mailflow collector plugin ABI, version 1. Generated from crates/plugin-abi/src/lib.rs by
 * cbindgen; do not edit. See docs/plugins.md.
 */
#ifndef MAILFLOW_PLUGIN_H
#define MAILFLOW_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

/* Marks the two functions a plugin exports, also in builds with -fvisibility=hidden and DLLs. */
#if defined(_WIN32)
#define MAILFLOW_PLUGIN_EXPORT __declspec(dllexport)
#else
#define MAILFLOW_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

// The version of this ABI. A host loads only plugins that report exactly this version.
#define MAILFLOW_PLUGIN_ABI_VERSION 1

// The call succeeded.
#define MAILFLOW_OK 0

// `next_batch` only: the batch (possibly empty) is the last one.
#define MAILFLOW_DONE 1

// The call failed; `error` may hold a message.
#define MAILFLOW_ERROR (-1)

// The plugin caught a panic (or the like) in this call; `error` may hold a message. The host
// makes no further calls but `destroy`.
#define MAILFLOW_PANIC (-2)

// Log levels of `MailflowHost.log`.
#define MAILFLOW_LOG_ERROR 1

#define MAILFLOW_LOG_WARN 2

#define MAILFLOW_LOG_INFO 3

#define MAILFLOW_LOG_DEBUG 4

#define MAILFLOW_LOG_TRACE 5

// Returns the plugin's name for messages: a static NUL-terminated UTF-8 string.
typedef const char *(*MailflowNameFn)(void);

// Logs `message` (UTF-8, `len` bytes, not NUL-terminated) at `level` (`MAILFLOW_LOG_*`) in
// the host's log, under the plugin's name. Thread-safe.
typedef void (*MailflowLogFn)(void *context, uint32_t level, const uint8_t *message, size_t len);

// What the host gives a plugin in `create`. The struct stays valid until `destroy` returns;
// `context` and `log` stay valid for as long as the library is loaded.
typedef struct MailflowHost {
  // `sizeof(MailflowHost)` as the host knows it; fields beyond it are absent.
  size_t size;
  // Passed back as the first argument of every callback.
  void *context;
  MailflowLogFn log;
} MailflowHost;

// Bytes handed from one side to the other. An empty buffer may have a null `data`.
typedef struct MailflowBuffer {
  uint8_t *data;
  size_t len;
} MailflowBuffer;

// Builds an instance from the settings JSON; on success sets `*instance` (which may be any
// value, even null) and returns `MAILFLOW_OK`.
typedef int32_t (*MailflowCreateFn)(const struct MailflowHost *host,
                                    const uint8_t *settings_json,
                                    size_t settings_len,
                                    void **instance,
                                    struct MailflowBuffer *error);

// Sets the instants wanted, `[start_ms, end_ms)` since the Unix epoch.
typedef int32_t (*MailflowOpenRangeFn)(void *instance,
                                       int64_t start_ms,
                                       int64_t end_ms,
                                       struct MailflowBuffer *error);

// Fills `batch` with events as JSON Lines in a buffer the plugin owns; returns `MAILFLOW_OK`
// (call again), `MAILFLOW_DONE` (this was the last batch) or an error.
typedef int32_t (*MailflowNextBatchFn)(void *instance,
                                       struct MailflowBuffer *batch,
                                       struct MailflowBuffer *error);

// Frees a buffer the plugin handed out (a batch or an error message).
typedef void (*MailflowFreeBufferFn)(struct MailflowBuffer buffer);

// Frees the instance. Called once for every instance `create` made, also after errors.
typedef void (*MailflowDestroyFn)(void *instance);

// The function table of ABI version 1. Every function must be set.
typedef struct MailflowPluginV1 {
  // `sizeof(MailflowPluginV1)` as the plugin was built; fields beyond it are absent.
  size_t size;
  MailflowNameFn name;
  MailflowCreateFn create;
  MailflowOpenRangeFn open_range;
  MailflowNextBatchFn next_batch;
  MailflowFreeBufferFn free_buffer;
  MailflowDestroyFn destroy;
} MailflowPluginV1;

#ifdef __cplusplus
extern "C" {
#endif

/* The two functions a plugin exports. */
MAILFLOW_PLUGIN_EXPORT uint32_t mailflow_plugin_abi_version(void);
MAILFLOW_PLUGIN_EXPORT const MailflowPluginV1 *mailflow_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* MAILFLOW_PLUGIN_H */
