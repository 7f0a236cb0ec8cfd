/* monitor.c: the outer process. Runs in the caller's pid namespace, enters
 * the user namespace and the other namespaces, starts daemons, forks the
 * init, forwards signals, watches the lifeline, cleans up, and exits with
 * the init's status.
 */
#include "helper.h"
#include "netns.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_DAEMONS 16
#define MAX_SCRATCH 4

static struct {
	struct plan *p;
	pid_t init_pid;
	int init_status;
	int lifeline;    /* fd 3 after `end`, or -1 */
	int deferred_ns; /* CLONE_NEWPID/NEWTIME: applied at the init's fork */
	const struct op *deferred_op;
	struct {
		pid_t pid;
		const char *mountpoint;
		int alive;
	} daemons[MAX_DAEMONS];
	int ndaemons;
	const char *scratch[MAX_SCRATCH]; /* mounted by `scratch`, detached before cleanup */
	int nscratch;
	int detachable; /* `detach`: a `d` on the lifeline releases it */
	unsigned long timeout_ms;
	int timer; /* timerfd of `timeout`, -1 */
	int timed_out;
	pid_t parent;    /* hutch, as we were started */
	int handed_over; /* an `a` came: the lifeline is a pidfd of hutch's process, now `hutch-helper await` */
	int keep_cgroup; /* handed over and ended normally: `await` reads the cgroup's OOM count and removes it */
} M = {.timer = -1};

/* Exit status of a sandbox that `timeout` ended (as timeout(1), and hutch's --timeout). */
#define EXIT_TIMEOUT 124

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A pidfd of our child PID: POLLIN once it has exited. -1 before Linux 5.3;
 * the waits below then poll on a short timer instead, as they always did.
 * Opened only for the wait and closed after it: the init, forked later,
 * inherits none of them. */
