/*
 * jsonrpc: the JSON-RPC 2.0 envelope of MCP messages (jsonrpc.h).  The
 * text is read once by jsontext, which checks the strict grammar and
 * hands out each top-level member's exact bytes; only the small members
 * (jsonrpc, method, the error object) are decoded here.  The writers
 * build messages from JSON text pieces, so a value read from one peer can
 * be passed to another without a round trip through doubles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "jsonrpc.h"
#include "jsontext.h"
#include "jsonw.h"
#include "utf8.h"

/* Top-level members of a message: each may appear once. */
enum member { M_JSONRPC, M_ID, M_METHOD, M_PARAMS, M_RESULT, M_ERROR,
    M__COUNT };

static const char *const member_names[M__COUNT] = {
	"/jsonrpc", "/id", "/method", "/params", "/result", "/error",
};

struct reader {
	int			 max_depth;
	struct jsonrpc_span	 m[M__COUNT];
	enum jsontext_kind	 kind[M__COUNT];
	enum jsontext_kind	 top;
	const char		*fault;		/* the first envelope fault */
};

#define FAULT(rd, msg) do {						\
	if ((rd)->fault == NULL)					\
		(rd)->fault = (msg);					\
} while (0)

static int
reader_visit(const struct jsontext_value *v, void *arg)
{
	struct reader	*rd = arg;
	int		 i;

	/* The message object is level 1, its members' values level 2. */
	if (v->depth + 1 > rd->max_depth)
		FAULT(rd, "the message nests too deeply");
	if (v->depth == 0) {
		rd->top = v->kind;
		return (0);
	}
	if (v->depth != 1)
		return (0);
	for (i = 0; i < M__COUNT; i++)
		if (strcmp(v->pointer, member_names[i]) == 0)
			break;
	if (i == M__COUNT) {
		FAULT(rd, "unknown member in the message: a JSON-RPC 2.0 "
		    "message has only jsonrpc, id, method, params, result "
		    "and error");
		return (0);
	}
	if (rd->m[i].text != NULL) {
		FAULT(rd, "a member of the message appears twice");
		return (0);
	}
	rd->m[i].text = v->text;
	rd->m[i].len = v->len;
	rd->kind[i] = v->kind;
	return (0);
}

/* The decoded string of a span of kind JSONTEXT_STRING (new reference). */
static json_t *
span_string(const struct jsonrpc_span *s)
{
	json_t	*j = json_loadb(s->text, s->len, JSON_DECODE_ANY, NULL);

	if (j != NULL && !json_is_string(j)) {
		json_decref(j);
		j = NULL;
	}
	return (j);
}

static int
id_integer_ok(const struct jsonrpc_span *s)
{
	size_t	 i, digits = s->len;

	for (i = 0; i < s->len; i++)
		if (s->text[i] == '.' || s->text[i] == 'e' ||
		    s->text[i] == 'E')
			return (0);
	/* Every id of every message comes here: up to 15 digits is below
	 * 2^53 whatever they are, without the canonical round trip. */
	if (digits > 0 && s->text[0] == '-')
		digits--;
	if (digits <= 15)
		return (1);
	return (canon_number_check(s->text, s->len) == CANON_NUMBER_KEPT);
}

/* NULL when the id suits a message of this kind, else why not. */
static const char *
id_check(const struct reader *rd, int is_request)
{
	const struct jsonrpc_span *s = &rd->m[M_ID];

	switch (rd->kind[M_ID]) {
	case JSONTEXT_STRING:
		return (s->len <= JSONRPC_MAX_ID ? NULL : "id is longer than "
		    "256 bytes");
	case JSONTEXT_NUMBER:
		return (id_integer_ok(s) ? NULL : "id must be a string or an "
		    "integer of at most 2^53 in magnitude");
	case JSONTEXT_NULL:
		return (is_request ? "a request id must not be null (MCP): "
		    "use a string or an integer" : NULL);
	default:
		return ("id must be a string or an integer");
	}
}

static const char *
method_check(const struct reader *rd, struct jsonrpc_msg *msg)
{
	json_t		*j;
	const char	*s;
	size_t		 n, i;

	if (rd->kind[M_METHOD] != JSONTEXT_STRING ||
	    (j = span_string(&rd->m[M_METHOD])) == NULL)
		return ("method must be a string");
	s = json_string_value(j);
	n = json_string_length(j);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			break;
	if (n == 0 || n > JSONRPC_MAX_METHOD || i < n) {
		json_decref(j);
		return ("method must be 1 to 128 printable ASCII characters");
	}
	memcpy(msg->method, s, n + 1);
	json_decref(j);
	return (NULL);
}

