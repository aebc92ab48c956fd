/*
 * log: one line per event on stderr: "toolgated: LEVEL: message".  Writes
 * are single fprintf calls on an unbuffered stream, so lines from different
 * threads do not interleave within a line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "log.h"

static enum log_level	 log_min = LOG_LVL_INFO;
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

static void	log_vline(enum log_level, const char *, const char *, va_list,
		    const char *) __attribute__((format(printf, 3, 0)));

static void
log_vline(enum log_level lvl, const char *tag, const char *fmt, va_list ap,
    const char *suffix)
{
	char	 msg[1024];

	if (lvl < log_min)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Strip CR/LF so a hostile string cannot forge log lines. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (suffix != NULL)
		fprintf(stderr, "%s: %s: %s: %s\n", log_prog, tag, msg, suffix);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, tag, msg);
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
