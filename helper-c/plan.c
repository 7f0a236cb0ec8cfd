/* plan.c: read and validate the plan (format in PLAN.md).
 *
 * Every op is parsed here, once, into typed fields (struct op's union u:
 * numbers, modes, flag sets, capability masks, namespace flags, syscall
 * numbers), and everything that can be checked without touching the system
 * is checked here, before the first syscall with side effects, so a bad plan
 * fails early with the line that is wrong. The op table says for every op its
 * field count, which process runs it (its phase) and how it is parsed; the
 * roles (monitor.c, init.c, command.c) only read the typed fields.
 */
#include "helper.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PLAN_MAX (4 << 20)

_Noreturn static void plan_error(int line, const char *text, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

_Noreturn static void plan_error(int line, const char *text, const char *fmt, ...)
{
	static struct op fake;
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fake.line = line;
	fake.text = (char *)text;
	g_op = line ? &fake : NULL;
	fail("invalid plan: %s", why);
}

#define op_error(o, ...) plan_error((o)->line, (o)->text, __VA_ARGS__)

/* ---------- field syntax ---------- */

/* Decimal or octal, digits only, no sign, no overflow (strtoul would pull
 * in a lot of libc for little). */
int parse_uint(const char *s, int base, unsigned long *out)
{
	unsigned long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (d >= (unsigned)base || v > (~0UL - d) / (unsigned)base)
			return -1;
		v = v * (unsigned)base + d;
	}
	*out = v;
	return 0;
}

static int parse_num(const char *s, int base, unsigned long max, unsigned long *out)
{
	return parse_uint(s, base, out) || *out > max ? -1 : 0;
}

/* Next item of a comma-separated list: sets item/len and returns 1, or 0 at
 * the end. An item may be empty ("a,,b"); a single trailing comma ends the
 * list ("a," is one item). */
static int next_item(const char **p, const char **item, size_t *len)
{
	if (!**p)
		return 0;
	*item = *p;
	*len = strcspn(*p, ",");
	*p += *len;
	if (**p == ',')
		(*p)++;
	return 1;
}

/* Index of item in words (n entries), or -1. */
static int word_index(const char *item, size_t len, const char *const *words, int n, int nocase)
{
	for (int i = 0; i < n; i++)
		if (strlen(words[i]) == len && !(nocase ? strncasecmp : strncmp)(words[i], item, len))
			return i;
	return -1;
}

/* Upper-case only: PLAN.md names exactly %25 %09 %0A %0D, and one spelling
 * per byte keeps the plan text canonical (what --dry-run shows is what runs). */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* In-place decode of the four escapes %25 %09 %0A %0D; anything else that
 * starts with % is an error, so a writer bug cannot go unnoticed. */
static int unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		int c = (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
		if (c != '%' && c != '\t' && c != '\n' && c != '\r')
			return -1;
		*w++ = (char)c;
		r += 2;
	}
	*w = 0;
	return 0;
}

/* ---------- per-op parsers: typed fields and ordering rules ---------- */

static void parse_map(struct op *o, const int *seen)
{
	unsigned long v[3];
	for (int i = 0; i < 3; i++)
		if (parse_num(o->f[i], 10, 0xffffffffUL, &v[i]))
			op_error(o, "map fields must be INSIDE OUTSIDE COUNT (decimal)");
	if (seen[OP_USERNS])
		op_error(o, "uidmap/gidmap must come before userns");
	o->u.map.inside = (uint32_t)v[0];
	o->u.map.outside = (uint32_t)v[1];
	o->u.map.count = (uint32_t)v[2];
}

static void parse_newidmap(struct op *o, const int *seen)
{
	if (o->f[0][0] != '/')
		op_error(o, "newuidmap/newgidmap need an absolute path");
	if (seen[OP_USERNS])
		op_error(o, "newuidmap/newgidmap must come before userns");
}

static void parse_userns(struct op *o, const int *seen)
{
	if (seen[OP_USERNS])
		op_error(o, "userns given twice");
	if (!seen[OP_UIDMAP] || !seen[OP_GIDMAP])
		op_error(o, "userns needs at least one uidmap and one gidmap before it");
}

