/*
 * jsonrpc: one JSON-RPC 2.0 message of the Model Context Protocol, read
 * strictly and within bounds, and the messages toolgate writes.  The
 * reader checks only the envelope (jsonrpc, id, method, params, result,
 * error) and hands out each member's exact JSON text, so that a result
 * can be passed on byte for byte and numbers in params can be checked
 * against their written digits (canon.c) before jansson ever sees them.
 * What a method means is not its business: no MCP semantics, no I/O, no
 * logging.
 *
 * MCP's rules on top of JSON-RPC 2.0 (revisions 2025-06-18 and
 * 2025-11-25): one message per text (batch arrays were removed in
 * 2025-06-18 and are refused with their own error), a request id is a
 * string or an integer and never null, params is an object.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* JSON-RPC 2.0 error codes (§5.1). */
#define JSONRPC_PARSE_ERROR		(-32700)
#define JSONRPC_INVALID_REQUEST		(-32600)
#define JSONRPC_METHOD_NOT_FOUND	(-32601)
#define JSONRPC_INVALID_PARAMS		(-32602)
#define JSONRPC_INTERNAL_ERROR		(-32603)

#define JSONRPC_MAX_METHOD	128	/* bytes */
#define JSONRPC_MAX_ID		256	/* bytes of its JSON text */
#define JSONRPC_MAX_MESSAGE	(1024 * 1024)	/* error.message, bytes */

enum jsonrpc_kind {
	JSONRPC_REQUEST,	/* method and id */
	JSONRPC_NOTIFICATION,	/* method, no id */
	JSONRPC_RESULT,		/* id and result */
	JSONRPC_ERROR,		/* id (maybe null) and error */
};

/* A member's exact JSON text inside the message; text NULL when absent. */
struct jsonrpc_span {
	const char	*text;
	size_t		 len;
};

struct jsonrpc_msg {
	enum jsonrpc_kind	 kind;
	/* The id as written: a JSON string with its quotes, an integer
	 * token, or "null" (error responses only).  Echo it back as is. */
	struct jsonrpc_span	 id;
	char			 method[JSONRPC_MAX_METHOD + 1];  /* decoded */
	struct jsonrpc_span	 params;	/* an object, or absent */
	struct jsonrpc_span	 result;	/* any JSON value */
	struct jsonrpc_span	 error;		/* {"code", "message", "data"?} */
	int64_t			 error_code;
};

/*
 * What is wrong with a text that is not one valid message: the error
 * code to answer with, a human message (static text), and the message's
 * id when it could be read (id.text NULL otherwise: answer with null).
 */
struct jsonrpc_fault {
	int			 code;
	const char		*message;
	struct jsonrpc_span	 id;
};

/*
 * Read text (len bytes; need not be NUL-terminated, must outlive *msg) as
 * one JSON-RPC message whose values nest at most max_depth levels (the
 * message object itself is level 1).  0 with *msg filled, or -1 with
 * *fault filled: -32700 for text that is not JSON (jsontext's strict
 * grammar), -32600 for a batch array, a value that is not an object, a
 * jsonrpc other than "2.0", an unknown or repeated member, a bad id or
 * method, a response with both or neither of result and error, a bad
 * error object, too deep a nesting; -32602 for params that are not an
 * object.  Memory: about twice len, freed before it returns.
 */
int	jsonrpc_parse(const char *text, size_t len, int max_depth,
	    struct jsonrpc_msg *msg, struct jsonrpc_fault *fault);

/*
 * Parse a span (params, result, error) with jansson, duplicate keys
 * refused.  A new reference, or NULL when absent or unreadable by jansson
 * (an integer beyond int64, a member name twice).
 */
json_t	*jsonrpc_span_json(const struct jsonrpc_span *s);

/* 1 if the id spans are the same JSON text (ids are compared as written). */
int	jsonrpc_id_equal(const struct jsonrpc_span *a,
	    const struct jsonrpc_span *b);

/*
 * Writers.  Each returns a malloc'd NUL-terminated message (its length in
 * *len when len is not NULL), or NULL when out of memory.  id is JSON
 * text as jsonrpc_parse hands it out (NULL: null); result_text is the
 * JSON text of a value (copied verbatim: it must be valid JSON).
 */
char	*jsonrpc_write_result(const struct jsonrpc_span *id,
	    const char *result_text, size_t result_len, size_t *len);
/* result is a jansson value, written compactly (jsonw plain); not stolen. */
char	*jsonrpc_write_result_json(const struct jsonrpc_span *id,
	    const json_t *result, size_t *len);
/* code and message (cut at a sane length, control characters kept out
 * of it), data optional (not stolen). */
char	*jsonrpc_write_error(const struct jsonrpc_span *id, int code,
	    const char *message, const json_t *data, size_t *len);
/* A request (id not NULL) or notification (id NULL); params optional
 * (not stolen). */
char	*jsonrpc_write_request(const struct jsonrpc_span *id,
	    const char *method, const json_t *params, size_t *len);
/* The same with params as JSON text (copied verbatim), NULL for none. */
char	*jsonrpc_write_request_text(const struct jsonrpc_span *id,
	    const char *method, const char *params_text, size_t params_len,
	    size_t *len);
