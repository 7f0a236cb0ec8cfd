/* await.c: `hutch-helper await`, what a foreground `hutch run` becomes once
 * its command runs (src/cli/handover.ts). hutch (Node) execs this in its own
 * process, so the pid the user's shell waits for, and the parent of the
 * monitor, stay the same, and no Node stays resident for the sandbox's life.
 *
 *   hutch-helper await MONITOR INIT CGROUP|- STATEDIR|- TIMEOUT_MS TEXT|-
 *
 * It waits for the monitor (its child), forwards the signals hutch forwards
 * (SIGTERM, SIGINT, ... as the monitor's list), and exits with the status
 * hutch would have: the monitor's code, 128+N for a signal N. What hutch's
 * limits hook did after the start is done here: --timeout (TIMEOUT_MS > 0,
 * what is left of it: "hutch: TEXT" on stderr, the sandbox killed, exit 124;
 * TEXT -: it fired in hutch just before the exec, kill at once), the thaw of
 * a paused sandbox on a stopping signal, Ctrl-Z (SIGTSTP: the cgroup frozen
 * with hutch, thawed at fg), and after the exit the OOM message and the
 * removal of the sandbox cgroup CGROUP (the monitor leaves it to us when it
 * ends normally, so that the OOM count can still be read). A monitor killed
 * by a signal ran no cleanup: STATEDIR is removed here (best effort, as
 * hutch did). Other children of hutch (a NAT started with an exit fd the
 * monitor holds) are reaped as they exit. The monitor watches this process
 * through a pidfd: when it dies, even by SIGKILL, the sandbox is torn down.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct {
	pid_t monitor, init;
	const char *cgroup; /* NULL: none */
	int timed_out;
} A;

static int cg_write(const char *file, const char *text)
{
	char path[PATH_MAX];
	if (!A.cgroup || snprintf(path, sizeof path, "%s/%s", A.cgroup, file) >= (int)sizeof path)
		return -1;
	return write_file(path, text);
}

/* A number from a cgroup file: the value of KEY in a keyed file (KEY NUM
 * lines), the file's first number without KEY; -1 when absent or "max". */
static long long cg_number(const char *file, const char *key)
{
	char path[PATH_MAX], buf[4096];
	if (!A.cgroup || snprintf(path, sizeof path, "%s/%s", A.cgroup, file) >= (int)sizeof path)
		return -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	const char *at = buf;
	if (key) {
		size_t k = strlen(key);
		for (at = buf; at; at = strchr(at, '\n'), at = at ? at + 1 : NULL)
			if (!strncmp(at, key, k) && at[k] == ' ')
				break;
		if (!at)
			return -1;
		at += k + 1;
	}
	if (*at < '0' || *at > '9')
		return -1;
	return strtoll(at, NULL, 10);
}

/* As src/util/units.ts formatBytes. */
static void format_bytes(long long n, char *out, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int i = 0;
	if (n < 0) {
		snprintf(out, size, "unlimited");
		return;
	}
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0 || v >= 100 || v == (double)(long long)v)
		snprintf(out, size, "%.0f %s", v, units[i]);
	else
		snprintf(out, size, "%.1f %s", v, units[i]);
}

/* As src/cgroup/report.ts oomMessage, for hutch's limits hook. */
static void oom_message(int code)
{
	long long kills = cg_number("memory.events", "oom_kill");
	if (kills <= 0)
		return;
	long long peak = cg_number("memory.peak", NULL);
	char max[32], top[32];
	format_bytes(cg_number("memory.max", NULL), max, sizeof max);
	format_bytes(peak >= 0 ? peak : cg_number("memory.current", NULL), top, sizeof top);
	if (code == 128 + SIGKILL)
		dprintf(2, "hutch: killed: out of memory, limit %s, peak %s\n", max, top);
	else
		dprintf(2, "hutch: out of memory: %lld process%s in the sandbox killed (limit %s, peak %s)\n", kills,
			kills > 1 ? "es" : "", max, top);
}

/* rmdir, retried while the pid namespace's last processes exit (as the
 * monitor's remove-cgroup). */
static void remove_cgroup(void)
{
	struct timespec ten_ms = {0, 10 * 1000000L};
	for (int t = 0; A.cgroup; t++) {
		if (rmdir(A.cgroup) == 0 || errno == ENOENT)
			return;
		if (errno != EBUSY || t == 500) {
			dprintf(2, "hutch: warning: cannot remove the sandbox cgroup %s: %s\n", A.cgroup,
				strerror(errno));
			return;
		}
		if (t == 50)
			cg_write("cgroup.kill", "1");
		nanosleep(&ten_ms, NULL);
	}
}

