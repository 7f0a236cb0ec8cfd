/* seccomp.c: the `seccomp` op. A deny list of syscalls, each answered with
 * EPERM, installed last before exec (after no_new_privs, which an
 * unprivileged seccomp filter requires). The names known are compiled in
 * from the C library's SYS_* constants, so the numbers are the build
 * architecture's own; plan.c resolves a plan's names with
 * seccomp_syscall_number() when it reads the plan. Calls from another ABI (32-bit or x32 on
 * x86_64) are refused as a whole: their numbers differ and would slip
 * through a native-numbered list. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define HUTCH_SECCOMP_MODE_FILTER 2
#define HUTCH_SECCOMP_RET_ALLOW 0x7fff0000U
#define HUTCH_SECCOMP_RET_ERRNO 0x00050000U
#define HUTCH_AUDIT_ARCH_X86_64 0xc000003eU
#define HUTCH_AUDIT_ARCH_AARCH64 0xc00000b7U
#define HUTCH_X32_SYSCALL_BIT 0x40000000U

#if defined(__x86_64__)
#define NATIVE_ARCH HUTCH_AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH HUTCH_AUDIT_ARCH_AARCH64
#else
#error "seccomp.c: add this architecture's AUDIT_ARCH value"
#endif

struct sock_filter_ {
	uint16_t code;
	uint8_t jt, jf;
	uint32_t k;
};
struct sock_fprog_ {
	unsigned short len;
	struct sock_filter_ *filter;
};
/* struct seccomp_data: nr at 0, arch at 4 */
#define OFF_NR 0
#define OFF_ARCH 4
#define BPF_LD_W_ABS 0x20
#define BPF_JEQ_K 0x15
#define BPF_JGE_K 0x35
#define BPF_JSET_K 0x45
/* the low 32 bits of argument I (mode_t and the open flags fit in them) */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp.c: the argument offsets assume a little-endian architecture"
#endif
#define OFF_ARG_LO(i) (16 + 8 * (i))
#define BPF_RET_K 0x06

struct syscall_name {
	const char *name;
	long nr;
};

/* Every name the TypeScript side may ask for; an unknown one is a plan error. */
/* clang-format off */
static const struct syscall_name names[] = {
#define S(n) {#n, SYS_##n}
	S(acct), S(add_key), S(bpf), S(delete_module), S(finit_module), S(init_module),
	S(io_uring_enter), S(io_uring_register), S(io_uring_setup), S(kexec_file_load),
	S(kexec_load), S(keyctl), S(lookup_dcookie), S(move_pages), S(open_by_handle_at),
	S(perf_event_open), S(quotactl), S(reboot), S(request_key), S(swapoff), S(swapon),
	S(syslog), S(userfaultfd), S(settimeofday), S(clock_settime), S(clock_adjtime),
	S(adjtimex), S(fanotify_init), S(name_to_handle_at), S(process_vm_writev),
	S(pivot_root), S(mount), S(umount2), S(ptrace), S(personality), S(vhangup),
#if defined(__x86_64__)
	S(iopl), S(ioperm), S(uselib), S(ustat), S(sysfs), S(_sysctl), S(create_module),
	S(get_kernel_syms), S(query_module), S(nfsservctl),
#endif
#undef S
};
/* clang-format on */

/* The build architecture's number of the syscall NAME (len bytes, not
 * NUL-terminated), or -1 when it is not in the list above. */
long seccomp_syscall_number(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i].name) == len && !memcmp(names[i].name, name, len))
			return names[i].nr;
	return -1;
}

#define DENY_EPERM (HUTCH_SECCOMP_RET_ERRNO | (EPERM & 0xffff))
#define PROLOGUE_LEN 6 /* at most: 4 instructions, 6 on x86_64 */

/* What every filter of ours starts with: a call from another ABI is refused
 * as a whole (its numbers differ from the native ones the filter compares),
 * then the syscall number is loaded into A for the checks that follow.
 * Returns the number of instructions written. */
static int abi_prologue(struct sock_filter_ *prog)
{
	int n = 0;
	prog[n++] = (struct sock_filter_){BPF_LD_W_ABS, 0, 0, OFF_ARCH};
	prog[n++] = (struct sock_filter_){BPF_JEQ_K, 1, 0, NATIVE_ARCH};
	prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, DENY_EPERM};
	prog[n++] = (struct sock_filter_){BPF_LD_W_ABS, 0, 0, OFF_NR};
#if defined(__x86_64__)
	prog[n++] = (struct sock_filter_){BPF_JGE_K, 0, 1, HUTCH_X32_SYSCALL_BIT};
	prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, DENY_EPERM};
#endif
	return n;
}

static void install(struct sock_filter_ *prog, int n, const char *what)
{
	struct sock_fprog_ fprog = {(unsigned short)n, prog};
	if (prctl(PR_SET_SECCOMP, HUTCH_SECCOMP_MODE_FILTER, &fprog, 0, 0))
		fail_errno("install the %s", what);
}

