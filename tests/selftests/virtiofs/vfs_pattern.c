// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side helper: prints SIZE bytes of the test pattern for SEED, so the
 * runner can compare what the guest wrote with what it should have written.
 *
 * usage: vfs_pattern SIZE SEED
 */
#include "vfs_util.h"

int main(int argc, char **argv)
{
	unsigned char buf[65536];
	unsigned long long size, done = 0;
	unsigned long seed;

	if (argc != 3) {
		fprintf(stderr, "usage: %s SIZE SEED\n", argv[0]);
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
