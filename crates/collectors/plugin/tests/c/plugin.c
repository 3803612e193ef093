#define _POSIX_C_SOURCE 200809L /* gmtime_r */

/*
 * A collector plugin in C, written against the checked-in mailflow_plugin.h: proof that the
 * ABI needs nothing from Rust. It sends three events, in two batches, within the range it is
 * given, and logs through the host. Defines turn it into a broken plugin:
 *   WRONG_VERSION   reports ABI version 2
 *   NO_ENTRY        exports no mailflow_plugin_v1
 *   NO_NEXT_BATCH   leaves next_batch out of its table
 *   SHORT_TABLE     reports a table smaller than version 1's
 *   FAIL_CREATE     refuses settings without "\"region\""
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailflow_plugin.h"

#ifndef WRONG_VERSION
#define VERSION MAILFLOW_PLUGIN_ABI_VERSION
#else
#define VERSION 2
#endif

typedef struct {
    MailflowHost host;
    int64_t start_ms;
    int batches;
} Instance;

static MailflowBuffer copy(const char *text) {
    MailflowBuffer buffer = {NULL, strlen(text)};
    buffer.data = malloc(buffer.len);
    memcpy(buffer.data, text, buffer.len);
    return buffer;
}

static void say(Instance *self, uint32_t level, const char *text) {
    if (self->host.log != NULL) {
        self->host.log(self->host.context, level, (const uint8_t *)text, strlen(text));
    }
}

static const char *name(void) { return "c-example"; }

static int32_t create(const MailflowHost *host, const uint8_t *settings, size_t len, void **instance,
                      MailflowBuffer *error) {
    /* The settings are followed by a NUL, so C string functions may read them. */
    if (settings[len] != '\0') {
        *error = copy("settings are not NUL-terminated");
        return MAILFLOW_ERROR;
    }
#ifdef FAIL_CREATE
    if (strstr((const char *)settings, "\"region\"") == NULL) {
        *error = copy("settings need a \"region\"");
        return MAILFLOW_ERROR;
    }
#endif
    Instance *self = calloc(1, sizeof(Instance));
    self->host = *host;
    *instance = self;
    say(self, MAILFLOW_LOG_INFO, "created");
    return MAILFLOW_OK;
}

static int32_t open_range(void *instance, int64_t start_ms, int64_t end_ms, MailflowBuffer *error) {
    (void)end_ms;
    (void)error;
    ((Instance *)instance)->start_ms = start_ms;
    return MAILFLOW_OK;
}

static int32_t next_batch(void *instance, MailflowBuffer *batch, MailflowBuffer *error) {
    Instance *self = instance;
    (void)error;
    /* Every event at the start of the range, in RFC 3339. */
    char time[32], lines[512];
    time_t seconds = (time_t)(self->start_ms / 1000);
    struct tm utc;
    gmtime_r(&seconds, &utc);
    strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%SZ", &utc);
    if (self->batches++ == 0) {
        snprintf(lines, sizeof lines,
                 "{\"time\":\"%s\",\"direction\":\"inbound\",\"tls\":{\"version\":\"tls1_2\"},\"size\":2048}\n"
                 "{\"time\":\"%s\",\"direction\":\"outbound\",\"tls\":{\"version\":\"none\"}}\n",
                 time, time);
        *batch = copy(lines);
        return MAILFLOW_OK;
    }
    say(self, MAILFLOW_LOG_WARN, "last batch");
    snprintf(lines, sizeof lines, "{\"time\":\"%s\",\"direction\":\"inbound\",\"tls\":{\"version\":\"tls1_3\"}}\n", time);
    *batch = copy(lines);
    return MAILFLOW_DONE;
}

static void free_buffer(MailflowBuffer buffer) { free(buffer.data); }

static void destroy(void *instance) { free(instance); }

static const MailflowPluginV1 TABLE = {
#ifdef SHORT_TABLE
    sizeof(MailflowPluginV1) - sizeof(void *),
#else
    sizeof(MailflowPluginV1),
#endif
    name,
    create,
    open_range,
#ifdef NO_NEXT_BATCH
    NULL,
#else
    next_batch,
#endif
    free_buffer,
    destroy,
};

uint32_t mailflow_plugin_abi_version(void) { return VERSION; }

#ifndef NO_ENTRY
const MailflowPluginV1 *mailflow_plugin_v1(void) { return &TABLE; }
#endif
