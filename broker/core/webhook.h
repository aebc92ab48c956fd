/*
 * webhook: what one delivery of an event says (CONTRACT §10,
 * proto/events.md) — its body in the sink's format (format=json: the
 * envelope {"id", "type", "at", "data"}; format=slack: a Slack
 * incoming-webhook message {"text", "blocks"} with the same facts and,
 * for a pending intent, the toolgatectl commands that decide it) and its
 * Toolgate-Signature.  Pure functions: no I/O, no clock of their own.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum webhook_format { WEBHOOK_JSON, WEBHOOK_SLACK };

/* "json" | "slack".  0, or -1. */
int	webhook_format_parse(const char *s, enum webhook_format *f);
const char *webhook_format_name(enum webhook_format f);

/*
 * The body (malloc'd, *len bytes, NUL-terminated) delivering event id of
 * type at time at with data (borrowed), in format f; now is the sender's
 * clock, for a Slack message's "time left".  NULL when out of memory.
 * Text that came from agents or people is escaped for Slack (&, <, >) so
 * that no reason or argument can mention a channel or hide a link, and
 * cut to Slack's limits.
 */
char	*webhook_body(enum webhook_format f, const char *id, const char *type,
	    int64_t at, const json_t *data, int64_t now, size_t *len);

#define WEBHOOK_SIG_MAX	96	/* "t=" 20 digits ",v1=" 64 hex, NUL */

/*
 * Toolgate-Signature for body signed at time t with key:
 * "t=<t>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>" into out.  0, or -1.
 */
int	webhook_signature(const unsigned char *key, size_t keylen, int64_t t,
	    const char *body, size_t len, char out[WEBHOOK_SIG_MAX]);
