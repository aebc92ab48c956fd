/*
 * jsonw-diff: compare jsonw with jansson on one value (see jsonw-diff.h).
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
	int		 sorted;

	for (sorted = 0; sorted <= 1 && why == NULL; sorted++) {
		ours = jsonw_dump(v, sorted, &len);
		theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
		    (sorted ? JSON_SORT_KEYS : 0));
		if (ours == NULL || theirs == NULL)
			why = "out of memory";
		else if (strcmp(ours, theirs) != 0) {
			fprintf(stderr, "jsonw:   %s\njansson: %s\n", ours,
			    theirs);
			why = "jsonw differs from jansson";
		} else if (len != strlen(ours))
			why = "jsonw reported a wrong length";
		free(ours);
		free(theirs);
	}
	return (why);
}
