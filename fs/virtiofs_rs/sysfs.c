// SPDX-License-Identifier: GPL-2.0-only
/*
 * virtiofs-rs: sysfs, the part where C is the
 * natural side (kobjects, attribute groups, uevents).
 *
 * Layout, as the C driver's: /sys/fs/virtiofs/<vdev index>/
 *   tag          the device's tag
 *   device ->    the virtio device
 *   mqs/<i>/     one per virtqueue: name, cpu_list
 * and a KOBJ_ADD uevent carrying TAG=<tag>.
 *
 * The Rust side (device.rs, registry.rs) owns the device state and the
 * tag -> device list (tags are unique there); it hands this file a copy of
 * what sysfs shows.
 */
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/virtio.h>

#include "sysfs.h"

struct vfsrs_vq_sysfs {
	struct kobject *kobj;
	char *name;
};

struct vfsrs_instance {
	struct kobject kobj;
	struct kobject *mqs_kobj;
	char *tag;
	unsigned int nvqs;
	unsigned int nr_cpus;
	unsigned int *mq_map;		/* cpu -> request queue (0-based) */
	struct vfsrs_vq_sysfs *vqs;
};

static struct kset *vfsrs_kset;

static ssize_t tag_show(struct kobject *kobj, struct kobj_attribute *attr,
			char *buf)
{
	struct vfsrs_instance *inst = container_of(kobj, struct vfsrs_instance, kobj);

	return sysfs_emit(buf, "%s\n", inst->tag);
}

static struct kobj_attribute vfsrs_tag_attr = __ATTR_RO(tag);

static struct attribute *vfsrs_attrs[] = {
	&vfsrs_tag_attr.attr,
	NULL
};
ATTRIBUTE_GROUPS(vfsrs);

static void vfsrs_release(struct kobject *kobj)
{
	struct vfsrs_instance *inst = container_of(kobj, struct vfsrs_instance, kobj);
	unsigned int i;

	for (i = 0; i < inst->nvqs; i++)
		kfree(inst->vqs[i].name);
	kfree(inst->vqs);
	kfree(inst->mq_map);
	kfree(inst->tag);
	kfree(inst);
}

static const struct kobj_type vfsrs_ktype = {
	.release = vfsrs_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = vfsrs_groups,
};

/* mqs/<i>/ belongs to mqs/, which belongs to the instance. */
static struct vfsrs_instance *vq_instance(struct kobject *kobj, unsigned int *qid)
{
	struct vfsrs_instance *inst = container_of(kobj->parent->parent,
						   struct vfsrs_instance, kobj);
	unsigned int i;

	for (i = 0; i < inst->nvqs; i++) {
		if (inst->vqs[i].kobj == kobj) {
			*qid = i;
			return inst;
		}
	}
	return NULL;
}

static ssize_t name_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	unsigned int qid;
	struct vfsrs_instance *inst = vq_instance(kobj, &qid);

	if (!inst)
		return -EINVAL;
	return sysfs_emit(buf, "%s\n", inst->vqs[qid].name);
}

static struct kobj_attribute vfsrs_vq_name_attr = __ATTR_RO(name);

static ssize_t cpu_list_show(struct kobject *kobj, struct kobj_attribute *attr,
			     char *buf)
{
	unsigned int qid, cpu;
	struct vfsrs_instance *inst = vq_instance(kobj, &qid);
	bool first = true;
	int pos = 0;

	if (!inst)
		return -EINVAL;
	for (cpu = 0; cpu < inst->nr_cpus; cpu++) {
		/* The hiprio queue (0) serves every CPU. */
		if (qid == 0 || inst->mq_map[cpu] == qid - 1) {
			pos += sysfs_emit_at(buf, pos, first ? "%u" : ", %u", cpu);
			first = false;
		}
	}
	pos += sysfs_emit_at(buf, pos, "\n");
	return pos;
}

static struct kobj_attribute vfsrs_vq_cpu_list_attr = __ATTR_RO(cpu_list);

static struct attribute *vfsrs_vq_attrs[] = {
	&vfsrs_vq_name_attr.attr,
	&vfsrs_vq_cpu_list_attr.attr,
	NULL
};

