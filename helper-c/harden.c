/* harden.c: what the monitor and the init give up once they no longer need
 * it, so that a command holding every capability of its user namespace
 * (--cap-add ALL) still cannot attach to them, read their memory or
 * environment, use their capabilities, or reach the user's terminal
 * through them.
 *
 * Why non-dumpable is enough against ptrace and /proc/PID/{mem,environ,fd}:
 * both processes were exec'd in the host's user namespace, so the kernel
 * lets only CAP_SYS_PTRACE of *that* namespace past a non-dumpable process,
 * and no capability a sandbox can hold is in it.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* The strings environ points to are the ones /proc/PID/environ shows (the
 * kernel reads the process's own stack between env_start and env_end):
 * copy them to the heap for whoever still needs them (the init and a
 * command without `clearenv`), then overwrite the originals. */
static void scrub_environ(void)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **copy = calloc(n + 1, sizeof *copy);
	if (!copy)
		fail_errno("out of memory");
	for (size_t i = 0; i < n; i++) {
		if (!(copy[i] = strdup(environ[i])))
			fail_errno("out of memory");
		memset(environ[i], 0, strlen(environ[i]));
	}
	environ = copy;
}

void harden_not_dumpable(const char *who)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		fail_errno("PR_SET_DUMPABLE 0 in the %s", who);
}

/* The monitor, right before it forks the init: hutch has attached the
 * cgroup (the sync point is over), so nothing needs /proc/MONITORPID any
 * more. With `sync-exec` the network is attached through the init's
 * /proc/INITPID/ns while the init sets up, so the init is forked still
 * dumpable and the monitor calls harden_not_dumpable right after the fork;
 * the init gives it up at sync-exec, before the command exists. The
 * monitor keeps its capabilities: cleanup removes files of subordinate ids
 * and detaches daemon mounts with them. */
void harden_monitor(int init_dumpable)
{
	scrub_environ();
	if (!init_dumpable)
		harden_not_dumpable("monitor");
}

/* The init, first thing: its own session (no controlling terminal, so no
 * TIOCSTI into the user's shell through it, and no SIGHUP/SIGTTIN from
 * it), not dumpable (inherited from the monitor; set again in case a
 * credential change reset it; with `sync-exec` only there, see
 * harden_monitor), and without hutch's environment when the command
 * starts from an empty one. */
void harden_init(const struct plan *p)
{
	if (setsid() < 0)
		fail_errno("setsid in the init");
	if (!plan_has(p, OP_SYNC_EXEC))
		harden_not_dumpable("init");
	for (int i = 0; i < p->nops; i++)
		if (p->ops[i].kind == OP_CLEARENV) {
			for (char **e = environ; *e; e++)
				memset(*e, 0, strlen(*e));
			clearenv();
			break;
		}
}

/* The init once the command is forked (the command waits for this before
 * it execs, so it never runs next to a privileged pid 1): every
 * capability set emptied, the bounding set first (dropping it needs
 * CAP_SETPCAP). Reaping and forwarding signals to a child of the same uid
 * need none. */
void init_drop_privileges(void)
{
	struct {
		uint32_t version;
		int pid;
	} h = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
	struct {
		uint32_t effective, permitted, inheritable;
	} d[2];
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int c = 0; c < 64; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno == EINVAL)
			break; /* past the kernel's last capability */
	memset(d, 0, sizeof d);
	if (syscall(SYS_capset, &h, d))
		fail_errno("drop the init's capabilities");
}

/* The init after the command's exec is settled: it prints nothing more, so
 * it keeps nothing of hutch's either: stdin, stdout, stderr (maybe the
 * user's terminal) become /dev/null, every other fd (the report pipe,
 * keep-fd fds, whatever hutch inherited) is closed. */
void init_release_fds(void)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3; fd++)
		if (null < 0 || dup2(null, fd) < 0)
			close(fd);
	g_report_fd = -1;
	close_fds_from(3, NULL, 0);
}
