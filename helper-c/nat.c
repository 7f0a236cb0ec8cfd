/* nat.c: outbound traffic of a routed named network (docs/NETWORKS.md).
 * One user-mode NAT for the whole network (slirp4netns, or pasta), attached
 * to the holder's network namespace. It must run in the host's network
 * namespace (its sockets are the outbound connections), which the holder
 * leaves for good at `unshare net` (the host's namespace belongs to the
 * initial user namespace: no setns back). So `net-nat` forks a *keeper*
 * before that: it stays in the host's namespace, starts the NAT when the
 * holder asks (`start`, once the bridge exists), reaps it when it ends and
 * says so (`exited HOW`); the holder then asks for a new one, so a NAT
 * killed on its own leaves no zombie and the network gets its outbound
 * traffic back. The keeper dies with the holder (PR_SET_PDEATHSIG, and EOF
 * on its socket), the NAT with the keeper (PR_SET_PDEATHSIG; slirp4netns's
 * --exit-fd too), even on SIGKILL.
 * Members' packets are forwarded by the holder's kernel and masqueraded
 * (iptables in the holder's namespace, as netavark does in podman's rootless
 * network namespace) to tap0's address, so the NAT sees one host. */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define NAT_READY_MS 10000

static struct {
	int ctl;                      /* the holder's end of the keeper's socket */
	pid_t keeper, pid;            /* pid: the NAT's, as the keeper reported it */
	int pasta, restarts;          /* driver; NATs started after the first */
	const char *iptables, *state; /* state: slirp4netns's API socket, or pasta's pid file */
	char last[96], down[256];     /* how the last one ended; why there is none now */
} N = {.ctl = -1, .keeper = -1, .pid = -1};

/* ---------- the keeper (host network namespace) ---------- */

/* Exec the NAT for the namespace of `holder`; in the keeper's child. */
static _Noreturn void exec_nat(const struct op *o, pid_t holder, int exitfd, int readyfd)
{
	char ns[64], api[512];
	snprintf(ns, sizeof ns, "/proc/%d/ns/net", (int)holder);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(0);
	reset_signals();
	if (!N.pasta) {
		/* fds 3 and 4 for slirp4netns, no others */
		if (dup2(exitfd, 3) < 0 || dup2(readyfd, 4) < 0)
			_exit(EXIT_SETUP);
		int keep[2] = {3, 4};
		close_fds_from(3, keep, 2);
		snprintf(api, sizeof api, "--api-socket=%s", o->f[2]);
		/* No --disable-host-loopback: libslirp then drops every packet to its
		 * host alias, and with it the replies of a published UDP port to a
		 * client on the host's loopback (they go to 10.0.2.2). The holder's
		 * FORWARD rules (guard_host_loopback) keep members from the host's loopback. */
		char *argv[] = {o->f[0],        "--configure", "--mtu=65520",       "--exit-fd=3",
				"--ready-fd=4", api,           "--netns-type=path", ns,
				"tap0",         NULL};
		execv(o->f[0], argv);
	} else {
		/* pasta drops its capabilities before it opens the namespace, and then
		 * may not open another process's /proc/PID/ns (ptrace access wants a
		 * superset of the holder's capabilities): it gets ours as fd 3 */
		int nsfd = open(ns, O_RDONLY);
		if (nsfd < 0 || dup2(nsfd, 3) < 0) {
			dprintf(2, "hutch: opening %s: %s\n", ns, strerror(errno));
			_exit(EXIT_SETUP);
		}
		int keep[1] = {3};
		close_fds_from(3, keep, 1);
		snprintf(ns, sizeof ns, "/proc/self/fd/3");
		/* The namespace's side as slirp4netns's (10.0.2.100 on tap0, gateway
		 * 10.0.2.2, IPv4): not the host's own address, which pasta would copy,
		 * so that the host's addresses are still the host's. No port forwards
		 * in either direction (-t/-u/-T/-U none: `auto` would forward the
		 * network's own ports to the host's and back); --no-map-gw: the
		 * gateway is not the host's loopback. The holder is root of its user
		 * namespace, pasta would switch to nobody: --runas 0:0. It watches no
		 * netns file (--no-netns-quit): it ends with the keeper. */
		char *argv[] = {o->f[0],
				"-f",
				"-q",
				"--config-net",
				"-4",
				"-I",
				"tap0",
				"-a",
				"10.0.2.100",
				"-n",
				"24",
				"-g",
				"10.0.2.2",
				"--no-map-gw",
				"--dns-forward",
				"169.254.1.1",
				"-T",
				"none",
				"-U",
				"none",
				"-t",
				"none",
				"-u",
				"none",
				"-P",
				o->f[2],
				"--runas",
				"0:0",
				"--no-netns-quit",
				"--netns",
				ns,
				NULL};
		execv(o->f[0], argv);
	}
	dprintf(2, "hutch: %s: %s\n", o->f[0], strerror(errno));
	_exit(EXIT_NOTFOUND);
}

