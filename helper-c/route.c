/* route.c: the `unreachable` op. Adds an "unreachable" route for one address
 * to the main table of the init's network namespace (rtnetlink
 * RTM_NEWROUTE), so that connecting to it fails with EHOSTUNREACH inside:
 * hutch blocks the host's own addresses this way, which user-mode NAT would
 * otherwise turn into connections to the host's services. Changing routes
 * needs CAP_NET_ADMIN, which the command does not get by default.
 *
 * musl ships no linux/ headers: the few netlink structures are spelled
 * out here (they are the kernel's ABI, include/uapi/linux/{netlink,rtnetlink}.h).
 */
#include "helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NL_ROUTE 0 /* NETLINK_ROUTE */
#define NL_RTM_NEWROUTE 24
#define NL_MSG_ERROR 2
#define NL_F_REQUEST 0x1
#define NL_F_ACK 0x4
#define NL_F_REPLACE 0x100
#define NL_F_CREATE 0x400
#define NL_RT_TABLE_MAIN 254
#define NL_RTPROT_STATIC 4
#define NL_RT_SCOPE_UNIVERSE 0
#define NL_RTN_UNREACHABLE 7
#define NL_RTA_DST 1

struct nl_hdr {
	uint32_t len;
	uint16_t type, flags;
	uint32_t seq, pid;
};
struct nl_rtmsg {
	uint8_t family, dst_len, src_len, tos, table, protocol, scope, type;
	uint32_t flags;
};
struct nl_rtattr {
	uint16_t len, type;
};
struct nl_sockaddr {
	sa_family_t family;
	unsigned short pad;
	uint32_t pid, groups;
};

void route_unreachable(const struct op *o)
{
	const char *addr = o->f[0];
	struct {
		struct nl_hdr h;
		struct nl_rtmsg r;
		struct nl_rtattr a;
		unsigned char dst[16];
	} req;
	int v6 = strchr(addr, ':') != NULL;
	memset(&req, 0, sizeof req);
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, req.dst) != 1)
		fail("unreachable: %s is not an IPv4 or IPv6 address", addr);
	size_t alen = v6 ? 16 : 4;
	req.h.len = (uint32_t)(sizeof req.h + sizeof req.r + sizeof req.a + alen);
	req.h.type = NL_RTM_NEWROUTE;
	req.h.flags = NL_F_REQUEST | NL_F_ACK | NL_F_CREATE | NL_F_REPLACE;
	req.h.seq = 1;
	req.r.family = v6 ? AF_INET6 : AF_INET;
	req.r.dst_len = (uint8_t)(alen * 8);
	req.r.table = NL_RT_TABLE_MAIN;
	req.r.protocol = NL_RTPROT_STATIC;
	req.r.scope = NL_RT_SCOPE_UNIVERSE;
	req.r.type = NL_RTN_UNREACHABLE;
	req.a.len = (uint16_t)(sizeof req.a + alen);
	req.a.type = NL_RTA_DST;

	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NL_ROUTE);
	if (s < 0)
		fail_errno("unreachable %s: netlink socket", addr);
	struct nl_sockaddr kernel = {.family = AF_NETLINK};
	if (sendto(s, &req, req.h.len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		fail_errno("unreachable %s: send", addr);
	union {
		struct nl_hdr h;
		unsigned char buf[512];
	} ack;
	ssize_t n;
	while ((n = recv(s, &ack, sizeof ack, 0)) < 0 && errno == EINTR)
		;
	close(s);
	if (n < (ssize_t)(sizeof ack.h + sizeof(int)) || ack.h.type != NL_MSG_ERROR)
		fail("unreachable %s: no answer from the kernel", addr);
	int err;
	memcpy(&err, ack.buf + sizeof ack.h, sizeof err);
	if (err == 0)
		return;
	/* a kernel without IPv6 (or with it disabled here) cannot be reached over it either */
	if (v6 && (-err == EAFNOSUPPORT || -err == EOPNOTSUPP))
		return;
	errno = -err;
	fail_errno("unreachable %s: add route", addr);
}
