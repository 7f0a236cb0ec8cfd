/* dns.c: the embedded DNS responder of a named network (aardvark-dns's
 * job in podman), run by the network's holder on the bridge address, port
 * 53. It answers A queries for the names of the network's members (their
 * --name, --hostname and aliases) with the member's address, and only
 * those: a member of another network is another holder, so names resolve
 * only inside the networks the asking sandbox is on. Every other name is
 * forwarded to the NAT's resolver when the network routes outbound
 * (dns_set_upstream), else answered SERVFAIL (a dotted name) or NXDOMAIN (a
 * single label: one of ours or nothing). One question per query, as every
 * stub resolver sends. */
#include "netns.h"

#include <ctype.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { RC_SERVFAIL = 2, RC_NXDOMAIN = 3, RC_REFUSED = 5, T_A = 1, T_ANY = 255, C_IN = 1 };

/* forwarded queries waiting for the upstream's answer, by our id */
#define PENDING 64
static struct {
	int fd;
	uint16_t next;
	struct {
		int used;
		uint16_t id, orig;
		struct sockaddr_in from;
	} p[PENDING];
} U = {.fd = -1};

void dns_set_upstream(uint32_t addr)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = addr};
	U.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (U.fd >= 0 && connect(U.fd, (struct sockaddr *)&to, sizeof to)) {
		close(U.fd);
		U.fd = -1;
	}
}

int dns_upstream_fd(void)
{
	return U.fd;
}

static void forward(unsigned char *q, size_t n, const struct sockaddr_in *from)
{
	int slot = U.next % PENDING;
	uint16_t id = U.next++;
	U.p[slot].used = 1;
	U.p[slot].id = id;
	U.p[slot].orig = (uint16_t)(q[0] << 8 | q[1]);
	U.p[slot].from = *from;
	q[0] = (unsigned char)(id >> 8);
	q[1] = (unsigned char)id;
	send(U.fd, q, n, MSG_DONTWAIT);
}

void dns_relay(int serve_fd)
{
	unsigned char r[1500];
	ssize_t n = recv(U.fd, r, sizeof r, MSG_DONTWAIT);
	if (n < 12)
		return;
	uint16_t id = (uint16_t)(r[0] << 8 | r[1]);
	int slot = id % PENDING;
	if (!U.p[slot].used || U.p[slot].id != id)
		return;
	U.p[slot].used = 0;
	r[0] = (unsigned char)(U.p[slot].orig >> 8);
	r[1] = (unsigned char)U.p[slot].orig;
	sendto(serve_fd, r, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&U.p[slot].from, sizeof U.p[slot].from);
}

void dns_answer(int fd, uint32_t (*lookup)(const char *name, uint32_t asker, int *pass))
{
	unsigned char q[512], r[512];
	struct sockaddr_in from;
	socklen_t flen = sizeof from;
	ssize_t n = recvfrom(fd, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
	if (n < 12 || (q[2] & 0x80) || q[4] || q[5] != 1) /* short, a response, or not one question */
		return;
	char name[256];
	size_t pos = 12, nl = 0;
	while (pos < (size_t)n && q[pos]) {
		size_t l = q[pos++];
		if (l > 63 || pos + l > (size_t)n || nl + l + 1 >= sizeof name)
			return;
		if (nl)
			name[nl++] = '.';
		for (size_t i = 0; i < l; i++)
			name[nl++] = (char)tolower(q[pos + i]);
		pos += l;
	}
	if (pos + 5 > (size_t)n)
		return;
	name[nl] = 0;
	pos++; /* the root label */
	unsigned qtype = (unsigned)(q[pos] << 8 | q[pos + 1]), qclass = (unsigned)(q[pos + 2] << 8 | q[pos + 3]);
	pos += 4;

	memcpy(r, q, pos);                                   /* header and question */
	r[2] = (unsigned char)(0x80 | 0x04 | (q[2] & 0x01)); /* QR, AA, RD copied */
	r[3] = 0;
	memset(r + 6, 0, 6); /* an, ns, ar counts */
	size_t len = pos;
	int pass = 0;
	uint32_t addr = qclass == C_IN ? lookup(name, from.sin_addr.s_addr, &pass) : 0;
	if (!addr && U.fd >= 0 && strchr(name, '.') && pass < 2) {
		forward(q, (size_t)n, &from);
		return;
	}
	if (!addr) {
		/* a single label is one of ours or nothing; anything else would need
		 * forwarding. An asker on other networks too gets REFUSED: its
		 * resolver then asks its next nameserver, another network's. */
		r[3] = pass ? RC_REFUSED : strchr(name, '.') ? RC_SERVFAIL : RC_NXDOMAIN;
	} else if (qtype == T_A || qtype == T_ANY) {
		static const unsigned char rr[] = {0xc0, 12, 0, T_A, 0, C_IN, 0, 0, 0, 0, 0, 4};
		memcpy(r + len, rr, sizeof rr);
		memcpy(r + len + sizeof rr, &addr, 4);
		len += sizeof rr + 4;
		r[7] = 1;
	} /* else: the name exists, no record of that type (AAAA): NOERROR, empty */
	sendto(fd, r, len, MSG_DONTWAIT, (struct sockaddr *)&from, flen);
}
