/* nat.c: outbound traffic of a routed named network (docs/NETWORKS.md).
 * One slirp4netns for the whole network, attached to the holder's network
 * namespace: it must run in the host's network namespace (its sockets are
 * the outbound connections), so the `net-nat` op forks it before the holder
 * unshares its network namespace; it waits on a pipe until the holder's
 * namespace exists, and that pipe is also its --exit-fd: the holder's end
 * closes when the holder dies, even by SIGKILL, and slirp4netns quits.
 * Members' packets are forwarded by the holder's kernel and masqueraded
 * (iptables in the holder's namespace, as netavark does in podman's rootless
 * network namespace) to tap0's address, so slirp4netns sees one host. */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static struct {
	pid_t pid;
	int go, ready;              /* holder's ends: write a byte to go, read one from ready */
	const char *iptables, *api; /* api: slirp4netns's API socket (published ports) */
} N = {.pid = -1, .go = -1, .ready = -1};

void net_nat(const struct op *o)
{
	int go[2], ready[2];
	if (pipe2(go, O_CLOEXEC) || pipe2(ready, O_CLOEXEC))
		fail_errno("pipe");
	pid_t holder = getpid();
	pid_t pid = fork();
	if (pid < 0)
		fail_errno("fork");
	if (pid == 0) {
		char b, exitfd[32], readyfd[32], ns[64], api[512];
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(go[1]);
		close(ready[0]);
		if (read(go[0], &b, 1) != 1)
			_exit(0); /* the holder failed before its namespace existed */
		/* fds 3 and 4 for slirp4netns, no others */
		if (dup2(go[0], 3) < 0 || dup2(ready[1], 4) < 0)
			_exit(EXIT_SETUP);
		int keep[2] = {3, 4};
		close_fds_from(5, keep, 0);
		snprintf(exitfd, sizeof exitfd, "--exit-fd=3");
		snprintf(readyfd, sizeof readyfd, "--ready-fd=4");
		snprintf(ns, sizeof ns, "/proc/%d/ns/net", (int)holder);
		snprintf(api, sizeof api, "--api-socket=%s", o->f[2]);
		/* No --disable-host-loopback: libslirp then drops every packet to its
		 * host alias, and with it the replies of a published UDP port to a
		 * client on the host's loopback (they go to 10.0.2.2). The holder's
		 * FORWARD rules (nat_start) keep members from the host's loopback. */
		char *argv[] = {o->f[0], "--configure", "--mtu=65520", exitfd, readyfd, api, "--netns-type=path",
				ns,      "tap0",        NULL};
		reset_signals();
		execv(o->f[0], argv);
		dprintf(2, "hutch: %s: %s\n", o->f[0], strerror(errno));
		_exit(EXIT_NOTFOUND);
	}
	close(go[0]);
	close(ready[1]);
	N.pid = pid;
	N.go = go[1];
	N.ready = ready[0];
	N.iptables = o->f[1];
	N.api = o->f[2];
}

static int guard_host_loopback(void);

static int run_wait(char *const argv[])
{
	pid_t p = fork();
	if (p < 0)
		return -1;
	if (p == 0) {
		reset_signals();
		execv(argv[0], argv);
		_exit(EXIT_NOTFOUND);
	}
	int st;
	while (waitpid(p, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int nat_start(const char *subnet)
{
	if (N.pid < 0)
		return 0; /* internal network: no net-nat op */
	char b;
	struct pollfd pf = {.fd = N.ready, .events = POLLIN};
	if (write(N.go, "g", 1) != 1)
		fail_errno("starting slirp4netns");
	if (poll(&pf, 1, 10000) != 1 || read(N.ready, &b, 1) != 1)
		fail("slirp4netns did not get ready for the network (see the holder's log)");
	close(N.ready);
	if (write_file("/proc/sys/net/ipv4/ip_forward", "1"))
		fail_errno("enabling forwarding in the network's namespace");
	char *argv[] = {(char *)N.iptables, "-w", "-t", "nat",    "-A", "POSTROUTING", "-s",
			(char *)subnet,     "!",  "-o", "hutch0", "-j", "MASQUERADE",  NULL};
	if (run_wait(argv))
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
	return run_wait(dns_udp) || run_wait(dns_tcp) || run_wait(rest);
}

/* ---------- published ports of members ---------- */

/* One request on slirp4netns's API socket (a connection per request);
 * the reply's "id", or -1 with its error in err. */
static int api_call(const char *json, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char r[1024];
	size_t n = 0;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", N.api);
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
		return run_wait(argv);
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
		return run_wait(snat) || run_wait(argv);
	int r = run_wait(argv);
	return run_wait(snat) || r;
}

/* The NAT listens on HOSTIP:HOSTPORT and hands connections to tap0's
 * address (10.0.2.100) at HOSTPORT; the holder's namespace DNATs that to
 * the member, whose replies come back through the bridge (its default
 * route is this network's gateway) and conntrack. */
int nat_publish(struct nat_fwd *f, char *err, size_t errlen)
{
	char json[320];
	if (N.pid < 0 || !N.api) {
		snprintf(err, errlen, "the network has no NAT");
		return -1;
	}
	snprintf(json, sizeof json,
		 "{\"execute\": \"add_hostfwd\", \"arguments\": {\"proto\": \"%s\", \"host_addr\": \"%s\", "
		 "\"host_port\": %u, \"guest_addr\": \"10.0.2.100\", \"guest_port\": %u}}",
		 f->proto, f->hostip, f->hostport, f->hostport);
	if ((f->id = api_call(json, err, errlen)) < 0)
		return -1;
	if (dnat(f, "-A")) {
		snprintf(err, errlen, "%s could not add the DNAT rule", N.iptables);
		nat_unpublish(f);
		return -1;
	}
	return 0;
}

void nat_unpublish(const struct nat_fwd *f)
{
	char json[128], err[64];
	dnat(f, "-D");
	snprintf(json, sizeof json, "{\"execute\": \"remove_hostfwd\", \"arguments\": {\"id\": %d}}", f->id);
	api_call(json, err, sizeof err);
}