static void parse_unshare(struct op *o, const int *seen)
{
	static const char *const names[] = {"mount", "ipc", "uts", "net", "pid", "cgroup", "time"};
	static const int flags[] = {CLONE_NEWNS,  CLONE_NEWIPC,    CLONE_NEWUTS, CLONE_NEWNET,
				    CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME};
	const char *p = o->f[0], *item;
	size_t len;
	(void)seen;
	o->u.ns_flags = 0;
	while (next_item(&p, &item, &len)) {
		int i = word_index(item, len, names, 7, 0);
		if (i < 0)
			op_error(
				o,
				"unshare: namespaces are mount ipc uts net pid cgroup time (user only through userns)");
		o->u.ns_flags |= flags[i];
	}
	if (!o->u.ns_flags) /* an empty list */
		op_error(o, "unshare: namespaces are mount ipc uts net pid cgroup time (user only through userns)");
}

static void parse_sync(struct op *o, const int *seen)
{
	if (!seen[OP_REPORT])
		op_error(o, "sync needs a report op before it");
}

static void parse_sync_exec(struct op *o, const int *seen)
{
	/* hutch learns the init's pid from the report pipe (`init`), which is
	 * when it starts what sync-exec waits for; a `sync` is not needed */
	if (!seen[OP_REPORT])
		op_error(o, "sync-exec needs a report op before it");
	if (seen[OP_SYNC_EXEC])
		op_error(o, "sync-exec at most once");
}

static void parse_daemon(struct op *o, const int *seen)
{
	(void)seen;
	if (o->f[1][0] != '/')
		op_error(o, "daemon ARGV0 must be an absolute path");
}

static void parse_scratch(struct op *o, const int *seen)
{
	(void)seen;
	if (parse_uint(o->f[1], 10, &o->u.scratch_size) || o->u.scratch_size == 0)
		op_error(o, "scratch DIR SIZE(bytes, > 0) [SUBDIR...]");
	for (int i = 2; i < o->nfields; i++)
		if (!*o->f[i] || strchr(o->f[i], '/') || !strcmp(o->f[i], ".") || !strcmp(o->f[i], ".."))
			op_error(o, "scratch SUBDIR must be one path component");
}

static void parse_tty(struct op *o, const int *seen)
{
	(void)seen;
	if (strcmp(o->f[0], "stdin") && strcmp(o->f[0], "-"))
		op_error(o, "tty INPUT: `stdin` (relay the host's stdin) or `-`");
	o->u.tty_input = o->f[0][0] == 's';
}

static void parse_relay(struct op *o, const int *seen)
{
	static const char *const names[] = {"0", "1", "2"};
	const char *p = o->f[0], *item;
	size_t len;
	if (seen[OP_TTY] || seen[OP_RELAY])
		op_error(o, "one relay op, and not with tty (tty relays all three fds)");
	o->u.relay = 0;
	while (next_item(&p, &item, &len)) {
		int i = word_index(item, len, names, 3, 0);
		if (i < 0)
			op_error(o, "relay FDS: a comma list of 0, 1, 2");
		o->u.relay |= 1 << i;
	}
	if (!o->u.relay)
		op_error(o, "relay FDS: a comma list of 0, 1, 2");
}

static void parse_join(struct op *o, const int *seen)
{
	unsigned long pid;
	if (seen[OP_JOIN] || parse_num(o->f[0], 10, 0x7fffffffUL, &pid) || pid < 2)
		op_error(o, "join PID CGROUPDIR|-: once, PID a host pid (the sandbox's pid 1)");
	if (strcmp(o->f[1], "-") && o->f[1][0] != '/')
		op_error(o, "join: CGROUPDIR must be absolute, or -");
	o->u.pid = (uint32_t)pid;
}

/* named networks (netns.c): a holder plan is userns, unshare net,
 * net-holder and nothing else; a member replaces userns by net-join */
static void parse_net_holder(struct op *o, const int *seen)
{
	if (!seen[OP_USERNS] || !seen[OP_UNSHARE])
		op_error(o, "net-holder needs userns and unshare net before it");
	for (int i = 2; i < o->nfields; i++)
		if (strcmp(o->f[i], "internal") && (strncmp(o->f[i], "guard=/", 7) || (i == 2 && o->nfields == 4)))
			op_error(o, "net-holder DIR ADDRESS/PREFIX [internal] [guard=/PATH/TO/ebtables-restore]");
}

