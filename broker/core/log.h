/*
 * log: one line per event on stderr, with a level filter.  After relayd's
 * log.h.  log_warn appends strerror(errno); log_warnx does not.  Never pass
 * secrets or whole intent arguments to these.
 */
#pragma once

#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/*
 * PLAIN: "prog: level: message" (the default; the CLI's).  TEXT: the
 * same after an RFC 3339 UTC timestamp.  JSON: one object per line,
 * {"time", "level", "program", "message"}.
 */
enum log_format { LOG_FMT_PLAIN, LOG_FMT_TEXT, LOG_FMT_JSON };

void	log_init(enum log_level level, const char *progname);
int	log_level_parse(const char *s, enum log_level *out);
void	log_set_format(enum log_format fmt);
/* "text" or "json": 0, else -1. */
int	log_format_parse(const char *s, enum log_format *out);
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Drain OpenSSL's error queue into one warning line prefixed by what. */
void	log_ssl(const char *what);
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
