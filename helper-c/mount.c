/* mount.c: the filesystem ops (PLAN.md, "Filesystem"), run by the init in
 * its own mount namespace, in plan order. Paths are found by path.c; mounts
 * are made onto the handle path.c resolved: a fresh filesystem through the
 * handle's /proc/self/fd magic link (mount_on_fd), a bind with move_mount
 * onto it (MOVE_MOUNT_T_EMPTY_PATH), so no path is looked up twice. The
 * magic link needs a procfs: the host's /proc (/oldroot/proc after `base`)
 * until `pivot`, the sandbox's /proc after it.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---------- mounting onto handles ---------- */

/* mount(2) a fresh filesystem onto the directory handle fd, through its
 * /proc/self/fd magic link. Not fchdir(fd): on a FUSE directory (the
 * fuse-overlayfs root) fchdir asks the daemon for FUSE_ACCESS, which
 * fuse-overlayfs answers with EOPNOTSUPP for unprivileged users. */
static int mount_on_fd(int fd, const char *src, const char *type, unsigned long flags, const char *data)
{
	char link[64], path[96];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	return mount(src, host_path(link, path, sizeof path), type, flags, data);
}

/* Clone the tree at srcfd, set attributes on the detached copy (so it is
 * never visible writable), attach it on destfd. */
static int bind_fd(int srcfd, int destfd, int rec, uint64_t attrs)
{
	int tree = (int)syscall(SYS_open_tree, srcfd, "",
				AT_EMPTY_PATH | HUTCH_OPEN_TREE_CLONE | O_CLOEXEC | (rec ? AT_RECURSIVE : 0));
	if (tree < 0)
		return -1;
	struct hutch_mount_attr attr = {.attr_set = attrs};
	int r = (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
	if (r == 0)
		r = (int)syscall(SYS_move_mount, tree, "", destfd, "",
				 HUTCH_MOVE_MOUNT_F_EMPTY_PATH | HUTCH_MOVE_MOUNT_T_EMPTY_PATH);
	int err = errno;
	close(tree);
	errno = err;
	return r;
}

/* ---------- filesystem ops ---------- */

static void op_base(const char *dir)
{
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
		fail_errno("mount tmpfs on %s", dir);
	if (chdir(dir))
		fail_errno("chdir %s", dir);
	if (mkdir("newroot", 0755) || mkdir("oldroot", 0755))
		fail_errno("mkdir in %s", dir);
	/* bind newroot onto itself so `pivot /newroot` works even when the
	 * plan mounts nothing there (pivot_root needs a mount point) */
	if (mount("newroot", "newroot", NULL, MS_BIND | MS_REC, NULL))
		fail_errno("bind %s/newroot", dir);
	if (syscall(SYS_pivot_root, ".", "oldroot"))
		fail_errno("pivot_root(%s, %s/oldroot)", dir, dir);
	if (chdir("/"))
		fail_errno("chdir /");
	g_fs.based = 1;
}

static void op_fresh(const char *dest, const char *type, unsigned long flags, const char *data)
{
	int fd = open_dest(dest, 1);
	if (fd < 0)
		fail_errno("mount point %s", dest);
	if (mount_on_fd(fd, type, type, flags, data))
		fail_errno("mount %s on %s", type, dest);
	close(fd);
}

static void op_tmpfs(const struct op *o)
{
	char data[64];
	int n = snprintf(data, sizeof data, "mode=%lo", (unsigned long)o->u.tmpfs.mode);
	if (o->u.tmpfs.has_size)
		snprintf(data + n, sizeof data - (size_t)n, ",size=%lu", o->u.tmpfs.size);
	op_fresh(o->f[0], "tmpfs", MS_NOSUID | MS_NODEV, data);
}

static void op_overlay(const struct op *o)
{
	char data[4096];
	size_t n = (size_t)snprintf(data, sizeof data, "lowerdir=%s", o->f[1]);
	if (!o->u.overlay.ro)
		n += (size_t)snprintf(data + n, n < sizeof data ? sizeof data - n : 0, ",upperdir=%s,workdir=%s",
				      o->f[2], o->f[3]);
	if (o->u.overlay.userxattr)
		n += (size_t)snprintf(data + n, n < sizeof data ? sizeof data - n : 0, ",userxattr");
	if (n >= sizeof data)
		fail("overlay options longer than a page (%zu bytes): use shorter layer paths", n);
	op_fresh(o->f[0], "overlay", 0, data);
}

static void do_bind(const char *src, const char *dest, int ro, int rec, int dev, int try)
{
	struct stat st;
	int sfd = open_path(src, O_PATH);
	if (sfd < 0) {
		if (try && errno == ENOENT)
			return;
		fail_errno("bind source %s", src);
	}
	if (fstat(sfd, &st))
		fail_errno("stat %s", src);
	int dfd = open_dest(dest, S_ISDIR(st.st_mode));
	if (dfd < 0)
		fail_errno("bind destination %s", dest);
	uint64_t attrs =
		HUTCH_MOUNT_ATTR_NOSUID | (dev ? 0 : HUTCH_MOUNT_ATTR_NODEV) | (ro ? HUTCH_MOUNT_ATTR_RDONLY : 0);
	if (bind_fd(sfd, dfd, rec, attrs))
		fail_errno("bind %s on %s", src, dest);
	close(sfd);
	close(dfd);
}

static void op_bind(const struct op *o)
{
	int fl = o->u.bind;
	do_bind(o->f[0], o->f[1], fl & BIND_RO, fl & BIND_REC, fl & BIND_DEV, fl & BIND_TRY);
}

/* Read-only: DEST and every mount below it, or (self) DEST alone, so that
 * read-write mounts made on top of it stay writable. */
static void op_remount_ro(const char *dest, int self)
{
	int fd = open_path(dest, O_PATH);
	struct hutch_mount_attr attr = {.attr_set = HUTCH_MOUNT_ATTR_RDONLY};
	if (fd < 0)
		fail_errno("open %s", dest);
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (self ? 0 : AT_RECURSIVE), &attr, sizeof attr))
		fail_errno("make %s read-only", dest);
	close(fd);
}

