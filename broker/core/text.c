/*
 * text: counting code points and telling white space from text (the
 * decoding itself is utf8.c's).  No allocation, no locale: the same
 * answer on every machine.
 */
#include <stdint.h>

#include "text.h"
#include "utf8.h"

/* Decode one code point at *p (advancing it); -1 on invalid UTF-8. */
static long
text_next(const unsigned char **pp)
{
	uint32_t	 c;
	size_t		 len;

	/* At most 4 bytes are read, and a NUL stops a sequence early. */
	if ((len = utf8_decode(*pp, 4, &c)) == 0)
		return (-1);
	*pp += len;
	return ((long)c);
}

long
text_chars(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	long			 n = 0;

	while (*p) {
		if (text_next(&p) < 0)
			return (-1);
		n++;
	}
	return (n);
}

static int
text_is_space(long c)
{
	switch (c) {
	case ' ': case '\t': case '\n': case '\r': case '\v': case '\f':
	case 0x85: case 0xa0: case 0x1680: case 0x180e:
	case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
	case 0xfeff:
		return (1);
	}
	return (c >= 0x2000 && c <= 0x200b);
}

int
text_is_blank(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	long			 c;

	while (*p) {
		/* Invalid UTF-8 is not blank: text_check refuses it anyway. */
		if ((c = text_next(&p)) < 0 || !text_is_space(c))
			return (0);
	}
	return (1);
}

const char *
text_check(const char *s, size_t max_chars, unsigned flags)
{
	long	 n;

	if (s == NULL)
		return ("is missing");
	if ((n = text_chars(s)) < 0)
		return ("is not valid UTF-8");
	if ((size_t)n > max_chars)
		return ("is too long");
	if ((flags & TEXT_NOT_BLANK) && text_is_blank(s))
		return ("is blank");
	return (NULL);
}
