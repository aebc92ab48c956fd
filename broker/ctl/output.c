/*
 * output: everything toolgatectl prints about answers — the one place that
 * performs a request and maps its outcome to an exit code (transport
 * failure 3, server error 1 with "toolgatectl: CODE: MESSAGE" on stderr),
 * aligned key/value lines for humans and pretty JSON for --json.  Text
 * that came from the server is stripped of control characters (C0, C1)
 * and bidirectional overrides before it reaches a terminal.  Tables are aligned from their data; colours only
 * on a terminal without NO_COLOR.  Also the few renderings of an intent
 * view that several commands share (amount, approvals n/m, durations).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "clock.h"
#include "ctl.h"
#include "jsonw.h"

#define OUT_KEY_WIDTH	11
#define OUT_GAP		2	/* spaces between table columns */

#define OUT_BOLD	"\033[1m"
#define OUT_YELLOW	"\033[33m"
#define OUT_RESET	"\033[0m"

struct out_table {
	size_t		 ncols;
	size_t		 nrows;		/* including the header */
	size_t		 cap;		/* rows */
	char		**cell;		/* row-major, cleaned, malloc'd */
	unsigned char	*warn;		/* per cell: highlight */
};

/*
 * Length of the valid UTF-8 sequence at s (1..4) and its code point in
 * *cp, or 0 when the bytes there are not valid UTF-8 (overlong forms,
 * surrogates and values past U+10FFFF included).
 */
static size_t
out_utf8(const unsigned char *s, uint32_t *cp)
{
	size_t	 n, i;
	uint32_t c = s[0];

	if (c < 0x80) {
		*cp = c;
		return (1);
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07;
	else
		return (0);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return (0);
	*cp = c;
	return (n);
}

/*
 * Characters a terminal may act on instead of showing: C0 and C1
 * controls (ESC sequences, CR, LF; U+009B is a one-character CSI), DEL,
 * and the bidirectional controls that let text display in another order
 * than it is stored (an agent could make "evil.com" read "moc.live").
 */
static int
out_unsafe(uint32_t cp)
{
	return (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	    (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069));
}

/* Replace each unsafe character, and each byte that is not UTF-8, in s
 * with one '?' (in place: the text can only shrink). */
static void
out_clean(char *s)
{
	unsigned char	*r = (unsigned char *)s, *w = r;
	uint32_t	 cp;
	size_t		 n;

	while (*r != '\0') {
		if ((n = out_utf8(r, &cp)) == 0 || out_unsafe(cp)) {
			*w++ = '?';
			r += n ? n : 1;
			continue;
		}
		memmove(w, r, n);
		w += n;
		r += n;
	}
	*w = '\0';
}

/* The string member key of obj, or "-" when missing or not a string. */
const char *
out_str(const json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return (s != NULL ? s : "-");
}

/*
 * Pretty JSON on stdout, newline terminated: the answer as the broker
 * sent it, numbers in RFC 8785 form (an agent's 0.1 reads 0.1, never
 * jansson's 0.10000000000000001), nothing replaced (JSON escaping is the
 * reader's protection here).
 */
void
out_json(const json_t *v)
{
	char	*s;

	if ((s = jsonw_pretty(v, 0, NULL)) == NULL)
		return;
	printf("%s\n", s);
	free(s);
}

/* One aligned "key  value" line on stdout. */
void
out_kv(const char *key, const char *fmt, ...)
{
	va_list	 ap;
	char	*val, *k;

	va_start(ap, fmt);
	if (vasprintf(&val, fmt, ap) == -1)
		val = NULL;
	va_end(ap);
	if (val == NULL)
		return;
	out_clean(val);
	/* The key can be server text too (a status). */
	if ((k = strdup(key)) != NULL)
		out_clean(k);
	printf("%-*s %s\n", OUT_KEY_WIDTH, k != NULL ? k : "?", val);
	free(k);
	free(val);
}

/* Each {"path", "message"} of list as "PREFIXPATH: MESSAGE", cleaned, on
 * stderr. */
static void
out_paths(const json_t *list, const char *prefix)
{
	const json_t	*p;
	size_t		 i;
	char		*line;

	json_array_foreach(list, i, p) {
		if (asprintf(&line, "%s%s: %s", prefix, out_str(p, "path"),
		    out_str(p, "message")) == -1)
			return;
		out_clean(line);
		fprintf(stderr, "%s\n", line);
		free(line);
	}
}

/* "PATH: MESSAGE" on stderr for each {path, message} of problems. */
void
out_problems(const json_t *problems)
{
	out_paths(problems, "");
}

void
out_warnings(const json_t *warnings)
{
	out_paths(warnings, "warning: ");
}

/* "toolgatectl: " and the formatted text, cleaned, on stderr: for text
 * that holds server strings.  Returns CTL_FAIL. */
int
out_fail(const char *fmt, ...)
{
	va_list	 ap;
	char	*line;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n == -1)
		return (CTL_FAIL);
	out_clean(line);
	fprintf(stderr, "toolgatectl: %s\n", line);
	free(line);
	return (CTL_FAIL);
}

