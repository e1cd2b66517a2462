// SPDX-License-Identifier: GPL-2.0

#include <linux/pfn_t.h>

pfn_t rust_helper_phys_to_pfn_t(phys_addr_t addr, u64 flags)
{
	return phys_to_pfn_t(addr, flags);
}
