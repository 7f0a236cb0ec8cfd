/* netns.c: named networks (docs/NETWORKS.md).
 *
 * A veth pair between two network namespaces needs CAP_NET_ADMIN over both,
 * and every sandbox has its own user namespace, so two sandboxes cannot be
 * wired together directly. As rootless podman does (one rootless network
 * namespace in one long-lived user namespace), each network has a *holder*:
 * a helper that owns a user namespace (the caller's full id maps) and a
 * network namespace with a bridge. Members are created inside the holder's
 * user namespace (`net-join`: setns to it instead of `userns`), unshare
 * their own network namespace, and hand it to the holder (`net-attach`),
 * which creates a veth pair with the peer directly in it and enslaves its
 * end to the bridge. Member-to-member traffic crosses only the bridge.
 *
 * The holder listens on a unix socket; every connection is a reference
 * (a member's monitor, or a hutch between its check and its member's join),
 * and so is fd 3 (the hutch that started it). When the last one closes the
 * holder removes its socket and exits: nothing outlives the last member,
 * and a SIGKILLed hutch or monitor closes its references with it. */
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define BRIDGE "hutch0"
#define MAX_CLIENTS 250
#define NAMES_MAX 512

#define FWD_MAX 32
#define FIXED_FDS 5 /* the holder's poll: socket, DNS, lifeline, DNS upstream, NAT keeper; then clients */

struct client {
	int fd;
	uint32_t ip;           /* network order; 0 = not a member (yet) */
	int route, shared;     /* attach FLAGS: default route here; 1: on other networks too, 2: own nameservers too */
	char names[NAMES_MAX]; /* " name alias ... " lower case, space-delimited */
	char links[NAMES_MAX]; /* " alias=name ... ": --link, what this member calls another */
	int nfwd;              /* published ports (nat.c), withdrawn when the connection closes */
	struct nat_fwd fwd[FWD_MAX];
	/* `hutch network connect`: the member's monitor as a pidfd (`watch`). Such a
	 * member outlives its connection (the connecting helper exits); it ends when
	 * the monitor exits or on `detach`, and then the holder deletes its veth. */
	int pidfd;
	int dead; /* to drop after this poll round (another client's `detach`) */
	char ifname[IF_NAMESIZE];
};

static struct {
	uint32_t gw, net, mask; /* network order */
	int prefix, internal;
	const char *guard; /* ebtables-restore (net-holder guard=): each member's veth tied to its address */
	struct client c[MAX_CLIENTS];
	int n;
	unsigned veth_seq;
} H;

static void share_unlock(void); /* net-share's lock, below */

/* ---------- messages: one line, optionally one fd (SCM_RIGHTS) ---------- */

int send_msg(int sock, const char *line, int fd)
{
	struct iovec iov = {.iov_base = (void *)line, .iov_len = strlen(line)};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&cm, 0, sizeof cm);
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof cm.b;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	ssize_t r;
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r == (ssize_t)iov.iov_len ? 0 : -1;
}

/* Read one line (the peer writes each message with one write; local unix
 * stream sockets deliver it whole). Returns its length, 0 on EOF, -1 on
 * error; *fd gets a passed descriptor or -1. */
ssize_t recv_msg(int sock, char *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = len - 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof cm.b};
	ssize_t r;
	*fd = -1;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof *fd);
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return r;
}

/* ---------- the holder ---------- */

/* A member's address by name, as the asker (its address) sees it: its
 * --link aliases first. *pass: the asker has other nameservers after this
 * one (other networks' responders: 1, its own --dns too: 2), so a name we
 * do not know is refused rather than denied: its resolver asks the next. */
static uint32_t lookup(const char *name, uint32_t asker, int *pass)
{
	char key[260];
	const char *target = name;
	*pass = 0;
	for (int i = 0; i < H.n; i++) {
		const char *l;
		if (H.c[i].ip != asker)
			continue;
		*pass = H.c[i].shared;
		snprintf(key, sizeof key, " %s=", name);
		if ((l = strstr(H.c[i].links, key))) {
			static char to[256];
			l += strlen(key);
			snprintf(to, sizeof to, "%.*s", (int)strcspn(l, " "), l);
			target = to;
		}
	}
	snprintf(key, sizeof key, " %s ", target);
	for (int i = 0; i < H.n; i++)
		if (H.c[i].ip && strstr(H.c[i].names, key))
			return H.c[i].ip;
	return 0;
}

/* The member's network namespace must belong to our user namespace (the
 * one every holder of the user shares, net-share): else no veth can join
 * them, and the kernel's EPERM would not say why. */
