/*
 * jsonptr: RFC 6901 JSON Pointer syntax, evaluation on jansson values and
 * token escaping.  Pointers come from policies (amount_from and argument
 * conditions) and from jsontext, which writes the pointer of every value
 * it reads; both sides escape the same way, so equal pointers are equal
 * bytes.  Nothing here allocates or logs.
 */
#include <stdint.h>
#include <string.h>

#include "jsonptr.h"
#include "utf8.h"

const char *
jsonptr_check(const char *ptr, size_t len)
{
	const unsigned char	*s = (const unsigned char *)ptr;
	size_t			 i, n;
	uint32_t		 c;

	if (len > JSONPTR_MAX_LEN)
		return ("a pointer is at most 1024 bytes long");
	if (len > 0 && ptr[0] != '/')
		return ("a pointer starts with / (\"/amount\", \"/to/iban\"), "
		    "or is \"\" for the whole document");
	for (i = 0; i < len; i += n) {
		if (s[i] == '~' && (i + 1 == len || (s[i + 1] != '0' &&
		    s[i + 1] != '1')))
			return ("~ in a pointer must be followed by 0 or 1: "
			    "write ~0 for ~ and ~1 for / inside a name");
		if ((n = utf8_decode(s + i, len - i, &c)) == 0 || c == 0)
			return ("a pointer must be UTF-8 text without NUL");
	}
	return (NULL);
}

/* Token tok (len bytes, escaped) unescaped into out (room for len). */
static size_t
jsonptr_unescape(char *out, const char *tok, size_t len)
{
	size_t	 i, n = 0;

	for (i = 0; i < len; i++) {
		if (tok[i] == '~' && i + 1 < len) {
			out[n++] = tok[i + 1] == '0' ? '~' : '/';
			i++;
		} else
			out[n++] = tok[i];
	}
	return (n);
}

/* Index token 0 or [1-9][0-9]* below size into *index; else -1. */
static int
jsonptr_index(const char *tok, size_t len, size_t size, size_t *index)
{
	size_t	 i, v = 0;

	if (len == 0 || (len > 1 && tok[0] == '0'))
		return (-1);
	for (i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return (-1);
		if (v > (SIZE_MAX - 9) / 10)
			return (-1);
		v = v * 10 + (size_t)(tok[i] - '0');
	}
	if (v >= size)
		return (-1);
	*index = v;
	return (0);
}

json_t *
jsonptr_get(const json_t *root, const char *ptr, size_t len)
{
	char		 key[JSONPTR_MAX_LEN];
	json_t		*v = (json_t *)(uintptr_t)root;	/* returned borrowed */
	const char	*tok, *end = ptr + len, *slash;
	size_t		 klen, index;

	if (root == NULL || jsonptr_check(ptr, len) != NULL)
		return (NULL);
	for (tok = ptr; tok < end && v != NULL; tok = slash) {
		tok++;			/* past the '/' */
		if ((slash = memchr(tok, '/', (size_t)(end - tok))) == NULL)
			slash = end;
		klen = jsonptr_unescape(key, tok, (size_t)(slash - tok));
		if (json_is_object(v))
			v = json_object_getn(v, key, klen);
		else if (json_is_array(v) && jsonptr_index(key, klen,
		    json_array_size(v), &index) == 0)
			v = json_array_get(v, index);
		else
			v = NULL;
	}
	return (v);
}

size_t
jsonptr_escape(char *out, const char *key, size_t len)
{
	size_t	 i, n = 0;

	for (i = 0; i < len; i++) {
		if (key[i] == '~' || key[i] == '/') {
			out[n++] = '~';
			out[n++] = key[i] == '~' ? '0' : '1';
		} else
			out[n++] = key[i];
	}
	return (n);
}