static void parse_net_nat(struct op *o, const int *seen)
{
	if (!seen[OP_USERNS] || seen[OP_UNSHARE] || seen[OP_NET_NAT])
		op_error(o, "net-nat comes once, after userns and before unshare net");
	if (o->nfields == 4 && strcmp(o->f[3], "pasta"))
		op_error(o, "net-nat BINARY IPTABLES STATEFILE [pasta]");
}

static void parse_net_share(struct op *o, const int *seen)
{
	if (seen[OP_USERNS] || seen[OP_NET_SHARE] || seen[OP_UNSHARE] || seen[OP_NET_JOIN])
		op_error(o, "net-share comes once, before userns");
}

static void parse_net_join(struct op *o, const int *seen)
{
	if (seen[OP_USERNS] || seen[OP_NET_JOIN] || seen[OP_UNSHARE])
		op_error(o, "net-join replaces userns: once, before every unshare");
}

/* net-attach SOCKET IFNAME ADDR|- FLAGS NAME... : once per network */
static void parse_net_attach(struct op *o, const int *seen)
{
	const char *ifn = o->f[1], *fl = o->f[3];
	if (!seen[OP_NET_JOIN] || !seen[OP_UNSHARE] || seen[OP_NET_ATTACH] >= 8)
		op_error(o, "net-attach needs net-join and unshare net before it (8 networks at most)");
	if (!*ifn || strlen(ifn) > 15 || strspn(ifn, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(ifn))
		op_error(o, "net-attach: IFNAME is 1 to 15 lower-case letters and digits");
	if (strcmp(fl, "-")) {
		for (const char *w = fl; *w;) {
			size_t l = strcspn(w, ",");
			if (!((l == 5 && !strncmp(w, "route", 5)) || (l == 6 && !strncmp(w, "shared", 6)) ||
			      (l == 5 && !strncmp(w, "nofwd", 5))))
				op_error(o, "net-attach: FLAGS is - or a comma list of route, shared, nofwd");
			w += l + (w[l] == ',');
		}
	}
	o->u.net.route = strstr(fl, "route") != NULL;
	o->u.net.shared = strstr(fl, "shared") != NULL;
	o->u.net.nofwd = strstr(fl, "nofwd") != NULL;
}

/* net-publish tcp|udp HOSTIP HOSTPORT PORT: after the net-attach with route */
static void parse_net_publish(struct op *o, const int *seen)
{
	unsigned long hp, cp;
	struct in_addr a;
	if (!seen[OP_NET_ATTACH])
		op_error(o, "net-publish needs a net-attach before it");
	if ((strcmp(o->f[0], "tcp") && strcmp(o->f[0], "udp")) || inet_pton(AF_INET, o->f[1], &a) != 1 ||
	    parse_num(o->f[2], 10, 65535, &hp) || !hp || parse_num(o->f[3], 10, 65535, &cp) || !cp)
		op_error(o, "net-publish tcp|udp HOSTIP(IPv4) HOSTPORT PORT (ports 1 to 65535)");
}

static void parse_tmpfs(struct op *o, const int *seen)
{
	unsigned long mode, size = 0;
	(void)seen;
	if (parse_num(o->f[1], 8, 07777, &mode) || (o->nfields == 3 && parse_uint(o->f[2], 10, &size)))
		op_error(o, "tmpfs DEST MODE(octal) [SIZE(bytes)]");
	o->u.tmpfs.mode = (mode_t)mode;
	o->u.tmpfs.has_size = o->nfields == 3;
	o->u.tmpfs.size = size;
}

static void parse_overlay(struct op *o, const int *seen)
{
	(void)seen;
	if (o->nfields == 5 && strcmp(o->f[4], "userxattr"))
		op_error(o, "overlay DEST LOWERS UPPER WORK [userxattr]");
	o->u.overlay.ro = strcmp(o->f[2], "-") == 0;
	o->u.overlay.userxattr = o->nfields == 5;
}

static void parse_bind(struct op *o, const int *seen)
{
	static const char *const names[] = {"rw", "ro", "rec", "dev", "try"};
	static const int flags[] = {0, BIND_RO, BIND_REC, BIND_DEV, BIND_TRY};
	const char *p = o->f[2], *item;
	size_t len;
	int rw = 0, ro = 0, bad = !*p; /* an empty list is no list */
	(void)seen;
	o->u.bind = 0;
	while (next_item(&p, &item, &len)) {
		int i = word_index(item, len, names, 5, 0);
		bad |= i < 0;
		if (i < 0)
			break;
		rw |= i == 0;
		ro |= i == 1;
		o->u.bind |= flags[i];
	}
	if (bad || rw + ro != 1)
		op_error(o, "bind FLAGS: rw|ro[,rec][,dev][,try]");
}

static void parse_remount_ro(struct op *o, const int *seen)
{
	(void)seen;
	if (o->nfields == 2 && strcmp(o->f[1], "self"))
		op_error(o, "remount-ro DEST [self]");
	o->u.self = o->nfields == 2;
}

static void parse_mode(struct op *o, const int *seen)
{
	unsigned long mode;
	(void)seen;
	if (parse_num(o->f[1], 8, 07777, &mode))
		op_error(o, "MODE must be octal");
	o->u.mode = (mode_t)mode;
}

static void parse_pivot(struct op *o, const int *seen)
{
	if (seen[OP_PIVOT])
		op_error(o, "pivot given twice");
}

static void parse_remount_root_ro(struct op *o, const int *seen)
{
	if (!seen[OP_PIVOT])
		op_error(o, "remount-root-ro must come after pivot");
}

static void parse_env(struct op *o, const int *seen)
{
	(void)seen;
	if (!o->f[0][0] || strchr(o->f[0], '='))
		op_error(o, "env NAME must be non-empty and contain no '='");
}

/* Capability names, index = capability number (uapi/linux/capability.h). */
/* clang-format off */
static const char *const cap_names[] = {
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL",
	"SETGID", "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE",
	"NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME",
	"SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
	"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};
/* clang-format on */

/* "CHOWN,NET_BIND_SERVICE" (optionally CAP_-prefixed, any case) or "-". */
static void parse_caps(struct op *o, const int *seen)
{
	const char *p = o->f[0], *item;
	size_t len;
	(void)seen;
	o->u.caps = 0;
	if (strcmp(p, "-") == 0)
		return;
	while (next_item(&p, &item, &len)) {
		if (len > 4 && strncasecmp(item, "CAP_", 4) == 0)
			item += 4, len -= 4;
		int i = word_index(item, len, cap_names, (int)(sizeof cap_names / sizeof cap_names[0]), 1);
		if (i < 0)
			op_error(o, "unknown capability '%.*s'", (int)(len > 40 ? 40 : len), item);
		o->u.caps |= 1ULL << i;
	}
}

/* Names resolved to this architecture's numbers (seccomp.c), duplicates
 * dropped; at most SECCOMP_MAX_NAMES names, so seccomp_apply's filter has a
 * fixed upper size. */
static void parse_seccomp(struct op *o, const int *seen)
{
	long nr[SECCOMP_MAX_NAMES];
	int n = 0, count = 0;
	const char *p = o->f[0], *item;
	size_t len;
	while (next_item(&p, &item, &len)) {
		long v = seccomp_syscall_number(item, len);
		if (v < 0 && !len)
			op_error(o, "seccomp: unknown or unsupported syscall '(empty)'");
		if (v < 0)
			op_error(o, "seccomp: unknown or unsupported syscall '%.*s'", (int)(len > 63 ? 63 : len), item);
		if (++count > SECCOMP_MAX_NAMES)
			op_error(o, "seccomp: more than %d names", SECCOMP_MAX_NAMES);
		int j = 0;
		while (j < n && nr[j] != v)
			j++;
		if (j == n)
			nr[n++] = v;
	}
	if (!seen[OP_NO_NEW_PRIVS])
		op_error(o, "seccomp needs no-new-privs before it");
	o->u.seccomp.n = n;
	o->u.seccomp.nr = malloc(sizeof(long) * (size_t)(n ? n : 1));
	if (!o->u.seccomp.nr)
		fail_errno("out of memory");
	memcpy(o->u.seccomp.nr, nr, sizeof(long) * (size_t)n);
}

static void parse_no_setid(struct op *o, const int *seen)
{
	if (!seen[OP_NO_NEW_PRIVS])
		op_error(o, "no-setid needs no-new-privs before it");
}

/* USER[:GROUP]: a string of digits is an id (below 2^32 - 1, which the
 * kernel reads as "unchanged"), anything else a name looked up at run time
 * (user.c). An empty GROUP is no group. The field is split in place: f[0]
 * is USER afterwards. */
static void parse_user(struct op *o, const int *seen)
{
	char *spec = o->f[0];
	unsigned long v;
	(void)seen;
	char *g = strchr(spec, ':');
	if (g)
		*g++ = 0;
	o->u.user.uname = spec;
	if (*spec && strspn(spec, "0123456789") == strlen(spec)) {
		if (parse_num(spec, 10, 0xfffffffeUL, &v))
			op_error(o, "user: uid %s out of range", spec);
		o->u.user.uname = NULL;
		o->u.user.uid = (uint32_t)v;
	}
	o->u.user.has_group = g && *g;
	if (o->u.user.has_group) {
		o->u.user.gname = g;
		if (strspn(g, "0123456789") == strlen(g)) {
			if (parse_num(g, 10, 0xfffffffeUL, &v))
				op_error(o, "user: gid %s out of range", g);
			o->u.user.gname = NULL;
			o->u.user.gid = (uint32_t)v;
		}
	}
}

/* chown PATH UID GID: numeric ids below 2^32 - 1 ("unchanged" to the kernel) */
static void parse_chown(struct op *o, const int *seen)
{
	unsigned long u, g;
	(void)seen;
	if (parse_num(o->f[1], 10, 0xfffffffeUL, &u) || parse_num(o->f[2], 10, 0xfffffffeUL, &g))
		op_error(o, "chown: UID and GID must be numbers below 4294967295");
	o->u.owner.uid = (uint32_t)u;
	o->u.owner.gid = (uint32_t)g;
}

/* An fd number in field 0, at least min (below it: fds the plan itself uses). */
static void parse_fd_field(struct op *o, unsigned long min, const char *msg)
{
	unsigned long v;
	if (parse_num(o->f[0], 10, 1u << 20, &v) || v < min)
		op_error(o, msg);
	o->u.fd = (int)v;
}

static void parse_keep_fd(struct op *o, const int *seen)
{
	(void)seen;
	parse_fd_field(o, 3, "keep-fd FD must be a number >= 3");
}

static void parse_log(struct op *o, const int *seen)
{
	(void)seen;
	if (parse_uint(o->f[1], 10, &o->u.log_max) || o->u.log_max < 4096)
		op_error(o, "log PATH MAXSIZE(bytes, >= 4096)");
}

static void parse_timeout(struct op *o, const int *seen)
{
	if (seen[OP_TIMEOUT] || parse_uint(o->f[0], 10, &o->u.timeout_ms) || o->u.timeout_ms == 0)
		op_error(o, "one timeout MS (milliseconds, > 0)");
}

static void parse_hold(struct op *o, const int *seen)
{
	(void)seen;
	parse_fd_field(o, 6, "hold FD must be a number >= 6 (3, 4, 5 are the plan, report and go pipes)");
}

/* ---------- the op table ---------- */

#define M PHASE_MONITOR
#define I PHASE_INIT
#define C PHASE_COMMAND
#define X PHASE_CLEANUP
/* name, phase, min and max fields, path fields (bit mask), mount namespace, parser */
/* clang-format off */
static const struct op_desc op_table[OP_COUNT] = {
	[OP_USERNS]            = {"userns",          M,  0,  0, 0, 0, parse_userns},
	[OP_UIDMAP]            = {"uidmap",          M,  3,  3, 0, 0, parse_map},
	[OP_GIDMAP]            = {"gidmap",          M,  3,  3, 0, 0, parse_map},
	[OP_NEWUIDMAP]         = {"newuidmap",       M,  1,  1, 0, 0, parse_newidmap},
	[OP_NEWGIDMAP]         = {"newgidmap",       M,  1,  1, 0, 0, parse_newidmap},
	[OP_UNSHARE]           = {"unshare",         M,  1,  1, 0, 0, parse_unshare},
	[OP_REPORT]            = {"report",          M,  0,  0, 0, 0, NULL},
	[OP_SYNC]              = {"sync",            M,  0,  0, 0, 0, parse_sync},
	[OP_DAEMON]            = {"daemon",          M,  2, -1, 0, 0, parse_daemon},
	[OP_SCRATCH]           = {"scratch",         M,  2, -1, 1, 0, parse_scratch},
	[OP_TTY]               = {"tty",             M,  1,  1, 0, 0, parse_tty},
	[OP_RELAY]             = {"relay",           M,  1,  1, 0, 0, parse_relay},
	[OP_JOIN]              = {"join",            M,  2,  2, 0, 0, parse_join},
	[OP_BASE]              = {"base",            I,  1,  1, 1, 1, NULL},
	[OP_TMPFS]             = {"tmpfs",           I,  2,  3, 1, 1, parse_tmpfs},
	[OP_OVERLAY]           = {"overlay",         I,  4,  5, 1, 1, parse_overlay},
	[OP_BIND]              = {"bind",            I,  3,  3, 3, 1, parse_bind},
	[OP_REMOUNT_RO]        = {"remount-ro",      I,  1,  2, 1, 1, parse_remount_ro},
	[OP_PROC]              = {"proc",            I,  1,  1, 1, 1, NULL},
	[OP_SYSFS]             = {"sysfs",           I,  1,  1, 1, 1, NULL},
	[OP_DEVPTS]            = {"devpts",          I,  1,  1, 1, 1, NULL},
	[OP_MQUEUE]            = {"mqueue",          I,  1,  1, 1, 1, NULL},
	[OP_MKDIR]             = {"mkdir",           I,  2,  2, 1, 1, parse_mode},
	[OP_SYMLINK]           = {"symlink",         I,  2,  2, 2, 1, NULL},
	[OP_FILE]              = {"file",            I,  3,  3, 1, 1, parse_mode},
	[OP_CHOWN]             = {"chown",           I,  3,  3, 1, 1, parse_chown},
	[OP_MASK]              = {"mask",            I,  1,  1, 1, 1, NULL},
	[OP_HOSTNAME]          = {"hostname",        I,  1,  1, 0, 0, NULL},
	[OP_LO_UP]             = {"lo-up",           I,  0,  0, 0, 0, NULL},
	[OP_UNREACHABLE]       = {"unreachable",     I,  1,  1, 0, 0, NULL},
	[OP_PIVOT]             = {"pivot",           I,  1,  1, 1, 1, parse_pivot},
	[OP_REMOUNT_ROOT_RO]   = {"remount-root-ro", I,  0,  0, 0, 1, parse_remount_root_ro},
	[OP_CLEARENV]          = {"clearenv",        C,  0,  0, 0, 0, NULL},
	[OP_ENV]               = {"env",             C,  2,  2, 0, 0, parse_env},
	[OP_CHDIR]             = {"chdir",           C,  1,  1, 0, 0, NULL},
	[OP_SETSID]            = {"setsid",          C,  0,  0, 0, 0, NULL},
	[OP_NO_NEW_PRIVS]      = {"no-new-privs",    C,  0,  0, 0, 0, NULL},
	[OP_CAPS]              = {"caps",            C,  1,  1, 0, 0, parse_caps},
	[OP_SECCOMP]           = {"seccomp",         C,  1,  1, 0, 0, parse_seccomp},
	[OP_NO_SETID]          = {"no-setid",        C,  0,  0, 0, 0, parse_no_setid},
	[OP_USER]              = {"user",            C,  1,  1, 0, 0, parse_user},
	[OP_KEEP_FD]           = {"keep-fd",         C,  1,  1, 0, 0, parse_keep_fd},
	[OP_EXEC]              = {"exec",            C,  1, -1, 0, 0, NULL},
	[OP_CLEANUP]           = {"cleanup",         X,  1,  1, 1, 0, NULL},
	[OP_NET_HOLDER]        = {"net-holder",      M,  2,  4, 1, 0, parse_net_holder},
	[OP_NET_JOIN]          = {"net-join",        M,  1,  1, 1, 0, parse_net_join},
	[OP_NET_ATTACH]        = {"net-attach",      M,  5, -1, 1, 0, parse_net_attach},
	[OP_NET_NAT]           = {"net-nat",         M,  3,  4, 7, 0, parse_net_nat},
	[OP_NET_SHARE]         = {"net-share",       M,  1,  1, 1, 0, parse_net_share},
	[OP_NET_PUBLISH]       = {"net-publish",     M,  4,  4, 0, 0, parse_net_publish},
	[OP_DETACH]            = {"detach",          M,  0,  0, 0, 0, NULL},
	[OP_LOG]               = {"log",             M,  2,  2, 1, 0, parse_log},
	[OP_TIMEOUT]           = {"timeout",         M,  1,  1, 0, 0, parse_timeout},
	[OP_HOLD]              = {"hold",            M,  1,  1, 0, 0, parse_hold},
	[OP_EXIT_FILE]         = {"exit-file",       X,  1,  1, 1, 0, NULL},
	[OP_REMOVE_CGROUP]     = {"remove-cgroup",   X,  1,  1, 1, 0, NULL},
	[OP_SYNC_EXEC]         = {"sync-exec",       I,  0,  0, 0, 0, parse_sync_exec},
};
/* clang-format on */
#undef M
#undef I
#undef C
#undef X

/* ---------- lines ---------- */

static char *display_text(const char *line)
{
	size_t n = strlen(line);
	if (n > 300)
		n = 300;
	char *t = strndup(line, n);
	if (!t)
		fail_errno("out of memory");
	for (char *c = t; *c; c++)
		if (*c == '\t')
			*c = ' ';
	return t;
}

static void parse_line(struct plan *p, char *line, int lineno, int *seen)
{
	const struct op_desc *d = NULL;
	enum op_kind kind = OP_COUNT;
	struct op *o = &p->ops[p->nops];
	char *text = o->text = display_text(line); /* owned by p from here: plan_free */
	char *tab = strchr(line, '\t');
	size_t namelen = tab ? (size_t)(tab - line) : strlen(line);

	for (int k = 0; k < OP_COUNT; k++)
		if (strlen(op_table[k].name) == namelen && !strncmp(op_table[k].name, line, namelen))
			d = &op_table[k], kind = (enum op_kind)k;
	if (!d)
		plan_error(lineno, text, "unknown operation");

	/* split fields, keeping empty ones (a `file` may have empty CONTENT) */
	int n = 0;
	for (char *c = tab; c; c = strchr(c + 1, '\t'))
		n++;
	if (n < d->min || (d->max >= 0 && n > d->max))
		plan_error(lineno, text, "wrong number of fields");

	o->kind = kind;
	o->desc = d;
	o->line = lineno;
	o->nfields = n;
	o->f = calloc((size_t)n + 1, sizeof(char *));
	if (!o->f)
		fail_errno("out of memory");
	char *c = tab;
	for (int i = 0; i < n; i++) {
		*c = 0;
		o->f[i] = c + 1;
		c = strchr(c + 1, '\t');
	}
	/* only once every field is terminated: decoding shrinks in place */
	for (int i = 0; i < n; i++)
		if (unescape(o->f[i]))
			plan_error(lineno, text, "bad %%-escape (only %%25 %%09 %%0A %%0D exist)");

	if (seen[OP_EXEC])
		plan_error(lineno, text, "exec must be the last operation");
	if (seen[OP_NET_HOLDER])
		plan_error(lineno, text, "net-holder must be the last operation");
	if (d->phase == PHASE_MONITOR && p->fork_at >= 0)
		plan_error(lineno, text, "monitor operation after the first filesystem/command operation");
	if ((d->phase == PHASE_INIT || d->phase == PHASE_COMMAND) && p->fork_at < 0)
		p->fork_at = p->nops;
	/* filesystem paths are absolute: nothing is relative to a cwd */
	for (int i = 0; i < n && i < 8; i++)
		if ((d->paths & (1u << i)) && o->f[i][0] != '/')
			plan_error(lineno, text, "paths must be absolute");
	if (d->parse)
		d->parse(o, seen);
	seen[kind]++;
	p->nops++;
}

/* Read fd until a line "end". Reads in chunks; anything after "end" is
 * ignored (hutch writes nothing more: fd 3 becomes the lifeline). */
int plan_read(int fd, struct plan *p)
{
	size_t cap = 8192, len = 0;
	char *buf;
	int seen[OP_COUNT] = {0};
	int lineno = 0, done = 0;
	size_t start = 0;

	memset(p, 0, sizeof *p);
	p->fork_at = -1;
	if (!(buf = p->buf = malloc(cap)))
		fail_errno("out of memory");
	while (!done) {
		if (len + 4096 > cap) {
			if (cap >= PLAN_MAX)
				plan_error(0, NULL, "plan larger than 4 MiB");
			cap *= 2;
			if (!(buf = p->buf = realloc(buf, cap)))
				fail_errno("out of memory");
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail_errno("reading the plan from fd 3");
		if (r == 0)
			plan_error(0, NULL, "plan ended without an `end` line (is fd 3 the plan?)");
		len += (size_t)r;
		/* only look at complete lines: a line may span two reads */
		char *nl;
		while (!done && (nl = memchr(buf + start, '\n', len - start))) {
			lineno++;
			*nl = 0;
			if (strcmp(buf + start, "end") == 0)
				done = 1;
			start = (size_t)(nl - buf) + 1;
		}
	}
	/* second pass over the now stable buffer (realloc may have moved it);
	 * lines are NUL-separated now */
	int nlines = lineno;
	p->ops = calloc((size_t)nlines + 1, sizeof(struct op));
	if (!p->ops)
		fail_errno("out of memory");
	p->nalloc = nlines + 1;
	char *line = buf;
	for (lineno = 1; lineno <= nlines; lineno++) {
		size_t l = strlen(line);
		char *next = line + l + 1;
		if (lineno < nlines && line[0] && line[0] != '#' && strcmp(line, "end") != 0) {
			if (memchr(line, '\r', l))
				plan_error(lineno, line, "raw CR in a line (escape it as %%0D)");
			parse_line(p, line, lineno, seen);
		}
		line = next;
	}
	if ((seen[OP_NET_NAT] || seen[OP_NET_SHARE]) && !seen[OP_NET_HOLDER])
		plan_error(0, NULL, "net-nat and net-share belong to a net-holder plan");
	if (seen[OP_NET_HOLDER] &&
	    (seen[OP_USERNS] + seen[OP_UNSHARE] + seen[OP_REPORT] + seen[OP_NET_HOLDER] + seen[OP_NET_NAT] +
	     seen[OP_NET_SHARE]) !=
		    p->nops - seen[OP_UIDMAP] - seen[OP_GIDMAP] - seen[OP_NEWUIDMAP] - seen[OP_NEWGIDMAP])
		plan_error(
			0, NULL,
			"a net-holder plan has only net-share, id maps, userns, unshare, report, net-nat and net-holder");
	if (seen[OP_NET_HOLDER])
		p->fork_at = p->nops; /* it never forks an init */
	else if (!seen[OP_EXEC])
		plan_error(0, NULL, "no exec operation");
	if (seen[OP_TTY] &&
	    (seen[OP_TTY] > 1 || seen[OP_RELAY] || (!seen[OP_JOIN] && (!seen[OP_DEVPTS] || !seen[OP_PIVOT]))))
		plan_error(
			0, NULL,
			"tty: one tty op, no relay op, and a devpts op and a pivot (the pty comes from the sandbox's /dev/pts)");
	if (seen[OP_LOG] && (seen[OP_LOG] > 1 || seen[OP_TTY]))
		plan_error(0, NULL,
			   "log: one log op, and not with tty (the log takes the command's stdout and stderr)");
	for (int i = 0; seen[OP_LOG] && i < p->nops; i++)
		if (p->ops[i].kind == OP_RELAY && (p->ops[i].u.relay & 6))
			plan_error(p->ops[i].line, p->ops[i].text,
				   "relay of fd 1 or 2 with a log op (the log takes them)");
	if (seen[OP_DETACH] && (seen[OP_TTY] || seen[OP_RELAY]))
		plan_error(0, NULL, "detach: not with tty or relay (a detached sandbox has no terminal)");
	if (seen[OP_JOIN]) /* exec mode: only the command ops of a running sandbox */
		for (int i = 0; i < p->nops; i++) {
			const struct op *o = &p->ops[i];
			if (o->kind != OP_JOIN && o->kind != OP_TTY && o->kind != OP_RELAY &&
			    o->desc->phase != PHASE_COMMAND)
				plan_error(o->line, o->text,
					   "not allowed with join (exec mode takes tty, relay and command ops)");
		}
	return 0;
}

int plan_has(const struct plan *p, enum op_kind kind)
{
	for (int i = 0; i < p->nops; i++)
		if (p->ops[i].kind == kind)
			return 1;
	return 0;
}

/* Free what plan_read allocated, also after it failed (g_fatal_hook did not
 * return): everything is reachable from p. The helper itself never frees
 * its plan (it lives until exit); the fuzzer (fuzz/plan_fuzz.c) does. */
void plan_free(struct plan *p)
{
	for (int i = 0; i < p->nalloc; i++) {
		struct op *o = &p->ops[i];
		free(o->text);
		free(o->f);
		if (o->kind == OP_SECCOMP)
			free(o->u.seccomp.nr);
	}
	free(p->ops);
	free(p->buf);
	memset(p, 0, sizeof *p);
}
