/* plan_fuzz.c: libFuzzer target for the plan parser, the code behind
 * `hutch-helper check`. Each input is written to a memfd and read with
 * plan_read(), exactly as check reads fd 3. An invalid plan makes the
 * parser call fail(), which ends in g_fatal_hook: here that jumps back, so
 * one process tries many inputs; plan_free() then releases what the parser
 * had allocated. Build and run: run.sh SECONDS.
 */
#include "../helper.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static jmp_buf back;

static void back_to_fuzzer(void)
{
	longjmp(back, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static struct plan p; /* static: unchanged by longjmp */
	if (fd < 0 && (fd = memfd_create("plan", MFD_CLOEXEC)) < 0) {
		perror("memfd_create");
		abort();
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size || lseek(fd, 0, SEEK_SET)) {
		perror("memfd");
		abort();
	}
	g_fatal_hook = back_to_fuzzer;
	if (setjmp(back) == 0)
		plan_read(fd, &p);
	plan_free(&p);
	g_fatal_hook = NULL;
	g_op = NULL;
	return 0;
}