static void describe(int st, char *out, size_t len)
{
	if (WIFSIGNALED(st))
		snprintf(out, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(out, len, "exit status %d", WEXITSTATUS(st));
}

/* Start the NAT; "ready PID" or "error TEXT" into reply. *exitw: the write
 * end of slirp4netns's --exit-fd, kept while it runs. */
static pid_t keeper_start(const struct op *o, pid_t holder, int *exitw, char *reply, size_t len)
{
	int ex[2] = {-1, -1}, rd[2] = {-1, -1}, st;
	unlink(o->f[2]); /* the last one's API socket or pid file */
	if (!N.pasta && (pipe2(ex, O_CLOEXEC) || pipe2(rd, O_CLOEXEC))) {
		snprintf(reply, len, "error pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_nat(o, holder, ex[0], rd[1]);
	if (!N.pasta) {
		close(ex[0]);
		close(rd[1]);
	}
	if (pid < 0) {
		snprintf(reply, len, "error fork: %s", strerror(errno));
		return -1;
	}
	int ready = 0;
	for (int waited = 0; !ready && waited < NAT_READY_MS; waited += 20) {
		if (!N.pasta) {
			struct pollfd pf = {.fd = rd[0], .events = POLLIN};
			char b;
			if (poll(&pf, 1, 20) == 1)
				ready = read(rd[0], &b, 1) == 1;
		} else {
			struct stat s;
			struct timespec ts = {0, 20 * 1000 * 1000};
			ready = stat(o->f[2], &s) == 0 && s.st_size > 0; /* written once configured */
			if (!ready)
				nanosleep(&ts, NULL);
		}
		if (!ready && waitpid(pid, &st, WNOHANG) == pid) {
			char how[64];
			describe(st, how, sizeof how);
			snprintf(reply, len, "error %s ended during setup (%s; see the holder's log)", o->f[0], how);
			if (!N.pasta) {
				close(rd[0]);
				close(ex[1]);
			}
			return -1;
		}
	}
	if (!N.pasta)
		close(rd[0]);
	if (!ready) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		if (!N.pasta)
			close(ex[1]);
		snprintf(reply, len, "error %s was not ready for the network after %d s", o->f[0], NAT_READY_MS / 1000);
		return -1;
	}
	*exitw = ex[1];
	snprintf(reply, len, "ready %d", (int)pid);
	return pid;
}

/* `bind HOSTIP HOSTPORT`: a TCP socket listening in the host's network
 * namespace, for a published port of a pasta network (pasta has no API
 * for one; the holder relays it) */
static void keeper_bind(int ctl, const char *args)
{
	char ip[INET_ADDRSTRLEN], reply[160];
	unsigned port;
	int one = 1, s = -1;
	struct sockaddr_in a = {.sin_family = AF_INET};
	if (sscanf(args, "%15s %u", ip, &port) != 2 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 || !port ||
	    port > 65535) {
		snprintf(reply, sizeof reply, "error bind HOSTIP(IPv4) HOSTPORT");
	} else {
		a.sin_port = htons((uint16_t)port);
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
		    bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 128)) {
			snprintf(reply, sizeof reply, "error listening on %s:%u: %s", ip, port, strerror(errno));
			if (s >= 0)
				close(s);
			s = -1;
		}
	}
	if (s < 0) {
		send(ctl, reply, strlen(reply), MSG_NOSIGNAL);
		return;
	}
	send_msg(ctl, "ok", s);
	close(s); /* the holder's relay has it now */
}

