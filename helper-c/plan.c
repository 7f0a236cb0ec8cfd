/* plan.c: read and validate the plan (format in PLAN.md).
 *
 * Everything that can be checked without touching the system is checked
 * here, before the first syscall with side effects, so a bad plan fails
 * early with the line that is wrong.
 */
#include "helper.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define PLAN_MAX (4 << 20)

struct op_desc {
	const char *name;
	enum op_kind kind;
	int min, max; /* field count; max -1 = unbounded */
};

static const struct op_desc op_table[] = {
	{"userns", OP_USERNS, 0, 0},       {"uidmap", OP_UIDMAP, 3, 3},
	{"gidmap", OP_GIDMAP, 3, 3},       {"newuidmap", OP_NEWUIDMAP, 1, 1},
	{"newgidmap", OP_NEWGIDMAP, 1, 1}, {"unshare", OP_UNSHARE, 1, 1},
	{"report", OP_REPORT, 0, 0},       {"sync", OP_SYNC, 0, 0},
	{"daemon", OP_DAEMON, 2, -1},      {"base", OP_BASE, 1, 1},
	{"tmpfs", OP_TMPFS, 2, 3},         {"overlay", OP_OVERLAY, 4, 4},
	{"bind", OP_BIND, 3, 3},           {"remount-ro", OP_REMOUNT_RO, 1, 2},
	{"proc", OP_PROC, 1, 1},           {"sysfs", OP_SYSFS, 1, 1},
	{"devpts", OP_DEVPTS, 1, 1},       {"mqueue", OP_MQUEUE, 1, 1},
	{"mkdir", OP_MKDIR, 2, 2},         {"symlink", OP_SYMLINK, 2, 2},
	{"file", OP_FILE, 3, 3},           {"mask", OP_MASK, 1, 1},
	{"hostname", OP_HOSTNAME, 1, 1},   {"lo-up", OP_LO_UP, 0, 0},
	{"pivot", OP_PIVOT, 1, 1},         {"remount-root-ro", OP_REMOUNT_ROOT_RO, 0, 0},
	{"clearenv", OP_CLEARENV, 0, 0},   {"env", OP_ENV, 2, 2},
	{"chdir", OP_CHDIR, 1, 1},         {"setsid", OP_SETSID, 0, 0},
	{"no-new-privs", OP_NO_NEW_PRIVS, 0, 0}, {"caps", OP_CAPS, 1, 1},
	{"seccomp", OP_SECCOMP, 1, 1},   {"user", OP_USER, 1, 1},   {"keep-fd", OP_KEEP_FD, 1, 1},     {"exec", OP_EXEC, 1, -1},
	{"cleanup", OP_CLEANUP, 1, 1},
};

enum op_phase op_phase(enum op_kind k)
{
	if (k <= OP_DAEMON)
		return PHASE_MONITOR;
	if (k <= OP_REMOUNT_ROOT_RO)
		return PHASE_INIT;
	if (k <= OP_EXEC)
		return PHASE_COMMAND;
	return PHASE_CLEANUP;
}

/* Capability names, index = capability number (uapi/linux/capability.h). */
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

/* "CHOWN,NET_BIND_SERVICE" (optionally CAP_-prefixed, any case) or "-". */
int parse_caps(const char *list, uint64_t *mask, const char **bad)
{
	static char badbuf[64];
	*mask = 0;
	if (strcmp(list, "-") == 0)
		return 0;
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *name = p;
		if (len > 4 && strncasecmp(name, "CAP_", 4) == 0)
			name += 4, len -= 4;
		size_t i, n = sizeof cap_names / sizeof cap_names[0];
		for (i = 0; i < n; i++)
			if (strlen(cap_names[i]) == len && strncasecmp(cap_names[i], name, len) == 0)
				break;
		if (i == n) {
			snprintf(badbuf, sizeof badbuf, "%.*s", (int)(len > 40 ? 40 : len), name);
			*bad = badbuf;
			return -1;
		}
		*mask |= 1ULL << i;
		p = end ? end + 1 : p + len;
	}
	return 0;
}

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

/* Is `word` one of the comma-separated items of `list`? */
int list_has(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',') {
		if (strncmp(p, word, n) == 0 && (p[n] == ',' || p[n] == 0))
			return 1;
	}
	return 0;
}

