/*
 * input: the one way the HTTP edge reads what a client sent — a JSON
 * body (Content-Type application/json or 415, a size cap or 413, one
 * object without duplicate keys and with only the allowed keys or 400),
 * its string fields (length in code points, NUL and invalid UTF-8
 * refused, reasons never blank), its booleans, and query parameters
 * (integers written as digits only, in range).  Every reader answers the
 * error itself and tells the handler to stop.
 */
#pragma once

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "http.h"

#define INPUT_BODY_MAX	(64 * 1024)	/* JSON bodies of the operator API */

/* input_json flags */
#define INPUT_EMPTY_OK	0x1		/* an empty body reads as {} */
/* input_string flags */
#define INPUT_REQUIRED	0x1		/* absent or null is an error */
#define INPUT_NOT_BLANK	0x2		/* "", "  ", no-break spaces... */

/* 1 if rq says Content-Type: application/json; else answers 415, 0. */
int	input_require_json(struct request *rq);
/*
 * The JSON object body of rq, at most max bytes, every key one of
 * allowed (NULL-terminated).  A new reference, or NULL after answering
 * 415/413/400.
 */
json_t	*input_json(struct request *rq, const char *const *allowed,
	    size_t max, unsigned flags);
/*
 * doc's member name as text of at most max_chars code points: *out NULL
 * when absent or null (unless INPUT_REQUIRED), borrowed from doc
 * otherwise.  0, or -1 after answering 400 naming the field.
 */
int	input_string(struct request *rq, json_t *doc, const char *name,
	    size_t max_chars, unsigned flags, const char **out);
/* doc's member name as true/false, def when absent.  0, or -1 (400). */
int	input_bool(struct request *rq, json_t *doc, const char *name, int def,
	    int *out);
/*
 * rq's query string into q (release with evhttp_clear_headers, also on
 * failure), refusing parameters not in allowed (NULL: any).  0, or -1
 * after answering 400.
 */
int	input_query(struct request *rq, const char *const *allowed,
	    struct evkeyvalq *q);
/*
 * q's parameter name as an integer in [min, max] (digits only, at most
 * 18), def when absent.  0, or -1 after answering 400 with what (e.g.
 * "limit must be 1 to 1000").
 */
int	input_query_int(struct request *rq, struct evkeyvalq *q,
	    const char *name, int64_t min, int64_t max, int64_t def,
	    const char *what, int64_t *out);
