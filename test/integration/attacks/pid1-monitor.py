# Attacks pid 1 and hutch's monitor from inside a sandbox (see security-pid1.test.ts).
import ctypes, errno, json, os, signal, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.ptrace.restype = ctypes.c_long
libc.process_vm_readv.restype = ctypes.c_ssize_t


def code(e):
    return errno.errorcode.get(e, str(e))


def tryit(f):
    try:
        f()
        return 'ok'
    except OSError as e:
        return code(e.errno)


def sysret(r):
    return 'ok' if r >= 0 else code(ctypes.get_errno())


class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]


def vm_read(pid):
    buf = ctypes.create_string_buffer(16)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = iovec(0x400000, 16)
    return sysret(libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))


def attach(pid):
    r = libc.ptrace(ctypes.c_long(16), ctypes.c_long(pid), None, None)  # PTRACE_ATTACH
    out = sysret(r)
    if r >= 0:
        os.waitpid(pid, 0)
        libc.ptrace(ctypes.c_long(17), ctypes.c_long(pid), None, None)  # PTRACE_DETACH
    return out


def getfd(pid):
    try:
        pfd = os.pidfd_open(pid)
    except OSError as e:
        return 'pidfd_open ' + code(e.errno)
    return sysret(libc.syscall(ctypes.c_long(438), ctypes.c_long(pfd), ctypes.c_long(0), ctypes.c_long(0)))  # pidfd_getfd


# With hutch run as root, uid 0 inside is the host's root, which owns a
# non-dumpable process's /proc files: the fd directory may be listed then.
# What opening its entries gives is reported (an errno, or 'null' for
# /dev/null, 'other' for anything else).
def fd_targets(proc, pid):
    null = os.stat('/dev/null')
    def what(fd):
        try:
            st = os.stat(f'{proc}/{pid}/fd/{fd}')
            return 'null' if (st.st_dev, st.st_ino, st.st_rdev) == (null.st_dev, null.st_ino, null.st_rdev) else 'other'
        except OSError as e:
            return code(e.errno)
    try:
        return [what(fd) for fd in os.listdir(f'{proc}/{pid}/fd')]
    except OSError as e:
        return code(e.errno)


def attacks(proc, pid, ns_pid):
    return {
        'fd_targets': fd_targets(proc, pid),
        'environ': tryit(lambda: open(f'{proc}/{pid}/environ', 'rb').read()),
        'mem': tryit(lambda: open(f'{proc}/{pid}/mem', 'rb').close()),
        'fd': tryit(lambda: os.listdir(f'{proc}/{pid}/fd')),
        'ptrace': attach(ns_pid) if ns_pid else 'n/a',
        'vm_read': vm_read(ns_pid) if ns_pid else 'n/a',
        'pidfd_getfd': getfd(ns_pid) if ns_pid else 'n/a',
    }


def status(proc, pid):
    out = {}
    for line in open(f'{proc}/{pid}/status'):
        k, _, v = line.partition(':')
        out[k] = v.strip()
    return out


res = {}
# control: a process of our own, which --cap-add ALL may attack (proves the tools work)
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
time.sleep(0.1)
res['control'] = attacks('/proc', child, child)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)

res['pid1'] = attacks('/proc', 1, 1)
st = status('/proc', 1)
res['pid1_caps'] = {k: st[k] for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')}
fields = open('/proc/1/stat').read().rsplit(')', 1)[1].split()
res['pid1_session'], res['pid1_tty'] = int(fields[3]), int(fields[4])
for sig in (signal.SIGKILL, signal.SIGSTOP):
    os.kill(1, sig)
time.sleep(0.2)
res['pid1_state'] = open('/proc/1/stat').read().rsplit(')', 1)[1].split()[0]

# the terminal: TIOCSTI on every fd that is a tty, and /dev/tty
import fcntl, termios
res['isatty'] = os.isatty(0)
res['tiocsti'] = [tryit(lambda fd=fd: fcntl.ioctl(fd, termios.TIOCSTI, b'#')) for fd in (0, 1, 2) if os.isatty(fd)]
res['devtty'] = tryit(lambda: os.open('/dev/tty', os.O_RDWR))

# the monitor, through the host's /proc when it is bound at /hostproc
hp = '/hostproc'
if os.path.isdir(hp):
    # hutch masks a host /proc inside a bind; CAP_SYS_ADMIN (in ALL) can
    # unmount the mask, and then the monitor itself must hold
    res['hostproc_masked'] = not os.listdir(hp)
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    res['unmask'] = sysret(libc.umount2(hp.encode(), 0)) if res['hostproc_masked'] else 'n/a'
if os.path.isdir(hp) and os.listdir(hp):
    me = os.readlink('/proc/self/ns/pid')
    host = None
    for p in os.listdir(hp):
        if p.isdigit():
            try:
                s = status(hp, p)
                if s['NSpid'].split()[-1] == str(os.getpid()) and os.readlink(f'{hp}/{p}/ns/pid') == me:
                    host = p
            except OSError:
                pass
    chain = [host]
    while status(hp, chain[-1])['NSpid'].split()[-1] != '1':
        chain.append(status(hp, chain[-1])['PPid'])
    init = chain[-1]
    monitor = status(hp, init)['PPid']
    res['monitor_comm'] = open(f'{hp}/{monitor}/comm').read().strip()
    res['monitor'] = attacks(hp, monitor, None)
    res['init_host'] = attacks(hp, init, None)
    dfd = os.open(f'{hp}/{monitor}', os.O_RDONLY | os.O_DIRECTORY)
    res['monitor_pidfd_kill'] = sysret(libc.syscall(ctypes.c_long(424), ctypes.c_long(dfd), ctypes.c_long(signal.SIGKILL), None, ctypes.c_long(0)))
    res['monitor_kill'] = tryit(lambda: os.kill(int(monitor), 0))
    time.sleep(0.2)
    res['monitor_alive'] = os.path.exists(f'{hp}/{monitor}/status')

print(json.dumps(res), flush=True)
if len(sys.argv) > 1:
    sys.stdin.readline()  # the host looks at pid 1 and the monitor meanwhile
print('end', flush=True)
