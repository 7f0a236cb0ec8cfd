/* init.c: the sandbox's pid 1. Unshares a mount namespace of its own,
 * runs the init ops in plan order (filesystem ops: mount.c; `hostname`,
 * `lo-up`: here), forks the command, reports its exec error if any, then
 * only forwards signals and reaps zombies until the command exits.
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
#include <sys/wait.h>
#include <unistd.h>

mode_t g_saved_umask;

static void op_hostname(const char *name)
{
	if (sethostname(name, strlen(name)))
		fail_errno("sethostname");
}

/* bring up lo in the init's network namespace */
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

/* sync-exec: the second wait for hutch, once the init has set up: the
 * command starts only when hutch says its network is ready (EOF: abort).
 * Until now the NAT could join our namespaces through /proc/OURPID/ns
 * (harden_monitor); nothing of the command exists yet, and from here on
 * nothing may attach to us. */
static void op_sync_exec(void)
{
	char c;
	ssize_t r;
	while ((r = read(FD_GO, &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		fail("sync-exec: hutch closed the go pipe (fd 5) without a second go byte");
	close(FD_GO);
	harden_not_dumpable("init");
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
			/* a terminal's Ctrl-C / Ctrl-\ reaches the whole foreground
			 * group on the host: so here the command's group (it leads
			 * it after setsid), else only the command */
			if (!((sig == SIGINT || sig == SIGQUIT) && kill(-cmd, sig) == 0))
				kill(cmd, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == cmd)
				_exit(exit_code_of(status));
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
	harden_init(p);
	/* without a pid namespace, orphans of the command still come to us */
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1);

	close(FD_PLAN);
	int has_fs = 0, has_sync = 0;
	for (int i = 0; i < p->nops; i++) {
		has_fs |= p->ops[i].desc->mountns;
		has_sync |= p->ops[i].kind == OP_SYNC;
	}
	if (has_sync && !plan_has(p, OP_SYNC_EXEC))
		close(FD_GO);
	g_saved_umask = umask(0); /* modes in the plan are exact */

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
		const struct op *o = &p->ops[i];
		if (o->desc->phase != PHASE_INIT)
			continue;
		g_op = o;
		if (o->desc->mountns)
			fs_run_op(o);
		else if (o->kind == OP_HOSTNAME)
			op_hostname(o->f[0]);
		else if (o->kind == OP_LO_UP)
			op_lo_up();
		else if (o->kind == OP_UNREACHABLE)
			route_unreachable(o);
		else if (o->kind == OP_SYNC_EXEC)
			op_sync_exec();
	}
	g_op = NULL;

	int tty = pty_open_inside(); /* relay.c: -1 without a `tty` op */
	int ep[2], gate[2];
	if (pipe2(ep, O_CLOEXEC) || pipe2(gate, O_CLOEXEC))
		fail_errno("pipe");
	pid_t cmd = fork();
	if (cmd < 0)
		fail_errno("fork the command");
	if (cmd == 0) {
		char c;
		ssize_t r;
		close(ep[0]);
		close(gate[1]);
		/* the command starts once pid 1 holds no capabilities */
		while ((r = read(gate[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (r != 1)
			_exit(EXIT_SETUP);
		close(gate[0]);
		pty_attach(tty);
		command_run(p, ep[1]);
	}
	if (tty >= 0)
		close(tty);
	close(ep[1]);
	close(gate[0]);
	init_drop_privileges();
	write_all(gate[1], "x", 1);
	close(gate[1]);
	if (command_report_exec_error(ep[0], p) == 0)
		report("running"); /* the command's exec succeeded */
	init_release_fds();
	wait_loop(cmd);
}
