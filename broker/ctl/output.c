/*
 * output: everything toolgatectl prints about answers — the one place that
 * performs a request and maps its outcome to an exit code (transport
 * failure 3, server error 1 with "toolgatectl: CODE: MESSAGE" on stderr),
 * aligned key/value lines for humans and pretty JSON for --json.  Text
 * that came from the server is stripped of control characters before it
 * reaches a terminal.  No colours (yet).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"

#define OUT_KEY_WIDTH	11

/* Replace control characters (escape sequences, CR, LF) in s with '?'. */
static void
out_clean(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* The string member key of obj, or "-" when missing or not a string. */
const char *
out_str(const json_t *obj, const char *key)
{
	const char	*s = json_string_value(json_object_get(obj, key));

	return (s != NULL ? s : "-");
}

/* Pretty JSON on stdout, newline terminated. */
void
out_json(const json_t *v)
{
	char	*s;

	if ((s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY)) == NULL)
		return;
	printf("%s\n", s);
	free(s);
}

/* One aligned "key  value" line on stdout. */
void
out_kv(const char *key, const char *fmt, ...)
{
	va_list	 ap;
	char	*val;

	va_start(ap, fmt);
	if (vasprintf(&val, fmt, ap) == -1)
		val = NULL;
	va_end(ap);
	if (val == NULL)
		return;
	out_clean(val);
	printf("%-*s %s\n", OUT_KEY_WIDTH, key, val);
	free(val);
}

/* "PATH: MESSAGE" on stderr for each {path, message} of problems. */
void
out_problems(const json_t *problems)
{
	const json_t	*p;
	size_t		 i;
	char		*line;

	json_array_foreach(problems, i, p) {
		if (asprintf(&line, "%s: %s", out_str(p, "path"),
		    out_str(p, "message")) == -1)
			return;
		out_clean(line);
		fprintf(stderr, "%s\n", line);
		free(line);
	}
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
