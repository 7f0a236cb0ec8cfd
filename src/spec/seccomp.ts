// The default seccomp filter: system calls refused (EPERM) inside every
// sandbox unless the profile says `seccomp: unconfined`. The list follows
// podman's and docker's defaults where they deny outright: calls that reach
// kernel state the user namespace does not isolate (keyrings, the system
// clock, kernel modules, kexec, swap, accounting, the kernel log) or that
// widen the kernel attack surface (bpf, perf_event_open, userfaultfd,
// io_uring). Everything a build, a test suite or a dev server needs stays
// allowed; mount, ptrace and friends are governed by capabilities instead.

/** The default deny list for an architecture (process.arch names). */
export function defaultSeccompDeny(arch: string): string[] {
  return [
    'acct',
    'add_key',
    'bpf',
    'clock_adjtime',
    'clock_settime',
    'delete_module',
    'finit_module',
    'init_module',
    'io_uring_enter',
    'io_uring_register',
    'io_uring_setup',
    'kexec_file_load',
    'kexec_load',
    'keyctl',
    'lookup_dcookie',
    'move_pages',
    'open_by_handle_at',
    'perf_event_open',
    'quotactl',
    'reboot',
    'request_key',
    'settimeofday',
    'adjtimex',
    'swapoff',
    'swapon',
    'syslog',
    'userfaultfd',
    'fanotify_init',
    'vhangup',
    // x86_64 only; the helper refuses names its architecture does not have
    ...(arch === 'x64' ? ['iopl', 'ioperm', 'uselib', 'ustat', 'sysfs', '_sysctl', 'create_module', 'get_kernel_syms', 'query_module', 'nfsservctl'] : []),
  ];
}