static void op_devpts(const char *dest)
{
	char name[256], link[300];
	op_fresh(dest, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
	/* PARENT/ptmx -> NAME/ptmx, so /dev/ptmx uses this instance */
	int pfd = open_parent(dest, name, sizeof name);
	if (pfd < 0)
		fail_errno("open parent of %s", dest);
	snprintf(link, sizeof link, "%s/ptmx", name);
	if (symlinkat(link, pfd, "ptmx") && errno != EEXIST)
		fail_errno("symlink ptmx -> %s next to %s", link, dest);
	close(pfd);
}

static void op_symlink(const char *target, const char *path)
{
	char name[256], cur[4096];
	if (mkdir_parent(path))
		fail_errno("create parent of %s", path);
	int pfd = open_parent(path, name, sizeof name);
	if (pfd < 0)
		fail_errno("open parent of %s", path);
	if (symlinkat(target, pfd, name)) {
		ssize_t n = errno == EEXIST ? readlinkat(pfd, name, cur, sizeof cur - 1) : -1;
		if (n < 0 || (cur[n] = 0, strcmp(cur, target) != 0)) {
			errno = EEXIST;
			fail_errno("symlink %s -> %s", path, target);
		}
	}
	close(pfd);
}

static void op_file(const struct op *o)
{
	char name[256];
	mode_t mode = o->u.mode;
	if (mkdir_parent(o->f[0]))
		fail_errno("create parent of %s", o->f[0]);
	int pfd = open_parent(o->f[0], name, sizeof name);
	if (pfd < 0)
		fail_errno("open parent of %s", o->f[0]);
	/* O_NOFOLLOW: never write through a symlink planted in a layer */
	int fd = openat(pfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		fail_errno("create %s", o->f[0]);
	if (write_all(fd, o->f[2], strlen(o->f[2])) || fchmod(fd, mode))
		fail_errno("write %s", o->f[0]);
	close(fd);
	close(pfd);
}

/* The path itself, never a symlink's target (O_NOFOLLOW on the last component). */
static void op_chown(const struct op *o)
{
	int fd = open_path(o->f[0], O_PATH | O_NOFOLLOW);
	if (fd < 0)
		fail_errno("open %s", o->f[0]);
	if (fchownat(fd, "", o->u.owner.uid, o->u.owner.gid, AT_EMPTY_PATH))
		fail_errno("chown %s %u:%u%s", o->f[0], o->u.owner.uid, o->u.owner.gid,
			   errno == EINVAL ? " (an id the user namespace does not map)" : "");
	close(fd);
}

static void op_mask(const char *path)
{
	struct stat st;
	int fd = open_path(path, O_PATH);
	if (fd < 0) {
		if (errno == ENOENT)
			return;
		fail_errno("open %s", path);
	}
	if (fstat(fd, &st))
		fail_errno("stat %s", path);
	if (S_ISDIR(st.st_mode)) {
		if (mount_on_fd(fd, "tmpfs", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555,size=0"))
			fail_errno("mask %s with an empty tmpfs", path);
	} else {
		char buf[64];
		int nfd = open(host_path("/dev/null", buf, sizeof buf), O_PATH | O_CLOEXEC);
		if (nfd < 0 ||
		    bind_fd(nfd, fd, 0, HUTCH_MOUNT_ATTR_RDONLY | HUTCH_MOUNT_ATTR_NOSUID | HUTCH_MOUNT_ATTR_NOEXEC))
			fail_errno("mask %s with %s", path, buf);
		close(nfd);
	}
	close(fd);
}

static void op_pivot(const char *dir)
{
	int fd = open_path(dir, O_PATH | O_DIRECTORY);
	if (fd < 0 || fchdir(fd))
		fail_errno("chdir %s", dir);
	close(fd);
	/* new root and old root stacked on "."; detaching the top one drops
	 * the whole host view (the base tmpfs and /oldroot under it) */
	if (syscall(SYS_pivot_root, ".", "."))
		fail_errno("pivot_root(%s)", dir);
	if (umount2(".", MNT_DETACH))
		fail_errno("detach the old root");
	if (chdir("/"))
		fail_errno("chdir /");
	g_fs.pivoted = 1;
}

static void op_remount_root_ro(void)
{
	struct hutch_mount_attr attr = {.attr_set = HUTCH_MOUNT_ATTR_RDONLY};
	if (syscall(SYS_mount_setattr, AT_FDCWD, "/", 0, &attr, sizeof attr))
		fail_errno("make / read-only");
}

/* One filesystem op (o->desc->mountns), in the init. */
void fs_run_op(const struct op *o)
{
	char **f = o->f;
	const unsigned long nse = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	switch (o->kind) {
	case OP_BASE:
		op_base(f[0]);
		break;
	case OP_TMPFS:
		op_tmpfs(o);
		break;
	case OP_OVERLAY:
		op_overlay(o);
		break;
	case OP_BIND:
		op_bind(o);
		break;
	case OP_REMOUNT_RO:
		op_remount_ro(f[0], o->u.self);
		break;
	case OP_PROC:
		op_fresh(f[0], "proc", nse, NULL);
		break;
	case OP_SYSFS: /* only the owner of the network namespace may mount it */
		op_fresh(f[0], "sysfs", MS_RDONLY | nse, NULL);
		break;
	case OP_DEVPTS:
		op_devpts(f[0]);
		break;
	case OP_MQUEUE:
		op_fresh(f[0], "mqueue", nse, NULL);
		break;
	case OP_MKDIR:
		if (mkdir_p(f[0], o->u.mode))
			fail_errno("mkdir %s", f[0]);
		break;
	case OP_SYMLINK:
		op_symlink(f[0], f[1]);
		break;
	case OP_FILE:
		op_file(o);
		break;
	case OP_CHOWN:
		op_chown(o);
		break;
	case OP_MASK:
		op_mask(f[0]);
		break;
	case OP_PIVOT:
		op_pivot(f[0]);
		break;
	case OP_REMOUNT_ROOT_RO:
		op_remount_root_ro();
		break;
	default:
		fail("not a filesystem op");
		break;
	}
}
