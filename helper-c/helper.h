/* hutch-helper: shared declarations.
 *
 * The helper executes a plan (see PLAN.md) and has no policy of its own.
 * Process roles: the monitor (monitor.c) runs in the caller's pid namespace,
 * the init (init.c) is pid 1 of the sandbox, the command (command.c) is the
 * init's child that execs the user's program.
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

/* ---- the plan ---- */
enum op_kind {
	/* monitor */
	OP_USERNS, OP_UIDMAP, OP_GIDMAP, OP_NEWUIDMAP, OP_NEWGIDMAP,
	OP_UNSHARE, OP_REPORT, OP_SYNC, OP_DAEMON,
	/* init: filesystem and host identity */
	OP_BASE, OP_TMPFS, OP_OVERLAY, OP_BIND, OP_REMOUNT_RO, OP_PROC,
	OP_SYSFS, OP_DEVPTS, OP_MQUEUE, OP_MKDIR, OP_SYMLINK, OP_FILE,
	OP_MASK, OP_HOSTNAME, OP_LO_UP, OP_PIVOT, OP_REMOUNT_ROOT_RO,
	/* command */
	OP_CLEARENV, OP_ENV, OP_CHDIR, OP_SETSID, OP_NO_NEW_PRIVS, OP_CAPS,
	OP_SECCOMP, OP_USER, OP_KEEP_FD, OP_EXEC,
	/* after exit */
	OP_CLEANUP,
};

enum op_phase { PHASE_MONITOR, PHASE_INIT, PHASE_COMMAND, PHASE_CLEANUP };

struct op {
	enum op_kind kind;
	int line;      /* line number in the plan, for error messages */
	char *text;    /* the raw line, TABs shown as spaces */
	int nfields;   /* fields after the op name */
	char **f;      /* unescaped fields, NULL-terminated (usable as argv) */
};

struct plan {
	struct op *ops;
	int nops;
	int fork_at;   /* index of the first op run by the init or command */
};

int plan_read(int fd, struct plan *p);
enum op_phase op_phase(enum op_kind k);
int parse_caps(const char *list, uint64_t *mask, const char **bad);
int parse_uint(const char *s, int base, unsigned long *out);
int list_has(const char *list, const char *word);

/* ---- seccomp.c ---- */
const char *seccomp_check(const char *list);
void seccomp_apply(const char *list);

/* ---- user.c ---- */
void user_apply(const char *spec);

/* ---- errors and reporting (util.c) ---- */
extern const struct op *g_op;       /* op being executed, for messages */
extern int g_report_fd;             /* -1 unless `report` */
extern void (*g_fatal_hook)(void);  /* monitor: kill/cleanup before exit */

void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int write_all(int fd, const void *buf, size_t len);
int write_file(const char *path, const char *content);
void close_fds_from(int lowfd, const int *keep, int nkeep);
void reset_signals(void);

/* ---- roles ---- */
_Noreturn void monitor_run(struct plan *p);
_Noreturn void init_run(struct plan *p, int alive_fd);
_Noreturn void command_run(struct plan *p, int errpipe);
int cleanup_path(const char *path);

extern mode_t g_saved_umask; /* the caller's umask, restored for the command */

/* signals forwarded monitor -> init -> command */
extern const int g_forward_signals[];
extern const int g_nforward_signals;

#endif