#define NS_GET_USERNS_ 0xb701
static int same_userns(int nsfd)
{
	struct stat a, b;
	int u = ioctl(nsfd, NS_GET_USERNS_);
	if (u < 0)
		return 1; /* an old kernel: let the veth request answer */
	int r = fstat(u, &a) == 0 && stat("/proc/self/ns/user", &b) == 0 && a.st_ino == b.st_ino;
	close(u);
	return r;
}

static uint32_t free_address(void)
{
	uint32_t hosts = ~ntohl(H.mask);
	for (uint32_t h = 1; h < hosts; h++) {
		uint32_t a = htonl(ntohl(H.net) + h);
		int used = a == H.gw;
		for (int i = 0; i < H.n && !used; i++)
			used = H.c[i].ip == a;
		if (!used)
			return a;
	}
	return 0;
}

static const char *member_of(uint32_t ip)
{
	for (int i = 0; i < H.n; i++)
		if (H.c[i].ip == ip)
			return H.c[i].names;
	return NULL;
}

/* The anti-spoofing rules of one member's veth (bridge family, before
 * routing and before the bridge forwards): IPv4 and ARP that enter from that
 * port with another sender address are dropped, so a member with NET_RAW or
 * NET_ADMIN can neither speak as another member (to the others, the DNS
 * responder, or a host client of a published port: replies there pass the
 * NAT's guard by conntrack state) nor take over its address by ARP. ACTION
 * is A (attach) or D (drop); one ebtables-restore for the four rules.
 * 0 or -1. */
static int guard_rules(char action, const char *ifname, uint32_t ip)
{
	if (!H.guard)
		return 0;
	char a[INET_ADDRSTRLEN], text[1024];
	inet_ntop(AF_INET, &ip, a, sizeof a);
	int len = snprintf(text, sizeof text,
			   "*filter\n"
			   "-%c INPUT -i %s -p IPv4 --ip-src ! %s -j DROP\n"
			   "-%c FORWARD -i %s -p IPv4 --ip-src ! %s -j DROP\n"
			   "-%c INPUT -i %s -p ARP --arp-ip-src ! %s -j DROP\n"
			   "-%c FORWARD -i %s -p ARP --arp-ip-src ! %s -j DROP\n"
			   "COMMIT\n",
			   action, ifname, a, action, ifname, a, action, ifname, a, action, ifname, a);
	char *argv[] = {(char *)H.guard, "--noflush", NULL};
	return len < (int)sizeof text ? run_tool(argv, text) : -1;
}

/* attach IFNAME ADDR|- FLAGS NAME [ALIAS...] with the member's network namespace */
static void attach(struct client *c, char *args, int nsfd)
{
	char reply[NAMES_MAX + 128], ifname[IF_NAMESIZE];
	char *peer = strtok(args, " "), *want = strtok(NULL, " "), *flags = strtok(NULL, " ");
	uint32_t ip = 0;
	int rc;
	if (nsfd < 0 || c->ip || !flags || strlen(peer) >= IF_NAMESIZE) {
		send_msg(c->fd, "error attach needs IFNAME, an address (or -), flags and one network namespace, once\n",
			 -1);
		return;
	}
	if (!same_userns(nsfd)) {
		send_msg(c->fd,
			 "error the sandbox is in another user namespace than this network's holder (holders started "
			 "before net-share); stop the network's members and retry\n",
			 -1);
		return;
	}
	if (strcmp(want, "-")) {
		const char *taken;
		uint32_t host;
		if (inet_pton(AF_INET, want, &ip) != 1 || (ip & H.mask) != H.net || ip == H.gw ||
		    (host = ntohl(ip) & ~ntohl(H.mask)) == 0 || host == ~ntohl(H.mask)) {
			snprintf(reply, sizeof reply, "error --ip %s is not a host address of the network's subnet\n",
				 want);
			send_msg(c->fd, reply, -1);
			return;
		}
		if ((taken = member_of(ip))) {
			snprintf(reply, sizeof reply, "error --ip %s is taken by the member named%s\n", want, taken);
			send_msg(c->fd, reply, -1);
			return;
		}
	} else
		ip = free_address();
	if (!ip) {
		send_msg(c->fd, "error the network's subnet is full\n", -1);
		return;
	}
	snprintf(ifname, sizeof ifname, "hv%u", H.veth_seq++);
	snprintf(c->ifname, sizeof c->ifname, "%s", ifname);
	if ((rc = nl_veth_add(ifname, peer, nsfd)) || (rc = nl_link_up(ifname, BRIDGE))) {
		snprintf(reply, sizeof reply, "error creating the veth pair: %s\n", strerror(-rc));
		send_msg(c->fd, reply, -1);
		return;
	}
	if (guard_rules('A', ifname, ip)) {
		guard_rules('D', ifname, ip); /* whatever part of it went in */
		snprintf(reply, sizeof reply,
			 "error %s could not add the rules that tie the member's veth to its address\n", H.guard);
		send_msg(c->fd, reply, -1);
		return; /* drop() deletes the veth */
	}
	/* NAMEs are the member's; ALIAS=NAME words its links */
	size_t l = 1, k = 1;
	c->names[0] = c->links[0] = ' ';
	for (char *w = strtok(NULL, " "); w; w = strtok(NULL, " ")) {
		size_t wl = strlen(w);
		char *into = strchr(w, '=') ? c->links : c->names;
		size_t *at = into == c->links ? &k : &l;
		if (*at + wl + 2 >= NAMES_MAX)
			break;
		for (size_t i = 0; i < wl; i++)
			into[*at + i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]);
		*at += wl;
		into[(*at)++] = ' ';
	}
	c->names[l] = c->links[k] = 0;
	c->ip = ip;
	c->route = strstr(flags, "route") != NULL;
	c->shared = strstr(flags, "nofwd") ? 2 : strstr(flags, "shared") != NULL;
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &ip, a, sizeof a);
	inet_ntop(AF_INET, &H.gw, g, sizeof g);
	snprintf(reply, sizeof reply, "ip %s %d %s %s\n", a, H.prefix, g, H.internal ? "internal" : "routed");
	send_msg(c->fd, reply, -1);
}

