/*
 * syslog_capture.so: an LD_PRELOAD shim that catches what a PAM module logs,
 * without root and without touching the machine's syslog.
 *
 * Google's module calls openlog()/vsyslog() itself (compiled to
 * __vsyslog_chk); pam_syslog() in libpam formats and calls syslog()
 * (__syslog_chk). pam_wrapper only intercepts pam_syslog, and only prints it
 * among its own debug lines, so one shim below both gives one format for both
 * modules. (The harness sets PAM_WRAPPER_USE_SYSLOG=1 so that pam_wrapper
 * hands pam_syslog on to libpam instead of swallowing it.)
 *
 * With PAM_TOTP_TEST_SYSLOG=FILE set, every message is appended to FILE as one
 * line, with one write(2) so concurrent writers do not interleave:
 *
 *     <priority 0-7> TAB <facility number> TAB <ident> TAB <message>
 *
 * Backslash, tab, newline, carriage return and other bytes outside printable
 * ASCII in ident and message are escaped as \\ \t \n \r \xNN.
 * Without the variable, calls go on to the real libc functions.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define MESSAGE_MAX 4096
/* Worst case every byte becomes \xNN, plus the fields around them. */
#define LINE_MAX_BYTES (4 * (MESSAGE_MAX + 256) + 64)

static char current_ident[256];
static int current_facility = LOG_USER;

static const char *capture_file(void)
{
	const char *path = getenv("PAM_TOTP_TEST_SYSLOG");
	return (path != NULL && path[0] != '\0') ? path : NULL;
}

static size_t escape_into(char *out, size_t pos, size_t cap, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (pos + 4 >= cap) {
			break;
		}
		switch (*p) {
		case '\\': out[pos++] = '\\'; out[pos++] = '\\'; break;
		case '\t': out[pos++] = '\\'; out[pos++] = 't'; break;
		case '\n': out[pos++] = '\\'; out[pos++] = 'n'; break;
		case '\r': out[pos++] = '\\'; out[pos++] = 'r'; break;
		default:
			if (*p >= 0x20 && *p <= 0x7e) {
				out[pos++] = (char)*p;
			} else {
				out[pos++] = '\\';
				out[pos++] = 'x';
				out[pos++] = hex[*p >> 4];
				out[pos++] = hex[*p & 0xf];
			}
		}
	}
	return pos;
}

static void capture(const char *path, int priority, const char *format, va_list args)
{
	/* %m in the format reads errno: format before anything can change it. */
	int saved_errno = errno;
	char message[MESSAGE_MAX];
	char line[LINE_MAX_BYTES];
	int facility = (priority & LOG_FACMASK) != 0 ? (priority & LOG_FACMASK) : current_facility;

	if (vsnprintf(message, sizeof(message), format, args) < 0) {
		message[0] = '\0';
	}
	int head = snprintf(line, sizeof(line), "%d\t%d\t", LOG_PRI(priority), LOG_FAC(facility));
	size_t pos = head > 0 ? (size_t)head : 0;
	pos = escape_into(line, pos, sizeof(line) - 2, current_ident);
	line[pos++] = '\t';
	pos = escape_into(line, pos, sizeof(line) - 1, message);
	line[pos++] = '\n';

	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		ssize_t ignored = write(fd, line, pos);
		(void)ignored;
		close(fd);
	}
	errno = saved_errno;
}

typedef void (*vsyslog_fn)(int, const char *, va_list);

static void forward(int priority, const char *format, va_list args)
{
	vsyslog_fn real = (vsyslog_fn)dlsym(RTLD_NEXT, "vsyslog");
	if (real != NULL) {
		real(priority, format, args);
	}
}

static void dispatch(int priority, const char *format, va_list args)
{
	const char *path = capture_file();
	if (path != NULL) {
		capture(path, priority, format, args);
	} else {
		forward(priority, format, args);
	}
}

void openlog(const char *ident, int option, int facility)
{
	snprintf(current_ident, sizeof(current_ident), "%s", ident != NULL ? ident : "");
	current_facility = facility;
	if (capture_file() == NULL) {
		void (*real)(const char *, int, int) =
			(void (*)(const char *, int, int))dlsym(RTLD_NEXT, "openlog");
		if (real != NULL) {
			real(ident, option, facility);
		}
	}
}

void closelog(void)
{
	current_ident[0] = '\0';
	current_facility = LOG_USER;
	if (capture_file() == NULL) {
		void (*real)(void) = (void (*)(void))dlsym(RTLD_NEXT, "closelog");
		if (real != NULL) {
			real();
		}
	}
}

void vsyslog(int priority, const char *format, va_list args)
{
	dispatch(priority, format, args);
}

void syslog(int priority, const char *format, ...)
{
	va_list args;
	va_start(args, format);
	dispatch(priority, format, args);
	va_end(args);
}

/* The _FORTIFY_SOURCE variants callers are compiled to; the flag is unused. */
void __vsyslog_chk(int priority, int flag, const char *format, va_list args)
{
	(void)flag;
	dispatch(priority, format, args);
}

void __syslog_chk(int priority, int flag, const char *format, ...)
{
	va_list args;
	(void)flag;
	va_start(args, format);
	dispatch(priority, format, args);
	va_end(args);
}
