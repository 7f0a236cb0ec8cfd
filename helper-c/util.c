/* util.c: error reporting and small fd/signal helpers shared by all roles. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

const struct op *g_op;
int g_report_fd = -1;
void (*g_fatal_hook)(void);
void (*g_stderr_hook)(const char *line);

/* The helper's own messages: stderr, or the log of a detached sandbox
 * (log.c), which has no terminal to print on. */
static void print_line(const char *line)
{
	if (g_stderr_hook)
		g_stderr_hook(line);
	else
		dprintf(2, "%s\n", line);
}

const int g_forward_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};
const int g_nforward_signals = sizeof g_forward_signals / sizeof g_forward_signals[0];

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w, len -= (size_t)w;
	}
	return 0;
}

int write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = write_all(fd, content, strlen(content));
	int saved = errno;
	close(fd);
	errno = saved;
	return r;
}

/* One line on the report pipe. Lines are short (< PIPE_BUF) so writes from
 * the monitor and the init never interleave. Newlines inside are flattened:
 * the protocol is one record per line. A broken pipe is ignored (SIGPIPE is
 * blocked): hutch may be gone, the lifeline handles that. */
void report(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	if (g_report_fd < 0)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	write_all(g_report_fd, buf, (size_t)n);
}

/* The symbolic name of an errno ("ENOENT"), or its number when the table
 * has no name: the report pipe carries names so that hutch does not depend
 * on this libc's strerror wording. */
static const char *errno_name(int err, char *buf, size_t len)
{
/* clang-format off */
#define E(x) {x, #x}
	/* clang-format on */
	static const struct {
		int nr;
		const char *name;
	} names[] = {
		E(EPERM),   E(ENOENT),     E(ESRCH),     E(EINTR),        E(EIO),     E(ENXIO),     E(E2BIG),
		E(ENOEXEC), E(EBADF),      E(ECHILD),    E(EAGAIN),       E(ENOMEM),  E(EACCES),    E(EFAULT),
		E(EBUSY),   E(EEXIST),     E(EXDEV),     E(ENODEV),       E(ENOTDIR), E(EISDIR),    E(EINVAL),
		E(ENFILE),  E(EMFILE),     E(ETXTBSY),   E(EFBIG),        E(ENOSPC),  E(ESPIPE),    E(EROFS),
		E(EMLINK),  E(EPIPE),      E(ERANGE),    E(ENAMETOOLONG), E(ENOSYS),  E(ENOTEMPTY), E(ELOOP),
		E(EUSERS),  E(EOPNOTSUPP), E(ETIMEDOUT), E(ESTALE),       E(EDQUOT),  E(ENOTCONN),  E(EOVERFLOW),
	};
#undef E
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].nr == err)
			return names[i].name;
	snprintf(buf, len, "%d", err);
	return buf;
}

/* A failure, as facts: what was being done (the message), the errno, the
 * op's plan line. With a report pipe it goes there only, as
 * `error LINE ERRNO TEXT`, and hutch tells the user what it means (it
 * knows which flag or profile field made the op); without one (a probe, a
 * plan run by hand) it is printed on stderr. */
static void vcomplain(const char *fmt, va_list ap, int err)
{
	char msg[1536], ename[16];
	size_t n = (size_t)vsnprintf(msg, sizeof msg, fmt, ap);
	if (n >= sizeof msg)
		n = sizeof msg - 1;
	if (g_report_fd >= 0) {
		report("error %d %s %s", g_op ? g_op->line : 0, err ? errno_name(err, ename, sizeof ename) : "-", msg);
		return;
	}
	if (err)
		n += (size_t)snprintf(msg + n, sizeof msg - n, ": %s", strerror(err));
	if (n < sizeof msg && g_op)
		snprintf(msg + n, sizeof msg - n, " (op %d: %s)", g_op->line, g_op->text);
	char line[sizeof msg + 8];
	snprintf(line, sizeof line, "hutch: %s", msg);
	print_line(line);
}

void complain(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcomplain(fmt, ap, 0);
	va_end(ap);
}

static _Noreturn void die(void)
{
	if (g_fatal_hook) {
		void (*hook)(void) = g_fatal_hook;
		g_fatal_hook = NULL; /* a failure inside the hook must not recurse */
		hook();
	}
	_exit(EXIT_SETUP);
}

void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcomplain(fmt, ap, 0);
	va_end(ap);
	die();
}

void fail_errno(const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	va_start(ap, fmt);
	vcomplain(fmt, ap, err);
	va_end(ap);
	die();
}

void warn(const char *fmt, ...)
{
	va_list ap;
	char msg[1024];
	va_start(ap, fmt);
	int n = snprintf(msg, sizeof msg, "hutch: warning: ");
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	print_line(msg);
}

static void close_range_or_loop(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	/* kernels < 5.9: close one by one up to the fd limit */
	struct rlimit rl;
	unsigned max = 65536;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
		max = (unsigned)rl.rlim_cur;
	for (unsigned fd = lo; fd <= hi && fd < max; fd++)
		close((int)fd);
}

/* Close every fd >= lowfd except those in keep (order irrelevant). */
void close_fds_from(int lowfd, const int *keep, int nkeep)
{
	int sorted[nkeep + 1];
	if (nkeep) /* keep may be NULL then: memcpy(_, NULL, 0) is undefined */
		memcpy(sorted, keep, sizeof(int) * (size_t)nkeep);
	for (int i = 1; i < nkeep; i++) /* insertion sort: a handful of fds */
		for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
			int t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	unsigned lo = (unsigned)lowfd;
	for (int i = 0; i < nkeep; i++) {
		if (sorted[i] < lowfd)
			continue;
		if ((unsigned)sorted[i] > lo)
			close_range_or_loop(lo, (unsigned)sorted[i] - 1);
		lo = (unsigned)sorted[i] + 1;
	}
	close_range_or_loop(lo, ~0U);
}

/* Children that exec something must not inherit our blocked mask or any
 * handler/ignore disposition (SIG_IGN survives exec). */
void reset_signals(void)
{
	sigset_t none;
	for (int s = 1; s < 65; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* A wait status as an exit code: the code, or 128+N for signal N. */
int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_SETUP;
}