static const char *
error_check(const struct reader *rd, struct jsonrpc_msg *msg)
{
	json_t		*e, *code, *m;
	const char	*k, *why = NULL;
	json_t		*v;

	if (rd->kind[M_ERROR] != JSONTEXT_OBJECT ||
	    (e = jsonrpc_span_json(&rd->m[M_ERROR])) == NULL)
		return ("error must be an object");
	code = json_object_get(e, "code");
	m = json_object_get(e, "message");
	if (!json_is_integer(code) || !json_is_string(m))
		why = "error must have an integer code and a string message";
	json_object_foreach(e, k, v)
		if (strcmp(k, "code") != 0 && strcmp(k, "message") != 0 &&
		    strcmp(k, "data") != 0)
			why = "error has only code, message and data";
	if (why == NULL)
		msg->error_code = (int64_t)json_integer_value(code);
	json_decref(e);
	return (why);
}

static int
jsonrpc_version_ok(const struct reader *rd)
{
	json_t	*j;
	int	 ok;

	if (rd->kind[M_JSONRPC] != JSONTEXT_STRING ||
	    (j = span_string(&rd->m[M_JSONRPC])) == NULL)
		return (0);
	ok = strcmp(json_string_value(j), "2.0") == 0 &&
	    json_string_length(j) == 3;
	json_decref(j);
	return (ok);
}

/* The envelope rules, after a grammatical walk of an object. */
static const char *
envelope_check(const struct reader *rd, struct jsonrpc_msg *msg)
{
	const char	*why;
	int		 has_id = rd->m[M_ID].text != NULL;

	if (rd->m[M_JSONRPC].text == NULL || !jsonrpc_version_ok(rd))
		return ("jsonrpc must be \"2.0\"");
	if (rd->m[M_METHOD].text != NULL) {
		if (rd->m[M_RESULT].text != NULL ||
		    rd->m[M_ERROR].text != NULL)
			return ("a request has no result or error");
		if (has_id && (why = id_check(rd, 1)) != NULL)
			return (why);
		msg->kind = has_id ? JSONRPC_REQUEST : JSONRPC_NOTIFICATION;
		return (method_check(rd, msg));
	}
	if (!has_id)
		return ("a message needs a method (request or notification) "
		    "or an id (response)");
	if ((rd->m[M_RESULT].text != NULL) == (rd->m[M_ERROR].text != NULL))
		return ("a response has exactly one of result and error");
	if (rd->m[M_PARAMS].text != NULL)
		return ("a response has no params");
	if ((why = id_check(rd, rd->m[M_RESULT].text != NULL)) != NULL)
		return (why);
	if (rd->m[M_RESULT].text != NULL) {
		msg->kind = JSONRPC_RESULT;
		return (NULL);
	}
	msg->kind = JSONRPC_ERROR;
	return (error_check(rd, msg));
}

static int
parse_fail(struct jsonrpc_fault *fault, int code, const char *message)
{
	fault->code = code;
	fault->message = message;
	return (-1);
}

int
jsonrpc_parse(const char *text, size_t len, int max_depth,
    struct jsonrpc_msg *msg, struct jsonrpc_fault *fault)
{
	struct reader		 rd;
	enum jsontext_result	 r;
	const char		*why;

	memset(msg, 0, sizeof(*msg));
	memset(fault, 0, sizeof(*fault));
	memset(&rd, 0, sizeof(rd));
	rd.max_depth = max_depth;
	r = jsontext_walk(text ? text : "", text ? len : 0, reader_visit, &rd);
	if (r == JSONTEXT_NOMEM)
		return (parse_fail(fault, JSONRPC_INTERNAL_ERROR,
		    "out of memory"));
	if (r != JSONTEXT_OK)
		return (parse_fail(fault, JSONRPC_PARSE_ERROR, "the body is "
		    "not valid JSON (RFC 8259, UTF-8, no NUL characters)"));
	if (rd.top == JSONTEXT_ARRAY)
		return (parse_fail(fault, JSONRPC_INVALID_REQUEST, "batch "
		    "arrays are not supported: MCP 2025-06-18 removed "
		    "JSON-RPC batching; send one message per request"));
	if (rd.top != JSONTEXT_OBJECT)
		return (parse_fail(fault, JSONRPC_INVALID_REQUEST, "a "
		    "JSON-RPC message must be a JSON object"));
	/* An id that is valid on its own is echoed even in a fault. */
	if (rd.m[M_ID].text != NULL && id_check(&rd,
	    rd.m[M_METHOD].text != NULL) == NULL)
		fault->id = rd.m[M_ID];
	if (rd.fault != NULL)
		return (parse_fail(fault, JSONRPC_INVALID_REQUEST, rd.fault));
	if ((why = envelope_check(&rd, msg)) != NULL) {
		memset(msg, 0, sizeof(*msg));
		return (parse_fail(fault, JSONRPC_INVALID_REQUEST, why));
	}
	if (rd.m[M_PARAMS].text != NULL && rd.kind[M_PARAMS] !=
	    JSONTEXT_OBJECT) {
		memset(msg, 0, sizeof(*msg));
		return (parse_fail(fault, JSONRPC_INVALID_PARAMS, "params "
		    "must be an object"));
	}
	msg->id = rd.m[M_ID];
	msg->params = rd.m[M_PARAMS];
	msg->result = rd.m[M_RESULT];
	msg->error = rd.m[M_ERROR];
	return (0);
}