static int child_pidfd(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Wait up to MS (at most STEP when FDS cannot wake us: a -1 fd there) for
 * an event on FDS. Daemons are waited for on events, not on a timer: a
 * sleep of N ms costs N/2 on average on every sandbox start and stop. */
static void wait_events(struct pollfd *fds, int n, long ms, long step)
{
	for (int i = 0; i < n; i++)
		if (fds[i].fd < 0 && ms > step)
			ms = step;
	if (ms > 0)
		poll(fds, (nfds_t)n, (int)ms);
}

/* ---------- shutdown path (normal exit, lifeline, fatal error) ---------- */

static void stop_daemons(void)
{
	struct pollfd pf[MAX_DAEMONS];
	int n = 0;
	for (int i = 0; i < M.ndaemons; i++)
		if (M.daemons[i].alive && kill(M.daemons[i].pid, SIGTERM) == 0)
			pf[n++] = (struct pollfd){child_pidfd(M.daemons[i].pid), POLLIN, 0};
	/* fuse-overlayfs unmounts and exits on SIGTERM; give it 3 s. Woken by
	 * the pidfds the moment the last one exits (it takes about 1 ms). */
	for (long deadline = now_ms() + 3000; n;) {
		int left = 0;
		for (int i = 0; i < M.ndaemons; i++) {
			if (!M.daemons[i].alive)
				continue;
			if (waitpid(M.daemons[i].pid, NULL, WNOHANG) == M.daemons[i].pid)
				M.daemons[i].alive = 0;
			else
				left++;
		}
		if (!left || now_ms() >= deadline)
			break;
		wait_events(pf, n, deadline - now_ms(), 10);
	}
	for (int i = 0; i < n; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	for (int i = 0; i < M.ndaemons; i++) {
		if (M.daemons[i].alive) {
			kill(M.daemons[i].pid, SIGKILL);
			waitpid(M.daemons[i].pid, NULL, 0);
			M.daemons[i].alive = 0;
		}
		/* a dead FUSE daemon leaves a "transport endpoint not connected"
		 * mount behind, which would make cleanup fail */
		umount2(M.daemons[i].mountpoint, MNT_DETACH);
	}
	/* after the daemons: fuse-overlayfs keeps its upper layer on it */
	for (int i = 0; i < M.nscratch; i++)
		umount2(M.scratch[i], MNT_DETACH);
}

static void run_cleanups(void)
{
	for (int i = 0; i < M.p->nops; i++) {
		const struct op *o = &M.p->ops[i];
		if (o->desc->phase != PHASE_CLEANUP)
			continue;
		g_op = o;
		if (cleanup_path(o->f[0]))
			warn("cleanup of %s incomplete (op %d)", o->f[0], o->line);
	}
	g_op = NULL;
}

/* `remove-cgroup PREFIX`: the sandbox cgroup hutch made for this monitor is
 * PREFIX.MONITORPID (the name says whose it is: hutch's stale-cgroup sweep
 * leaves it alone while we live). The init is gone, but what its pid
 * namespace held may still be exiting: retry while busy, kill what is left
 * after half a second. */
static void remove_cgroups(void)
{
	for (int i = 0; i < M.p->nops; i++) {
		const struct op *o = &M.p->ops[i];
		char path[PATH_MAX], kill_file[PATH_MAX + 16];
		if (o->kind != OP_REMOVE_CGROUP)
			continue;
		snprintf(path, sizeof path, "%s.%d", o->f[0], (int)getpid());
		snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", path);
		for (int t = 0;; t++) {
			if (rmdir(path) == 0 || errno == ENOENT)
				break;
			if (errno != EBUSY || t == 500) {
				warn("cannot remove the sandbox cgroup %s: %s", path, strerror(errno));
				break;
			}
			if (t == 50)
				write_file(kill_file, "1");
			sleep_ms(10);
		}
	}
}

/* `exit-file PATH`: "CODE TIME\n", written whole (a temporary file renamed
 * over PATH), so that `hutch ps -a` and `hutch wait` read the status without
 * any hutch process having watched the sandbox. */
static void write_exit_files(int code)
{
	char ts[64], tmp[PATH_MAX + 8], text[96];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
	snprintf(text, sizeof text, "%d %s\n", code, ts);
	for (int i = 0; i < M.p->nops; i++) {
		const struct op *o = &M.p->ops[i];
		if (o->kind != OP_EXIT_FILE)
			continue;
		snprintf(tmp, sizeof tmp, "%s.tmp", o->f[0]);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 || write_all(fd, text, strlen(text)) || close(fd) || rename(tmp, o->f[0]))
			warn("exit-file %s: %s", o->f[0], strerror(errno));
	}
}

static _Noreturn void finish(int code)
{
	relay_restore();
	stop_daemons();
	if (!M.keep_cgroup)
		remove_cgroups();
	run_cleanups();
	write_exit_files(code);
	report("exit %d", code);
	_exit(code);
}

static void kill_init(void)
{
	if (M.init_pid > 0) {
		kill(M.init_pid, SIGKILL);
		waitpid(M.init_pid, NULL, 0);
		M.init_pid = 0;
	}
}

static void on_fatal(void)
{
	kill_init();
	finish(EXIT_SETUP);
}

/* ---------- user namespace ---------- */

struct mapper {
	pid_t pid;
	int go;  /* write end: one byte = "the monitor has unshared" */
	int err; /* read end of the mapper's stderr */
	const char *what;
};

/* Map text "IN OUT COUNT\n..." for all ops of one kind. */
static char *map_text(struct plan *p, int upto, enum op_kind kind)
{
	size_t cap = 64, len = 0;
	char *s = calloc(1, cap);
	for (int i = 0; s && i < upto; i++) {
		struct op *o = &p->ops[i];
		if (o->kind != kind)
			continue;
		size_t need = 3 * 11 + 1; /* three uint32 and their separators */
		if (len + need >= cap && !(s = realloc(s, cap = (len + need) * 2)))
			break;
		len += (size_t)sprintf(s + len, "%u %u %u\n", o->u.map.inside, o->u.map.outside, o->u.map.count);
	}
	if (!s)
		fail_errno("out of memory");
	return s;
}

static _Noreturn void mapper_child(int go, int err, pid_t target, const char *tool, enum op_kind kind, struct plan *p,
				   int upto)
{
	char c;
	ssize_t r;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != target)
		_exit(1);
	while ((r = read(go, &c, 1)) < 0 && errno == EINTR)
		;
	/* EOF here means the monitor failed before unsharing: nothing to do */
	if (r != 1)
		_exit(1);
	dup2(err, 2);
	reset_signals();
	close_fds_from(3, NULL, 0);
	const char *file = kind == OP_UIDMAP ? "uid_map" : "gid_map";
	if (tool) {
		/* newuidmap PID IN OUT COUNT [IN OUT COUNT...] */
		int n = 0;
		for (int i = 0; i < upto; i++)
			n += p->ops[i].kind == kind;
		char *argv[3 * n + 3], pidbuf[16], nums[3 * n + 1][11];
		int a = 0, m = 0;
		snprintf(pidbuf, sizeof pidbuf, "%d", (int)target);
		argv[a++] = (char *)tool;
		argv[a++] = pidbuf;
		for (int i = 0; i < upto; i++) {
			const struct op *o = &p->ops[i];
			if (o->kind != kind)
				continue;
			uint32_t v[3] = {o->u.map.inside, o->u.map.outside, o->u.map.count};
			for (int k = 0; k < 3; k++, m++) {
				snprintf(nums[m], sizeof nums[m], "%u", v[k]);
				argv[a++] = nums[m];
			}
		}
		argv[a] = NULL;
		execv(tool, argv);
		dprintf(2, "cannot run %s: %s", tool, strerror(errno));
		_exit(1);
	}
	/* No newuidmap given: write the map ourselves from the parent user
	 * namespace. Works for a privileged caller (root); for anyone else the
	 * kernel allows only the single self-map, handled in the monitor. */
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)target, file);
	if (write_file(path, map_text(p, upto, kind))) {
		dprintf(2,
			"writing %s: %s (mapping more than your own id needs newuidmap/newgidmap "
			"and /etc/subuid, /etc/subgid entries)",
			path, strerror(errno));
		_exit(1);
	}
	_exit(0);
}

