/*
 * check: the table-test assertion the unit tests share.  CHECK(cond, fmt,
 * ...) counts a pass, or counts a failure and says where and why on
 * stderr, and carries on so that one run reports every failing row.  Each
 * test defines `static int passed, failed;` and exits non-zero when
 * failed is not 0.
 */
#pragma once

#include <stdio.h>

#define CHECK(cond, ...) do {						\
	if (cond)							\
		passed++;						\
	else {								\
		failed++;						\
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);	\
		fprintf(stderr, __VA_ARGS__);				\
		fputc('\n', stderr);					\
	}								\
} while (0)
