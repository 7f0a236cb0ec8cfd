# Tries every way to make a setuid/setgid file in DIR (argv[1]); prints what
# each attempt gave as JSON (see security-setid.test.ts).
import ctypes, errno, json, os, stat, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
d = sys.argv[1]
AT_FDCWD = -100


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


def p(name):
    return os.path.join(d, name)


open(p('plain'), 'w').close()
res = {}
for mode in (0o4755, 0o2755, 0o6755, 0o4000, 0o2010):
    res[f'chmod {mode:o}'] = tryit(lambda: os.chmod(p('plain'), mode))
fd = os.open(p('plain'), os.O_RDONLY)
res['fchmod'] = tryit(lambda: os.fchmod(fd, 0o4755))
res['fchmodat2'] = sysret(libc.syscall(ctypes.c_long(452), ctypes.c_long(AT_FDCWD), p('plain').encode(), ctypes.c_long(0o4755), ctypes.c_long(0)))
res['open O_CREAT'] = tryit(lambda: os.close(os.open(p('created'), os.O_CREAT | os.O_WRONLY, 0o4755)))
res['open O_CREAT setgid'] = tryit(lambda: os.close(os.open(p('created-g'), os.O_CREAT | os.O_WRONLY, 0o2775)))
res['creat'] = sysret(libc.creat(p('creat').encode(), ctypes.c_int(0o4755)))
res['mknod'] = tryit(lambda: os.mknod(p('node'), stat.S_IFREG | 0o4755))


def tmpfile():
    t = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o4755)
    os.link(f'/proc/self/fd/{t}', p('tmpfile'), follow_symlinks=True)


res['O_TMPFILE'] = tryit(tmpfile)


class OpenHow(ctypes.Structure):
    _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]


how = OpenHow(os.O_CREAT | os.O_WRONLY, 0o4755, 0)
res['openat2'] = sysret(libc.syscall(ctypes.c_long(437), ctypes.c_long(AT_FDCWD), p('openat2').encode(), ctypes.byref(how), ctypes.c_size_t(24)))
# controls: ordinary modes still work
res['control chmod 755'] = tryit(lambda: os.chmod(p('plain'), 0o755))
res['control open 644'] = tryit(lambda: os.close(os.open(p('ordinary'), os.O_CREAT | os.O_WRONLY, 0o644)))
res['control mkdir'] = tryit(lambda: os.mkdir(p('sub'), 0o755))
print(json.dumps(res), flush=True)
if len(sys.argv) > 2:
    sys.stdin.readline()
