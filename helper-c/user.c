/* user.c: the `user` op. Switch the command to USER[:GROUP] (ids parsed by
 * plan.c; names are looked up in the sandbox's own /etc/passwd and
 * /etc/group, after the pivot), as podman's --user does. Leaving uid 0 drops every capability,
 * as it would on the host. */
#include "helper.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* an id field of the sandbox's passwd or group file */
static int numeric(const char *s, unsigned long *out)
{
	return parse_uint(s, 10, out) == 0;
}

/* Find NAME (or, with name NULL, the numeric ID) in a passwd/group style
 * file: fields separated by ':', field 0 name, field 2 id, field 3 gid
 * (passwd) and field 5 home (passwd). */
static int lookup(const char *file, const char *name, unsigned long id, unsigned long *out_id, unsigned long *out_gid,
		  char *home, size_t homelen)
{
	FILE *f = fopen(file, "re");
	if (!f)
		return -1;
	char line[1024];
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		char *fld[7] = {0};
		int n = 0;
		char *p = line;
		line[strcspn(line, "\n")] = 0;
		while (n < 7) {
			fld[n++] = p;
			p = strchr(p, ':');
			if (!p)
				break;
			*p++ = 0;
		}
		if (n < 3)
			continue;
		unsigned long fid;
		if (!numeric(fld[2], &fid))
			continue;
		if (name ? strcmp(fld[0], name) : fid != id)
			continue;
		*out_id = fid;
		if (out_gid && n >= 4)
			numeric(fld[3], out_gid);
		if (home && n >= 6)
			snprintf(home, homelen, "%s", fld[5]);
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

void user_apply(const struct op *o)
{
	char home[512] = "";
	unsigned long uid = o->u.user.uid, gid = 0, v;
	const char *uname = o->u.user.uname, *gname = o->u.user.gname;
	if (!uname)
		lookup("/etc/passwd", NULL, uid, &v, &gid, home, sizeof home); /* primary group, home */
	else if (lookup("/etc/passwd", uname, 0, &uid, &gid, home, sizeof home))
		fail("user %s: no such user in the sandbox's /etc/passwd", uname);
	if (o->u.user.has_group) {
		if (!gname)
			gid = o->u.user.gid;
		else if (lookup("/etc/group", gname, 0, &gid, NULL, NULL, 0))
			fail("group %s: no such group in the sandbox's /etc/group", gname);
	}
	gid_t groups[1] = {(gid_t)gid};
	/* denied when the user namespace has setgroups "deny" (no subordinate ids) */
	if (setgroups(1, groups) && errno != EPERM)
		fail_errno("setgroups %lu", gid);
	if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid))
		fail_errno("switch to group %lu", gid);
	if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid))
		fail_errno("switch to user %lu", uid);
	if (home[0])
		setenv("HOME", home, 1);
}