/* publish tcp|udp HOSTIP HOSTPORT PORT: the NAT listens on HOSTIP:HOSTPORT on
 * the host and this network forwards it to the member's PORT */
static void publish(struct client *c, char *args)
{
	char reply[256], err[160];
	struct nat_fwd f = {0};
	char *proto = strtok(args, " "), *hip = strtok(NULL, " "), *hp = strtok(NULL, " "), *cp = strtok(NULL, " ");
	unsigned long hport, cport;
	if (!cp || parse_uint(hp, 10, &hport) || parse_uint(cp, 10, &cport) || !hport || !cport || hport > 65535 ||
	    cport > 65535 || (strcmp(proto, "tcp") && strcmp(proto, "udp")) || strlen(hip) >= sizeof f.hostip) {
		send_msg(c->fd, "error publish tcp|udp HOSTIP HOSTPORT PORT\n", -1);
		return;
	}
	if (!c->ip || H.internal || c->nfwd >= FWD_MAX) {
		send_msg(c->fd,
			 !c->ip       ? "error publish needs an attached member\n"
			 : H.internal ? "error an --internal network has no NAT to publish ports through\n"
				      : "error at most 32 published ports per member\n",
			 -1);
		return;
	}
	for (int i = 0; i < H.n; i++)
		for (int j = 0; j < H.c[i].nfwd; j++)
			if (H.c[i].fwd[j].hostport == hport && !strcmp(H.c[i].fwd[j].proto, proto)) {
				snprintf(reply, sizeof reply,
					 "error host port %s/%lu is published by the member named%s\n", proto, hport,
					 H.c[i].names);
				send_msg(c->fd, reply, -1);
				return;
			}
	snprintf(f.proto, sizeof f.proto, "%s", proto);
	snprintf(f.hostip, sizeof f.hostip, "%s", hip);
	f.hostport = (uint16_t)hport;
	f.port = (uint16_t)cport;
	f.member = c->ip;
	f.snat = c->route ? 0 : H.gw; /* its replies would leave by another network's route */
	if (nat_publish(&f, err, sizeof err)) {
		snprintf(reply, sizeof reply, "error publishing %s:%lu/%s: %s\n", hip, hport, proto, err);
		send_msg(c->fd, reply, -1);
		return;
	}
	c->fwd[c->nfwd++] = f;
	send_msg(c->fd, "ok\n", -1);
}

/* A member that goes: its published ports go now, before another member
 * gets its address. The netns of a member started on this network (and
 * its veth pair) goes with its last process; one connected later lives on
 * after a detach, and a net-connect that failed after the attach leaves
 * one unconfigured: the veth is deleted here in every case. */
static void drop(struct client *c)
{
	for (int i = 0; i < c->nfwd; i++)
		nat_unpublish(&c->fwd[i]);
	if (c->ifname[0] && c->ip)
		guard_rules('D', c->ifname, c->ip); /* rules name the interface, not the link: they outlive it */
	if (c->ifname[0])
		nl_link_del(c->ifname); /* ENODEV: gone with the member's namespace */
	if (c->pidfd >= 0)
		close(c->pidfd);
	if (c->fd >= 0)
		close(c->fd);
	*c = H.c[--H.n];
}