json_t *
jsonrpc_span_json(const struct jsonrpc_span *s)
{
	if (s == NULL || s->text == NULL)
		return (NULL);
	return (json_loadb(s->text, s->len, JSON_DECODE_ANY |
	    JSON_REJECT_DUPLICATES, NULL));
}

int
jsonrpc_id_equal(const struct jsonrpc_span *a, const struct jsonrpc_span *b)
{
	return (a->text != NULL && b->text != NULL && a->len == b->len &&
	    memcmp(a->text, b->text, a->len) == 0);
}

/* ---- writers ---- */

struct buf {
	char	*s;
	size_t	 len, cap;
	int	 oom;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	char	*p;
	size_t	 cap;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_json(struct buf *b, const json_t *v)
{
	size_t	 n;
	char	*t = jsonw_dump(v, JSONW_PLAIN, &n);

	if (t == NULL) {
		b->oom = 1;
		return;
	}
	buf_add(b, t, n);
	free(t);
}

static void
buf_head(struct buf *b, const struct jsonrpc_span *id)
{
	buf_str(b, "{\"jsonrpc\":\"2.0\"");
	if (id == NULL)
		return;
	buf_str(b, ",\"id\":");
	if (id->text != NULL)
		buf_add(b, id->text, id->len);
	else
		buf_str(b, "null");
}

static char *
buf_done(struct buf *b, size_t *len)
{
	if (b->oom) {
		free(b->s);
		return (NULL);
	}
	if (len != NULL)
		*len = b->len;
	return (b->s);
}

char *
jsonrpc_write_result(const struct jsonrpc_span *id, const char *result_text,
    size_t result_len, size_t *len)
{
	static const struct jsonrpc_span null_id = { NULL, 0 };
	struct buf	 b = { 0 };

	buf_head(&b, id ? id : &null_id);
	buf_str(&b, ",\"result\":");
	buf_add(&b, result_text, result_len);
	buf_str(&b, "}");
	return (buf_done(&b, len));
}

char *
jsonrpc_write_result_json(const struct jsonrpc_span *id, const json_t *result,
    size_t *len)
{
	static const struct jsonrpc_span null_id = { NULL, 0 };
	struct buf	 b = { 0 };

	buf_head(&b, id ? id : &null_id);
	buf_str(&b, ",\"result\":");
	buf_json(&b, result);
	buf_str(&b, "}");
	return (buf_done(&b, len));
}

/* At most n bytes of s, cut on a UTF-8 boundary. */
static size_t
utf8_cut(const char *s, size_t n)
{
	size_t	 i = 0, k, all = strnlen(s, n);
	uint32_t cp;

	while (i < all) {
		k = utf8_decode((const unsigned char *)s + i, all - i, &cp);
		if (k == 0)
			break;
		i += k;
	}
	return (i);
}

char *
jsonrpc_write_error(const struct jsonrpc_span *id, int code,
    const char *message, const json_t *data, size_t *len)
{
	static const struct jsonrpc_span null_id = { NULL, 0 };
	struct buf	 b = { 0 };
	json_t		*m;
	char		 num[24];

	if (message == NULL)
		message = "error";
	m = json_stringn(message, utf8_cut(message, 1024));
	buf_head(&b, id ? id : &null_id);
	snprintf(num, sizeof(num), "%d", code);
	buf_str(&b, ",\"error\":{\"code\":");
	buf_str(&b, num);
	buf_str(&b, ",\"message\":");
	if (m != NULL)
		buf_json(&b, m);
	else
		b.oom = 1;
	json_decref(m);
	if (data != NULL) {
		buf_str(&b, ",\"data\":");
		buf_json(&b, data);
	}
	buf_str(&b, "}}");
	return (buf_done(&b, len));
}

static void
buf_method(struct buf *b, const struct jsonrpc_span *id, const char *method)
{
	json_t	*m = json_string(method);

	buf_head(b, id);
	buf_str(b, ",\"method\":");
	if (m != NULL)
		buf_json(b, m);
	else
		b->oom = 1;
	json_decref(m);
}

char *
jsonrpc_write_request(const struct jsonrpc_span *id, const char *method,
    const json_t *params, size_t *len)
{
	struct buf	 b = { 0 };

	buf_method(&b, id, method);
	if (params != NULL) {
		buf_str(&b, ",\"params\":");
		buf_json(&b, params);
	}
	buf_str(&b, "}");
	return (buf_done(&b, len));
}

char *
jsonrpc_write_request_text(const struct jsonrpc_span *id, const char *method,
    const char *params_text, size_t params_len, size_t *len)
{
	struct buf	 b = { 0 };

	buf_method(&b, id, method);
	if (params_text != NULL) {
		buf_str(&b, ",\"params\":");
		buf_add(&b, params_text, params_len);
	}
	buf_str(&b, "}");
	return (buf_done(&b, len));
}
