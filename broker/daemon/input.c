/*
 * input: strict readers for request bodies and query strings.  Messages
 * name the field and never echo more than 64 bytes of the caller's text.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <string.h>

#include <event2/http.h>

#include "input.h"
#include "text.h"

int
input_require_json(struct request *rq)
{
	if (http_content_type_is(rq, "application/json"))
		return (1);
	http_reply_error(rq, E_UNSUPPORTED_MEDIA_TYPE,
	    "this endpoint takes Content-Type: application/json");
	return (0);
}

/* The first key of doc that is not in allowed, or NULL. */
static const char *
input_unknown_key(json_t *doc, const char *const *allowed)
{
	const char	*key;
	json_t		*v;
	size_t		 i;

	json_object_foreach(doc, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return (key);
	}
	return (NULL);
}

json_t *
input_json(struct request *rq, const char *const *allowed, size_t max,
    unsigned flags)
{
	json_t		*doc;
	const char	*body, *key;
	size_t		 len;
	char		 msg[128];

	if (!input_require_json(rq))
		return (NULL);
	body = http_body(rq, &len);
	if (len > max) {
		snprintf(msg, sizeof(msg), "the body is at most %zu KiB",
		    max / 1024);
		http_reply_error(rq, E_PAYLOAD_TOO_LARGE, msg);
		return (NULL);
	}
	if (len == 0 && (flags & INPUT_EMPTY_OK))
		return (json_object());
	doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, NULL);
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		http_reply_error(rq, E_BAD_REQUEST,
		    "the body must be one JSON object (no duplicate keys)");
		return (NULL);
	}
	if ((key = input_unknown_key(doc, allowed)) != NULL) {
		/* %.64s: the key is the caller's text. */
		snprintf(msg, sizeof(msg), "unknown field \"%.64s\"", key);
		json_decref(doc);
		http_reply_error(rq, E_BAD_REQUEST, msg);
		return (NULL);
	}
	return (doc);
}

int
input_string(struct request *rq, json_t *doc, const char *name,
    size_t max_chars, unsigned flags, const char **out)
{
	json_t		*v = json_object_get(doc, name);
	const char	*why = NULL;
	char		 msg[160];

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (!(flags & INPUT_REQUIRED))
			return (0);
		why = "is required";
	} else if (!json_is_string(v))
		why = "must be a string";
	else if (strlen(json_string_value(v)) != json_string_length(v))
		why = "has a NUL character";
	else if ((why = text_check(json_string_value(v), max_chars,
	    (flags & INPUT_NOT_BLANK) ? TEXT_NOT_BLANK : 0)) == NULL) {
		*out = json_string_value(v);
		return (0);
	}
	if (strcmp(why, "is too long") == 0)
		snprintf(msg, sizeof(msg), "\"%s\" is longer than %zu "
		    "characters", name, max_chars);
	else
		snprintf(msg, sizeof(msg), "\"%s\" %s", name, why);
	http_reply_error(rq, E_BAD_REQUEST, msg);
	return (-1);
}

int
input_bool(struct request *rq, json_t *doc, const char *name, int def,
    int *out)
{
	json_t	*v = json_object_get(doc, name);
	char	 msg[128];

	*out = def;
	if (v == NULL)
		return (0);
	if (!json_is_boolean(v)) {
		snprintf(msg, sizeof(msg), "\"%s\" must be true or false",
		    name);
		http_reply_error(rq, E_BAD_REQUEST, msg);
		return (-1);
	}
	*out = json_is_true(v);
	return (0);
}

int
input_query(struct request *rq, const char *const *allowed,
    struct evkeyvalq *q)
{
	struct evkeyval	*kv;
	size_t		 i;
	char		 msg[128];

	TAILQ_INIT(q);
	if (rq->query != NULL && evhttp_parse_query_str(rq->query, q) != 0) {
		http_reply_error(rq, E_BAD_REQUEST,
		    "the query string is malformed");
		return (-1);
	}
	if (allowed == NULL)
		return (0);
	TAILQ_FOREACH(kv, q, next) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(kv->key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			snprintf(msg, sizeof(msg), "unknown query parameter "
			    "\"%.64s\"", kv->key);
			http_reply_error(rq, E_BAD_REQUEST, msg);
			return (-1);
		}
	}
	return (0);
}

/* Digits only, at most 18 of them (no sign, no space, no overflow). */
static int
input_digits(const char *s, int64_t *out)
{
	size_t	 i, n = strlen(s);
	int64_t	 v = 0;

	if (n == 0 || n > 18)
		return (-1);
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return (0);
}

int
input_query_int(struct request *rq, struct evkeyvalq *q, const char *name,
    int64_t min, int64_t max, int64_t def, const char *what, int64_t *out)
{
	const char	*v = evhttp_find_header(q, name);

	*out = def;
	if (v == NULL)
		return (0);
	if (input_digits(v, out) == 0 && *out >= min && *out <= max)
		return (0);
	http_reply_error(rq, E_BAD_REQUEST, what);
	return (-1);
}