/* watch, with the member's monitor as a pidfd: the reference of a member
 * connected to a running sandbox (hutch network connect) */
static void watch(struct client *c, int *fd)
{
	if (*fd < 0 || !c->ip || c->pidfd >= 0) {
		send_msg(c->fd, "error watch needs an attached member and one pidfd, once\n", -1);
		return;
	}
	c->pidfd = *fd;
	*fd = -1;
	send_msg(c->fd, "ok\n", -1);
}

/* detach ADDR: hutch network disconnect */
static void detach(struct client *c, const char *addr)
{
	uint32_t ip;
	if (inet_pton(AF_INET, addr, &ip) != 1) {
		send_msg(c->fd, "error detach ADDR\n", -1);
		return;
	}
	for (int i = 0; i < H.n; i++)
		if (H.c[i].ip == ip && !H.c[i].dead) {
			if (H.c[i].pidfd < 0) {
				send_msg(c->fd,
					 "error the member was started on this network: its interface is its own\n",
					 -1);
				return;
			}
			/* its published ports now: the host port is free once `ok` says so */
			for (int j = 0; j < H.c[i].nfwd; j++)
				nat_unpublish(&H.c[i].fwd[j]);
			H.c[i].nfwd = 0;
			H.c[i].dead = 1;
			send_msg(c->fd, "ok\n", -1);
			return;
		}
	send_msg(c->fd, "error no member has that address\n", -1);
}

static void serve(struct client *c, int userns)
{
	char buf[1024];
	int fd;
	if (c->fd < 0) { /* a connected member's monitor exited */
		drop(c);
		return;
	}
	ssize_t r = recv_msg(c->fd, buf, sizeof buf, &fd);
	if (r <= 0) {
		if (c->pidfd >= 0) { /* the connecting helper is done: the pidfd is the reference now */
			close(c->fd);
			c->fd = -1;
		} else
			drop(c);
		return;
	}
	if (!strncmp(buf, "watch", 5))
		watch(c, &fd);
	else if (!strncmp(buf, "detach ", 7))
		detach(c, buf + 7);
	else if (!strncmp(buf, "publish ", 8))
		publish(c, buf + 8);
	else if (!strcmp(buf, "hold"))
		send_msg(c->fd, "ok\n", -1);
	else if (!strcmp(buf, "status")) {
		char st[320];
		nat_status(st, sizeof st);
		send_msg(c->fd, st, -1);
	} else if (!strcmp(buf, "join"))
		send_msg(c->fd, "ok\n", userns);
	else if (!strncmp(buf, "attach ", 7))
		attach(c, buf + 7, fd);
	else
		send_msg(c->fd, "error unknown request\n", -1);
	if (fd >= 0)
		close(fd);
}

static int parse_cidr(const char *s, uint32_t *addr, int *prefix)
{
	char a[INET_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	unsigned long p;
	if (!slash || (size_t)(slash - s) >= sizeof a || parse_uint(slash + 1, 10, &p) || p < 8 || p > 30)
		return -1;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = 0;
	*prefix = (int)p;
	return inet_pton(AF_INET, a, addr) == 1 ? 0 : -1;
}

static void remove_run_dir(const char *dir)
{
	static const char *const files[] = {"sock", "slirp.sock", "pasta.pid", "holder.log", "lock"};
	char path[256];
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* A holder SIGKILLed on its own cannot remove its run directory. Its
 * reaper, a child that shares the lock (same open file: the flock stays
 * held while either lives, so no new holder can start meanwhile) and waits
 * on a pipe only the holder writes, does it when the holder is gone, unless
 * the holder removed the lock file itself (a normal end) or never got ready
 * (hutch reads the log for the reason). */
static int g_reaper = -1; /* the holder's end: one byte once ready */

static void start_reaper(const char *dir, const char *lockpath, int lock)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC))
		return;
	pid_t pid = fork();
	if (pid != 0) {
		close(p[0]);
		if (pid < 0)
			close(p[1]);
		else
			g_reaper = p[1]; /* open for the holder's life */
		return;
	}
	char b;
	int ready = 0;
	struct stat a, c;
	int keep[2] = {p[0], lock}, null = open("/dev/null", O_RDWR | O_CLOEXEC);
	close(p[1]);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd); /* not the holder's log: it is no holder */
	close_fds_from(3, keep, 2);
	for (ssize_t r; (r = read(p[0], &b, 1)) != 0;)
		if (r > 0)
			ready = 1;
		else if (errno != EINTR)
			break;
	if (ready && fstat(lock, &a) == 0 && stat(lockpath, &c) == 0 && a.st_ino == c.st_ino)
		remove_run_dir(dir);
	_exit(0);
}

