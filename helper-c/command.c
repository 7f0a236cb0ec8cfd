/* command.c: the init's child. Applies the process ops (environment,
 * session, directory, privileges, fds) and execs the command. An exec
 * failure is sent to the init over a CLOEXEC pipe so that it is reported as
 * "not found"/"not executable" (127/126), never as a setup error. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef PR_SET_NO_NEW_PRIVS
#define PR_SET_NO_NEW_PRIVS 38
#endif

struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
#define CAP_VERSION_3 0x20080522

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Keep exactly `keep` in the bounding, permitted, effective and inheritable
 * sets. The command runs as uid 0 of its user namespace, and at exec root
 * gets permitted = inheritable | bounding, so the bounding set is what
 * really limits it. Ambient stays empty: a program that switches to a
 * non-root uid inside loses its capabilities, as it would on the host. */
static void apply_caps(uint64_t keep)
{
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int c = 0; c < 64; c++) {
		if (keep & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0)) {
			if (errno == EINVAL) /* past the kernel's last capability */
				break;
			fail_errno("drop capability %d from the bounding set", c);
		}
	}
	struct cap_header h = {CAP_VERSION_3, 0};
	struct cap_data d[2];
	for (int i = 0; i < 2; i++)
		d[i].effective = d[i].permitted = d[i].inheritable = (uint32_t)(keep >> (32 * i));
	if (syscall(SYS_capset, &h, d))
		fail_errno("capset");
}

/* After leaving uid 0: no capability is left, as on the host. The permitted
 * set was kept across the switch (PR_SET_KEEPCAPS, see switch_user), and the
 * inheritable set must go too, or a file with inheritable file capabilities
 * (setcap ...+ei) would hand them back at exec (podman's CVE-2022-27649).
 * The bounding set stays as `caps` made it. */
static void clear_caps(void)
{
	struct cap_header h = {CAP_VERSION_3, 0};
	struct cap_data d[2] = {{0, 0, 0}, {0, 0, 0}};
	if (syscall(SYS_capset, &h, d))
		fail_errno("capset (clear every capability after leaving uid 0)");
}

/* The `user` ops, before `caps`: switching needs CAP_SETUID/CAP_SETGID,
 * which `caps` may drop (--user X --cap-drop SETUID). PR_SET_KEEPCAPS keeps
 * the permitted set across setresuid, and the effective set is raised from
 * it again, so that `caps` can still shape the bounding set (CAP_SETPCAP). */
static void switch_user(struct plan *p)
{
	int switched = 0;
	for (int i = p->fork_at; i < p->nops; i++) {
		if (p->ops[i].kind != OP_USER)
			continue;
		g_op = &p->ops[i];
		if (!switched && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
			fail_errno("PR_SET_KEEPCAPS");
		switched = 1;
		user_apply(&p->ops[i]);
	}
	if (!switched)
		return;
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	struct cap_header h = {CAP_VERSION_3, 0};
	struct cap_data d[2];
	if (syscall(SYS_capget, &h, d))
		fail_errno("capget");
	for (int i = 0; i < 2; i++)
		d[i].effective = d[i].permitted;
	if (syscall(SYS_capset, &h, d))
		fail_errno("capset (raise the kept capabilities after the user switch)");
}

/* execve; ENOENT for a file that exists means its #! interpreter or ELF
 * loader is missing, which deserves its own message. */
static int try_exec(const char *path, char **argv)
{
	execve(path, argv, environ);
	int err = errno;
	if (err == ENOENT && faccessat(AT_FDCWD, path, F_OK, 0) == 0)
		return EXEC_ENOINTERP;
	return err;
}

/* execvp with the sandbox's PATH; returns the errno to report. */
static int exec_command(char **argv)
{
	const char *name = argv[0];
	if (strchr(name, '/'))
		return try_exec(name, argv);
	const char *path = getenv("PATH");
	if (!path)
		path = DEFAULT_PATH;
	size_t nlen = strlen(name);
	int seen_eacces = 0;
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);
		char full[PATH_MAX];
		if (dlen + nlen + 2 <= sizeof full) {
			if (dlen) {
				memcpy(full, p, dlen);
				full[dlen] = '/';
				memcpy(full + dlen + 1, name, nlen + 1);
			} else {
				memcpy(full, name, nlen + 1); /* empty entry = cwd */
			}
			int err = try_exec(full, argv);
			switch (err) {
			case EACCES:
				seen_eacces = 1;
				/* fallthrough */
			case ENOENT:
			case ENOTDIR:
			case ESTALE:
			case ENAMETOOLONG:
			case ELOOP:
				break;
			default:
				return err; /* found but cannot run: stop like execvp */
			}
		}
		if (!*end)
			break;
		p = end;
	}
	return seen_eacces ? EACCES : ENOENT;
}

