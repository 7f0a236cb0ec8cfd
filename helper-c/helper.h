/* hutch-helper: shared declarations.
 *
 * The helper executes a plan (see PLAN.md) and has no policy of its own.
 * Process roles: the monitor (monitor.c) runs in the caller's pid namespace,
 * the init (init.c) is pid 1 of the sandbox, the command (command.c) is the
 * init's child that execs the user's program. plan.c reads the plan into
 * typed ops and says which role runs each; path.c resolves the paths of the
 * filesystem ops and mount.c runs them (in the init); seccomp.c, user.c and
 * cleanup.c implement one op each.
 *
 * musl-gcc ships no kernel headers (linux/...), so the few kernel ABI bits we need are
 * defined here (values are the stable uapi ones, identical on every arch for
 * syscalls numbered >= 424).
 */
#ifndef HUTCH_HELPER_H
#define HUTCH_HELPER_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HELPER_VERSION "1"

/* Exit codes (same meaning as podman/bash). */
#define EXIT_SETUP 125
#define EXIT_NOEXEC 126
#define EXIT_NOTFOUND 127
#define EXIT_LIFELINE 137

/* sent instead of an errno when execve says ENOENT but the file exists */
#define EXEC_ENOINTERP (-1)

/* fds given by hutch */
#define FD_PLAN 3
#define FD_REPORT 4
#define FD_GO 5

/* ---- kernel ABI not available in musl headers ---- */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

struct hutch_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};
#define HUTCH_RESOLVE_NO_MAGICLINKS 0x02
#define HUTCH_RESOLVE_IN_ROOT 0x10

struct hutch_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};
#define HUTCH_MOUNT_ATTR_RDONLY 0x01
#define HUTCH_MOUNT_ATTR_NOSUID 0x02
#define HUTCH_MOUNT_ATTR_NODEV 0x04
#define HUTCH_MOUNT_ATTR_NOEXEC 0x08

#define HUTCH_OPEN_TREE_CLONE 1
#define HUTCH_MOVE_MOUNT_F_EMPTY_PATH 0x04
#define HUTCH_MOVE_MOUNT_T_EMPTY_PATH 0x40
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* ---- the plan (plan.c) ---- */
/* One per op of PLAN.md. The order means nothing: what runs an op, and when,
 * is in plan.c's op table (struct op_desc). */
/* clang-format off */
enum op_kind {
	OP_USERNS, OP_UIDMAP, OP_GIDMAP, OP_NEWUIDMAP, OP_NEWGIDMAP, OP_UNSHARE, OP_REPORT, OP_SYNC, OP_DAEMON, OP_SCRATCH, OP_TTY, OP_RELAY, OP_JOIN,
	OP_BASE, OP_TMPFS, OP_OVERLAY, OP_BIND, OP_REMOUNT_RO, OP_PROC, OP_SYSFS, OP_DEVPTS, OP_MQUEUE, OP_MKDIR,
	OP_SYMLINK, OP_FILE, OP_CHOWN, OP_MASK, OP_HOSTNAME, OP_LO_UP, OP_UNREACHABLE, OP_PIVOT, OP_REMOUNT_ROOT_RO, OP_CLEARENV, OP_ENV,
	OP_CHDIR, OP_SETSID, OP_NO_NEW_PRIVS, OP_CAPS, OP_SECCOMP, OP_NO_SETID, OP_USER, OP_KEEP_FD, OP_EXEC, OP_CLEANUP,
	OP_NET_HOLDER, OP_NET_JOIN, OP_NET_ATTACH, OP_NET_NAT, OP_NET_SHARE, OP_NET_PUBLISH, /* netns.c, nat.c */
	OP_DETACH, OP_LOG, OP_TIMEOUT, OP_HOLD, OP_EXIT_FILE, OP_REMOVE_CGROUP, /* detached sandboxes: monitor.c, log.c */
	OP_SYNC_EXEC,
	OP_COUNT
};
/* clang-format on */

/* Which process runs an op (PLAN.md, "Process tree"). */
enum op_phase {
	PHASE_MONITOR, /* the monitor, in plan order, before it forks the init */
	PHASE_INIT,    /* the init (pid 1), in plan order, before it forks the command */
	PHASE_COMMAND, /* the command, just before exec (order: see command.c) */
	PHASE_CLEANUP, /* the monitor, after the init and the daemons are gone */
};

struct op;

/* One row of the op table in plan.c: everything known about an op kind. */
struct op_desc {
	const char *name;
	enum op_phase phase;
	signed char min, max;                         /* number of fields after the name; max -1 = unbounded */
	unsigned char paths;                          /* bit i set: field i is a filesystem path, must be absolute */
	unsigned char mountns;                        /* runs in the init's own mount namespace (filesystem op) */
	void (*parse)(struct op *o, const int *seen); /* typed fields, ordering rules; NULL = none */
};

/* bind FLAGS */
#define BIND_RO 0x1
#define BIND_REC 0x2
#define BIND_DEV 0x4
#define BIND_TRY 0x8

/* at most this many names in one `seccomp` op (duplicates count) */
#define SECCOMP_MAX_NAMES 128

/* An op as parsed: the fields as text (for messages, paths, argv) and, for
 * every op that has numbers, modes, flags or names, their typed value in u.
 * Execution code uses u and never parses a field again. */