void net_holder_run(const struct op *o)
{
	const char *dir = o->f[0];
	char path[256];
	int rc;
	if (parse_cidr(o->f[1], &H.gw, &H.prefix))
		fail("net-holder: %s is not ADDRESS/PREFIX (prefix 8 to 30)", o->f[1]);
	H.internal = 0;
	H.guard = NULL;
	for (int i = 2; i < o->nfields; i++) {
		if (!strcmp(o->f[i], "internal"))
			H.internal = 1;
		else
			H.guard = o->f[i] + 6; /* guard=PATH (plan.c) */
	}
	H.mask = htonl(~0u << (32 - H.prefix));
	H.net = H.gw & H.mask;

	/* One holder per network: the lock goes with the process, even on
	 * SIGKILL. A holder removes the lock file as it ends; one locked here
	 * after that (opened just before the unlink) is not the file at the
	 * path any more: open it again. */
	char lockpath[256];
	snprintf(lockpath, sizeof lockpath, "%s/lock", dir);
	for (;;) {
		struct stat a, b;
		int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (lock < 0)
			fail_errno("opening %s", lockpath);
		if (flock(lock, LOCK_EX | LOCK_NB))
			fail("the network's holder is already running (%s is locked)", lockpath);
		if (fstat(lock, &a) == 0 && stat(lockpath, &b) == 0 && a.st_ino == b.st_ino) {
			start_reaper(dir, lockpath, lock);
			break;
		}
		close(lock);
	}

	if ((rc = nl_link_up("lo", NULL)) || (rc = nl_bridge_add(BRIDGE, H.gw)) ||
	    (rc = nl_addr_add(BRIDGE, H.gw, H.prefix)) || (rc = nl_link_up(BRIDGE, NULL))) {
		errno = -rc;
		fail_errno("creating the network's bridge");
	}
	int dns = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = H.gw};
	if (dns < 0 || bind(dns, (struct sockaddr *)&da, sizeof da))
		fail_errno("binding the network's DNS responder to port 53");
	int userns = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		fail_errno("opening /proc/self/ns/user");

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/sock", dir) >= (int)sizeof sa.sun_path)
		fail("net-holder: %s/sock is longer than a unix socket path may be", dir);
	unlink(sa.sun_path); /* a holder killed before it could remove it */
	snprintf(path, sizeof path, "%s/slirp.sock", dir);
	unlink(path); /* the NAT's API socket (nat.c), likewise */
	int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof sa) || listen(lsock, 64))
		fail_errno("listening on %s", sa.sun_path);
	chmod(sa.sun_path, 0600);
	share_unlock();

	/* outbound: the NAT (started by net-nat's keeper) on tap0, members masqueraded */
	if (!H.internal) {
		char subnet[32], a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &H.net, a, sizeof a);
		snprintf(subnet, sizeof subnet, "%s/%d", a, H.prefix);
		if (nat_start(subnet)) {
			uint32_t up;
			inet_pton(AF_INET, nat_dns(), &up);
			dns_set_upstream(up);
		}
	}

	/* the monitor blocked these for forwarding; the holder ends on them */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	report("ready");
	if (g_reaper >= 0 && write(g_reaper, "r", 1) != 1) {
		/* no reaper: only a SIGKILL on its own would leave the run directory */
	}
	g_op = NULL;

	int lifeline = FD_PLAN;
	for (;;) {
		struct pollfd pf[MAX_CLIENTS + FIXED_FDS];
		int np = 0;
		pf[np++] = (struct pollfd){.fd = lsock, .events = POLLIN};
		pf[np++] = (struct pollfd){.fd = dns, .events = POLLIN};
		pf[np++] = (struct pollfd){.fd = lifeline, .events = POLLIN};
		pf[np++] = (struct pollfd){.fd = dns_upstream_fd(), .events = POLLIN};
		pf[np++] = (struct pollfd){.fd = nat_fd(), .events = POLLIN};
		for (int i = 0; i < H.n; i++)
			pf[np++] = (struct pollfd){.fd = H.c[i].fd >= 0 ? H.c[i].fd : H.c[i].pidfd, .events = POLLIN};
		if (poll(pf, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("poll");
		}
		if (pf[1].revents & POLLIN)
			dns_answer(dns, lookup);
		if (pf[3].revents & POLLIN)
			dns_relay(dns);
		if (pf[4].revents && nat_event()) /* a new NAT: the members' ports on it */
			for (int i = 0; i < H.n; i++)
				for (int j = 0; j < H.c[i].nfwd; j++)
					nat_republish(&H.c[i].fwd[j]);
		if (lifeline >= 0 && pf[2].revents) {
			char b[64];
			if (read(lifeline, b, sizeof b) <= 0)
				lifeline = -1; /* a negative fd is ignored by poll */
		}
		/* from the last: serve() may move the last client into slot i */
		for (int i = np - 1; i >= FIXED_FDS; i--)
			if (pf[i].revents)
				serve(&H.c[i - FIXED_FDS], userns);
		for (int i = H.n - 1; i >= 0; i--)
			if (H.c[i].dead)
				drop(&H.c[i]);
		if (pf[0].revents & POLLIN) {
			int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && H.n < MAX_CLIENTS)
				H.c[H.n++] = (struct client){.fd = c, .pidfd = -1};
			else if (c >= 0)
				close(c);
		}
		if (lifeline < 0 && H.n == 0) {
			/* the socket goes first: a hutch that connects now gets
			 * ECONNREFUSED or ENOENT and starts a new holder */
			remove_run_dir(dir); /* nothing of the network's run time is left */
			_exit(0);
		}
	}
}

