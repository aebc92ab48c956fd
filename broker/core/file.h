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

/*
 * A private key file: readable, and not readable or writable by group
 * or others (httpd's check_file_secrecy: a key that leaked once is not a
 * key).  0, or -1 with "cannot read key: ..." or "private key is
 * accessible by group or others (mode 0644): chmod 600 it" in why.
 */
int	file_check_secret(const char *path, char *why, size_t whylen);
