/*
 * arena: every byte of an immutable snapshot (the policy's), freed at
 * once, and the string map (htab) that indexes it.  Pure memory
 * management: no I/O, no locking.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct arena_blk {
	struct arena_blk	*next;
	size_t			 used;
	size_t			 size;
	max_align_t		 data[];
};

struct arena {
	struct arena_blk	*head;
};

/* Zeroed memory that lives as long as the arena; NULL when out of memory. */
void	*arena_alloc(struct arena *a, size_t n);
/* arena_alloc(nmemb * size), NULL on overflow. */
void	*arena_calloc(struct arena *a, size_t nmemb, size_t size);
/* A NUL-terminated copy of len bytes of s inside the arena. */
char	*arena_strndup(struct arena *a, const char *s, size_t len);
void	 arena_free(struct arena *a);

/* A string map with a fixed capacity for n keys, allocated in a. */
struct hent {
	const char	*key;
	size_t		 klen;
	void		*val;
};

struct htab {
	struct hent	*e;
	size_t		 mask;
};

int	 htab_init(struct htab *t, struct arena *a, size_t n);
/* key must outlive the table; keys are unique (the caller's duty). */
void	 htab_put(struct htab *t, const char *key, size_t klen, void *val);
/* The value stored for key, or NULL. */
void	*htab_get(const struct htab *t, const char *key, size_t klen);