/* A server error object: its code and message (and problems) on stderr,
 * the object itself on stdout with --json.  Returns CTL_FAIL. */
static int
out_server_error(const struct ctl *ctl, const json_t *err)
{
	out_fail("%s: %s", out_str(err, "error"), out_str(err, "message"));
	out_problems(json_object_get(err, "problems"));
	if (ctl->json)
		out_json(err);
	return (CTL_FAIL);
}

/* A non-JSON answer: its status and the start of its body. */
static int
out_bad_answer(const struct ctl *ctl, const struct client_answer *ans)
{
	char	 head[121];

	snprintf(head, sizeof(head), "%.*s", (int)strcspn(ans->body, "\r\n"),
	    ans->body);
	out_clean(head);
	return (ctl_fail("%s answered HTTP %d without a JSON object%s%s",
	    ctl->url, ans->status, head[0] ? ": " : "", head));
}

/*
 * Perform one request (client.c) and map its outcome.  On CTL_OK, *answer
 * is the answer's JSON object (new reference, caller frees) and *status
 * its HTTP status: any object that is not an error, so callers see
 * decisions answered with 403 too.  Otherwise the problem is printed and
 * its exit code returned: CTL_CONN (transport), CTL_USAGE (bad URL) or
 * CTL_FAIL (server error, unusable answer, local files).
 */
int
ctl_call(const struct ctl *ctl, const char *method, const char *path,
    const char *ctype, const char *body, size_t len, int *status,
    json_t **answer)
{
	struct client_answer	 ans;
	char			 err[512];
	json_t			*j;
	int			 rc;

	*answer = NULL;
	if ((rc = client_request(ctl, method, path, ctype, body, len, &ans,
	    err, sizeof(err))) != CTL_OK) {
		ctl_fail("%s", err);
		return (rc);
	}
	*status = ans.status;
	j = json_loadb(ans.body, ans.len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j))
		rc = out_bad_answer(ctl, &ans);
	else if (json_is_string(json_object_get(j, "error")))
		rc = out_server_error(ctl, j);
	else {
		*answer = j;
		j = NULL;
	}
	json_decref(j);
	client_answer_free(&ans);
	return (rc);
}

/* 1 when stdout is a terminal and NO_COLOR is not set (no-color.org). */
static int
out_colour(void)
{
	static int	 colour = -1;

	if (colour == -1)
		colour = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL;
	return (colour);
}

/* Characters (not bytes) of a UTF-8 string, for alignment. */
static size_t
out_width(const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return (n);
}

/* A table whose first row is head (ncols strings).  NULL on ENOMEM. */
struct out_table *
out_table_new(size_t ncols, const char *const head[])
{
	struct out_table	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return (NULL);
	t->ncols = ncols;
	if (out_table_row(t, head) == -1) {
		out_table_free(t);
		return (NULL);
	}
	return (t);
}

/* Append a row of ncols strings (copied and cleaned; NULL reads "-"). */
int
out_table_row(struct out_table *t, const char *const cells[])
{
	char		**cell;
	unsigned char	*warn;
	size_t		 cap, i, base = t->nrows * t->ncols;

	if (t->nrows == t->cap) {
		cap = t->cap ? t->cap * 2 : 16;
		if ((cell = reallocarray(t->cell, cap * t->ncols,
		    sizeof(*cell))) == NULL)
			return (-1);
		t->cell = cell;
		if ((warn = reallocarray(t->warn, cap * t->ncols, 1)) == NULL)
			return (-1);
		t->warn = warn;
		t->cap = cap;
	}
	for (i = 0; i < t->ncols; i++) {
		t->warn[base + i] = 0;
		if ((t->cell[base + i] = strdup(cells[i] ? cells[i] : "-")) ==
		    NULL) {
			while (i-- > 0)
				free(t->cell[base + i]);
			return (-1);
		}
		out_clean(t->cell[base + i]);
	}
	t->nrows++;
	return (0);
}