/* The filter: the ABI checks (4 instructions, 6 on x86_64), two per
 * syscall, one to allow the rest. plan.c limits a seccomp op to
 * SECCOMP_MAX_NAMES syscalls; the check here keeps the array safe whatever
 * the caller. */
#define PROG_MAX (PROLOGUE_LEN + 2 * SECCOMP_MAX_NAMES + 1)

void seccomp_apply(const struct op *o)
{
	struct sock_filter_ prog[PROG_MAX];
	int count = o->u.seccomp.n;
	const long *nrs = o->u.seccomp.nr;
	if (count < 0 || count > SECCOMP_MAX_NAMES)
		fail("seccomp: %d syscalls, at most %d fit the filter", count, SECCOMP_MAX_NAMES);
	int n = abi_prologue(prog);
	for (int i = 0; i < count; i++) {
		prog[n++] = (struct sock_filter_){BPF_JEQ_K, 0, 1, (uint32_t)nrs[i]};
		prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, DENY_EPERM};
	}
	prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, HUTCH_SECCOMP_RET_ALLOW};
	install(prog, n, "seccomp filter");
}

/* ---------- no-setid: no setuid/setgid file can be made ---------- */

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452 /* Linux 6.6, same number on every architecture */
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#define HUTCH_O_TMPFILE_BIT 020000000 /* __O_TMPFILE without O_DIRECTORY */

/* Every call that sets a file's mode from an argument, which argument holds
 * the mode, and which holds the open flags (-1: the mode always applies;
 * open and friends only use it with O_CREAT or O_TMPFILE, and otherwise
 * the register holds whatever the caller left there). */
static const struct {
	long nr;
	int mode_arg, flags_arg;
} mode_calls[] = {
#ifdef SYS_chmod
	{SYS_chmod, 1, -1},
#endif
#ifdef SYS_creat
	{SYS_creat, 1, -1},
#endif
#ifdef SYS_open
	{SYS_open, 2, 1},
#endif
#ifdef SYS_mknod
	{SYS_mknod, 1, -1},
#endif
	{SYS_fchmod, 1, -1}, {SYS_fchmodat, 2, -1}, {SYS_fchmodat2, 2, -1}, {SYS_openat, 3, 2}, {SYS_mknodat, 2, -1},
};

/* A second filter (filters stack; the strictest answer wins), so it holds
 * with or without the deny list: chmod, fchmod, fchmodat, fchmodat2 and
 * every call that creates a file with a mode (open/openat/creat with
 * O_CREAT or O_TMPFILE, mknod/mknodat) fail with EPERM when the mode has
 * S_ISUID or S_ISGID. openat2 hides its mode in a struct the filter cannot
 * read: it answers ENOSYS, and C libraries fall back to openat. io_uring can
 * open files with a mode too: the default deny list (`seccomp` op) refuses
 * io_uring_setup; without it (seccomp: unconfined) that door is open. mkdir
 * is allowed: a setgid directory only passes its group on, and Linux
 * ignores setuid on directories. */
void seccomp_apply_no_setid(void)
{
	struct sock_filter_ prog[PROLOGUE_LEN + 7 * (sizeof mode_calls / sizeof mode_calls[0]) + 3];
	const uint32_t nosys = HUTCH_SECCOMP_RET_ERRNO | (ENOSYS & 0xffff);
	const uint32_t creates = O_CREAT | HUTCH_O_TMPFILE_BIT;
	int n = abi_prologue(prog);
	for (size_t i = 0; i < sizeof mode_calls / sizeof mode_calls[0]; i++) {
		/* A holds the syscall number here; a block that does not match
		 * is jumped over, so A still holds it for the next one */
		int has_flags = mode_calls[i].flags_arg >= 0;
		prog[n++] =
			(struct sock_filter_){BPF_JEQ_K, 0, (uint8_t)(has_flags ? 6 : 4), (uint32_t)mode_calls[i].nr};
		if (has_flags) {
			prog[n++] = (struct sock_filter_){BPF_LD_W_ABS, 0, 0, OFF_ARG_LO(mode_calls[i].flags_arg)};
			prog[n++] = (struct sock_filter_){BPF_JSET_K, 0, 3, creates}; /* no creation: allow */
		}
		prog[n++] = (struct sock_filter_){BPF_LD_W_ABS, 0, 0, OFF_ARG_LO(mode_calls[i].mode_arg)};
		prog[n++] = (struct sock_filter_){BPF_JSET_K, 0, 1, S_ISUID | S_ISGID};
		prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, DENY_EPERM};
		prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, HUTCH_SECCOMP_RET_ALLOW};
	}
	prog[n++] = (struct sock_filter_){BPF_JEQ_K, 0, 1, SYS_openat2};
	prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, nosys};
	prog[n++] = (struct sock_filter_){BPF_RET_K, 0, 0, HUTCH_SECCOMP_RET_ALLOW};
	install(prog, n, "no-setid seccomp filter");
}
