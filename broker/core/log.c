/*
 * log: one line per event on stderr.  Plain ("toolgatectl: warn: msg",
 * for the CLI), text with an RFC 3339 UTC timestamp first, or one JSON
 * object per line (for log shippers).  Each line is built whole and
 * written with one fputs on a line-buffered stream, so lines from
 * different threads do not interleave within a line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "log.h"

#define LOG_LINE_MAX	4096

static enum log_level	 log_min = LOG_LVL_INFO;
static enum log_format	 log_fmt = LOG_FMT_PLAIN;
static const char	*log_prog = "toolgate";

void
log_init(enum log_level level, const char *progname)
{
	log_min = level;
	log_prog = progname;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	int	 i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return (0);
		}
	return (-1);
}

void
log_set_format(enum log_format fmt)
{
	log_fmt = fmt;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FMT_TEXT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FMT_JSON;
	else
		return (-1);
	return (0);
}

/* Now as RFC 3339 UTC with milliseconds: 2026-12-01T09:30:00.123Z. */
static void
log_timestamp(char *buf, size_t len)
{
	struct timespec	 ts;
	struct tm	 tm;
	size_t		 n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

/*
 * Append s to out[*used..len) as the inside of a JSON string: quote,
 * backslash and controls escaped, bytes that are not UTF-8 written as
 * U+FFFD, so a hostile string can neither break the line nor the JSON.
 * Stops (cutting at a character boundary) when out is full.
 */
static void
log_json_escape(char *out, size_t len, size_t *used, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	char			 esc[8];
	size_t			 n, i, need;

	while (*p != '\0') {
		n = 1;
		if (*p == '"' || *p == '\\')
			snprintf(esc, sizeof(esc), "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
		else if (*p < 0x80)
			snprintf(esc, sizeof(esc), "%c", *p);
		else {
			n = *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 &&
			    *p <= 0xef ? 3 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
			for (i = 1; i < n; i++)
				if ((p[i] & 0xc0) != 0x80)
					n = 0;
			if (n == 0) {
				n = 1;
				snprintf(esc, sizeof(esc), "\\ufffd");
			} else {
				memcpy(esc, p, n);
				esc[n] = '\0';
			}
		}
		need = strlen(esc);
		if (*used + need >= len)
			return;
		memcpy(out + *used, esc, need);
		*used += need;
		p += n;
	}
}

static void
log_json_line(char *line, size_t len, const char *ts, const char *tag,
    const char *msg)
{
	size_t	 used;

	used = (size_t)snprintf(line, len, "{\"time\":\"%s\",\"level\":\"%s\","
	    "\"program\":\"%s\",\"message\":\"", ts, tag, log_prog);
	if (used >= len)
		used = len - 1;
	/* Room for the closing "}\n". */
	log_json_escape(line, len - 3, &used, msg);
	memcpy(line + used, "\"}\n", 4);
}

static void	log_vline(enum log_level, const char *, const char *, va_list,
		    const char *) __attribute__((format(printf, 3, 0)));

static void
log_vline(enum log_level lvl, const char *tag, const char *fmt, va_list ap,
    const char *suffix)
{
	char	 msg[1024], full[1200], ts[40], line[LOG_LINE_MAX];

	if (lvl < log_min)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(full, sizeof(full), "%s%s%s", msg, suffix ? ": " : "",
	    suffix ? suffix : "");
	/* Strip CR/LF so a hostile string cannot forge log lines. */
	for (char *p = full; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (log_fmt != LOG_FMT_PLAIN)
		log_timestamp(ts, sizeof(ts));
	if (log_fmt == LOG_FMT_JSON)
		log_json_line(line, sizeof(line), ts, tag, full);
	else
		snprintf(line, sizeof(line), "%s%s%s: %s: %s\n",
		    log_fmt == LOG_FMT_TEXT ? ts : "",
		    log_fmt == LOG_FMT_TEXT ? " " : "", log_prog, tag, full);
	fputs(line, stderr);
}

#define LOG_FN(name, lvl, tag)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	 ap;						\
	va_start(ap, fmt);					\
	log_vline(lvl, tag, fmt, ap, NULL);			\
	va_end(ap);						\
}
LOG_FN(log_debug, LOG_LVL_DEBUG, "debug")
LOG_FN(log_info, LOG_LVL_INFO, "info")
LOG_FN(log_warnx, LOG_LVL_WARN, "warn")

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vline(LOG_LVL_WARN, "warn", fmt, ap, strerror(saved));
	va_end(ap);
}

void
log_ssl(const char *what)
{
	char		 buf[512], one[256];
	unsigned long	 e;
	size_t		 used = 0;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, one, sizeof(one));
		used += (size_t)snprintf(buf + used,
		    used < sizeof(buf) ? sizeof(buf) - used : 0, "%s%s",
		    used ? "; " : "", one);
		if (used >= sizeof(buf))
			break;
	}
	log_warnx("%s: %s", what, buf[0] ? buf : "unknown TLS error");
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(LOG_LVL_ERROR, "fatal", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
