/*
 * arena: the memory of immutable snapshots — an arena that hands out
 * zeroed blocks and frees them all at once, and a fixed-size
 * open-addressing string map built once inside it.  No locking: what is
 * built here is written by one thread and afterwards only read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

#define ARENA_BLOCK	(64 * 1024)
#define ARENA_ALIGN	(sizeof(max_align_t))

/* ---- arena ---- */

/* Zeroed memory that lives as long as the arena; NULL when out of memory. */
void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_blk	*b = a->head;
	size_t			 sz;
	void			*p;

	n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN;
	if (b == NULL || b->size - b->used < n) {
		sz = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		if ((b = calloc(1, sizeof(*b) + sz)) == NULL)
			return (NULL);
		b->size = sz;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	return (p);
}

void *
arena_calloc(struct arena *a, size_t nmemb, size_t size)
{
	if (size != 0 && nmemb > SIZE_MAX / size)
		return (NULL);
	return (arena_alloc(a, nmemb * size));
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	char	*d;

	if ((d = arena_alloc(a, len + 1)) == NULL)
		return (NULL);
	memcpy(d, s, len);
	d[len] = '\0';
	return (d);
}

void
arena_free(struct arena *a)
{
	struct arena_blk	*b, *next;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
}

/* ---- htab ---- */

static uint64_t
htab_hash(const char *s, size_t len)
{
	uint64_t	 h = 14695981039346656037ULL;	/* FNV-1a */
	size_t		 i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return (h);
}

int
htab_init(struct htab *t, struct arena *a, size_t n)
{
	size_t	 cap = 8;

	while (cap < 2 * n)
		cap <<= 1;
	if ((t->e = arena_calloc(a, cap, sizeof(*t->e))) == NULL)
		return (-1);
	t->mask = cap - 1;
	return (0);
}

/* key must outlive the table (it points into the arena).  Duplicate keys
 * cannot happen: the document was parsed with JSON_REJECT_DUPLICATES. */
void
htab_put(struct htab *t, const char *key, size_t klen, void *val)
{
	size_t	 i = (size_t)htab_hash(key, klen) & t->mask;

	while (t->e[i].key != NULL)
		i = (i + 1) & t->mask;
	t->e[i].key = key;
	t->e[i].klen = klen;
	t->e[i].val = val;
}

void *
htab_get(const struct htab *t, const char *key, size_t klen)
{
	size_t	 i;

	if (t->e == NULL)
		return (NULL);
	i = (size_t)htab_hash(key, klen) & t->mask;
	for (; t->e[i].key != NULL; i = (i + 1) & t->mask)
		if (t->e[i].klen == klen && memcmp(t->e[i].key, key, klen) == 0)
			return (t->e[i].val);
	return (NULL);
}
