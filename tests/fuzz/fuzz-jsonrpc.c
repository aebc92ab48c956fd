/*
 * fuzz-jsonrpc: the MCP JSON-RPC envelope reader and its writers.
 * Invariants (abort when broken):
 *  - every input is either one message or a fault with a JSON-RPC code
 *    (-32700, -32600, -32602, -32603) and a message; -32700 exactly when
 *    jsontext refuses the text;
 *  - every span lies inside the input; a message's kind matches its
 *    members (a request has a method and an id, a notification a method
 *    and no id, a response an id and one of result and error); params
 *    are an object; the id is a string, an integer or (responses) null;
 *  - where jansson reads the text without duplicates, it agrees: the
 *    value is an object, jsonrpc is "2.0", method is the decoded method;
 *  - what the writers build from the message's own id (a result with its
 *    params or result text, an error, a request) reads back as a message
 *    of the right kind with the same id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "jsonrpc.h"
#include "jsontext.h"
#include "log.h"

#define FUZZ_JSONRPC_MAX	(64 * 1024)

static int
noop_visit(const struct jsontext_value *v, void *arg)
{
	return (0);
}

static void
span_inside(const struct jsonrpc_span *s, const uint8_t *data, size_t size)
{
	if (s->text == NULL)
		return;
	FUZZ_ASSERT((const uint8_t *)s->text >= data &&
	    (const uint8_t *)s->text + s->len <= data + size && s->len > 0);
}

/* The writers' output from m's id reads back with that id. */
static void
check_writers(const struct jsonrpc_msg *m)
{
	struct jsonrpc_msg	 back;
	struct jsonrpc_fault	 f;
	const struct jsonrpc_span *body = m->params.text ? &m->params :
	    m->result.text ? &m->result : NULL;
	char			*t;
	size_t			 len;

	t = jsonrpc_write_result(&m->id, body ? body->text : "{}",
	    body ? body->len : 2, &len);
	FUZZ_ASSERT(t != NULL);
	/* a result needs a real id: null is for errors only */
	if (m->id.text != NULL && memcmp(m->id.text, "null", 4) != 0) {
		FUZZ_ASSERT(jsonrpc_parse(t, len, 1000, &back, &f) == 0);
		FUZZ_ASSERT(back.kind == JSONRPC_RESULT &&
		    jsonrpc_id_equal(&back.id, &m->id));
	}
	free(t);
	t = jsonrpc_write_error(&m->id, JSONRPC_INVALID_PARAMS, m->method,
	    NULL, &len);
	FUZZ_ASSERT(t != NULL);
	FUZZ_ASSERT(jsonrpc_parse(t, len, 64, &back, &f) == 0);
	FUZZ_ASSERT(back.kind == JSONRPC_ERROR &&
	    back.error_code == JSONRPC_INVALID_PARAMS);
	free(t);
	if (m->kind != JSONRPC_REQUEST)
		return;
	t = jsonrpc_write_request_text(&m->id, m->method, m->params.text,
	    m->params.len, &len);
	FUZZ_ASSERT(t != NULL);
	FUZZ_ASSERT(jsonrpc_parse(t, len, 1000, &back, &f) == 0);
	FUZZ_ASSERT(back.kind == JSONRPC_REQUEST &&
	    strcmp(back.method, m->method) == 0 &&
	    jsonrpc_id_equal(&back.id, &m->id));
	free(t);
}

static void
check_jansson(const uint8_t *data, size_t size, const struct jsonrpc_msg *m)
{
	json_t	*doc, *v;

	if (memchr(data, '\0', size) != NULL || (doc = json_loadb(
	    (const char *)data, size, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return;
	FUZZ_ASSERT(json_is_object(doc));
	FUZZ_ASSERT((v = json_object_get(doc, "jsonrpc")) != NULL &&
	    json_is_string(v) && strcmp(json_string_value(v), "2.0") == 0);
	if (m->kind == JSONRPC_REQUEST || m->kind == JSONRPC_NOTIFICATION) {
		v = json_object_get(doc, "method");
		FUZZ_ASSERT(json_is_string(v) &&
		    strcmp(json_string_value(v), m->method) == 0);
		FUZZ_ASSERT((json_object_get(doc, "id") != NULL) ==
		    (m->kind == JSONRPC_REQUEST));
	}
	if ((v = json_object_get(doc, "params")) != NULL)
		FUZZ_ASSERT(json_is_object(v));
	json_decref(doc);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(LOG_LVL_ERROR, "fuzz-jsonrpc");
	json_object_seed(1);
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jsonrpc_msg	 m;
	struct jsonrpc_fault	 f;
	int			 rc, valid;

	if (size > FUZZ_JSONRPC_MAX)
		return (0);
	rc = jsonrpc_parse((const char *)data, size, 64, &m, &f);
	valid = jsontext_walk((const char *)data, size, noop_visit, NULL) ==
	    JSONTEXT_OK;
	if (rc == -1) {
		FUZZ_ASSERT(f.code == JSONRPC_PARSE_ERROR ||
		    f.code == JSONRPC_INVALID_REQUEST ||
		    f.code == JSONRPC_INVALID_PARAMS ||
		    f.code == JSONRPC_INTERNAL_ERROR);
		FUZZ_ASSERT(f.message != NULL && f.message[0] != '\0');
		FUZZ_ASSERT((f.code == JSONRPC_PARSE_ERROR) == !valid);
		span_inside(&f.id, data, size);
		return (0);
	}
	FUZZ_ASSERT(rc == 0 && valid);
	span_inside(&m.id, data, size);
	span_inside(&m.params, data, size);
	span_inside(&m.result, data, size);
	span_inside(&m.error, data, size);
	switch (m.kind) {
	case JSONRPC_REQUEST:
		FUZZ_ASSERT(m.id.text != NULL && m.method[0] != '\0');
		FUZZ_ASSERT(m.id.text[0] == '"' || m.id.text[0] == '-' ||
		    (m.id.text[0] >= '0' && m.id.text[0] <= '9'));
		break;
	case JSONRPC_NOTIFICATION:
		FUZZ_ASSERT(m.id.text == NULL && m.method[0] != '\0');
		break;
	case JSONRPC_RESULT:
		FUZZ_ASSERT(m.id.text != NULL && m.result.text != NULL &&
		    m.error.text == NULL && m.method[0] == '\0');
		break;
	case JSONRPC_ERROR:
		FUZZ_ASSERT(m.id.text != NULL && m.error.text != NULL &&
		    m.result.text == NULL && m.error.text[0] == '{');
		break;
	}
	if (m.params.text != NULL)
		FUZZ_ASSERT(m.params.text[0] == '{');
	check_jansson(data, size, &m);
	check_writers(&m);
	return (0);
}