static struct mapper spawn_mapper(const char *what, const char *tool, enum op_kind kind, struct plan *p, int upto)
{
	int go[2], err[2];
	struct mapper m = {.what = what};
	pid_t self = getpid();
	if (pipe2(go, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
		fail_errno("pipe");
	m.pid = fork();
	if (m.pid < 0)
		fail_errno("fork %s", what);
	if (m.pid == 0) {
		close(go[1]);
		close(err[0]);
		mapper_child(go[0], err[1], self, tool, kind, p, upto);
	}
	close(go[0]);
	close(err[1]);
	m.go = go[1];
	m.err = err[0];
	return m;
}

/* Returns 0, or -1 with the mapper's stderr in msg. */
static int finish_mapper(struct mapper *m, char *msg, size_t len)
{
	size_t n = 0;
	ssize_t r;
	int status;
	while (n + 1 < len && ((r = read(m->err, msg + n, len - n - 1)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			n += (size_t)r;
	msg[n] = 0;
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = 0;
	close(m->err);
	while (waitpid(m->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (!n)
		snprintf(msg, len, "exited with status %d", exit_code_of(status));
	return -1;
}

static void do_userns(struct plan *p, int upto)
{
	const char *newuid = NULL, *newgid = NULL;
	int nuid = 0, ngid = 0;
	struct op *u = NULL, *g = NULL;
	for (int i = 0; i < upto; i++) {
		struct op *o = &p->ops[i];
		if (o->kind == OP_UIDMAP)
			nuid++, u = o;
		else if (o->kind == OP_GIDMAP)
			ngid++, g = o;
		else if (o->kind == OP_NEWUIDMAP)
			newuid = o->f[0];
		else if (o->kind == OP_NEWGIDMAP)
			newgid = o->f[0];
	}
	/* The kernel lets an unprivileged process map exactly its own id;
	 * anything else goes through newuidmap/newgidmap (setuid root) or a
	 * privileged mapper, which must live outside the new namespace and so
	 * is forked before unshare. */
	int self = nuid == 1 && ngid == 1 && u->u.map.count == 1 && g->u.map.count == 1 &&
		   u->u.map.outside == geteuid() && g->u.map.outside == getegid();
	struct mapper mu = {0}, mg = {0};
	if (!self) {
		mu = spawn_mapper(newuid ? "newuidmap" : "uid mapper", newuid, OP_UIDMAP, p, upto);
		mg = spawn_mapper(newgid ? "newgidmap" : "gid mapper", newgid, OP_GIDMAP, p, upto);
	}

	if (unshare(CLONE_NEWUSER))
		fail_errno("unshare(CLONE_NEWUSER)");

	int groups_denied = 0;
	if (self) {
		char buf[64];
		snprintf(buf, sizeof buf, "%u %u 1\n", u->u.map.inside, u->u.map.outside);
		if (write_file("/proc/self/uid_map", buf))
			fail_errno("writing /proc/self/uid_map");
		/* required before an unprivileged gid_map write (CVE-2014-8989) */
		if (write_file("/proc/self/setgroups", "deny") && errno != ENOENT)
			fail_errno("writing /proc/self/setgroups");
		groups_denied = 1;
		snprintf(buf, sizeof buf, "%u %u 1\n", g->u.map.inside, g->u.map.outside);
		if (write_file("/proc/self/gid_map", buf))
			fail_errno("writing /proc/self/gid_map");
	} else {
		char eu[1024], eg[1024];
		/* both mappers run in parallel */
		write_all(mu.go, "x", 1);
		write_all(mg.go, "x", 1);
		close(mu.go);
		close(mg.go);
		int ru = finish_mapper(&mu, eu, sizeof eu);
		int rg = finish_mapper(&mg, eg, sizeof eg);
		if (ru)
			fail("%s failed: %s", mu.what, eu);
		if (rg)
			fail("%s failed: %s", mg.what, eg);
	}

	/* raw syscalls: libc's wrappers broadcast to all threads (we have one)
	 * and drag that machinery into a static binary */
	if (!groups_denied && syscall(SYS_setgroups, 0, NULL) && errno != EPERM)
		fail_errno("setgroups(0)");
	if (syscall(SYS_setresgid, 0, 0, 0))
		fail_errno("setresgid(0) in the new user namespace");
	if (syscall(SYS_setresuid, 0, 0, 0))
		fail_errno("setresuid(0) in the new user namespace");
	/* Stay dumpable so that hutch (same host uid) can open
	 * the files in /proc/MONITORPID/ns/ to attach slirp4netns/pasta: a credential
	 * change would otherwise make /proc/PID/ns root-owned. */
	prctl(PR_SET_DUMPABLE, 1);
}

/* ---------- other monitor ops ---------- */

static void do_unshare(const struct op *o)
{
	int flags = o->u.ns_flags;
	/* pid and time namespaces only apply to children. Deferring them to the
	 * init's fork keeps daemons (forked earlier) out of them: a daemon
	 * forked after unshare(CLONE_NEWPID) would become the namespace's pid 1. */
	int later = flags & (CLONE_NEWPID | CLONE_NEWTIME);
	if (later) {
		M.deferred_ns |= later;
		M.deferred_op = o;
	}
	flags &= ~later;
	if (flags && unshare(flags))
		fail_errno("unshare(%s)", o->f[0]);
}

static void check_fd(int fd, const char *what)
{
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		fail_errno("%s: fd %d is not open", what, fd);
}

static void do_sync(void)
{
	char c;
	ssize_t r;
	check_fd(FD_GO, "sync");
	report("pid %d", (int)getpid());
	while ((r = read(FD_GO, &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		fail("sync: hutch closed the go pipe (fd 5) without a go byte");
}

static const char *daemon_log_path(const char *mnt)
{
	static char path[PATH_MAX];
	snprintf(path, sizeof path, "%s.log", mnt);
	return path;
}

/* ": " and the first line the daemon wrote, or "" (for a failure message). */
static const char *daemon_log_tail(const char *mnt)
{
	static char text[512];
	char buf[sizeof text - 2];
	int fd = open(daemon_log_path(mnt), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return "";
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	snprintf(text, sizeof text, ": %s", buf);
	return text;
}

static void do_daemon(const struct op *o)
{
	const char *mnt = o->f[0];
	struct stat before, now;
	if (M.ndaemons == MAX_DAEMONS)
		fail("too many daemons (max %d)", MAX_DAEMONS);
	if (stat(mnt, &before))
		fail_errno("daemon mountpoint %s", mnt);
	/* POLLPRI on it whenever a mount appears in our mount namespace; opened
	 * before the fork, so a mount that comes before the poll still counts */
	int mounts = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		fail_errno("fork daemon");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, 0);
		/* Its chatter (fuse-overlayfs warns about mount options) must not
		 * land in the command's output or a detached sandbox's log: it goes
		 * to MNT.log beside the mount point, shown when the daemon fails. */
		int log = open(daemon_log_path(mnt), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		reset_signals();
		close_fds_from(3, NULL, 0);
		execv(o->f[1], o->f + 1);
		dprintf(2, "hutch: daemon %s: %s (op %d)\n", o->f[1], strerror(errno), o->line);
		_exit(EXIT_NOTFOUND);
	}
	M.daemons[M.ndaemons].pid = pid;
	M.daemons[M.ndaemons].mountpoint = mnt;
	M.daemons[M.ndaemons].alive = 1;
	M.ndaemons++;

	/* ready = something new is mounted on MNT (its dev/inode changed);
	 * checked again on each mount event and when the daemon exits (pidfd),
	 * on a 2 ms timer only when one of those cannot be watched */
	struct pollfd pf[2] = {{mounts, POLLPRI, 0}, {child_pidfd(pid), POLLIN, 0}};
	for (long deadline = now_ms() + 10000;;) {
		int status;
		if (stat(mnt, &now) == 0 && (now.st_dev != before.st_dev || now.st_ino != before.st_ino))
			break;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			M.daemons[M.ndaemons - 1].alive = 0;
			fail("daemon %s exited (status %d) before mounting %s%s", o->f[1], exit_code_of(status), mnt,
			     daemon_log_tail(mnt));
		}
		if (now_ms() >= deadline)
			fail("daemon %s did not mount %s within 10 s%s", o->f[1], mnt, daemon_log_tail(mnt));
		wait_events(pf, 2, deadline - now_ms(), 2);
	}
	for (int i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
}

/* One tmpfs of a fixed size for everything RAM-backed the sandbox writes:
 * mounted here, in the monitor's mount namespace, so that daemons (a
 * fuse-overlayfs upper layer) and the init (binds of its subdirectories) share
 * the one budget. */
static void do_scratch(const struct op *o)
{
	char data[64];
	if (M.nscratch == MAX_SCRATCH)
		fail("too many scratch ops (max %d)", MAX_SCRATCH);
	snprintf(data, sizeof data, "mode=0700,size=%lu", o->u.scratch_size);
	if (mount("tmpfs", o->f[0], "tmpfs", MS_NOSUID | MS_NODEV, data))
		fail_errno("mount the scratch tmpfs on %s%s", o->f[0],
			   errno == EPERM ? " (needs `unshare mount` before it)" : "");
	M.scratch[M.nscratch++] = o->f[0];
	for (int i = 2; i < o->nfields; i++) {
		char path[4096];
		if (snprintf(path, sizeof path, "%s/%s", o->f[0], o->f[i]) >= (int)sizeof path)
			fail("scratch %s/%s: path too long", o->f[0], o->f[i]);
		if (mkdir(path, 0755))
			fail_errno("scratch: mkdir %s", path);
	}
}

/* ---------- the init and the main loop ---------- */

static void fork_init(struct plan *p)
{
	int alive[2];
	if (M.deferred_ns) {
		g_op = M.deferred_op;
		if (unshare(M.deferred_ns))
			fail_errno("unshare(%s)", M.deferred_op->f[0]);
	}
	g_op = &p->ops[p->fork_at];
	/* The init watches the read end for POLLHUP: the race-free way to
	 * notice that the monitor died before PR_SET_PDEATHSIG took effect
	 * (getppid() is 0 in a new pid namespace, useless for that check). */
	if (pipe2(alive, O_CLOEXEC))
		fail_errno("pipe");
	int init_dumpable = plan_has(p, OP_SYNC_EXEC);
	if (init_dumpable) /* the init reads its go byte there */
		check_fd(FD_GO, "sync-exec");
	harden_monitor(init_dumpable);
	relay_before_fork();
	log_before_fork(p);
	g_op = &p->ops[p->fork_at];
	pid_t pid = fork();
	if (pid < 0)
		fail_errno("fork the init");
	if (pid == 0) {
		g_fatal_hook = NULL;
		close(alive[1]);
		relay_in_child();
		log_in_child();
		init_run(p, alive[0]);
	}
	if (init_dumpable)
		harden_not_dumpable("monitor");
	close(alive[0]); /* alive[1] stays open until we exit */
	M.init_pid = pid;
	g_op = NULL;
	report("init %d", (int)pid);
	relay_after_fork();
	log_after_fork();
	if (M.timeout_ms) {
		struct itimerspec its = {{0, 0},
					 {(time_t)(M.timeout_ms / 1000), (long)(M.timeout_ms % 1000) * 1000000L}};
		M.timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		if (M.timer < 0 || timerfd_settime(M.timer, 0, &its, NULL))
			fail_errno("timerfd for timeout");
	}
}

/* hutch wrote `d` on the lifeline (`detach`): it leaves, the sandbox stays.
 * Nothing of hutch's is kept: not the lifeline, not the report pipe, not
 * the stdio it gave us (our messages go to the sandbox's log now). */
static void detach_now(void)
{
	close(M.lifeline);
	M.lifeline = -1;
	if (g_report_fd >= 0)
		close(g_report_fd);
	g_report_fd = -1;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	if (null > 2)
		close(null);
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == M.init_pid) {
			M.init_status = status;
			M.init_pid = 0;
			continue;
		}
		for (int i = 0; i < M.ndaemons; i++)
			if (M.daemons[i].pid == pid && M.daemons[i].alive) {
				M.daemons[i].alive = 0;
				warn("daemon %d for %s exited (status %d) while the sandbox runs", (int)pid,
				     M.daemons[i].mountpoint, exit_code_of(status));
			}
	}
}

/* hutch wrote `a` on the lifeline: it execs `hutch-helper await` in its own
 * process (same pid, we stay its child), so fd 3 closes with the exec (Node
 * opens everything CLOEXEC). From now on that process is the lifeline: a
 * pidfd of our parent, readable when it exits. If it is gone already (we
 * were reparented), the lifeline is lost. The report pipe has no reader any
 * more: errors are printed on stderr from now on. */
static int hand_over(void)
{
	int fd = (int)syscall(SYS_pidfd_open, M.parent, 0);
	if (fd < 0 || getppid() != M.parent) {
		if (fd >= 0)
			close(fd);
		return 1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	close(M.lifeline);
	M.lifeline = fd;
	M.handed_over = 1;
	if (g_report_fd >= 0)
		close(g_report_fd);
	g_report_fd = -1;
	return 0;
}

static int lifeline_lost(void)
{
	char buf[256];
	if (M.handed_over)
		return 1; /* the pidfd is readable: hutch's process (await) exited */
	ssize_t r = read(M.lifeline, buf, sizeof buf);
	if (r > 0 && M.detachable && memchr(buf, 'd', (size_t)r)) {
		detach_now();
		return 0;
	}
	if (r > 0 && memchr(buf, 'a', (size_t)r))
		return hand_over();
	if (r > 0 || (r < 0 && (errno == EINTR || errno == EAGAIN)))
		return 0; /* hutch wrote something: ignore, keep watching */
	return 1;
}

static _Noreturn void supervise(void)
{
	sigset_t set;
	sigemptyset(&set);
	for (int i = 0; i < g_nforward_signals; i++)
		sigaddset(&set, g_forward_signals[i]);
	sigaddset(&set, SIGCHLD);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		fail_errno("signalfd");
	/* hutch forwards what its terminal sends it: when we share its process
	 * group (relay_reads_terminal), the terminal's own copy is dropped */
	int shared_pgrp = relay_reads_terminal() && M.lifeline >= 0;
	while (M.init_pid > 0) {
		struct pollfd pf[8] = {{sfd, POLLIN, 0}, {M.timer, POLLIN, 0}, {M.lifeline, POLLIN, 0}};
		int lifeline = M.lifeline >= 0;
		int nfixed = 2 + lifeline;
		int nrelay = relay_pollfds(pf + nfixed);
		int nlog = log_pollfds(pf + nfixed + nrelay);
		if (poll(pf, (nfds_t)(nfixed + nrelay + nlog), -1) < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("poll");
		}
		if (lifeline && pf[2].revents && lifeline_lost()) {
			kill_init();
			finish(EXIT_LIFELINE);
		}
		if (pf[1].revents && !M.timed_out) {
			/* pid 1 gone = its pid namespace gone */
			M.timed_out = 1;
			warn("killed: timeout %lu ms reached", M.timeout_ms);
			kill(M.init_pid, SIGKILL);
			close(M.timer);
			M.timer = -1;
		}
		relay_events(pf + nfixed, nrelay);
		log_events(pf + nfixed + nrelay, nlog);
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) != sizeof si)
				continue;
			if (si.ssi_signo == SIGCHLD)
				reap();
			else if (si.ssi_signo == SIGWINCH && relay_has_tty())
				relay_winch(); /* the kernel tells the pty's foreground group */
			else if (shared_pgrp && si.ssi_code == SI_KERNEL)
				continue;
			else if (M.init_pid > 0)
				kill(M.init_pid, (int)si.ssi_signo);
		}
	}
	relay_drain();
	log_drain();
	/* `await` is there to read the cgroup's OOM count and remove it (a
	 * lost lifeline, above, removes it here) */
	M.keep_cgroup = M.handed_over;
	finish(M.timed_out ? EXIT_TIMEOUT : exit_code_of(M.init_status));
}

/* The signals the monitor and exec mode block and read from a signalfd: the
 * forwarded ones, SIGCHLD and SIGPIPE. */
void forward_signal_set(sigset_t *set)
{
	sigemptyset(set);
	for (int i = 0; i < g_nforward_signals; i++)
		sigaddset(set, g_forward_signals[i]);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGPIPE);
}

/* What the monitor (and exec mode, join.c) does before anything else: block
 * what we forward (so nothing is lost before the signalfd exists or the init
 * has handlers), SIGCHLD (signalfd) and SIGPIPE (a dead hutch must not kill
 * us via the report pipe); children that exec reset the mask. Take our own
 * process group, so that a terminal's Ctrl-C goes to hutch only, which
 * forwards it once; not when we read the terminal ourselves (relay.c): then
 * job control must treat us like hutch. Returns the lifeline fd: the plan's,
 * unless it is a regular file (debugging: 3<plan), which has no writer to
 * lose. */
int take_signals_and_lifeline(struct plan *p)
{
	sigset_t set;
	struct stat st;
	int lifeline = -1;
	forward_signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* an inherited SIG_IGN for SIGCHLD would auto-reap the init */
	signal(SIGCHLD, SIG_DFL);
	relay_scan(p);
	if (!relay_reads_terminal())
		setpgid(0, 0);
	if (fstat(FD_PLAN, &st) == 0 && !S_ISREG(st.st_mode))
		lifeline = FD_PLAN;
	fcntl(FD_PLAN, F_SETFD, FD_CLOEXEC);
	return lifeline;
}

void monitor_run(struct plan *p)
{
	M.p = p;
	M.parent = getppid();
	M.lifeline = take_signals_and_lifeline(p);
	g_fatal_hook = on_fatal;

	for (int i = 0; i < p->fork_at; i++) {
		const struct op *o = &p->ops[i];
		if (o->desc->phase != PHASE_MONITOR)
			continue;
		g_op = o;
		switch (o->kind) {
		case OP_USERNS:
			if (!net_shared()) /* a holder that joined another holder's (netns.c) */
				do_userns(p, i);
			break;
		case OP_UNSHARE:
			do_unshare(o);
			break;
		case OP_REPORT:
			check_fd(FD_REPORT, "report");
			g_report_fd = FD_REPORT;
			break;
		case OP_SYNC:
			do_sync();
			break;
		case OP_DAEMON:
			do_daemon(o);
			break;
		case OP_SCRATCH:
			do_scratch(o);
			break;
		case OP_NET_HOLDER:
			net_holder_run(o);
		case OP_NET_JOIN:
			net_join(o);
			break;
		case OP_NET_ATTACH:
			net_attach(o);
			break;
		case OP_NET_NAT:
			net_nat(o);
			break;
		case OP_DETACH:
			M.detachable = 1;
			break;
		case OP_TIMEOUT:
			M.timeout_ms = o->u.timeout_ms;
			break;
		case OP_HOLD:
			/* kept open until we exit, by nobody else (CLOEXEC; the init
			 * closes it): its peer sees EOF when the monitor is gone, even
			 * by SIGKILL (slirp4netns --exit-fd) */
			check_fd(o->u.fd, "hold");
			break;
		case OP_NET_SHARE:
			net_share(o);
			break;
		case OP_NET_PUBLISH:
			net_publish(o);
			break;
		default: /* uidmap, gidmap, newuidmap, newgidmap: consumed by userns */
			break;
		}
	}
	g_op = NULL;
	fork_init(p);
	supervise();
}