/* ---------- sharing one user namespace among a user's holders ---------- */

/* Every holder of a user is in one user namespace, so that one sandbox can
 * be a member of several networks: it joins that namespace once (net-join
 * through any of its networks), and each holder has CAP_NET_ADMIN over the
 * sandbox's network namespace. The first holder creates the namespace
 * (`userns`), the next ones join it through a running holder (`net-share`).
 * The lock (the run directory, flock) serializes that choice: held from the check until this
 * holder listens, so two holders started at once cannot make two. */
static int g_share_lock = -1, g_shared;

int net_shared(void)
{
	return g_shared;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path) >= (int)sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* `join` on a connected holder socket: its user namespace's fd, or -1 */
static int ask_userns(int sock)
{
	char reply[64];
	int fd;
	if (send_msg(sock, "join\n", -1) || recv_msg(sock, reply, sizeof reply, &fd) <= 0 || strcmp(reply, "ok")) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void become_root(void)
{
	/* as after `userns`: become root of the namespace, stay dumpable */
	if (syscall(SYS_setgroups, 0, NULL) && errno != EPERM)
		fail_errno("setgroups(0)");
	if (syscall(SYS_setresgid, 0, 0, 0) || syscall(SYS_setresuid, 0, 0, 0))
		fail_errno("becoming root of the network's user namespace");
	prctl(PR_SET_DUMPABLE, 1);
}

void net_share(const struct op *o)
{
	char path[512];
	/* the lock is the directory itself: no file to leave behind */
	g_share_lock = open(o->f[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g_share_lock < 0)
		fail_errno("opening %s", o->f[0]);
	while (flock(g_share_lock, LOCK_EX))
		if (errno != EINTR)
			fail_errno("locking %s", o->f[0]);
	DIR *d = opendir(o->f[0]);
	struct dirent *e;
	while (d && (e = readdir(d)) && !g_shared) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/sock", o->f[0], e->d_name);
		int s = connect_unix(path);
		if (s < 0)
			continue; /* no holder there (or one ending) */
		int ns = ask_userns(s);
		close(s); /* the namespace stays with us, not the other network */
		if (ns < 0)
			continue;
		if (setns(ns, CLONE_NEWUSER))
			fail_errno("joining the user namespace of the network holder at %s", path);
		close(ns);
		become_root();
		g_shared = 1;
	}
	if (d)
		closedir(d);
}

/* the holder listens: the next one to start finds it */
static void share_unlock(void)
{
	if (g_share_lock >= 0)
		close(g_share_lock);
	g_share_lock = -1;
}

/* ---------- the member's side (its monitor) ---------- */

/* connections to holders: our references, for the member's life */
static int g_net = -1;      /* net-join's */
static int g_attached = -1; /* the last net-attach's: net-publish talks on it */

static void request(int sock, const char *line, int fd, char *reply, size_t len)
{
	int got;
	if (send_msg(sock, line, fd))
		fail_errno("talking to the network's holder");
	ssize_t r = recv_msg(sock, reply, len, &got);
	if (r <= 0)
		fail("the network's holder went away (%s)", r < 0 ? strerror(errno) : "closed");
	if (got >= 0)
		close(got);
	if (!strncmp(reply, "error ", 6))
		fail("network: %s", reply + 6);
}

void net_join(const struct op *o)
{
	g_net = connect_unix(o->f[0]);
	if (g_net < 0)
		fail_errno("connecting to the network's holder at %s", o->f[0]);
	int fd = ask_userns(g_net);
	if (fd < 0)
		fail("network: the holder at %s sent no user namespace", o->f[0]);
	if (setns(fd, CLONE_NEWUSER))
		fail_errno("joining the network's user namespace");
	close(fd);
	become_root();
}

/* net-attach SOCKET IFNAME ADDR|- FLAGS NAME [ALIAS...] */
void net_attach(const struct op *o)
{
	char line[NAMES_MAX + 64], reply[256];
	size_t l = (size_t)snprintf(line, sizeof line, "attach");
	for (int i = 1; i < o->nfields; i++) {
		if (strpbrk(o->f[i], " \n") || l + strlen(o->f[i]) + 3 >= sizeof line)
			fail("net-attach: names are single words, %d bytes in all at most", NAMES_MAX);
		l += (size_t)snprintf(line + l, sizeof line - l, " %s", o->f[i]);
	}
	snprintf(line + l, sizeof line - l, "\n");
	int sock = connect_unix(o->f[0]);
	if (sock < 0)
		fail_errno("connecting to the network's holder at %s", o->f[0]);
	int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		fail_errno("opening /proc/self/ns/net");
	request(sock, line, ns, reply, sizeof reply);
	close(ns);
	g_attached = sock;

	const char *ifname = o->f[1];
	char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN], mode[16];
	int prefix;
	uint32_t a, g;
	if (sscanf(reply, "ip %15s %d %15s %15s", addr, &prefix, gw, mode) != 4 || inet_pton(AF_INET, addr, &a) != 1 ||
	    inet_pton(AF_INET, gw, &g) != 1)
		fail("network: unexpected answer from the holder: %s", reply);
	int rc;
	if ((rc = nl_addr_add(ifname, a, prefix)) || (rc = nl_link_up(ifname, NULL)) ||
	    (o->u.net.route && strcmp(mode, "internal") && (rc = nl_default_route(g)))) {
		errno = -rc;
		fail_errno("configuring %s (%s/%d)", ifname, addr, prefix);
	}
	report("net %s %s", addr, ifname);
}