/* Is every comma-separated item of `list` one of `words` (NULL-ended)? */
static int list_only(const char *list, const char *const *words)
{
	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',') {
		size_t len = strcspn(p, ","), i;
		for (i = 0; words[i]; i++)
			if (strlen(words[i]) == len && !strncmp(words[i], p, len))
				break;
		if (!words[i] || !len)
			return 0;
	}
	return *list != 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
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

_Noreturn static void plan_error(int line, const char *text, const char *why)
{
	static struct op fake;
	fake.line = line;
	fake.text = (char *)text;
	g_op = line ? &fake : NULL;
	fail("invalid plan: %s", why);
}

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

static void validate_op(struct op *o, int *seen)
{
	unsigned long v;
	const char *bad;
	uint64_t caps;
	char **f = o->f;
	const char *t = o->text;
	int l = o->line;

	/* filesystem paths are absolute: nothing is relative to a cwd */
	int path_field = -1, path_field2 = -1;
	if (op_phase(o->kind) == PHASE_INIT || o->kind == OP_CLEANUP)
		path_field = o->kind == OP_SYMLINK ? 1 : 0;
	if (o->kind == OP_BIND)
		path_field2 = 1;
	if (o->kind == OP_HOSTNAME || o->kind == OP_LO_UP || o->kind == OP_REMOUNT_ROOT_RO)
		path_field = -1;
	if ((path_field >= 0 && f[path_field][0] != '/') || (path_field2 >= 0 && f[path_field2][0] != '/'))
		plan_error(l, t, "paths must be absolute");

	switch (o->kind) {
	case OP_UIDMAP:
	case OP_GIDMAP:
		for (int i = 0; i < 3; i++)
			if (parse_uint(f[i], 10, &v) || v > 0xffffffffUL)
				plan_error(l, t, "map fields must be INSIDE OUTSIDE COUNT (decimal)");
		if (seen[OP_USERNS])
			plan_error(l, t, "uidmap/gidmap must come before userns");
		break;
	case OP_NEWUIDMAP:
	case OP_NEWGIDMAP:
		if (f[0][0] != '/')
			plan_error(l, t, "newuidmap/newgidmap need an absolute path");
		if (seen[OP_USERNS])
			plan_error(l, t, "newuidmap/newgidmap must come before userns");
		break;
	case OP_USERNS:
		if (seen[OP_USERNS])
			plan_error(l, t, "userns given twice");
		if (!seen[OP_UIDMAP] || !seen[OP_GIDMAP])
			plan_error(l, t, "userns needs at least one uidmap and one gidmap before it");
		break;
	case OP_UNSHARE:
		if (!list_only(f[0], (const char *const[]){"mount", "ipc", "uts", "net", "pid", "cgroup", "time", NULL}))
			plan_error(l, t, "unshare: namespaces are mount ipc uts net pid cgroup time (user only through userns)");
		break;
	case OP_REPORT:
		break;
	case OP_SYNC:
		if (!seen[OP_REPORT])
			plan_error(l, t, "sync needs a report op before it");
		break;
	case OP_DAEMON:
		if (f[1][0] != '/')
			plan_error(l, t, "daemon ARGV0 must be an absolute path");
		break;
	case OP_TMPFS:
		if (parse_uint(f[1], 8, &v) || (o->nfields == 3 && parse_uint(f[2], 10, &v)))
			plan_error(l, t, "tmpfs DEST MODE(octal) [SIZE(bytes)]");
		break;
	case OP_MKDIR:
	case OP_FILE:
		if (parse_uint(f[1], 8, &v) || v > 07777)
			plan_error(l, t, "MODE must be octal");
		break;
	case OP_BIND:
		if (!list_only(f[2], (const char *const[]){"rw", "ro", "rec", "dev", "try", NULL}) ||
		    list_has(f[2], "rw") + list_has(f[2], "ro") != 1)
			plan_error(l, t, "bind FLAGS: rw|ro[,rec][,dev][,try]");
		break;
	case OP_CAPS:
		if (parse_caps(f[0], &caps, &bad)) {
			char msg[128];
			snprintf(msg, sizeof msg, "unknown capability '%s'", bad);
			plan_error(l, t, msg);
		}
		break;
	case OP_SECCOMP: {
		const char *unknown = seccomp_check(f[0]);
		if (unknown) {
			char msg[128];
			snprintf(msg, sizeof msg, "seccomp: unknown or unsupported syscall '%s'", unknown);
			plan_error(l, t, msg);
		}
		if (!seen[OP_NO_NEW_PRIVS])
			plan_error(l, t, "seccomp needs no-new-privs before it");
		break;
	}
	case OP_KEEP_FD:
		if (parse_uint(f[0], 10, &v) || v < 3 || v > 1u << 20)
			plan_error(l, t, "keep-fd FD must be a number >= 3");
		break;
	case OP_ENV:
		if (!f[0][0] || strchr(f[0], '='))
			plan_error(l, t, "env NAME must be non-empty and contain no '='");
		break;
	case OP_REMOUNT_RO:
		if (o->nfields == 2 && strcmp(f[1], "self"))
			plan_error(l, t, "remount-ro DEST [self]");
		break;
	case OP_REMOUNT_ROOT_RO:
		if (!seen[OP_PIVOT])
			plan_error(l, t, "remount-root-ro must come after pivot");
		break;
	default:
		break;
	}
	seen[o->kind]++;
}