static const struct attribute_group vfsrs_vq_attr_group = {
	.attrs = vfsrs_vq_attrs,
};

static int vfsrs_uevent(const struct kobject *kobj, struct kobj_uevent_env *env)
{
	const struct vfsrs_instance *inst = container_of(kobj, struct vfsrs_instance, kobj);

	return add_uevent_var(env, "TAG=%s", inst->tag);
}

static const struct kset_uevent_ops vfsrs_uevent_ops = {
	.uevent = vfsrs_uevent,
};

static void vfsrs_dax_attrs_init(void);

int vfsrs_sysfs_init(void)
{
	vfsrs_dax_attrs_init();
	vfsrs_kset = kset_create_and_add("virtiofs", &vfsrs_uevent_ops, fs_kobj);
	return vfsrs_kset ? 0 : -ENOMEM;
}

void vfsrs_sysfs_exit(void)
{
	kset_unregister(vfsrs_kset);
}

static void vfsrs_del_queues(struct vfsrs_instance *inst)
{
	unsigned int i;

	for (i = 0; i < inst->nvqs; i++) {
		if (!inst->vqs[i].kobj)
			continue;
		sysfs_remove_group(inst->vqs[i].kobj, &vfsrs_vq_attr_group);
		kobject_put(inst->vqs[i].kobj);
		inst->vqs[i].kobj = NULL;
	}
}

static int vfsrs_add_queues(struct vfsrs_instance *inst)
{
	char buf[12];
	unsigned int i;
	int ret;

	for (i = 0; i < inst->nvqs; i++) {
		snprintf(buf, sizeof(buf), "%u", i);
		inst->vqs[i].kobj = kobject_create_and_add(buf, inst->mqs_kobj);
		if (!inst->vqs[i].kobj) {
			ret = -ENOMEM;
			goto err;
		}
		ret = sysfs_create_group(inst->vqs[i].kobj, &vfsrs_vq_attr_group);
		if (ret) {
			kobject_put(inst->vqs[i].kobj);
			inst->vqs[i].kobj = NULL;
			goto err;
		}
	}
	return 0;
err:
	vfsrs_del_queues(inst);
	return ret;
}

struct vfsrs_instance *vfsrs_instance_add(struct virtio_device *vdev,
					  const char *tag, unsigned int nvqs,
					  const char *const *vq_names,
					  const unsigned int *mq_map,
					  unsigned int nr_cpus)
{
	struct vfsrs_instance *inst;
	unsigned int i;
	int ret;

	inst = kzalloc(sizeof(*inst), GFP_KERNEL);
	if (!inst)
		return ERR_PTR(-ENOMEM);
	kobject_init(&inst->kobj, &vfsrs_ktype);
	inst->nr_cpus = nr_cpus;
	inst->tag = kstrdup(tag, GFP_KERNEL);
	inst->mq_map = kmemdup(mq_map, nr_cpus * sizeof(*mq_map), GFP_KERNEL);
	inst->vqs = kcalloc(nvqs, sizeof(*inst->vqs), GFP_KERNEL);
	if (!inst->tag || !inst->mq_map || !inst->vqs) {
		kobject_put(&inst->kobj);
		return ERR_PTR(-ENOMEM);
	}
	for (i = 0; i < nvqs; i++) {
		inst->vqs[i].name = kstrdup(vq_names[i], GFP_KERNEL);
		inst->nvqs = i + 1;
		if (!inst->vqs[i].name) {
			kobject_put(&inst->kobj);
			return ERR_PTR(-ENOMEM);
		}
	}

	inst->kobj.kset = vfsrs_kset;
	ret = kobject_add(&inst->kobj, NULL, "%u", vdev->index);
	if (ret < 0)
		goto err_put;
	inst->mqs_kobj = kobject_create_and_add("mqs", &inst->kobj);
	if (!inst->mqs_kobj) {
		ret = -ENOMEM;
		goto err_del;
	}
	ret = sysfs_create_link(&inst->kobj, &vdev->dev.kobj, "device");
	if (ret < 0)
		goto err_mqs;
	ret = vfsrs_add_queues(inst);
	if (ret)
		goto err_link;
	kobject_uevent(&inst->kobj, KOBJ_ADD);
	return inst;

err_link:
	sysfs_remove_link(&inst->kobj, "device");
err_mqs:
	kobject_put(inst->mqs_kobj);
err_del:
	kobject_del(&inst->kobj);
err_put:
	kobject_put(&inst->kobj);
	return ERR_PTR(ret);
}