void command_run(struct plan *p, int errpipe)
{
	int keep[256], nkeep = 0, have_caps = 0;
	uint64_t caps = 0;

	reset_signals();
	umask(g_saved_umask);
	for (int i = p->fork_at; i < p->nops; i++) {
		const struct op *o = &p->ops[i];
		if (o->desc->phase != PHASE_COMMAND)
			continue;
		g_op = o;
		switch (o->kind) {
		case OP_CLEARENV:
			clearenv();
			break;
		case OP_ENV:
			if (setenv(o->f[0], o->f[1], 1))
				fail_errno("setenv %s", o->f[0]);
			break;
		case OP_SETSID:
			/* with `tty` the command already leads a session (pty_attach) */
			if (setsid() < 0 && getsid(0) != getpid())
				fail_errno("setsid");
			break;
		case OP_CHDIR:
			if (chdir(o->f[0]))
				fail_errno("chdir %s", o->f[0]);
			break;
		case OP_NO_NEW_PRIVS:
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
				fail_errno("PR_SET_NO_NEW_PRIVS");
			break;
		case OP_CAPS:
			caps = o->u.caps; /* the last one counts */
			have_caps = 1;
			break;
		case OP_KEEP_FD:
			if (nkeep == 255)
				fail("too many keep-fd ops");
			/* passed on as is: without CLOEXEC */
			if (fcntl(o->u.fd, F_SETFD, 0) < 0)
				fail_errno("keep-fd %d", o->u.fd);
			keep[nkeep++] = o->u.fd;
			break;
		default:
			break;
		}
	}
	/* the user next, while every capability is there (see switch_user) */
	switch_user(p);
	/* caps last: chdir, the user switch and friends may still need theirs */
	for (int i = p->fork_at; have_caps && i < p->nops; i++)
		if (p->ops[i].kind == OP_CAPS)
			g_op = &p->ops[i];
	if (have_caps)
		apply_caps(caps);
	if (getuid() != 0) {
		g_op = NULL;
		clear_caps();
	}
	/* seccomp last: nothing hutch does after it needs a denied call */
	for (int i = p->fork_at; i < p->nops; i++)
		if (p->ops[i].kind == OP_SECCOMP) {
			g_op = &p->ops[i];
			seccomp_apply(&p->ops[i]);
		} else if (p->ops[i].kind == OP_NO_SETID) {
			g_op = &p->ops[i];
			seccomp_apply_no_setid();
		}
	g_op = NULL;

	keep[nkeep++] = errpipe; /* CLOEXEC: closes itself on a successful exec */
	close_fds_from(3, keep, nkeep);

	char **argv = p->ops[p->nops - 1].f;
	int err = exec_command(argv);
	write_all(errpipe, &err, sizeof err);
	_exit(err == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC);
}

/* Read the command's exec errno from its error pipe, if any (EOF = exec
 * succeeded), and say what failed: for the init and for exec mode alike. */
int command_report_exec_error(int fd, const struct plan *p)
{
	int err;
	ssize_t r;
	while ((r = read(fd, &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(fd);
	if (r != sizeof err)
		return 0;
	const char *name = p->ops[p->nops - 1].f[0];
	g_op = NULL;
	if (err == ENOENT && !strchr(name, '/'))
		complain("%s: command not found", name);
	else if (err == EXEC_ENOINTERP)
		complain(
			"%s: cannot run: its #! interpreter or ELF loader (or a library path) is missing in the sandbox",
			name);
	else
		complain("%s: %s", name, strerror(err));
	return -1;
}
