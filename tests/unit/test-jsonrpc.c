/*
 * test-jsonrpc: the MCP JSON-RPC envelope — requests, notifications and
 * responses read with their members' exact text; every malformed case of
 * the issue (not an object, wrong jsonrpc, no method, batch arrays, bad
 * ids, params that are not objects) refused with its JSON-RPC code and
 * the id echoed when it could be read; the writers' output read back.
 */
#undef NDEBUG
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonrpc.h"
#include "check.h"

static int	passed, failed;

#define OK	0

static const struct {
	const char	*text;
	int		 code;		/* OK or the fault's code */
	int		 kind;
	const char	*id;		/* expected id text, NULL: none */
	const char	*method;
	const char	*params;
} cases[] = {
	/* requests and notifications */
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", OK,
	  JSONRPC_REQUEST, "1", "ping", NULL },
	{ " {\"method\":\"tools/call\",\"params\":{\"name\":\"a.b\",\"arguments\":{\"x\":0.1}},\"id\":\"r-7\",\"jsonrpc\":\"2.0\"} ",
	  OK, JSONRPC_REQUEST, "\"r-7\"", "tools/call",
	  "{\"name\":\"a.b\",\"arguments\":{\"x\":0.1}}" },
	{ "{\"jsonrpc\":\"2.0\",\"id\":-9007199254740992,\"method\":\"x\"}",
	  OK, JSONRPC_REQUEST, "-9007199254740992", "x", NULL },
	/* the longest ids taken without the canonical check, either sign */
	{ "{\"jsonrpc\":\"2.0\",\"id\":999999999999999,\"method\":\"x\"}",
	  OK, JSONRPC_REQUEST, "999999999999999", "x", NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":-999999999999999,\"method\":\"x\"}",
	  OK, JSONRPC_REQUEST, "-999999999999999", "x", NULL },
	{ "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
	  OK, JSONRPC_NOTIFICATION, NULL, "notifications/initialized", NULL },
	{ "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{}}",
	  OK, JSONRPC_NOTIFICATION, NULL, "notifications/cancelled", "{}" },
	{ "{\"jsonrpc\":\"\\u0032.0\",\"id\":\"\\u00e9\",\"method\":\"p\\u0069ng\"}",
	  OK, JSONRPC_REQUEST, "\"\\u00e9\"", "ping", NULL },
	/* responses */
	{ "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[]}}", OK,
	  JSONRPC_RESULT, "3", "", NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":null}", OK,
	  JSONRPC_RESULT, "3", "", NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}",
	  OK, JSONRPC_ERROR, "null", "", NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":1,\"message\":\"x\",\"data\":[1]}}",
	  OK, JSONRPC_ERROR, "\"a\"", "", NULL },
	/* not JSON */
	{ "", JSONRPC_PARSE_ERROR, 0, NULL, NULL, NULL },
	{ "{", JSONRPC_PARSE_ERROR, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",}",
	  JSONRPC_PARSE_ERROR, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} x",
	  JSONRPC_PARSE_ERROR, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\u0000\"}",
	  JSONRPC_PARSE_ERROR, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
	  JSONRPC_PARSE_ERROR, 0, NULL, NULL, NULL },
	/* not one object */
	{ "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "[]", JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "\"ping\"", JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "null", JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{}", JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	/* the envelope */
	{ "{\"id\":1,\"method\":\"ping\"}", JSONRPC_INVALID_REQUEST, 0, "1",
	  NULL, NULL },
	{ "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":2.0,\"id\":1,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1}", JSONRPC_INVALID_REQUEST, 0, "1",
	  NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"params\":{}}", JSONRPC_INVALID_REQUEST, 0,
	  NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":1}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a b\"}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"extra\":1}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"result\":1}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	/* ids */
	{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1e3,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":9999999999999999,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":-9999999999999999,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
	  JSONRPC_INVALID_REQUEST, 0, NULL, NULL, NULL },
	/* params */
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}",
	  JSONRPC_INVALID_PARAMS, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":null}",
	  JSONRPC_INVALID_PARAMS, 0, "1", NULL, NULL },
	/* responses */
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,\"error\":{\"code\":1,\"message\":\"x\"}}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"result\":1}", JSONRPC_INVALID_REQUEST, 0,
	  NULL, NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":1}",
	  JSONRPC_INVALID_REQUEST, 0, "null", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"x\",\"message\":\"x\"}}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1.5,\"message\":\"x\"}}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"x\",\"more\":1}}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"x\"}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
	{ "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"params\":{}}",
	  JSONRPC_INVALID_REQUEST, 0, "1", NULL, NULL },
};

static int
span_is(const struct jsonrpc_span *s, const char *want)
{
	if (want == NULL)
		return (s->text == NULL);
	return (s->text != NULL && s->len == strlen(want) &&
	    memcmp(s->text, want, s->len) == 0);
}

static void
table(void)
{
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t = cases[i].text;

		rc = jsonrpc_parse(t, strlen(t), 64, &m, &f);
		if (cases[i].code == OK) {
			CHECK(rc == 0, "%s: refused: %d %s", t, f.code,
			    f.message);
			if (rc != 0)
				continue;
			CHECK((int)m.kind == cases[i].kind, "%s: kind %d", t,
			    m.kind);
			CHECK(span_is(&m.id, cases[i].id), "%s: id %.*s", t,
			    (int)m.id.len, m.id.text ? m.id.text : "");
			CHECK(strcmp(m.method, cases[i].method) == 0,
			    "%s: method %s", t, m.method);
			CHECK(span_is(&m.params, cases[i].params),
			    "%s: params", t);
			continue;
		}
		CHECK(rc == -1 && f.code == cases[i].code, "%s: rc %d code %d",
		    t, rc, f.code);
		CHECK(f.message != NULL && f.message[0] != '\0', "%s: message",
		    t);
		CHECK(span_is(&f.id, cases[i].id), "%s: fault id %.*s", t,
		    (int)f.id.len, f.id.text ? f.id.text : "");
	}
}