static _Noreturn void keeper(const struct op *o, pid_t holder, int ctl)
{
	int keep[1] = {ctl}, exitw = -1, pidfd = -1;
	pid_t pid = -1;
	char req[64], reply[256];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != holder)
		_exit(0);
	prctl(PR_SET_NAME, "hutch-natkeeper"); /* not one more "hutch-helper" with the holder's log */
	close_fds_from(3, keep, 1);            /* nothing of the holder's: no lock, no plan pipe */
	reset_signals();
	for (;;) {
		struct pollfd pf[2] = {{.fd = ctl, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(EXIT_SETUP);
		}
		if (pidfd >= 0 && pf[1].revents) {
			int st;
			char how[64];
			waitpid(pid, &st, 0);
			describe(st, how, sizeof how);
			close(pidfd);
			close(exitw);
			pidfd = exitw = -1;
			pid = -1;
			snprintf(reply, sizeof reply, "exited %s", how);
			send(ctl, reply, strlen(reply), MSG_NOSIGNAL);
		}
		if (!pf[0].revents)
			continue;
		ssize_t r = recv(ctl, req, sizeof req - 1, 0);
		if (r <= 0)
			_exit(0); /* the holder is gone: the NAT follows (its PDEATHSIG) */
		req[r] = 0;
		if (!strncmp(req, "bind ", 5)) {
			keeper_bind(ctl, req + 5);
			continue;
		}
		if (strcmp(req, "start") || pid > 0) {
			snprintf(reply, sizeof reply, "error the keeper takes start, with no NAT running");
		} else if ((pid = keeper_start(o, holder, &exitw, reply, sizeof reply)) > 0 &&
			   (pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
			kill(pid, SIGKILL); /* cannot watch it: no NAT rather than one we cannot reap */
			waitpid(pid, NULL, 0);
			close(exitw);
			exitw = -1;
			pid = -1;
			snprintf(reply, sizeof reply, "error pidfd_open: %s", strerror(errno));
		}
		send(ctl, reply, strlen(reply), MSG_NOSIGNAL);
	}
}

void net_nat(const struct op *o)
{
	int sp[2];
	N.pasta = o->nfields > 3;
	N.iptables = o->f[1];
	N.state = o->f[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp))
		fail_errno("socketpair");
	pid_t holder = getpid();
	pid_t pid = fork();
	if (pid < 0)
		fail_errno("fork");
	if (pid == 0)
		keeper(o, holder, sp[1]);
	close(sp[1]);
	N.ctl = sp[0];
	N.keeper = pid;
}

/* ---------- the holder's side ---------- */
static int guard_host_loopback(void);

/* The holder's tools (iptables here, ebtables-restore in netns.c): run
 * ARGV to its end, INPUT (or nothing) on its stdin; 0 when it exited 0. */
