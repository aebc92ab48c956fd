/*
 * jsonw-diff: compare jsonw's legacy style with jansson on one value (see
 * jsonw-diff.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"
#include "jsonw-diff.h"

const char *
jsonw_diff(const json_t *v)
{
	const char	*why = NULL;
	char		*ours, *theirs;
	size_t		 len = 0;

	ours = jsonw_dump(v, JSONW_LEGACY, &len);
	theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
	    JSON_SORT_KEYS);
	if (ours == NULL || theirs == NULL)
		why = "out of memory";
	else if (strcmp(ours, theirs) != 0) {
		fprintf(stderr, "jsonw:   %s\njansson: %s\n", ours, theirs);
		why = "jsonw differs from jansson";
	} else if (len != strlen(ours))
		why = "jsonw reported a wrong length";
	free(ours);
	free(theirs);
	return (why);
}
