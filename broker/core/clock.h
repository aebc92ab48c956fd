/*
 * clock: wall-clock seconds and RFC 3339 UTC text.  One place so tests and
 * answers agree on the format ("2026-11-26T23:59:59Z").
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define RFC3339_LEN 21	/* including NUL */

int64_t	clock_now(void);
void	clock_rfc3339(int64_t t, char out[RFC3339_LEN]);

/* Parse "YYYY-MM-DDTHH:MM:SSZ" (as written by clock_rfc3339).  0 or -1. */
int	clock_parse_rfc3339(const char *s, int64_t *t);

/* A duration for people, compact: "45s", "3m05s", "42m", "5h07m",
 * "2d03h" (negative reads as 0). */
void	clock_duration(int64_t secs, char *buf, size_t len);
