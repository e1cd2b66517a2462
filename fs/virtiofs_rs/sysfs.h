/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtiofs-rs: the C side of sysfs (sysfs.c), called from Rust
 * (device.rs). Declarations mirrored by hand in sysfs.rs.
 */
#ifndef _VIRTIOFS_RS_SYSFS_H
#define _VIRTIOFS_RS_SYSFS_H

struct virtio_device;
struct vfsrs_instance;
struct kobject;

int vfsrs_sysfs_init(void);
void vfsrs_sysfs_exit(void);

/*
 * Adds /sys/fs/virtiofs/<index>/ for @vdev showing @tag, the queue names
 * and the CPU -> request queue map, and sends KOBJ_ADD with TAG=. Everything
 * is copied. Returns an ERR_PTR (-ENOMEM, or kobject errors) on failure.
 */
struct vfsrs_instance *vfsrs_instance_add(struct virtio_device *vdev,
					  const char *tag, unsigned int nvqs,
					  const char *const *vq_names,
					  const unsigned int *mq_map,
					  unsigned int nr_cpus);

/* Removes the instance's sysfs directory. */
void vfsrs_instance_del(struct vfsrs_instance *inst);

/* The counters of dax/, in this order (vfsrs_dax_names in sysfs.c). */
#define VFSRS_DAX_NR_COUNTERS 15

/*
 * Adds /sys/fs/virtiofs/<index>/dax/ for a mount's window, whose files
 * show vfsrs_dax_counter(@ctx, i). Returns an ERR_PTR on failure.
 */
struct kobject *vfsrs_dax_add(unsigned int index, const void *ctx);

/* Removes it; no read of it runs after this returns. */
void vfsrs_dax_del(struct kobject *kobj);

/* Implemented in Rust (dax.rs): counter @idx of the window @ctx. */
unsigned long long vfsrs_dax_counter(const void *ctx, unsigned int idx);

#endif /* _VIRTIOFS_RS_SYSFS_H */
