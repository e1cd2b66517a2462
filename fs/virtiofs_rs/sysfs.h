/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * virtiofs-rs: the C side of sysfs and the instance list (sysfs.c), called
 * from Rust (device.rs). Declarations mirrored by hand in sysfs.rs.
 */
#ifndef _VIRTIOFS_RS_SYSFS_H
#define _VIRTIOFS_RS_SYSFS_H

struct virtio_device;
struct vfsrs_instance;

int vfsrs_sysfs_init(void);
void vfsrs_sysfs_exit(void);

/*
 * Adds /sys/fs/virtiofs/<index>/ for @vdev and lists the instance under
 * @tag. Everything is copied; @data is the Rust device, returned (after
 * calling @get on it under the list lock) by vfsrs_instance_find().
 * Returns an ERR_PTR: -EEXIST if the tag is taken, -ENOMEM.
 */
struct vfsrs_instance *vfsrs_instance_add(struct virtio_device *vdev,
					  const char *tag, unsigned int nvqs,
					  const char *const *vq_names,
					  const unsigned int *mq_map,
					  unsigned int nr_cpus, void *data);

/* Unlists the instance and removes its sysfs directory. */
void vfsrs_instance_del(struct vfsrs_instance *inst);

/* Finds the instance with @tag and calls @get on its data under the lock. */
void *vfsrs_instance_find(const char *tag, void (*get)(void *data));

#endif /* _VIRTIOFS_RS_SYSFS_H */
