/* init.c: the sandbox's pid 1. Builds the root filesystem from the plan's
 * filesystem ops in a mount namespace of its own, pivots into it, forks the
 * command, then only forwards signals and reaps zombies.
 *
 * Path safety: once `base` ran, every path under /newroot is resolved with
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) relative to /newroot (after
 * `pivot`: relative to /), so a symlink inside a layer resolves inside the
 * sandbox and can never send a mount or a write to the host. Mounts are made
 * onto the resolved handle itself (fchdir + mount on ".", or move_mount with
 * MOVE_MOUNT_T_EMPTY_PATH), so no path is looked up twice and no /proc is
 * needed for it.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NEWROOT "/newroot"

mode_t g_saved_umask;

static struct {
	int based;    /* `base` ran: host is /oldroot, sandbox is /newroot */
	int pivoted;  /* `pivot` ran: / is the sandbox */
	int in_userns;
} I;

/* ---------- path resolution ---------- */

static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* Open PATH (flags must include O_PATH or a read mode). Sandbox paths are
 * resolved inside the sandbox root; host paths literally. */
static int open_path(const char *path, int flags)
{
	const char *rootdir = NULL, *rel = path;
	if (I.pivoted)
		rootdir = "/";
	else if (I.based && under(path, NEWROOT))
		rootdir = NEWROOT, rel = path + strlen(NEWROOT);
	if (!rootdir)
		return open(path, flags | O_CLOEXEC);
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	int root = open(rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	struct hutch_open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = HUTCH_RESOLVE_IN_ROOT | HUTCH_RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof how);
	int err = errno;
	close(root);
	errno = err;
	return fd;
}

/* Split "/a/b/c" into an O_PATH handle of "/a/b" and "c". */
static int open_parent(const char *path, char *name, size_t namelen)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	char *slash = strrchr(buf, '/');
	if (!slash || !slash[1] || strlen(slash + 1) >= namelen) {
		errno = EINVAL;
		return -1;
	}
	strcpy(name, slash + 1);
	if (slash == buf)
		slash[1] = 0;
	else
		*slash = 0;
	return open_path(buf, O_PATH | O_DIRECTORY);
}

/* mkdir -p: missing parents get 0755, the last component MODE. */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096], name[256];
	size_t n = strlen(path);
	if (n >= sizeof buf)
		return errno = ENAMETOOLONG, -1;
	memcpy(buf, path, n + 1);
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char saved = *s;
		*s = 0;
		int fd = open_path(buf, O_PATH | O_DIRECTORY);
		if (fd >= 0) {
			close(fd);
		} else if (errno == ENOENT) {
			int pfd = open_parent(buf, name, sizeof name);
			if (pfd < 0)
				return -1;
			int r = mkdirat(pfd, name, saved ? 0755 : mode);
			int err = errno;
			close(pfd);
			if (r && err != EEXIST)
				return errno = err, -1;
		} else {
			return -1;
		}
		if (!saved)
			return 0;
		*s = saved;
		while (s[1] == '/')
			s++;
		if (!s[1])
			return 0;
	}
}

static int mkdir_parent(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	char *slash = strrchr(buf, '/');
	if (!slash || slash == buf)
		return 0;
	*slash = 0;
	return mkdir_p(buf, 0755);
}

