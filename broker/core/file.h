/*
 * file: why a file named on a command line cannot be used.
 */
#pragma once

#include <sys/types.h>

#include <stddef.h>

/* 0 when path is a file this process can open for reading; else -1 with
 * the reason (strerror text, "is a directory", "no file given" for NULL)
 * in why. */
int	file_readable(const char *path, char *why, size_t whylen);

/* The same, and its mode bits into *mode when it can be read. */
int	file_check(const char *path, mode_t *mode, char *why, size_t whylen);
