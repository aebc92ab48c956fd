/*
 * fuzz-jsontext: the JSON text reader, RFC 6901 pointers and the number
 * rule, against jansson on the same bytes.  Invariants (abort when
 * broken):
 *  - jsontext accepts what jansson (JSON_DECODE_ANY) accepts, and when it
 *    accepts what jansson refuses, jansson's complaint is a number it
 *    cannot hold (an integer beyond int64, a real beyond double).  Inputs
 *    with a NUL byte are not compared: jansson takes a NUL after a
 *    top-level scalar ("2\0") for the end of the text, jsontext refuses
 *    it (claims are objects, where jansson refuses it too);
 *  - every visited value has a pointer jsonptr_check accepts (up to
 *    JSONPTR_MAX_LEN) and an exact text that is the value's own token;
 *  - when jansson also read the text without duplicate names, each
 *    pointer finds in jansson's tree a value of the same kind; for the
 *    first numbers, jsontext_number_at finds the same token, and a number
 *    canon_number_check keeps is the value jansson read, and has an RFC
 *    8785 form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "canon.h"
#include "fuzz.h"
#include "jsonptr.h"
#include "jsontext.h"
#include "jsonw.h"
#include "log.h"

#define FUZZ_JSONTEXT_MAX	(64 * 1024)
#define FUZZ_LOOKUPS		16	/* number_at calls per input: each reads all */

struct walk {
	const char	*text;
	size_t		 len;
	json_t		*root;		/* jansson's, without duplicates; or NULL */
	int		 lookups;
};

static int
kind_matches(enum jsontext_kind k, const json_t *v)
{
	switch (k) {
	case JSONTEXT_NULL:	return (json_is_null(v));
	case JSONTEXT_FALSE:	return (json_is_false(v));
	case JSONTEXT_TRUE:	return (json_is_true(v));
	case JSONTEXT_NUMBER:	return (json_is_number(v));
	case JSONTEXT_STRING:	return (json_is_string(v));
	case JSONTEXT_ARRAY:	return (json_is_array(v));
	case JSONTEXT_OBJECT:	return (json_is_object(v));
	}
	return (0);
}

static void
check_number(struct walk *w, const struct jsontext_value *v, json_t *jv)
{
	const char	*num;
	size_t		 nlen;
	char		 es[JSONW_NUMBER_MAX], *canon, *copy;

	if (w->lookups++ < FUZZ_LOOKUPS && v->pointer_len <= JSONPTR_MAX_LEN) {
		FUZZ_ASSERT(jsontext_number_at(w->text, w->len, v->pointer,
		    v->pointer_len, &num, &nlen) == JSONTEXT_OK);
		FUZZ_ASSERT(num == v->text && nlen == v->len);
	}
	if (canon_number_check(v->text, v->len) != CANON_NUMBER_KEPT)
		return;
	/* Kept: jansson holds the text's nearest double, whose RFC 8785
	 * form is kept too and is what canon_dump writes. */
	FUZZ_ASSERT((copy = malloc(v->len + 1)) != NULL);
	memcpy(copy, v->text, v->len);
	copy[v->len] = '\0';
	FUZZ_ASSERT(strtod(copy, NULL) == json_number_value(jv));
	free(copy);
	FUZZ_ASSERT(jsonw_number(json_number_value(jv), es) > 0);
	FUZZ_ASSERT(canon_number_check(es, strlen(es)) == CANON_NUMBER_KEPT);
	FUZZ_ASSERT((canon = canon_dump(jv)) != NULL);
	FUZZ_ASSERT(strcmp(canon, es) == 0);
	free(canon);
}

static int
visit(const struct jsontext_value *v, void *arg)
{
	struct walk	*w = arg;
	json_t		*jv;
	char		 first = v->len > 0 ? v->text[0] : 0;

	FUZZ_ASSERT(v->text >= w->text && v->text + v->len <= w->text + w->len);
	FUZZ_ASSERT(strlen(v->pointer) == v->pointer_len);
	if (v->pointer_len <= JSONPTR_MAX_LEN)
		FUZZ_ASSERT(jsonptr_check(v->pointer, v->pointer_len) == NULL);
	switch (v->kind) {
	case JSONTEXT_STRING:	FUZZ_ASSERT(first == '"'); break;
	case JSONTEXT_ARRAY:	FUZZ_ASSERT(first == '['); break;
	case JSONTEXT_OBJECT:	FUZZ_ASSERT(first == '{'); break;
	case JSONTEXT_NUMBER:
		FUZZ_ASSERT(first == '-' || (first >= '0' && first <= '9'));
		break;
	default:
		FUZZ_ASSERT(first == 't' || first == 'f' || first == 'n');
	}
	if (w->root == NULL || v->pointer_len > JSONPTR_MAX_LEN)
		return (0);
	jv = jsonptr_get(w->root, v->pointer, v->pointer_len);
	FUZZ_ASSERT(jv != NULL && kind_matches(v->kind, jv));
	if (v->kind == JSONTEXT_NUMBER)
		check_number(w, v, jv);
	return (0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_init(LOG_LVL_ERROR, "fuzz-jsontext");
	json_object_seed(1);
	return (0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct walk		 w;
	json_error_t		 err;
	json_t			*any;
	enum jsontext_result	 r;

	if (size > FUZZ_JSONTEXT_MAX)
		return (0);
	memset(&w, 0, sizeof(w));
	w.text = (const char *)data;
	w.len = size;
	if (memchr(data, '\0', size) == NULL) {
		any = json_loadb(w.text, size, JSON_DECODE_ANY, &err);
		w.root = json_loadb(w.text, size, JSON_DECODE_ANY |
		    JSON_REJECT_DUPLICATES, NULL);
	} else
		any = NULL;
	r = jsontext_walk(w.text, size, visit, &w);
	FUZZ_ASSERT(r == JSONTEXT_OK || r == JSONTEXT_INVALID);
	if (any != NULL)
		FUZZ_ASSERT(r == JSONTEXT_OK);
	else if (r == JSONTEXT_OK && memchr(data, '\0', size) == NULL)
		FUZZ_ASSERT(strstr(err.text, "too big integer") != NULL ||
		    strstr(err.text, "too big negative integer") != NULL ||
		    strstr(err.text, "real number overflow") != NULL);
	json_decref(any);
	json_decref(w.root);
	return (0);
}