static void
batch_message(void)
{
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	const char		*t = "[{\"jsonrpc\":\"2.0\",\"method\":\"x\"}]";

	CHECK(jsonrpc_parse(t, strlen(t), 64, &m, &f) == -1 &&
	    strstr(f.message, "batch") != NULL, "batch named: %s", f.message);
}

static void
depth(void)
{
	char			 t[512];
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	int			 n, i;

	/* params at level 2; each [ adds one */
	for (n = 0; n < 8; n++) {
		int len = snprintf(t, sizeof(t), "{\"jsonrpc\":\"2.0\","
		    "\"method\":\"x\",\"params\":{\"a\":");
		for (i = 0; i < n; i++)
			t[len++] = '[';
		t[len++] = '1';
		for (i = 0; i < n; i++)
			t[len++] = ']';
		memcpy(t + len, "}}", 3);
		/* levels: message 1, params 2, "a" 3, its arrays 4.. */
		CHECK((jsonrpc_parse(t, strlen(t), 6, &m, &f) == 0) ==
		    (3 + n <= 6), "depth %d", n);
	}
}

static void
id_equal(void)
{
	struct jsonrpc_span a = { "1", 1 }, b = { "1", 1 }, c = { "\"1\"", 3 };

	CHECK(jsonrpc_id_equal(&a, &b), "1 == 1");
	CHECK(!jsonrpc_id_equal(&a, &c), "1 != \"1\"");
}

/* Each writer's output is one valid message that reads back. */
static void
writers(void)
{
	struct jsonrpc_span	 id = { "\"x\"", 3 };
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	json_t			*p = json_pack("{ss}", "k", "v");
	char			*t, msg[2000];
	size_t			 len;

	t = jsonrpc_write_result(&id, "{\"a\":0.10}", 10, &len);
	CHECK(t != NULL && strcmp(t, "{\"jsonrpc\":\"2.0\",\"id\":\"x\","
	    "\"result\":{\"a\":0.10}}") == 0, "result verbatim: %s", t);
	CHECK(jsonrpc_parse(t, len, 64, &m, &f) == 0 &&
	    m.kind == JSONRPC_RESULT, "result reads back");
	free(t);

	t = jsonrpc_write_error(NULL, JSONRPC_PARSE_ERROR, "bad\n\"x\"",
	    NULL, &len);
	CHECK(t != NULL && strcmp(t, "{\"jsonrpc\":\"2.0\",\"id\":null,"
	    "\"error\":{\"code\":-32700,\"message\":\"bad\\n\\\"x\\\"\"}}") ==
	    0, "error: %s", t);
	CHECK(jsonrpc_parse(t, len, 64, &m, &f) == 0 &&
	    m.kind == JSONRPC_ERROR && m.error_code == -32700,
	    "error reads back");
	free(t);

	/* a long message is cut on a character boundary */
	memset(msg, 'a', sizeof(msg));
	memcpy(msg + 1023, "\xc3\xa9", 2);
	msg[sizeof(msg) - 1] = '\0';
	t = jsonrpc_write_error(&id, 1, msg, p, &len);
	CHECK(t != NULL && jsonrpc_parse(t, len, 64, &m, &f) == 0,
	    "long error reads back");
	CHECK(t != NULL && strstr(t, "\xc3\xa9") == NULL && len < 1100,
	    "cut before the split character");
	free(t);

	t = jsonrpc_write_request(&id, "tools/list", p, &len);
	CHECK(t != NULL && jsonrpc_parse(t, len, 64, &m, &f) == 0 &&
	    m.kind == JSONRPC_REQUEST && strcmp(m.method, "tools/list") == 0,
	    "request reads back");
	free(t);
	t = jsonrpc_write_request(NULL, "notifications/initialized", NULL,
	    &len);
	CHECK(t != NULL && strcmp(t, "{\"jsonrpc\":\"2.0\",\"method\":"
	    "\"notifications/initialized\"}") == 0, "notification: %s", t);
	free(t);
	t = jsonrpc_write_request_text(&id, "tools/call",
	    "{\"arguments\":{\"n\":1e3}}", 24, &len);
	CHECK(t != NULL && strstr(t, "\"params\":{\"arguments\":{\"n\":1e3}}")
	    != NULL, "params text verbatim: %s", t);
	free(t);
	json_decref(p);
}

static void
span_json(void)
{
	struct jsonrpc_span	 dup = { "{\"a\":1,\"a\":2}", 13 };
	struct jsonrpc_span	 ok = { "{\"a\":1}", 7 };
	json_t			*j;

	CHECK(jsonrpc_span_json(&dup) == NULL, "duplicates refused");
	j = jsonrpc_span_json(&ok);
	CHECK(j != NULL && json_integer_value(json_object_get(j, "a")) == 1,
	    "span parsed");
	json_decref(j);
	CHECK(jsonrpc_span_json(NULL) == NULL, "NULL span");
}

int
main(void)
{
	table();
	batch_message();
	depth();
	id_equal();
	writers();
	span_json();
	printf("test-jsonrpc: %d passed, %d failed\n", passed, failed);
	return (failed != 0);
}
