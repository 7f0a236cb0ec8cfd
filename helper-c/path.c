/* path.c: how the filesystem ops (mount.c) find their paths.
 *
 * Once `base` ran, every path under /newroot is resolved with
 * openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) relative to /newroot (after
 * `pivot`: relative to /), so a symlink inside a layer resolves inside the
 * sandbox and can never send a mount or a write to the host. Other paths
 * (/oldroot/..., and everything before `base`) are host paths given by hutch
 * and resolved normally. Missing parents are created one component at a time
 * with mkdirat on in-root handles.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NEWROOT "/newroot"

struct fs_view g_fs;

static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* Open PATH (flags must include O_PATH or a read mode). Sandbox paths are
 * resolved inside the sandbox root; host paths literally. */
int open_path(const char *path, int flags)
{
	const char *rootdir = NULL, *rel = path;
	if (g_fs.pivoted)
		rootdir = "/";
	else if (g_fs.based && under(path, NEWROOT))
		rootdir = NEWROOT, rel = path + strlen(NEWROOT);
	/* openat(AT_FDCWD), not open(): musl's open() follows O_CLOEXEC with an
	 * fcntl(F_SETFD) for kernels older than 2.6.23, one more system call
	 * for each of the hundreds of paths a plan opens */
	if (!rootdir)
		return openat(AT_FDCWD, path, flags | O_CLOEXEC);
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	int root = openat(AT_FDCWD, rootdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	struct hutch_open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = HUTCH_RESOLVE_IN_ROOT | HUTCH_RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof how);
	int err = errno;
	close(root);
	errno = err;
	return fd;
}

/* Split "/a/b/c" into an O_PATH handle of "/a/b" and "c". */
int open_parent(const char *path, char *name, size_t namelen)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	char *slash = strrchr(buf, '/');
	if (!slash || !slash[1] || strlen(slash + 1) >= namelen) {
		errno = EINVAL;
		return -1;
	}
	strcpy(name, slash + 1);
	if (slash == buf)
		slash[1] = 0;
	else
		*slash = 0;
	return open_path(buf, O_PATH | O_DIRECTORY);
}

/* mkdir -p: missing parents get 0755, the last component MODE. */
int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096], name[256];
	size_t n = strlen(path);
	if (n >= sizeof buf)
		return errno = ENAMETOOLONG, -1;
	/* The common case first: the parent exists and only the last component
	 * is new. These are the two steps the loop below ends with (open_parent,
	 * then mkdirat on its handle, resolved in-root like every component), so
	 * nothing resolves differently; on any failure (a missing parent, PATH
	 * already there, an error) the loop runs and decides as it always did.
	 * It saves an open and a close per component (a plan has dozens). */
	int parent = open_parent(path, name, sizeof name);
	if (parent >= 0) {
		int made = mkdirat(parent, name, mode) == 0;
		close(parent);
		if (made)
			return 0;
	}
	memcpy(buf, path, n + 1);
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char saved = *s;
		*s = 0;
		int fd = open_path(buf, O_PATH | O_DIRECTORY);
		if (fd >= 0) {
			close(fd);
		} else if (errno == ENOENT) {
			int pfd = open_parent(buf, name, sizeof name);
			if (pfd < 0)
				return -1;
			int r = mkdirat(pfd, name, saved ? 0755 : mode);
			int err = errno;
			close(pfd);
			if (r && err != EEXIST)
				return errno = err, -1;
		} else {
			return -1;
		}
		if (!saved)
			return 0;
		*s = saved;
		while (s[1] == '/')
			s++;
		if (!s[1])
			return 0;
	}
}

int mkdir_parent(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	char *slash = strrchr(buf, '/');
	if (!slash || slash == buf)
		return 0;
	*slash = 0;
	return mkdir_p(buf, 0755);
}

/* Make sure DEST exists as a directory or (dir == 0) a file; open it. */
int open_dest(const char *dest, int dir)
{
	int fd = open_path(dest, O_PATH);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (dir) {
		if (mkdir_p(dest, 0755))
			return -1;
	} else {
		char name[256];
		if (mkdir_parent(dest))
			return -1;
		int pfd = open_parent(dest, name, sizeof name);
		if (pfd < 0)
			return -1;
		int f = openat(pfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		int err = errno;
		close(pfd);
		if (f < 0)
			return errno = err, -1;
		close(f);
	}
	return open_path(dest, O_PATH);
}

/* A path of the host's root as seen now: /oldroot/... between `base` and
 * `pivot`, as is before `base`; after `pivot` the sandbox's own. */
const char *host_path(const char *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", g_fs.based && !g_fs.pivoted ? "/oldroot" : "", p);
	return buf;
}