/* Make sure DEST exists as a directory or (dir == 0) a file; open it. */
static int open_dest(const char *dest, int dir)
{
	int fd = open_path(dest, O_PATH);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (dir) {
		if (mkdir_p(dest, 0755))
			return -1;
	} else {
		char name[256];
		if (mkdir_parent(dest))
			return -1;
		int pfd = open_parent(dest, name, sizeof name);
		if (pfd < 0)
			return -1;
		int f = openat(pfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		int err = errno;
		close(pfd);
		if (f < 0)
			return errno = err, -1;
		close(f);
	}
	return open_path(dest, O_PATH);
}

/* ---------- mounting onto handles ---------- */

static const char *host_path(const char *p, char *buf, size_t len);

/* mount(2) a fresh filesystem onto the directory handle fd, through its
 * /proc/self/fd magic link. Not fchdir(fd): on a FUSE directory (the
 * fuse-overlayfs root) fchdir asks the daemon for FUSE_ACCESS, which
 * fuse-overlayfs answers with EOPNOTSUPP for unprivileged users. */
static int mount_on_fd(int fd, const char *src, const char *type, unsigned long flags, const char *data)
{
	char link[64], path[96];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	return mount(src, host_path(link, path, sizeof path), type, flags, data);
}

/* Clone the tree at srcfd, set attributes on the detached copy (so it is
 * never visible writable), attach it on destfd. */
static int bind_fd(int srcfd, int destfd, int rec, uint64_t attrs)
{
	int tree = (int)syscall(SYS_open_tree, srcfd, "",
				AT_EMPTY_PATH | HUTCH_OPEN_TREE_CLONE | O_CLOEXEC | (rec ? AT_RECURSIVE : 0));
	if (tree < 0)
		return -1;
	struct hutch_mount_attr attr = {.attr_set = attrs};
	int r = (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
	if (r == 0)
		r = (int)syscall(SYS_move_mount, tree, "", destfd, "",
				 HUTCH_MOVE_MOUNT_F_EMPTY_PATH | HUTCH_MOVE_MOUNT_T_EMPTY_PATH);
	int err = errno;
	close(tree);
	errno = err;
	return r;
}

static const char *host_path(const char *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", I.based && !I.pivoted ? "/oldroot" : "", p);
	return buf;
}

/* ---------- filesystem ops ---------- */

static void op_base(const char *dir)
{
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
		fail_errno("mount tmpfs on %s", dir);
	if (chdir(dir))
		fail_errno("chdir %s", dir);
	if (mkdir("newroot", 0755) || mkdir("oldroot", 0755))
		fail_errno("mkdir in %s", dir);
	/* bind newroot onto itself so `pivot /newroot` works even when the
	 * plan mounts nothing there (pivot_root needs a mount point) */
	if (mount("newroot", "newroot", NULL, MS_BIND | MS_REC, NULL))
		fail_errno("bind %s/newroot", dir);
	if (syscall(SYS_pivot_root, ".", "oldroot"))
		fail_errno("pivot_root(%s, %s/oldroot)", dir, dir);
	if (chdir("/"))
		fail_errno("chdir /");
	I.based = 1;
}

static void op_fresh(const char *dest, const char *type, unsigned long flags, const char *data)
{
	int fd = open_dest(dest, 1);
	if (fd < 0)
		fail_errno("mount point %s", dest);
	if (mount_on_fd(fd, type, type, flags, data)) {
		const char *hint = "";
		if (errno == EPERM && !strcmp(type, "proc"))
			hint = " (a fresh procfs needs a pid namespace owned by the user namespace and a fully visible /proc on the host)";
		else if (errno == EINVAL && !strcmp(type, "overlay"))
			hint = " (see dmesg; a lower dir with submounts, such as /, cannot be used in a user namespace)";
		fail_errno("mount %s on %s%s", type, dest, hint);
	}
	close(fd);
}

static void op_tmpfs(const struct op *o)
{
	char data[64];
	unsigned long mode;
	parse_uint(o->f[1], 8, &mode);
	int n = snprintf(data, sizeof data, "mode=%lo", mode);
	if (o->nfields == 3)
		snprintf(data + n, sizeof data - (size_t)n, ",size=%s", o->f[2]);
	op_fresh(o->f[0], "tmpfs", MS_NOSUID | MS_NODEV, data);
}

static void op_overlay(const struct op *o)
{
	char data[4096];
	size_t n = (size_t)snprintf(data, sizeof data, "lowerdir=%s", o->f[1]);
	if (strcmp(o->f[2], "-") != 0)
		n += (size_t)snprintf(data + n, n < sizeof data ? sizeof data - n : 0,
				      ",upperdir=%s,workdir=%s", o->f[2], o->f[3]);
	if (I.in_userns)
		n += (size_t)snprintf(data + n, n < sizeof data ? sizeof data - n : 0, ",userxattr");
	if (n >= sizeof data)
		fail("overlay options longer than a page (%zu bytes): use shorter layer paths", n);
	op_fresh(o->f[0], "overlay", 0, data);
}

static void do_bind(const char *src, const char *dest, int ro, int rec, int dev, int try)
{
	struct stat st;
	int sfd = open_path(src, O_PATH);
	if (sfd < 0) {
		if (try && errno == ENOENT)
			return;
		fail_errno("bind source %s", src);
	}
	if (fstat(sfd, &st))
		fail_errno("stat %s", src);
	int dfd = open_dest(dest, S_ISDIR(st.st_mode));
	if (dfd < 0)
		fail_errno("bind destination %s%s", dest,
			   errno == EACCES || errno == EPERM
				   ? " (its parent belongs to a user outside the sandbox, so the mount point cannot be created: mount onto an existing directory, or under a new top-level one such as /work)"
				   : "");
	uint64_t attrs = HUTCH_MOUNT_ATTR_NOSUID | (dev ? 0 : HUTCH_MOUNT_ATTR_NODEV) |
			 (ro ? HUTCH_MOUNT_ATTR_RDONLY : 0);
	if (bind_fd(sfd, dfd, rec, attrs))
		fail_errno("bind %s on %s%s", src, dest,
			   errno == EINVAL && !rec ? " (a non-recursive bind of a mount with locked submounts is refused; use rec)" : "");
	close(sfd);
	close(dfd);
}

static void op_bind(const struct op *o)
{
	const char *fl = o->f[2];
	int ro = list_has(fl, "ro"), rec = list_has(fl, "rec"), dev = list_has(fl, "dev"), try = list_has(fl, "try");
	do_bind(o->f[0], o->f[1], ro, rec, dev, try);
}

/* Read-only: DEST and every mount below it, or (self) DEST alone, so that
 * read-write mounts made on top of it stay writable. */
static void op_remount_ro(const char *dest, int self)
{
	int fd = open_path(dest, O_PATH);
	struct hutch_mount_attr attr = {.attr_set = HUTCH_MOUNT_ATTR_RDONLY};
	if (fd < 0)
		fail_errno("open %s", dest);
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (self ? 0 : AT_RECURSIVE), &attr, sizeof attr))
		fail_errno("make %s read-only%s", dest, errno == EINVAL ? " (not a mount point?)" : "");
	close(fd);
}