int run_tool(char *const argv[], const char *input)
{
	int p[2] = {-1, -1};
	if (input && pipe2(p, O_CLOEXEC))
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		if (input) {
			close(p[0]);
			close(p[1]);
		}
		return -1;
	}
	if (pid == 0) {
		reset_signals();
		if (input && dup2(p[0], 0) < 0)
			_exit(EXIT_NOTFOUND);
		execv(argv[0], argv);
		_exit(EXIT_NOTFOUND);
	}
	int wr = 0;
	if (input) {
		close(p[0]);
		wr = write_all(p[1], input, strlen(input));
		close(p[1]);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return !wr && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* One message from the keeper within the setup time: its length, or -1 */
static ssize_t keeper_reply(char *buf, size_t len)
{
	struct pollfd pf = {.fd = N.ctl, .events = POLLIN};
	ssize_t r = -1;
	if (poll(&pf, 1, NAT_READY_MS + 5000) == 1)
		r = recv(N.ctl, buf, len - 1, 0);
	buf[r > 0 ? r : 0] = 0;
	return r;
}

/* Ask the keeper for a NAT: 0 once it is ready, else -1 with N.down set. An
 * `exited` of the NAT before (a race with our request) is skipped. */
static int ask_start(void)
{
	char r[256];
	if (send(N.ctl, "start", 5, MSG_NOSIGNAL) != 5) {
		snprintf(N.down, sizeof N.down, "its keeper is gone (%s)", strerror(errno));
		return -1;
	}
	while (keeper_reply(r, sizeof r) > 0 && !strncmp(r, "exited ", 7))
		;
	if (!strncmp(r, "ready ", 6)) {
		N.pid = atoi(r + 6);
		N.down[0] = 0;
		return 0;
	}
	snprintf(N.down, sizeof N.down, "%s", !strncmp(r, "error ", 6) ? r + 6 : "its keeper did not answer");
	return -1;
}

int nat_start(const char *subnet)
{
	if (N.ctl < 0)
		return 0; /* internal network: no net-nat op */
	if (ask_start())
		fail("the network's NAT: %s", N.down);
	if (write_file("/proc/sys/net/ipv4/ip_forward", "1"))
		fail_errno("enabling forwarding in the network's namespace");
	char *argv[] = {(char *)N.iptables, "-w", "-t", "nat",    "-A", "POSTROUTING", "-s",
			(char *)subnet,     "!",  "-o", "hutch0", "-j", "MASQUERADE",  NULL};
	if (run_tool(argv, NULL))
		fail("%s could not add the network's MASQUERADE rule (iptables and the kernel's nat table are needed "
		     "for outbound traffic; --internal networks need neither)",
		     N.iptables);
	if (guard_host_loopback())
		fail("%s could not add the rules that keep members from the host's loopback", N.iptables);
	return 1;
}

/* slirp4netns maps every address of 10.0.2.0/24 but its DNS (10.0.2.3) to
 * the host's loopback. Members may reach the DNS, and answer what came in
 * through a published port (conntrack: the flow began on the host's side),
 * nothing else there. Only the holder has capabilities over this namespace's
 * rules: members hold no descriptor of it (docs/NETWORKS.md "Isolation"). */
static int guard_host_loopback(void)
{
	char *ipt = (char *)N.iptables;
	char *dns_udp[] = {ipt,  "-w",  "-A",      "FORWARD", "-i", "hutch0", "-d", "10.0.2.3",
			   "-p", "udp", "--dport", "53",      "-j", "ACCEPT", NULL};
	char *dns_tcp[] = {ipt,  "-w",  "-A",      "FORWARD", "-i", "hutch0", "-d", "10.0.2.3",
			   "-p", "tcp", "--dport", "53",      "-j", "ACCEPT", NULL};
	char *ours = "10.0.2.0/24", *replies = "ESTABLISHED,RELATED";
	char *rest[] = {ipt,  "-w",        "-A", "FORWARD",   "-i",    "hutch0", "-d",   ours,
			"-m", "conntrack", "!",  "--ctstate", replies, "-j",     "DROP", NULL};
	return run_tool(dns_udp, NULL) || run_tool(dns_tcp, NULL) || run_tool(rest, NULL);
}

const char *nat_dns(void)
{
	return N.pasta ? "169.254.1.1" : "10.0.2.3"; /* pasta's --dns-forward, slirp4netns's resolver */
}

int nat_fd(void)
{
	return N.ctl;
}

/* The NAT ended (HOW): start another (its tap0 went with it; the
 * MASQUERADE and DNAT rules stay); 1 when one runs again. */
static int nat_ended(const char *how)
{
	snprintf(N.last, sizeof N.last, "%.80s", how);
	fprintf(stderr, "hutch: the network's NAT (pid %d) ended (%s): starting another\n", (int)N.pid, N.last);
	N.pid = -1;
	N.restarts++;
	if (ask_start()) {
		fprintf(stderr, "hutch: the network has no outbound traffic: %s\n", N.down);
		return 0;
	}
	return 1;
}

/* The keeper spoke outside a request: the NAT ended, another one starts;
 * 1 when it runs (the holder then publishes its members' ports on it anew). */
int nat_event(void)
{
	char r[256];
	ssize_t n = recv(N.ctl, r, sizeof r - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		snprintf(N.down, sizeof N.down, "its keeper ended");
		close(N.ctl);
		N.ctl = -1;
		N.pid = -1;
		waitpid(N.keeper, NULL, 0);
		fprintf(stderr, "hutch: the network's NAT is gone: %s\n", N.down);
		return 0;
	}
	r[n] = 0;
	return strncmp(r, "exited ", 7) ? 0 : nat_ended(r + 7);
}

/* `status`'s answer: nat DRIVER PID|- RESTARTS [down: WHY] [last: HOW] */
void nat_status(char *out, size_t len)
{
	if (!N.state) {
		snprintf(out, len, "nat none\n");
		return;
	}
	snprintf(out, len, "nat %s %d %d%s%s%s%s\n", N.pasta ? "pasta" : "slirp4netns", (int)N.pid, N.restarts,
		 N.down[0] ? " down: " : "", N.down, N.last[0] ? " last: " : "", N.last);
}

/* ---------- published ports of members ---------- */

/* One request on slirp4netns's API socket (a connection per request);
 * the reply's "id", or -1 with its error in err. */
static int api_call(const char *json, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char r[1024];
	size_t n = 0;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", N.state);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) ||
	    write(fd, json, strlen(json)) != (ssize_t)strlen(json)) {
		snprintf(err, errlen, "the NAT's API socket: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	for (ssize_t k; n < sizeof r - 1 && (k = read(fd, r + n, sizeof r - 1 - n)) > 0;)
		n += (size_t)k;
	close(fd);
	r[n] = 0;
	const char *id = strstr(r, "\"id\"");
	if (strstr(r, "\"return\"") && (!id || (id = strchr(id, ':'))))
		return id ? atoi(id + 1) : 0;
	const char *desc = strstr(r, "\"desc\"");
	snprintf(err, errlen, "%s", desc ? desc + 7 : (n ? r : "no answer from slirp4netns"));
	err[strcspn(err, "}\n")] = 0;
	return -1;
}

static int dnat(const struct nat_fwd *f, const char *action)
{
	char port[8], to[32], a[INET_ADDRSTRLEN];
	snprintf(port, sizeof port, "%u", f->hostport);
	inet_ntop(AF_INET, &f->member, a, sizeof a);
	snprintf(to, sizeof to, "%s:%u", a, f->port);
	char *argv[] = {
		(char *)N.iptables, "-w",      "-t", "nat", (char *)action, "PREROUTING",       "-i", "tap0", "-p",
		(char *)f->proto,   "--dport", port, "-j",  "DNAT",         "--to-destination", to,   NULL};
	if (!f->snat)
		return run_tool(argv, NULL);
	/* A member connected later (hutch network connect) routes its replies
	 * through the network it started on, not back here: what comes in through
	 * its published port seems to come from this gateway, on-link for it. */
	char gw[INET_ADDRSTRLEN], mport[8];
	inet_ntop(AF_INET, &f->snat, gw, sizeof gw);
	snprintf(mport, sizeof mport, "%u", f->port);
	char *ipt = (char *)N.iptables, *act = (char *)action, *proto = (char *)f->proto;
	char *snat[] = {ipt,  "-w",   "-t",          "nat",     act,   "POSTROUTING", "-o",        "hutch0",    "-d",
			a,    "-p",   proto,         "--dport", mport, "-m",          "conntrack", "--ctstate", "DNAT",
			"-j", "SNAT", "--to-source", gw,        NULL};
	/* add: the SNAT first, so no packet is DNATed without it; delete: in reverse */
	if (!strcmp(action, "-A"))
		return run_tool(snat, NULL) || run_tool(argv, NULL);
	int r = run_tool(argv, NULL);
	return run_tool(snat, NULL) || r;
}

/* slirp4netns listens on HOSTIP:HOSTPORT and hands connections to tap0's
 * address (10.0.2.100) at HOSTPORT */
static int hostfwd(struct nat_fwd *f, char *err, size_t errlen)
{
	char json[320];
	snprintf(json, sizeof json,
		 "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"%s\", \"host_addr\": \"%s\", "
		 "\"host_port\": %u, \"guest_addr\": \"10.0.2.100\", \"guest_port\": %u}}",
		 f->proto, f->hostip, f->hostport, f->hostport);
	return (f->id = api_call(json, err, errlen)) < 0 ? -1 : 0;
}

/* ---------- published ports of a pasta network: hutch's relay ----------
 * pasta fixes its forwards when it starts (no API to add one), so the port
 * is hutch's: the keeper listens on HOSTIP:HOSTPORT in the host's namespace
 * and hands the socket over; a relay process (the holder's child, in its
 * namespace) accepts there and connects to MEMBER:PORT across the bridge,
 * copying both ways, as podman's rootlessport does beside its rootless
 * network namespace. The member sees the gateway as the client. */

static void pump(int from, int to)
{
	char buf[65536];
	ssize_t n;
	signal(SIGPIPE, SIG_IGN);
	while ((n = read(from, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
		for (ssize_t off = 0, w; n > 0 && off < n; off += w)
			if ((w = write(to, buf + off, (size_t)(n - off))) < 0) {
				if (errno != EINTR)
					return;
				w = 0;
			}
	shutdown(to, SHUT_WR);
}

/* one connection: a process per direction (blocking copies cannot wait on
 * each other), this one waits for both */
static _Noreturn void relay_conn(int c, uint32_t member, uint16_t port)
{
	struct sockaddr_in m = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = member};
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGCHLD, SIG_DFL);
	int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b < 0 || connect(b, (struct sockaddr *)&m, sizeof m))
		_exit(0); /* the client's connection closes */
	for (int i = 0; i < 2; i++) {
		pid_t p = fork();
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			pump(i ? b : c, i ? c : b);
			_exit(0);
		}
	}
	close(b);
	close(c);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	_exit(0);
}

static _Noreturn void relay(int lfd, pid_t holder, uint32_t member, uint16_t port)
{
	int keep[1] = {lfd};
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != holder)
		_exit(0);
	prctl(PR_SET_NAME, "hutch-portrelay");
	close_fds_from(3, keep, 1); /* nothing of the holder's: no member's connection, no socket */
	reset_signals();
	signal(SIGCHLD, SIG_IGN); /* connections are reaped by the kernel */
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
				continue;
			_exit(EXIT_SETUP);
		}
		if (fork() == 0) {
			close(lfd);
			relay_conn(c, member, port);
		}
		close(c);
	}
}

