/*
 * clock: wall-clock seconds and RFC 3339 UTC text.  One place so tests and
 * answers agree on the format ("2026-11-26T23:59:59Z").
 */
#pragma once

#include <stdint.h>

#define RFC3339_LEN 21	/* including NUL */

int64_t	clock_now(void);
void	clock_rfc3339(int64_t t, char out[RFC3339_LEN]);

/* Parse "YYYY-MM-DDTHH:MM:SSZ" (as written by clock_rfc3339).  0 or -1. */
int	clock_parse_rfc3339(const char *s, int64_t *t);
