/* netlink.c: the few rtnetlink requests named networks need (a bridge, a
 * veth pair whose peer is created directly in another network namespace,
 * link up/master, an IPv4 address, a default route). Each request opens a
 * NETLINK_ROUTE socket in the caller's current network namespace, sends one
 * message and waits for its ack. musl ships no linux/ headers, so the uapi
 * structs and numbers are spelled out here (they are stable ABI). */
#include "netns.h"

#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct nl_hdr {
	uint32_t len;
	uint16_t type, flags;
	uint32_t seq, pid;
};
struct nl_err {
	int error;
	struct nl_hdr msg;
};
struct nl_ifinfo {
	unsigned char family, pad;
	unsigned short type;
	int index;
	unsigned flags, change;
};
struct nl_ifaddr {
	uint8_t family, prefixlen, flags, scope;
	uint32_t index;
};
struct nl_rtmsg {
	unsigned char family, dst_len, src_len, tos, table, protocol, scope, type;
	unsigned flags;
};
struct nl_attr {
	unsigned short len, type;
};
struct nl_addr {
	sa_family_t family;
	unsigned short pad;
	uint32_t pid, groups;
};

enum {
	RTM_NEWLINK = 16,
	RTM_DELLINK = 17,
	RTM_NEWADDR = 20,
	RTM_NEWROUTE = 24,
	NLMSG_ERROR_ = 2,
	F_REQUEST = 1,
	F_ACK = 4,
	F_EXCL = 0x200,
	F_CREATE = 0x400,
	IFLA_ADDRESS_ = 1,
	IFLA_IFNAME_ = 3,
	IFLA_MASTER_ = 10,
	IFLA_LINKINFO_ = 18,
	IFLA_NET_NS_FD_ = 28,
	INFO_KIND = 1,
	INFO_DATA = 2,
	VETH_PEER = 1,
	IFA_ADDRESS_ = 1,
	IFA_LOCAL_ = 2,
	RTA_GATEWAY_ = 5,
	NLA_NESTED = 0x8000,
};

#define ALIGN4(n) (((n) + 3u) & ~3u)

struct nl_msg {
	struct nl_hdr h;
	unsigned char body[1024];
};

static void *tail(struct nl_msg *m)
{
	return (unsigned char *)m + ALIGN4(m->h.len);
}

static void put_raw(struct nl_msg *m, const void *data, size_t len)
{
	memcpy(tail(m), data, len);
	m->h.len = ALIGN4(m->h.len) + (uint32_t)len;
}

static struct nl_attr *put_attr(struct nl_msg *m, unsigned short type, const void *data, size_t len)
{
	struct nl_attr *a = tail(m);
	a->type = type;
	a->len = (unsigned short)(sizeof *a + len);
	if (len)
		memcpy(a + 1, data, len);
	m->h.len = ALIGN4(m->h.len) + a->len;
	return a;
}

static struct nl_attr *nest(struct nl_msg *m, unsigned short type)
{
	return put_attr(m, type | NLA_NESTED, NULL, 0);
}

static void nest_end(struct nl_msg *m, struct nl_attr *a)
{
	a->len = (unsigned short)((unsigned char *)m + m->h.len - (unsigned char *)a);
}

static void start(struct nl_msg *m, uint16_t type, uint16_t flags)
{
	memset(m, 0, sizeof *m);
	m->h.len = sizeof m->h;
	m->h.type = type;
	m->h.flags = F_REQUEST | F_ACK | flags;
	m->h.seq = 1;
}

/* send and wait for the ack: 0 or -errno */
static int talk(struct nl_msg *m)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0 /* NETLINK_ROUTE */);
	if (fd < 0)
		return -errno;
	struct nl_addr sa = {.family = AF_NETLINK};
	int rc = -EIO;
	if (sendto(fd, m, m->h.len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		union {
			struct nl_hdr h;
			unsigned char b[4096];
		} r;
		ssize_t n = recv(fd, &r, sizeof r, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < (ssize_t)sizeof r.h) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		if (r.h.type == NLMSG_ERROR_) {
			rc = ((struct nl_err *)(&r.h + 1))->error;
			break;
		}
	}
out:
	close(fd);
	return rc;
}