/* The keeper's answer to `bind`, with its descriptor; an `exited` before it is kept in *ended */
static int bind_reply(char *buf, size_t len, int *fd, char *ended, size_t elen)
{
	for (;;) {
		struct pollfd pf = {.fd = N.ctl, .events = POLLIN};
		*fd = -1;
		if (poll(&pf, 1, 5000) != 1 || recv_msg(N.ctl, buf, len, fd) <= 0)
			return -1;
		if (strncmp(buf, "exited ", 7))
			return 0;
		snprintf(ended, elen, "%.80s", buf + 7);
	}
}

static int relay_publish(struct nat_fwd *f, char *err, size_t errlen)
{
	char req[64], r[256], ended[96] = "";
	int lfd = -1;
	if (strcmp(f->proto, "tcp")) {
		snprintf(err, errlen, "a pasta network publishes tcp ports only");
		return -1;
	}
	snprintf(req, sizeof req, "bind %s %u", f->hostip, f->hostport);
	int bad = send(N.ctl, req, strlen(req), MSG_NOSIGNAL) < 0 || bind_reply(r, sizeof r, &lfd, ended, sizeof ended);
	if (ended[0])
		nat_ended(ended); /* pasta ended meanwhile: the relay does not need it, outbound traffic does */
	if (bad || strcmp(r, "ok") || lfd < 0) {
		snprintf(err, errlen, "%s",
			 bad                        ? "the NAT's keeper did not answer"
			 : !strncmp(r, "error ", 6) ? r + 6
						    : r);
		if (lfd >= 0)
			close(lfd);
		return -1;
	}
	pid_t holder = getpid(), pid = fork();
	if (pid == 0)
		relay(lfd, holder, f->member, f->port);
	close(lfd);
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	f->id = (int)pid;
	return 0;
}