struct op {
	enum op_kind kind;
	const struct op_desc *desc;
	int line;    /* line number in the plan, for error messages */
	char *text;  /* the raw line, TABs shown as spaces */
	int nfields; /* fields after the op name */
	char **f;    /* unescaped fields, NULL-terminated (usable as argv) */
	union {
		struct { /* uidmap, gidmap */
			uint32_t inside, outside, count;
		} map;
		int ns_flags; /* unshare: CLONE_NEW* */
		struct {      /* tmpfs */
			mode_t mode;
			int has_size;
			unsigned long size;
		} tmpfs;
		struct {               /* overlay */
			int ro;        /* UPPER is `-` (lowers only) */
			int userxattr; /* the `userxattr` field was given */
		} overlay;
		int bind;    /* bind: BIND_* */
		int self;    /* remount-ro: `self` given */
		mode_t mode; /* mkdir, file */
		struct {     /* chown */
			uint32_t uid, gid;
		} owner;
		uint64_t caps; /* caps: capability mask (bit = capability number) */
		struct {       /* seccomp: distinct syscall numbers, plan order */
			int n;
			long *nr;
		} seccomp;
		struct {                   /* user: USER[:GROUP] */
			const char *uname; /* NULL: numeric, uid */
			uint32_t uid;
			int has_group;     /* a non-empty GROUP was given */
			const char *gname; /* NULL: numeric, gid */
			uint32_t gid;
		} user;
		int fd;                     /* keep-fd */
		unsigned long scratch_size; /* scratch: bytes */
		int tty_input;              /* tty: `stdin` given */
		int relay;                  /* relay: bit N = fd N */
		uint32_t pid;               /* join: the sandbox's pid 1 (host pid) */
		unsigned long log_max;      /* log: bytes before rotation */
		unsigned long timeout_ms;   /* timeout */
		struct {                    /* net-attach FLAGS */
			int route, shared, nofwd;
		} net;
	} u;
};

struct plan {
	struct op *ops;
	int nops;
	int fork_at; /* index of the first op run by the init or command */
	int nalloc;  /* entries allocated in ops */
	char *buf;   /* the plan's text; fields point into it */
};

/* Whether the plan has an op of this kind. */
int plan_has(const struct plan *p, enum op_kind kind);
int plan_read(int fd, struct plan *p);
void plan_free(struct plan *p);
int parse_uint(const char *s, int base, unsigned long *out);

/* ---- seccomp.c ---- */
long seccomp_syscall_number(const char *name, size_t len);
void seccomp_apply(const struct op *o);
void seccomp_apply_no_setid(void);

/* ---- user.c ---- */
void user_apply(const struct op *o);

/* ---- path.c: paths of the filesystem ops ---- */
extern struct fs_view {
	int based;   /* `base` ran: host is /oldroot, sandbox is /newroot */
	int pivoted; /* `pivot` ran: / is the sandbox */
} g_fs;
int open_path(const char *path, int flags);
int open_parent(const char *path, char *name, size_t namelen);
int mkdir_p(const char *path, mode_t mode);
int mkdir_parent(const char *path);
int open_dest(const char *dest, int dir);
const char *host_path(const char *p, char *buf, size_t len);

/* ---- route.c: `unreachable` ---- */
void route_unreachable(const struct op *o);

/* ---- mount.c: the filesystem ops ---- */
void fs_run_op(const struct op *o);

/* ---- errors and reporting (util.c) ---- */
extern const struct op *g_op;                   /* op being executed, for messages */
extern int g_report_fd;                         /* -1 unless `report` */
extern void (*g_fatal_hook)(void);              /* monitor: kill/cleanup before exit */
extern void (*g_stderr_hook)(const char *line); /* log.c: messages go to a detached sandbox's log */

void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int write_all(int fd, const void *buf, size_t len);
int write_file(const char *path, const char *content);
void close_fds_from(int lowfd, const int *keep, int nkeep);
void reset_signals(void);
int exit_code_of(int status);

/* ---- relay.c: the sandbox's terminal, the relay of the host's stdio ---- */
extern int g_tty_sock;
void relay_scan(struct plan *p);
int relay_reads_terminal(void);
void relay_before_fork(void);
void relay_in_child(void);
void relay_after_fork(void);
void relay_restore(void);
void relay_winch(void);
int relay_has_tty(void);
struct pollfd;
int relay_pollfds(struct pollfd *pf);
void relay_events(struct pollfd *pf, int n);
void relay_drain(void);
int pty_open_inside(void);
/* ---- log.c: a detached sandbox's log (op `log`) ---- */
void log_before_fork(struct plan *p);
void log_in_child(void);
void log_after_fork(void);
int log_pollfds(struct pollfd *pf);
void log_events(struct pollfd *pf, int n);
void log_drain(void);
void pty_attach(int slave);

/* ---- roles ---- */
_Noreturn void monitor_run(struct plan *p);
_Noreturn void init_run(struct plan *p, int alive_fd);
_Noreturn void command_run(struct plan *p, int errpipe);
int command_report_exec_error(int fd, const struct plan *p);
void forward_signal_set(sigset_t *set);
int take_signals_and_lifeline(struct plan *p);
_Noreturn void join_run(struct plan *p);
int cleanup_path(const char *path);

extern mode_t g_saved_umask; /* the caller's umask, restored for the command */

/* ---- harden.c: what the processes next to the sandbox give up ---- */
void harden_monitor(int init_dumpable);
void harden_not_dumpable(const char *who);
void harden_init(const struct plan *p);
void init_drop_privileges(void);
void init_release_fds(void);

/* signals forwarded monitor -> init -> command */
extern const int g_forward_signals[];
/* ---- await.c: a foreground run after hutch handed its process over ---- */
int await_main(int argc, char **argv);
extern const int g_nforward_signals;

#endif