/* net-publish PROTO HOSTIP HOSTPORT PORT, on the last attached network */
void net_publish(const struct op *o)
{
	char line[128], reply[256];
	snprintf(line, sizeof line, "publish %s %s %s %s\n", o->f[0], o->f[1], o->f[2], o->f[3]);
	request(g_attached, line, -1, reply, sizeof reply);
}

/* ---------- hutch network connect | disconnect (a running member) ---------- */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Enter the user namespace and the NS namespace of PID: a process of the
 * sandbox that the user may inspect (the command, as for hutch exec; pid 1
 * and the monitor are not dumpable). We become root of the user namespace
 * every holder of the user shares, nothing more than the sandbox has. */
static void enter(const char *pid, const char *ns, int flag)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%s/ns/user", pid);
	int u = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof path, "/proc/%s/ns/%s", pid, ns);
	int n = open(path, O_RDONLY | O_CLOEXEC);
	if (u < 0 || n < 0)
		fail_errno("opening the namespaces of the sandbox's process %s (is it running?)", pid);
	if (setns(u, CLONE_NEWUSER))
		fail_errno("joining the sandbox's user namespace");
	become_root();
	if (setns(n, flag))
		fail_errno("joining the sandbox's %s namespace", ns);
	close(u);
	close(n);
}

#define PUBLISH_ARG "--publish="

/* hutch-helper net-connect PID MONITOR SOCKET IFNAME ADDR|- NAME [ALIAS...] [--publish=PROTO/HOSTIP/HOSTPORT/PORT...]
 * The holder at SOCKET creates the veth into the namespace of PID, this
 * process configures IFNAME there (as net-attach does in the monitor), then
 * hands the holder a pidfd of MONITOR: its reference, ending when the
 * monitor exits (or on detach), never outliving the sandbox. */