/* The NAT listens on HOSTIP:HOSTPORT and hands connections to tap0's
 * address at HOSTPORT; the holder's namespace DNATs that to the member,
 * whose replies come back through the bridge (its default route is this
 * network's gateway) and conntrack. */
int nat_publish(struct nat_fwd *f, char *err, size_t errlen)
{
	if (N.pasta && N.ctl >= 0)
		return relay_publish(f, err, errlen);
	if (N.ctl < 0 || N.pid < 0) {
		snprintf(err, errlen, "the network has no NAT%s%s", N.down[0] ? ": " : "", N.down);
		return -1;
	}
	if (hostfwd(f, err, errlen))
		return -1;
	if (dnat(f, "-A")) {
		snprintf(err, errlen, "%s could not add the DNAT rule", N.iptables);
		nat_unpublish(f);
		return -1;
	}
	return 0;
}

/* On a NAT started after the first: the forward again (its DNAT rule stays) */
void nat_republish(struct nat_fwd *f)
{
	char err[160];
	if (N.pasta)
		return; /* the relay does not go through pasta */
	if (hostfwd(f, err, sizeof err))
		fprintf(stderr, "hutch: publishing %s:%u/%s again: %s\n", f->hostip, f->hostport, f->proto, err);
}

void nat_unpublish(const struct nat_fwd *f)
{
	char json[128], err[64];
	if (N.pasta) {
		if (f->id > 0 && !kill(f->id, SIGKILL)) /* its connections go with it (their PDEATHSIG) */
			waitpid(f->id, NULL, 0);
		return;
	}
	dnat(f, "-D");
	if (f->id < 0)
		return;
	snprintf(json, sizeof json, "{\"execute\": \"remove_hostfwd\", \"arguments\": {\"id\": %d}}", f->id);
	api_call(json, err, sizeof err);
}