static void op_sysfs(const char *dest)
{
	int fd = open_dest(dest, 1);
	if (fd < 0)
		fail_errno("mount point %s", dest);
	if (mount_on_fd(fd, "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) {
		close(fd);
		return;
	}
	/* sysfs can only be mounted by the owner of the network namespace;
	 * otherwise show the host's, read-only */
	char host[64];
	close(fd);
	do_bind(host_path("/sys", host, sizeof host), dest, 1, 1, 0, 0);
}

static void op_devpts(const char *dest)
{
	char name[256], link[300];
	op_fresh(dest, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
	/* PARENT/ptmx -> NAME/ptmx, so /dev/ptmx uses this instance */
	int pfd = open_parent(dest, name, sizeof name);
	if (pfd < 0)
		fail_errno("open parent of %s", dest);
	snprintf(link, sizeof link, "%s/ptmx", name);
	if (symlinkat(link, pfd, "ptmx") && errno != EEXIST)
		fail_errno("symlink ptmx -> %s next to %s", link, dest);
	close(pfd);
}

static void op_symlink(const char *target, const char *path)
{
	char name[256], cur[4096];
	if (mkdir_parent(path))
		fail_errno("create parent of %s", path);
	int pfd = open_parent(path, name, sizeof name);
	if (pfd < 0)
		fail_errno("open parent of %s", path);
	if (symlinkat(target, pfd, name)) {
		ssize_t n = errno == EEXIST ? readlinkat(pfd, name, cur, sizeof cur - 1) : -1;
		if (n < 0 || (cur[n] = 0, strcmp(cur, target) != 0)) {
			errno = EEXIST;
			fail_errno("symlink %s -> %s", path, target);
		}
	}
	close(pfd);
}

static void op_file(const struct op *o)
{
	char name[256];
	unsigned long mode;
	parse_uint(o->f[1], 8, &mode);
	if (mkdir_parent(o->f[0]))
		fail_errno("create parent of %s", o->f[0]);
	int pfd = open_parent(o->f[0], name, sizeof name);
	if (pfd < 0)
		fail_errno("open parent of %s", o->f[0]);
	/* O_NOFOLLOW: never write through a symlink planted in a layer */
	int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		fail_errno("create %s", o->f[0]);
	if (write_all(fd, o->f[2], strlen(o->f[2])) || fchmod(fd, (mode_t)mode))
		fail_errno("write %s", o->f[0]);
	close(fd);
	close(pfd);
}

static void op_mask(const char *path)
{
	struct stat st;
	int fd = open_path(path, O_PATH);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail_errno("open %s", path);
	}
	if (fstat(fd, &st))
		fail_errno("stat %s", path);
	if (S_ISDIR(st.st_mode)) {
		if (mount_on_fd(fd, "tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555,size=0"))
			fail_errno("mask %s with an empty tmpfs", path);
	} else {
		char buf[64];
		int nfd = open(host_path("/dev/null", buf, sizeof buf), O_PATH | O_CLOEXEC);
		if (nfd < 0 || bind_fd(nfd, fd, 0, HUTCH_MOUNT_ATTR_RDONLY | HUTCH_MOUNT_ATTR_NOSUID | HUTCH_MOUNT_ATTR_NOEXEC))
			fail_errno("mask %s with %s", path, buf);
		close(nfd);
	}
	close(fd);
}

static void op_lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail_errno("socket");
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr))
		fail_errno("SIOCGIFFLAGS lo");
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		fail_errno("bring up lo");
	close(s);
}