void vfsrs_instance_del(struct vfsrs_instance *inst)
{
	vfsrs_del_queues(inst);
	sysfs_remove_link(&inst->kobj, "device");
	kobject_put(inst->mqs_kobj);
	kobject_del(&inst->kobj);
	kobject_put(&inst->kobj);
}

/*
 * dax/: the counters of the mounted superblock's cache window, present
 * while a DAX-capable mount of the device exists. Each file shows one
 * counter, read from the Rust side (vfsrs_dax_counter(), dax.rs) through
 * the context the mount registered; sysfs drains readers before
 * vfsrs_dax_del() returns, so the context outlives every read.
 */
struct vfsrs_dax_sysfs {
	struct kobject kobj;
	const void *ctx;
};

static const char *const vfsrs_dax_names[VFSRS_DAX_NR_COUNTERS] = {
	"ranges_total", "ranges_free", "ranges_busy", "ranges_retired",
	"setupmapping", "setupmapping_failed", "removemapping",
	"removemapping_failed", "reclaim_inline", "reclaim_worker",
	"fallbacks", "fault_sigbus", "waits", "faults", "faults_pmd",
};

static struct kobj_attribute vfsrs_dax_attrs[VFSRS_DAX_NR_COUNTERS];
static struct attribute *vfsrs_dax_attr_ptrs[VFSRS_DAX_NR_COUNTERS + 1];

static ssize_t vfsrs_dax_show(struct kobject *kobj, struct kobj_attribute *attr,
			      char *buf)
{
	const struct vfsrs_dax_sysfs *d = container_of(kobj, struct vfsrs_dax_sysfs, kobj);
	unsigned int idx = attr - vfsrs_dax_attrs;

	if (idx >= VFSRS_DAX_NR_COUNTERS)
		return -EINVAL;
	return sysfs_emit(buf, "%llu\n", vfsrs_dax_counter(d->ctx, idx));
}

static const struct attribute_group vfsrs_dax_group = {
	.attrs = vfsrs_dax_attr_ptrs,
};

static const struct attribute_group *vfsrs_dax_groups[] = {
	&vfsrs_dax_group,
	NULL,
};

static void vfsrs_dax_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct vfsrs_dax_sysfs, kobj));
}

static const struct kobj_type vfsrs_dax_ktype = {
	.release = vfsrs_dax_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = vfsrs_dax_groups,
};

static void vfsrs_dax_attrs_init(void)
{
	unsigned int i;

	for (i = 0; i < VFSRS_DAX_NR_COUNTERS; i++) {
		sysfs_attr_init(&vfsrs_dax_attrs[i].attr);
		vfsrs_dax_attrs[i].attr.name = vfsrs_dax_names[i];
		vfsrs_dax_attrs[i].attr.mode = 0444;
		vfsrs_dax_attrs[i].show = vfsrs_dax_show;
		vfsrs_dax_attr_ptrs[i] = &vfsrs_dax_attrs[i].attr;
	}
}

struct kobject *vfsrs_dax_add(unsigned int index, const void *ctx)
{
	struct vfsrs_dax_sysfs *d;
	struct kobject *parent;
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "%u", index);
	parent = kset_find_obj(vfsrs_kset, name);
	if (!parent)
		return ERR_PTR(-ENOENT);
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	if (!d) {
		kobject_put(parent);
		return ERR_PTR(-ENOMEM);
	}
	d->ctx = ctx;
	ret = kobject_init_and_add(&d->kobj, &vfsrs_dax_ktype, parent, "dax");
	/* kobject_add took its own reference on the parent. */
	kobject_put(parent);
	if (ret) {
		kobject_put(&d->kobj);
		return ERR_PTR(ret);
	}
	return &d->kobj;
}

void vfsrs_dax_del(struct kobject *kobj)
{
	kobject_del(kobj);
	kobject_put(kobj);
}