/* hutch's --timeout: kill the whole sandbox (its cgroup, else its pid 1:
 * the pid namespace ends with it). */
static void time_out(const char *text)
{
	A.timed_out = 1;
	if (text) /* none: hutch said it already, its kill was under way */
		dprintf(2, "hutch: %s\n", text);
	if (cg_write("cgroup.kill", "1"))
		kill(A.init, SIGKILL);
}

/* Ctrl-Z at the host terminal: hutch and the sandbox stop together, fg
 * resumes both (src/sandbox/suspend.ts); only handed over with a cgroup. */
static void suspend(void)
{
	cg_write("cgroup.freeze", "1");
	kill(getpid(), SIGSTOP);
	cg_write("cgroup.freeze", "0");
}

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v <= 0 || v > INT_MAX)
		return -1;
	*out = (pid_t)v;
	return 0;
}

int await_main(int argc, char **argv)
{
	unsigned long timeout_ms = 0;
	char *end;
	if (argc != 8 || parse_pid(argv[2], &A.monitor) || parse_pid(argv[3], &A.init)) {
		dprintf(2, "usage: hutch-helper await MONITOR INIT CGROUP|- STATEDIR|- TIMEOUT_MS TEXT|-\n");
		return EXIT_SETUP;
	}
	A.cgroup = strcmp(argv[4], "-") ? argv[4] : NULL;
	const char *state_dir = strcmp(argv[5], "-") ? argv[5] : NULL;
	timeout_ms = strtoul(argv[6], &end, 10);
	if (!argv[6][0] || *end) {
		dprintf(2, "hutch-helper await: TIMEOUT_MS %s is not a number\n", argv[6]);
		return EXIT_SETUP;
	}

	sigset_t set;
	forward_signal_set(&set);
	if (A.cgroup)
		sigaddset(&set, SIGTSTP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGCHLD, SIG_DFL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		dprintf(2, "hutch-helper await: signalfd: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	int timer = -1;
	if (timeout_ms && !strcmp(argv[7], "-"))
		/* hutch's --timeout fired just before the exec and hutch killed the
		 * sandbox then: keep the 124, kill nothing again (pid 1 may be
		 * reaped already, its pid free for another process) */
		A.timed_out = 1;
	else if (timeout_ms) {
		/* MS is what hutch's own timer had left (hutch counts from the init's start) */
		struct itimerspec its = {{0, 0}, {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L}};
		timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		if (timer < 0 || timerfd_settime(timer, 0, &its, NULL)) {
			dprintf(2, "hutch-helper await: timerfd: %s\n", strerror(errno));
			return EXIT_SETUP;
		}
	}

	int status = 0;
	for (;;) {
		/* reap first: the monitor may have exited before the exec */
		pid_t pid;
		int st, done = 0;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			if (pid == A.monitor) {
				status = st;
				done = 1;
			}
		if (done)
			break;
		if (pid < 0 && errno == ECHILD) {
			dprintf(2, "hutch-helper await: %d is not a child of this process\n", (int)A.monitor);
			return EXIT_SETUP;
		}
		struct pollfd pf[2] = {{sfd, POLLIN, 0}, {timer, POLLIN, 0}};
		if (poll(pf, 2, -1) < 0)
			continue;
		if (pf[1].revents) {
			close(timer);
			timer = -1;
			time_out(argv[7]);
		}
		struct signalfd_siginfo si;
		if (!(pf[0].revents & POLLIN) || read(sfd, &si, sizeof si) != sizeof si)
			continue;
		int sig = (int)si.ssi_signo;
		if (sig == SIGCHLD || sig == SIGPIPE)
			continue;
		if (sig == SIGTSTP) {
			suspend();
			continue;
		}
		/* a paused sandbox would keep the signal waiting until hutch resume */
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT)
			cg_write("cgroup.freeze", "0");
		kill(A.monitor, sig);
	}

	int code = exit_code_of(status);
	if (!A.timed_out)
		oom_message(code);
	remove_cgroup();
	if (WIFSIGNALED(status) && state_dir && cleanup_path(state_dir))
		dprintf(2, "hutch: warning: cannot remove %s (hutch system prune does)\n", state_dir);
	return A.timed_out ? 124 : code;
}