static void op_pivot(const char *dir)
{
	int fd = open_path(dir, O_PATH | O_DIRECTORY);
	if (fd < 0 || fchdir(fd))
		fail_errno("chdir %s", dir);
	close(fd);
	/* new root and old root stacked on "."; detaching the top one drops
	 * the whole host view (the base tmpfs and /oldroot under it) */
	if (syscall(SYS_pivot_root, ".", "."))
		fail_errno("pivot_root(%s)%s", dir, errno == EINVAL ? " (is it a mount point?)" : "");
	if (umount2(".", MNT_DETACH))
		fail_errno("detach the old root");
	if (chdir("/"))
		fail_errno("chdir /");
	I.pivoted = 1;
}

static void run_fs_op(const struct op *o)
{
	char **f = o->f;
	const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	switch (o->kind) {
	case OP_BASE: op_base(f[0]); break;
	case OP_TMPFS: op_tmpfs(o); break;
	case OP_OVERLAY: op_overlay(o); break;
	case OP_BIND: op_bind(o); break;
	case OP_REMOUNT_RO: op_remount_ro(f[0], o->nfields == 2); break;
	case OP_PROC: op_fresh(f[0], "proc", nse, NULL); break;
	case OP_SYSFS: op_sysfs(f[0]); break;
	case OP_DEVPTS: op_devpts(f[0]); break;
	case OP_MQUEUE: op_fresh(f[0], "mqueue", nse, NULL); break;
	case OP_MKDIR: {
		unsigned long mode;
		parse_uint(f[1], 8, &mode);
		if (mkdir_p(f[0], (mode_t)mode))
			fail_errno("mkdir %s", f[0]);
		break;
	}
	case OP_SYMLINK: op_symlink(f[0], f[1]); break;
	case OP_FILE: op_file(o); break;
	case OP_MASK: op_mask(f[0]); break;
	case OP_HOSTNAME:
		if (sethostname(f[0], strlen(f[0])))
			fail_errno("sethostname%s", errno == EPERM ? " (needs `unshare uts`)" : "");
		break;
	case OP_LO_UP: op_lo_up(); break;
	case OP_PIVOT: op_pivot(f[0]); break;
	case OP_REMOUNT_ROOT_RO: {
		struct hutch_mount_attr attr = {.attr_set = HUTCH_MOUNT_ATTR_RDONLY};
		if (syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, &attr, sizeof attr))
			fail_errno("make / read-only");
		break;
	}
	default: break;
	}
}

