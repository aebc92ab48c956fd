#ifndef TOOLGATE_JSONW_H
#define TOOLGATE_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * The compact JSON text of v (any type), identical to jansson's json_dumps
 * with JSON_COMPACT | JSON_ENCODE_ANY, plus JSON_SORT_KEYS when sorted is
 * not 0.  Returns a malloc'd NUL-terminated string (its length in *len when
 * len is not NULL) or NULL when out of memory.
 */
char	*jsonw_dump(const json_t *v, int sorted, size_t *len);

#endif