/* The bridge gets a fixed MAC address (locally administered, 02:00 and the
 * gateway's IPv4 address). Without one the kernel gives the bridge the
 * lowest MAC of its ports and changes it as members come and go; a member's
 * cached ARP entry for the gateway then names an address the bridge no
 * longer takes as its own, and its packets to the gateway (DNS, outbound)
 * are dropped until the entry is probed again, tens of seconds later. */
int nl_bridge_add(const char *name, uint32_t gateway)
{
	struct nl_msg m;
	struct nl_ifinfo ifi = {0};
	unsigned char mac[6] = {0x02, 0x00};
	memcpy(mac + 2, &gateway, 4);
	start(&m, RTM_NEWLINK, F_CREATE | F_EXCL);
	put_raw(&m, &ifi, sizeof ifi);
	put_attr(&m, IFLA_IFNAME_, name, strlen(name) + 1);
	put_attr(&m, IFLA_ADDRESS_, mac, sizeof mac);
	struct nl_attr *li = nest(&m, IFLA_LINKINFO_);
	put_attr(&m, INFO_KIND, "bridge", 6);
	nest_end(&m, li);
	return talk(&m);
}

int nl_veth_add(const char *name, const char *peer, int peer_netns)
{
	struct nl_msg m;
	struct nl_ifinfo ifi = {0};
	start(&m, RTM_NEWLINK, F_CREATE | F_EXCL);
	put_raw(&m, &ifi, sizeof ifi);
	put_attr(&m, IFLA_IFNAME_, name, strlen(name) + 1);
	struct nl_attr *li = nest(&m, IFLA_LINKINFO_);
	put_attr(&m, INFO_KIND, "veth", 4);
	struct nl_attr *data = nest(&m, INFO_DATA);
	struct nl_attr *p = nest(&m, VETH_PEER);
	put_raw(&m, &ifi, sizeof ifi);
	put_attr(&m, IFLA_IFNAME_, peer, strlen(peer) + 1);
	uint32_t nsfd = (uint32_t)peer_netns;
	put_attr(&m, IFLA_NET_NS_FD_, &nsfd, sizeof nsfd);
	nest_end(&m, p);
	nest_end(&m, data);
	nest_end(&m, li);
	return talk(&m);
}

int nl_link_up(const char *name, const char *master)
{
	struct nl_msg m;
	struct nl_ifinfo ifi = {0};
	ifi.index = (int)if_nametoindex(name);
	if (!ifi.index)
		return -errno;
	ifi.flags = IFF_UP;
	ifi.change = IFF_UP;
	start(&m, RTM_NEWLINK, 0);
	put_raw(&m, &ifi, sizeof ifi);
	if (master) {
		uint32_t mi = if_nametoindex(master);
		if (!mi)
			return -errno;
		put_attr(&m, IFLA_MASTER_, &mi, sizeof mi);
	}
	return talk(&m);
}

int nl_addr_add(const char *name, uint32_t addr, int prefix)
{
	struct nl_msg m;
	struct nl_ifaddr ifa = {.family = AF_INET, .prefixlen = (uint8_t)prefix};
	ifa.index = if_nametoindex(name);
	if (!ifa.index)
		return -errno;
	start(&m, RTM_NEWADDR, F_CREATE | F_EXCL);
	put_raw(&m, &ifa, sizeof ifa);
	put_attr(&m, IFA_LOCAL_, &addr, 4);
	put_attr(&m, IFA_ADDRESS_, &addr, 4);
	return talk(&m);
}

int nl_default_route(uint32_t gateway)
{
	struct nl_msg m;
	struct nl_rtmsg rt = {.family = AF_INET, .table = 254 /* main */, .protocol = 3 /* boot */, .type = 1};
	start(&m, RTM_NEWROUTE, F_CREATE | F_EXCL);
	put_raw(&m, &rt, sizeof rt);
	put_attr(&m, RTA_GATEWAY_, &gateway, 4);
	return talk(&m);
}

/* network connect/disconnect: the holder deletes its veth end (the peer in
 * the member's namespace goes with it) */
int nl_link_del(const char *name)
{
	struct nl_msg m;
	struct nl_ifinfo ifi = {0};
	ifi.index = (int)if_nametoindex(name);
	if (!ifi.index)
		return -errno;
	start(&m, RTM_DELLINK, 0);
	put_raw(&m, &ifi, sizeof ifi);
	return talk(&m);
}