/* ---------- pid 1 ---------- */

static int detect_userns(void)
{
	char buf[128] = {0};
	int fd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	/* the initial namespace maps everything: "0 0 4294967295" */
	/* "%10u %10u %10u\n": compare the words, not the padding */
	char *w[3], *save = buf;
	for (int i = 0; i < 3; i++) {
		save += strspn(save, " ");
		w[i] = save;
		save += strcspn(save, " \n");
		if (*save)
			*save++ = 0;
	}
	return n > 0 && !(!strcmp(w[0], "0") && !strcmp(w[1], "0") && !strcmp(w[2], "4294967295"));
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Read the command's exec errno, if any (EOF = exec succeeded). */
static void report_exec_error(int fd, const struct plan *p)
{
	int err;
	ssize_t r;
	while ((r = read(fd, &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(fd);
	if (r != sizeof err)
		return;
	const char *name = p->ops[p->nops - 1].f[0];
	g_op = NULL;
	if (err == ENOENT && !strchr(name, '/'))
		complain("%s: command not found", name);
	else if (err == EXEC_ENOINTERP)
		complain("%s: cannot run: its #! interpreter or ELF loader (or a library path) is missing in the sandbox", name);
	else
		complain("%s: %s", name, strerror(err));
}

static _Noreturn void wait_loop(pid_t cmd)
{
	sigset_t set;
	sigemptyset(&set);
	for (int i = 0; i < g_nforward_signals; i++)
		sigaddset(&set, g_forward_signals[i]);
	sigaddset(&set, SIGCHLD);
	/* the mask inherited from the monitor already blocks these; waiting
	 * synchronously needs no handlers and nothing is lost in between */
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(cmd, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == cmd)
				_exit(exit_code(status));
	}
}

void init_run(struct plan *p, int alive_fd)
{
	struct pollfd pf = {alive_fd, POLLIN, 0};
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (poll(&pf, 1, 0) != 0) { /* monitor already gone */
		warn("init: the monitor exited before the init started");
		_exit(EXIT_SETUP);
	}
	close(alive_fd);
	/* without a pid namespace, orphans of the command still come to us */
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);

	close(FD_PLAN);
	int has_fs = 0, has_sync = 0;
	for (int i = 0; i < p->nops; i++) {
		enum op_kind k = p->ops[i].kind;
		has_fs |= op_phase(k) == PHASE_INIT && k != OP_HOSTNAME && k != OP_LO_UP;
		has_sync |= k == OP_SYNC;
	}
	if (has_sync)
		close(FD_GO);
	g_saved_umask = umask(0); /* modes in the plan are exact */
	I.in_userns = detect_userns();

	if (has_fs) {
		g_op = &p->ops[p->fork_at];
		/* our own mount namespace: daemons' mounts (monitor namespace)
		 * are inherited, our pivot does not affect them */
		if (unshare(CLONE_NEWNS))
			fail_errno("unshare(CLONE_NEWNS) for the init");
		if (mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL))
			fail_errno("make / a recursive slave");
	}
	for (int i = p->fork_at; i < p->nops; i++) {
		if (op_phase(p->ops[i].kind) != PHASE_INIT)
			continue;
		g_op = &p->ops[i];
		run_fs_op(g_op);
	}
	g_op = NULL;

	int ep[2];
	if (pipe2(ep, O_CLOEXEC))
		fail_errno("pipe");
	pid_t cmd = fork();
	if (cmd < 0)
		fail_errno("fork the command");
	if (cmd == 0) {
		close(ep[0]);
		command_run(p, ep[1]);
	}
	close(ep[1]);
	report_exec_error(ep[0], p);
	wait_loop(cmd);
}
