/* hutch-helper: executes a plan of setup operations for one sandbox.
 * See PLAN.md for the format and the process model. */
#include "helper.h"
#include "netns.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void usage(void)
{
	dprintf(2, "usage: hutch-helper run     (plan on fd 3, see PLAN.md)\n"
		   "       hutch-helper exec    (plan with `join` on fd 3: a command in a running sandbox)\n"
		   "       hutch-helper check   (parse and validate the plan on fd 3, run nothing)\n"
		   "       hutch-helper net-connect PID MONITOR SOCKET IFNAME ADDR|- NAME [ALIAS...]\n"
		   "       hutch-helper net-resolv PID [CONTENT]\n"
		   "       hutch-helper await MONITOR INIT CGROUP|- STATEDIR|- MS TEXT|-\n"
		   "       hutch-helper --version\n");
}

int main(int argc, char **argv)
{
	static struct plan p; /* lives until exit (static: LeakSanitizer sees it at exit) */
	/* hutch runs a private copy as /proc/self/fd/N: the kernel names the
	 * process after that path's last component */
	prctl(PR_SET_NAME, "hutch-helper", 0, 0, 0);
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("hutch-helper %s\n", HELPER_VERSION);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "check")) {
		plan_read(FD_PLAN, &p);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "exec")) {
		plan_read(FD_PLAN, &p);
		join_run(&p);
	}
	/* what a foreground `hutch run` execs once its command runs (await.c) */
	if (argc > 1 && !strcmp(argv[1], "await"))
		return await_main(argc, argv);
	/* hutch network connect | disconnect: a running member, no plan (PLAN.md) */
	if (argc > 1 && !strcmp(argv[1], "net-connect"))
		net_connect_main(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "net-resolv"))
		net_resolv_main(argc, argv);
	if (argc != 2 || strcmp(argv[1], "run")) {
		usage();
		return EXIT_SETUP;
	}
	plan_read(FD_PLAN, &p);
	for (int i = 0; i < p.nops; i++)
		if (p.ops[i].kind == OP_JOIN)
			fail("invalid plan: `join` is for hutch-helper exec (op %d)", p.ops[i].line);
	monitor_run(&p);
}
