/* netns.h: named networks (docs/NETWORKS.md): the holder of a network's
 * user + network namespace (netns.c), its DNS responder (dns.c) and the
 * rtnetlink requests both sides use (netlink.c). */
#ifndef HUTCH_NETNS_H
#define HUTCH_NETNS_H

#include "helper.h"

#include <stddef.h>
#include <stdint.h>

/* netlink.c: 0 or -errno; addresses in network byte order */
int nl_bridge_add(const char *name, uint32_t gateway); /* gateway: its MAC is derived from it */
int nl_veth_add(const char *name, const char *peer, int peer_netns);
int nl_link_up(const char *name, const char *master);
int nl_addr_add(const char *name, uint32_t addr, int prefix);
int nl_default_route(uint32_t gateway);
int nl_link_del(const char *name);

/* dns.c: answer one query waiting on the UDP socket fd; lookup gives a
 * member's address (network byte order) by lower-case name, 0 if none, and
 * sets *pass when the asker (its address) is on other networks too */
void dns_answer(int fd, uint32_t (*lookup)(const char *name, uint32_t asker, int *pass));

/* nat.c: `net-nat` (before `unshare net`) and the holder's start of it;
 * nat_start returns 1 when outbound traffic is set up */
/* one line and optionally one fd (SCM_RIGHTS) on a unix socket (netns.c):
 * the holder's requests, and the NAT keeper's answers (nat.c) */
int send_msg(int sock, const char *line, int fd); /* fd -1: none */
ssize_t recv_msg(int sock, char *buf, size_t len, int *fd);

void net_nat(const struct op *o);
int run_tool(char *const argv[], const char *input); /* the holder's iptables, ebtables-restore: 0 on exit 0 */
int nat_start(const char *subnet);
const char *nat_dns(void);              /* the NAT's DNS forwarder (dotted quad) */
int nat_fd(void);                       /* the keeper's socket, for the holder's poll (-1: none) */
int nat_event(void);                    /* on it: 1 when a new NAT replaced one that ended */
void nat_status(char *out, size_t len); /* `status`'s answer line */

/* nat.c: one published port of a member: the NAT listens on the host,
 * the holder's namespace DNATs to the member (nat_publish: 0 or -1 with err) */
struct nat_fwd {
	char proto[4], hostip[16];
	uint16_t hostport, port;
	uint32_t member; /* network order */
	uint32_t snat;   /* network order: the gateway, for a member whose default route is another network's; 0 */
	int id;          /* slirp4netns's forward id */
};
int nat_publish(struct nat_fwd *f, char *err, size_t errlen);
void nat_unpublish(const struct nat_fwd *f);
void nat_republish(struct nat_fwd *f); /* on a new NAT */

/* dns.c: forward unknown names to this resolver (network order), through the NAT */
void dns_set_upstream(uint32_t addr);
int dns_upstream_fd(void);
void dns_relay(int serve_fd);

/* netns.c: the ops */
_Noreturn void net_holder_run(const struct op *o);
void net_join(const struct op *o);
void net_attach(const struct op *o);
void net_share(const struct op *o);
void net_publish(const struct op *o);
/* hutch network connect|disconnect (no plan: argv, see PLAN.md "net-connect mode") */
_Noreturn void net_connect_main(int argc, char **argv);
_Noreturn void net_resolv_main(int argc, char **argv);
int net_shared(void); /* net-share joined another holder's user namespace: `userns` is skipped */

#endif
