/*
 * clock: wall-clock seconds and their RFC 3339 UTC rendering.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

int64_t
clock_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec);
}

void
clock_rfc3339(int64_t t, char out[RFC3339_LEN])
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, RFC3339_LEN, "1970-01-01T00:00:00Z");
}

int
clock_parse_rfc3339(const char *s, int64_t *t)
{
	struct tm	 tm;
	const char	*end;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || (end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) ==
	    NULL || *end != '\0')
		return (-1);
	*t = (int64_t)timegm(&tm);
	return (0);
}
