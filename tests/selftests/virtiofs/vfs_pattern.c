// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side helper: prints SIZE bytes of the test pattern for SEED, so the
 * runner can compare what the guest wrote with what it should have written;
 * with --model, the file the random-write model gives (vfs_util.h).
 *
 * usage: vfs_pattern SIZE SEED
 *        vfs_pattern --model SEED OPS SPAN MAXLEN
 */
#include "vfs_util.h"

static int print_model(char **argv)
{
	unsigned long seed = strtoul(argv[0], NULL, 0);
	unsigned long nops = strtoul(argv[1], NULL, 0);
	size_t span = strtoull(argv[2], NULL, 0);
	size_t maxlen = strtoull(argv[3], NULL, 0);
	unsigned char *buf;
	size_t size;

	if (!span || !maxlen)
		return 2;
	buf = calloc(1, span);
	if (!buf)
		return 1;
	size = vfs_model_build(buf, seed, nops, span, maxlen);
	if (fwrite(buf, 1, size, stdout) != size)
		return 1;
	free(buf);
	return fflush(stdout) ? 1 : 0;
}

int main(int argc, char **argv)
{
	unsigned char buf[65536];
	unsigned long long size, done = 0;
	unsigned long seed;

	if (argc == 6 && !strcmp(argv[1], "--model"))
		return print_model(argv + 2);
	if (argc != 3) {
		fprintf(stderr, "usage: %s SIZE SEED\n       %s --model SEED OPS SPAN MAXLEN\n",
			argv[0], argv[0]);
		return 2;
	}
	size = strtoull(argv[1], NULL, 0);
	seed = strtoul(argv[2], NULL, 0);
	while (done < size) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);

		vfs_pattern_fill(buf, n, done, seed);
		if (fwrite(buf, 1, n, stdout) != n)
			return 1;
		done += n;
	}
	return fflush(stdout) ? 1 : 0;
}
