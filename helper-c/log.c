/* log.c: the log of a detached sandbox (op `log PATH MAXSIZE`, PLAN.md
 * "Detached sandboxes").
 *
 * The init's fds 1 and 2 become pipes that only the monitor reads, so the
 * sandbox's output never depends on a hutch process: the monitor writes
 * every line to PATH as `TIMESTAMP STREAM F|P TEXT` (the k8s-file format
 * podman and CRI use: F ends a line, P is part of one that continues in the
 * next entry), and when PATH would grow past MAXSIZE it renames PATH to
 * PATH.1 (replacing the previous one) and starts a new PATH: the log never
 * takes more than about twice MAXSIZE. The monitor's own warnings after the
 * fork go there too (stream `stderr`), as the sandbox has no terminal.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LOG_CHUNK 16384

static struct {
	int active;
	unsigned long max;
	int dfd;                 /* PATH's directory */
	char name[NAME_MAX + 1]; /* PATH's last component */
	char name1[NAME_MAX + 3];
	int fd; /* PATH, appending */
	unsigned long size;
	int in[2];    /* our read ends: stdout, stderr; -1 at EOF */
	int child[2]; /* the init's write ends until the fork is done */
} L = {.dfd = -1, .fd = -1, .in = {-1, -1}, .child = {-1, -1}};

static const char *const STREAM[2] = {"stdout", "stderr"};

static void open_log(void)
{
	struct stat st;
	L.fd = openat(L.dfd, L.name, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	L.size = L.fd >= 0 && fstat(L.fd, &st) == 0 ? (unsigned long)st.st_size : 0;
}

/* Monitor, before it forks the init: open PATH (its directory without
 * following a symlink in the last step) and make the two pipes. */
void log_before_fork(struct plan *p)
{
	const struct op *o = NULL;
	char dir[PATH_MAX];
	for (int i = 0; i < p->nops; i++)
		if (p->ops[i].kind == OP_LOG)
			o = &p->ops[i];
	if (!o)
		return;
	g_op = o;
	L.active = 1;
	L.max = o->u.log_max;
	const char *slash = strrchr(o->f[0], '/');
	size_t dlen = (size_t)(slash - o->f[0]);
	if (dlen >= sizeof dir || strlen(slash + 1) > NAME_MAX || !slash[1])
		fail("log %s: bad path", o->f[0]);
	memcpy(dir, o->f[0], dlen);
	dir[dlen] = 0;
	snprintf(L.name, sizeof L.name, "%s", slash + 1);
	snprintf(L.name1, sizeof L.name1, "%s.1", slash + 1);
	L.dfd = open(dlen ? dir : "/", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (L.dfd < 0)
		fail_errno("log directory %s", dlen ? dir : "/");
	open_log();
	if (L.fd < 0)
		fail_errno("open the log %s", o->f[0]);
	for (int s = 0; s < 2; s++) {
		int pp[2];
		if (pipe2(pp, O_CLOEXEC))
			fail_errno("pipe for the log");
		L.in[s] = pp[0];
		L.child[s] = pp[1];
		fcntl(pp[0], F_SETFL, fcntl(pp[0], F_GETFL) | O_NONBLOCK);
	}
}

/* The init: its stdout and stderr are the pipes' write ends. */
void log_in_child(void)
{
	if (!L.active)
		return;
	for (int s = 0; s < 2; s++) {
		close(L.in[s]);
		if (dup2(L.child[s], s + 1) < 0)
			fail_errno("dup2 for the log");
		close(L.child[s]);
	}
	close(L.fd);
	close(L.dfd);
}

/* One entry; rotates first when it would not fit. Write errors (a full
 * disk) drop the entry: the sandbox must not stall on its log. */
static void write_entry(int stream, const char *text, size_t len, int full)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%09ldZ %s %c ", now.tv_nsec, STREAM[stream], full ? 'F' : 'P');
	size_t total = strlen(ts) + len + 1;
	if (L.fd >= 0 && L.size && L.size + total > L.max) {
		close(L.fd);
		renameat(L.dfd, L.name, L.dfd, L.name1);
		open_log();
	}
	if (L.fd < 0)
		return;
	struct iovec iov[3] = {{ts, strlen(ts)}, {(void *)text, len}, {"\n", 1}};
	ssize_t w = writev(L.fd, iov, 3);
	if (w > 0)
		L.size += (unsigned long)w;
}

static void log_warning(const char *line)
{
	write_entry(1, line, strlen(line), 1);
}

/* Monitor, after the fork: only the init holds the write ends now. */
void log_after_fork(void)
{
	if (!L.active)
		return;
	for (int s = 0; s < 2; s++) {
		close(L.child[s]);
		L.child[s] = -1;
	}
	g_stderr_hook = log_warning;
}

int log_pollfds(struct pollfd *pf)
{
	int n = 0;
	for (int s = 0; s < 2; s++)
		if (L.in[s] >= 0)
			pf[n++] = (struct pollfd){L.in[s], POLLIN, 0};
	return n;
}

/* Read what one pipe has: complete lines are F entries, the rest of the
 * chunk a P entry (the line goes on in the next read). Returns 0 when
 * nothing was there. */
static int pump(int s)
{
	static char buf[LOG_CHUNK];
	ssize_t r = read(L.in[s], buf, sizeof buf);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		close(L.in[s]);
		L.in[s] = -1;
		return 0;
	}
	size_t start = 0;
	for (size_t i = 0; i < (size_t)r; i++)
		if (buf[i] == '\n') {
			write_entry(s, buf + start, i - start, 1);
			start = i + 1;
		}
	if (start < (size_t)r)
		write_entry(s, buf + start, (size_t)r - start, 0);
	return 1;
}

void log_events(struct pollfd *pf, int n)
{
	for (int i = 0; i < n; i++)
		if (pf[i].revents)
			for (int s = 0; s < 2; s++)
				if (L.in[s] == pf[i].fd)
					pump(s);
}

/* After the init exited: what is left in the pipes (until EOF, or 200 ms
 * without data when something outside a pid namespace still holds them). */
void log_drain(void)
{
	for (;;) {
		struct pollfd pf[2];
		int n = log_pollfds(pf);
		if (!n || poll(pf, (nfds_t)n, 200) <= 0)
			break;
		log_events(pf, n);
	}
	for (int s = 0; s < 2; s++)
		if (L.in[s] >= 0) {
			close(L.in[s]);
			L.in[s] = -1;
		}
}
