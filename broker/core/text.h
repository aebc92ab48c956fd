/*
 * text: the rules every human-written string the broker accepts follows —
 * valid UTF-8, a length counted in code points (never bytes), and, for
 * reasons, not blank.  One place, so an approver's comment, a rejection
 * reason, a kill switch reason and an agent's reason are measured alike.
 */
#pragma once

#include <stddef.h>

#define TEXT_MAX_REASON	1024	/* code points, every reason and comment */

/* text_check flags */
#define TEXT_NOT_BLANK	0x1	/* refuse "" and whitespace-only text */

/* Code points of s, or -1 when s is not valid UTF-8 (overlong forms,
 * surrogates and values above U+10FFFF are invalid). */
long	text_chars(const char *s);
/* 1 if s is empty or holds only white space (ASCII and Unicode spaces,
 * including no-break and zero-width ones). */
int	text_is_blank(const char *s);
/*
 * NULL when s (NUL-terminated) is valid UTF-8 of at most max_chars code
 * points and, with TEXT_NOT_BLANK, not blank; otherwise a static phrase
 * saying what is wrong ("is blank", "is not valid UTF-8", "is too
 * long"), for the caller to prefix with the field's name.
 */
const char *text_check(const char *s, size_t max_chars, unsigned flags);