void net_connect_main(int argc, char **argv)
{
	char line[NAMES_MAX + 64], reply[256];
	unsigned long mon;
	if (argc < 8 || parse_uint(argv[3], 10, &mon) || !mon)
		fail("usage: hutch-helper net-connect PID MONITOR SOCKET IFNAME ADDR|- NAME [ALIAS...] "
		     "[--publish=PROTO/HOSTIP/HOSTPORT/PORT...]");
	/* the pidfd first: the monitor checked alive after it cannot be another process */
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)mon, 0);
	if (pidfd < 0)
		fail_errno("pidfd_open of the sandbox's monitor %lu", mon);
	enter(argv[2], "net", CLONE_NEWNET);
	struct pollfd pf = {.fd = pidfd, .events = POLLIN};
	if (poll(&pf, 1, 0) != 0)
		fail("the sandbox's monitor %lu has ended", mon);
	size_t l = (size_t)snprintf(line, sizeof line, "attach %s %s shared", argv[5], argv[6]);
	for (int i = 7; i < argc; i++) {
		if (!strncmp(argv[i], PUBLISH_ARG, strlen(PUBLISH_ARG)))
			continue; /* after the attach, below */
		if (strpbrk(argv[i], " \n") || l + strlen(argv[i]) + 3 >= sizeof line)
			fail("net-connect: names are single words, %d bytes in all at most", NAMES_MAX);
		l += (size_t)snprintf(line + l, sizeof line - l, " %s", argv[i]);
	}
	snprintf(line + l, sizeof line - l, "\n");
	int sock = connect_unix(argv[4]);
	if (sock < 0)
		fail_errno("connecting to the network's holder at %s", argv[4]);
	int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		fail_errno("opening /proc/self/ns/net");
	request(sock, line, ns, reply, sizeof reply);
	close(ns);
	char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN], mode[16];
	int prefix, rc;
	uint32_t a;
	if (sscanf(reply, "ip %15s %d %15s %15s", addr, &prefix, gw, mode) != 4 || inet_pton(AF_INET, addr, &a) != 1)
		fail("network: unexpected answer from the holder: %s", reply);
	/* no default route: the sandbox keeps the one it started with */
	if ((rc = nl_addr_add(argv[5], a, prefix)) || (rc = nl_link_up(argv[5], NULL))) {
		errno = -rc;
		fail_errno("configuring %s (%s/%d)", argv[5], addr, prefix);
	}
	/* -p: published through this network's NAT, withdrawn by the holder when
	 * the member goes (detach, the monitor's end) or when we fail before watch */
	for (int i = 7; i < argc; i++) {
		char pub[128];
		if (strncmp(argv[i], PUBLISH_ARG, strlen(PUBLISH_ARG)))
			continue;
		snprintf(pub, sizeof pub, "publish %s\n", argv[i] + strlen(PUBLISH_ARG));
		for (char *c = pub; *c; c++)
			if (*c == '/')
				*c = ' ';
		request(sock, pub, -1, reply, sizeof reply);
	}
	request(sock, "watch\n", pidfd, reply, sizeof reply);
	printf("net %s %s\n", addr, argv[5]);
	exit(0);
}

/* hutch-helper net-resolv PID [CONTENT]: /etc/resolv.conf of the sandbox,
 * printed (without CONTENT: the user may not read it through
 * /proc/PID/root) or replaced by CONTENT (a connected network's responder
 * first). The file is hutch's, bound read-only by the sandbox's own mount
 * namespace (so not locked): made writable for the write, read-only again
 * with its flags. */
void net_resolv_main(int argc, char **argv)
{
	struct statvfs sv;
	char buf[4096];
	if (argc != 3 && argc != 4)
		fail("usage: hutch-helper net-resolv PID [CONTENT]");
	enter(argv[2], "mnt", CLONE_NEWNS);
	const char *f = "/etc/resolv.conf";
	if (argc == 3) {
		int fd = open(f, O_RDONLY | O_CLOEXEC);
		ssize_t r;
		if (fd < 0)
			fail_errno("opening the sandbox's %s", f);
		while ((r = read(fd, buf, sizeof buf)) > 0)
			if (write(1, buf, (size_t)r) != r)
				fail_errno("writing %s to stdout", f);
		exit(0);
	}
	if (statvfs(f, &sv))
		fail_errno("statvfs %s", f);
	unsigned long keep = MS_BIND | MS_REMOUNT | (sv.f_flag & (ST_NOSUID | ST_NODEV | ST_NOEXEC));
	if (mount(NULL, f, NULL, keep, NULL))
		fail_errno("making the sandbox's %s writable", f);
	int fd = open(f, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t len = strlen(argv[3]);
	int bad = fd < 0 || write(fd, argv[3], len) != (ssize_t)len;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (mount(NULL, f, NULL, keep | MS_RDONLY, NULL))
		fail_errno("making the sandbox's %s read-only again", f);
	if (bad) {
		errno = e;
		fail_errno("writing the sandbox's %s", f);
	}
	exit(0);
}
