/* join.c: `hutch-helper exec`, a command in a running sandbox (PLAN.md,
 * "exec mode"). The plan's `join PID CGROUP` names the sandbox's pid 1; the
 * helper joins its cgroup, then its user namespace (where the sandbox's
 * owner holds every capability) and every other namespace of it, forks,
 * and the child runs the plan's command ops exactly as the sandbox's own
 * command does (command.c: environment, directory, no_new_privs, caps,
 * user, seccomp), so it never has more than the command. Its parent stays
 * outside the pid namespace: it relays the terminal (relay.c), forwards
 * signals, watches the lifeline, and exits with the child's status. The
 * child is a process of the sandbox's pid namespace: it dies with it.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* the order matters: user first (it gives the capabilities the others
 * need), mnt last (the /proc paths were opened before anyway) */
static const struct {
	const char *name;
	int flag;
} NAMESPACES[] = {
	{"user", CLONE_NEWUSER}, {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC},   {"uts", CLONE_NEWUTS},
	{"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID},       {"time", CLONE_NEWTIME}, {"mnt", CLONE_NEWNS},
};
#define NNS (int)(sizeof NAMESPACES / sizeof NAMESPACES[0])

static pid_t g_child;

static void kill_child(void)
{
	if (g_child > 0) {
		kill(g_child, SIGKILL);
		waitpid(g_child, NULL, 0);
		g_child = 0;
	}
}

static void on_fatal(void)
{
	kill_child();
	relay_restore();
}

static void join_cgroup(const char *dir)
{
	char path[4096];
	if (!strcmp(dir, "-"))
		return;
	if ((size_t)snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= sizeof path)
		fail("cgroup path too long");
	if (write_file(path, "0"))
		fail_errno("join the sandbox's cgroup %s", dir);
}

static void join_namespaces(pid_t pid)
{
	int fds[NNS];
	char path[64];
	struct stat self, their;
	for (int i = 0; i < NNS; i++) {
		snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, NAMESPACES[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0 && !(errno == ENOENT && NAMESPACES[i].flag == CLONE_NEWTIME))
			fail_errno("open %s (is the sandbox running?)", path);
	}
	for (int i = 0; i < NNS; i++) {
		if (fds[i] < 0)
			continue;
		/* the same namespace as ours (e.g. network host): nothing to join */
		snprintf(path, sizeof path, "/proc/self/ns/%s", NAMESPACES[i].name);
		if (NAMESPACES[i].flag != CLONE_NEWUSER && stat(path, &self) == 0 && fstat(fds[i], &their) == 0 &&
		    self.st_ino == their.st_ino && self.st_dev == their.st_dev) {
			close(fds[i]);
			continue;
		}
		if (setns(fds[i], NAMESPACES[i].flag))
			fail_errno("join the sandbox's %s namespace", NAMESPACES[i].name);
		close(fds[i]);
	}
	if (chdir("/"))
		fail_errno("chdir /");
}

void join_run(struct plan *p)
{
	const struct op *j = NULL;
	sigset_t set;
	int lifeline = -1;

	for (int i = 0; i < p->nops; i++)
		if (p->ops[i].kind == OP_JOIN)
			j = &p->ops[i];
	if (!j)
		fail("exec mode needs a `join` op");
	lifeline = take_signals_and_lifeline(p);
	g_fatal_hook = on_fatal;

	g_op = j;
	join_cgroup(j->f[1]);
	join_namespaces((pid_t)j->u.pid);
	g_op = NULL;
	g_saved_umask = umask(0); /* the caller's, for command_run */
	umask(g_saved_umask);

	int ep[2];
	if (pipe2(ep, O_CLOEXEC))
		fail_errno("pipe");
	relay_before_fork();
	g_child = fork();
	if (g_child < 0)
		fail_errno("fork");
	if (g_child == 0) {
		g_fatal_hook = NULL;
		close(ep[0]);
		relay_in_child();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int tty = pty_open_inside();
		pty_attach(tty);
		command_run(p, ep[1]);
	}
	close(ep[1]);
	relay_after_fork();
	command_report_exec_error(ep[0], p);

	forward_signal_set(&set);
	sigdelset(&set, SIGPIPE);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		fail_errno("signalfd");
	int shared_pgrp = relay_reads_terminal() && lifeline >= 0;
	int status = 0;
	while (g_child > 0) {
		struct pollfd pf[5] = {{sfd, POLLIN, 0}, {lifeline, POLLIN, 0}};
		int nfixed = lifeline >= 0 ? 2 : 1;
		int nrelay = relay_pollfds(pf + nfixed);
		if (poll(pf, (nfds_t)(nfixed + nrelay), -1) < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("poll");
		}
		if (lifeline >= 0 && pf[1].revents) {
			char buf[256];
			ssize_t r = read(lifeline, buf, sizeof buf);
			if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
				kill_child();
				relay_restore();
				_exit(EXIT_LIFELINE);
			}
		}
		relay_events(pf + nfixed, nrelay);
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) != sizeof si)
				continue;
			if (si.ssi_signo == SIGCHLD) {
				if (waitpid(g_child, &status, WNOHANG) == g_child)
					g_child = 0;
			} else if (si.ssi_signo == SIGWINCH && relay_has_tty())
				relay_winch();
			else if (!(shared_pgrp && si.ssi_code == SI_KERNEL))
				kill(g_child, (int)si.ssi_signo);
		}
	}
	relay_drain();
	relay_restore();
	_exit(exit_code_of(status));
}