/* Highlight cell col of the last row added. */
void
out_table_warn(struct out_table *t, size_t col)
{
	if (t->nrows > 1 && col < t->ncols)
		t->warn[(t->nrows - 1) * t->ncols + col] = 1;
}

/* The table on stdout: columns as wide as their widest cell, no trailing
 * blanks, bold header and highlighted cells only in colour. */
void
out_table_print(const struct out_table *t)
{
	size_t	 r, c, w, *width;
	int	 colour = out_colour();
	char	*s;

	if ((width = calloc(t->ncols, sizeof(*width))) == NULL)
		return;
	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if ((w = out_width(t->cell[r * t->ncols + c])) >
			    width[c])
				width[c] = w;
	for (r = 0; r < t->nrows; r++) {
		if (colour && r == 0)
			fputs(OUT_BOLD, stdout);
		for (c = 0; c < t->ncols; c++) {
			s = t->cell[r * t->ncols + c];
			if (colour && t->warn[r * t->ncols + c])
				printf(OUT_YELLOW "%s" OUT_RESET, s);
			else
				fputs(s, stdout);
			if (c + 1 < t->ncols)
				printf("%*s", (int)(width[c] - out_width(s) +
				    OUT_GAP), "");
		}
		fputs(colour && r == 0 ? OUT_RESET "\n" : "\n", stdout);
	}
	free(width);
}

void
out_table_free(struct out_table *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cell[i]);
	free(t->cell);
	free(t->warn);
	free(t);
}

int
out_table_json(size_t ncols, const char *const head[], const json_t *items,
    out_row_fn row)
{
	struct out_table	*t;
	const json_t		*v;
	const char		*cells[CTL_MAX_COLS];
	char			 scratch[64];
	size_t			 i;

	if (ncols > CTL_MAX_COLS || (t = out_table_new(ncols, head)) == NULL)
		return (ctl_fail("out of memory"));
	json_array_foreach(items, i, v) {
		row(v, cells, scratch, sizeof(scratch));
		if (out_table_row(t, cells) == -1) {
			out_table_free(t);
			return (ctl_fail("out of memory"));
		}
	}
	out_table_print(t);
	out_table_free(t);
	return (CTL_OK);
}

/* A duration for humans: "45s", "3m12s", "59m", "2h05m", "3d04h". */
void
out_duration(int64_t secs, char *buf, size_t len)
{
	clock_duration(secs, buf, len);
}

/* The RFC 3339 time obj[key] as seconds.  0, or -1 when absent or bad. */
int
out_time(const json_t *obj, const char *key, int64_t *t)
{
	return (clock_parse_rfc3339(json_string_value(json_object_get(obj,
	    key)), t));
}

/* "5000.00 USD" for an amount object, "-" for null or anything else. */
void
out_amount(const json_t *amount, char *buf, size_t len)
{
	const char	*v = json_string_value(json_object_get(amount, "value"));
	const char	*c = json_string_value(json_object_get(amount,
			    "currency"));

	if (v != NULL && c != NULL)
		snprintf(buf, len, "%s %s", v, c);
	else
		snprintf(buf, len, "-");
}

/* "n/m": approvals so far of approvals_required in an intent view. */
void
out_approvals(const json_t *view, char *buf, size_t len)
{
	snprintf(buf, len, "%zu/%" JSON_INTEGER_FORMAT,
	    json_array_size(json_object_get(view, "approvals")),
	    json_integer_value(json_object_get(view, "approvals_required")));
}

/* A JSON value as one compact line on stdout (JSON lines output). */
void
out_json_line(const json_t *v)
{
	char	*s;

	/* jsonw: numbers as RFC 8785 writes them (0.1, not 17 digits). */
	if ((s = jsonw_dump(v, JSONW_PLAIN, NULL)) == NULL)
		return;
	printf("%s\n", s);
	free(s);
}