static void parse_line(struct plan *p, char *line, int lineno, int *seen)
{
	const struct op_desc *d = NULL;
	char *text = display_text(line);
	char *tab = strchr(line, '\t');
	size_t namelen = tab ? (size_t)(tab - line) : strlen(line);

	for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++)
		if (strlen(op_table[i].name) == namelen && !strncmp(op_table[i].name, line, namelen))
			d = &op_table[i];
	if (!d)
		plan_error(lineno, text, "unknown operation");

	/* split fields, keeping empty ones (a `file` may have empty CONTENT) */
	int n = 0;
	for (char *c = tab; c; c = strchr(c + 1, '\t'))
		n++;
	if (n < d->min || (d->max >= 0 && n > d->max))
		plan_error(lineno, text, "wrong number of fields");

	struct op *o = &p->ops[p->nops];
	o->kind = d->kind;
	o->line = lineno;
	o->text = text;
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
			plan_error(lineno, text, "bad %-escape (only %25 %09 %0A %0D exist)");

	if (seen[OP_EXEC])
		plan_error(lineno, text, "exec must be the last operation");
	enum op_phase ph = op_phase(o->kind);
	if (ph == PHASE_MONITOR && p->fork_at >= 0)
		plan_error(lineno, text, "monitor operation after the first filesystem/command operation");
	if ((ph == PHASE_INIT || ph == PHASE_COMMAND) && p->fork_at < 0)
		p->fork_at = p->nops;
	if (o->kind == OP_PIVOT && seen[OP_PIVOT])
		plan_error(lineno, text, "pivot given twice");
	validate_op(o, seen);
	p->nops++;
}

/* Read fd until a line "end". Reads in chunks; anything after "end" is
 * ignored (hutch writes nothing more: fd 3 becomes the lifeline). */
int plan_read(int fd, struct plan *p)
{
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	int seen[OP_CLEANUP + 1] = {0};
	int lineno = 0, done = 0;
	size_t start = 0;

	memset(p, 0, sizeof *p);
	p->fork_at = -1;
	if (!buf)
		fail_errno("out of memory");
	while (!done) {
		if (len + 4096 > cap) {
			if (cap >= PLAN_MAX)
				plan_error(0, NULL, "plan larger than 4 MiB");
			cap *= 2;
			if (!(buf = realloc(buf, cap)))
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
	char *line = buf;
	for (lineno = 1; lineno <= nlines; lineno++) {
		size_t l = strlen(line);
		char *next = line + l + 1;
		if (lineno < nlines && line[0] && line[0] != '#' && strcmp(line, "end") != 0) {
			if (memchr(line, '\r', l))
				plan_error(lineno, line, "raw CR in a line (escape it as %0D)");
			parse_line(p, line, lineno, seen);
		}
		line = next;
	}
	if (!seen[OP_EXEC])
		plan_error(0, NULL, "no exec operation");
	return 0;
}
