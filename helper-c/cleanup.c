/* cleanup.c: `cleanup PATH` = rm -rf PATH, run by the monitor after the
 * sandbox is gone. It runs inside the user namespace, where the monitor is
 * root with CAP_DAC_OVERRIDE/CAP_FOWNER over every mapped id, so files the
 * sandbox created as subordinate ids are removable. Symlinks are never
 * followed (fstatat AT_SYMLINK_NOFOLLOW, O_NOFOLLOW, unlinkat), not even in
 * PATH's parents (walked from / by fd), the parent must be the caller's and
 * writable by nobody else, and it does not descend into other mounts (like
 * rm --one-file-system). */
#include "helper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int remove_at(int dfd, const char *name, dev_t dev, char *path, size_t plen);

/* Open a directory for reading without following a symlink; if it is not
 * readable (e.g. mode 0000 written by a build tool), give ourselves u+rwx
 * through a handle that is known not to be a symlink. */
static int open_dir_nofollow(int dfd, const char *name, mode_t mode)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == EACCES) {
		int pfd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		char proc[64];
		if (pfd < 0)
			return -1;
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
		chmod(proc, (mode | 0700) & 07777);
		close(pfd);
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd;
}

static int empty_dir(int fd, dev_t dev, char *path, size_t plen)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	int rc = 0;
	if (!d) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (remove_at(dirfd(d), e->d_name, dev, path, plen))
			rc = -1;
	}
	closedir(d);
	return rc;
}

static int remove_at(int dfd, const char *name, dev_t dev, char *path, size_t plen)
{
	struct stat st;
	size_t n = plen;
	/* keep the full path only for messages */
	if (plen + strlen(name) + 2 < PATH_MAX)
		n += (size_t)sprintf(path + plen, "%s%s", plen && path[plen - 1] != '/' ? "/" : "", name);

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? 0 : (warn("stat %s: %s", path, strerror(errno)), -1);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dfd, name, 0) && errno != ENOENT)
			return warn("remove %s: %s", path, strerror(errno)), -1;
		return 0;
	}
	if (st.st_dev != dev)
		return warn("not removing %s: another filesystem is mounted there", path), -1;
	/* a directory we cannot write into cannot be emptied */
	int rc = 0;
	for (int pass = 0; pass < 3; pass++) {
		int fd = open_dir_nofollow(dfd, name, st.st_mode);
		if (fd < 0)
			return warn("open %s: %s", path, strerror(errno)), -1;
		if ((st.st_mode & 0700) != 0700)
			fchmod(fd, (st.st_mode | 0700) & 07777);
		rc = empty_dir(fd, dev, path, n);
		path[n] = 0;
		if (unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != ENOTEMPTY || rc)
			break; /* ENOTEMPTY: entries appeared while reading; retry */
	}
	return warn("remove %s: %s", path, strerror(errno)), -1;
}

/* Open the directory PATH (absolute) by walking it from / one component at
 * a time with O_NOFOLLOW: no symlink anywhere in it is followed, so nobody
 * can redirect the removal by swapping a component for a link. hutch passes
 * real paths (src/host/private-dir.ts returns them). */
static int open_dir_beneath_root(const char *path)
{
	char buf[PATH_MAX];
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	snprintf(buf, sizeof buf, "%s", path);
	for (char *save = NULL, *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, ".") || !strcmp(c, "..")) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
	}
	return fd;
}

int cleanup_path(const char *path)
{
	char buf[PATH_MAX], msg[PATH_MAX];
	struct stat st;
	if (strlen(path) >= sizeof buf || path[0] != '/')
		return warn("cleanup: bad path %s", path), -1;
	strcpy(buf, path);
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	char *slash = strrchr(buf, '/');
	if (slash == buf && !slash[1])
		return warn("cleanup: refusing to remove /"), -1;
	*slash = 0;
	if (!strcmp(slash + 1, ".") || !strcmp(slash + 1, ".."))
		return warn("cleanup: bad path %s", path), -1;
	/* the parent is reached without following a symlink, and must be ours
	 * and writable by nobody else: then nobody else can replace the last
	 * component either; everything below it is not trusted at all */
	int dfd = open_dir_beneath_root(slash == buf ? "/" : buf);
	if (dfd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP || errno == ENOTDIR)
			return warn("cleanup: not removing %s: a component of %s is a symbolic link or not a directory",
				    path, buf),
			       -1;
		return warn("cleanup: open %s: %s", buf, strerror(errno)), -1;
	}
	if (fstat(dfd, &st) || st.st_uid != geteuid() || (st.st_mode & 022)) {
		close(dfd);
		return warn("cleanup: not removing %s: its parent directory is not private to this user", path), -1;
	}
	snprintf(msg, sizeof msg, "%s", slash == buf ? "" : buf);
	/* do not descend into other filesystems below PATH; PATH itself may be
	 * a mount of its own */
	if (fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW))
		st.st_dev = 0;
	int rc = remove_at(dfd, slash + 1, st.st_dev, msg, strlen(msg));
	close(dfd);
	return rc;
}
