// SPDX-License-Identifier: GPL-2.0

#include <linux/device.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/smp.h>

void rust_helper_virtio_cread_bytes(struct virtio_device *vdev,
				    unsigned int offset, void *buf, size_t len)
{
	virtio_cread_bytes(vdev, offset, buf, len);
}

int rust_helper_virtio_find_vqs(struct virtio_device *vdev, unsigned int nvqs,
				struct virtqueue *vqs[],
				struct virtqueue_info vqs_info[],
				struct irq_affinity *desc)
{
	return virtio_find_vqs(vdev, nvqs, vqs, vqs_info, desc);
}

void rust_helper_virtio_del_vqs(struct virtio_device *vdev)
{
	vdev->config->del_vqs(vdev);
}

void rust_helper_virtio_device_ready(struct virtio_device *vdev)
{
	virtio_device_ready(vdev);
}

bool rust_helper_virtio_get_shm_region(struct virtio_device *vdev,
				       struct virtio_shm_region *region, u8 id)
{
	return virtio_get_shm_region(vdev, region, id);
}

const char *rust_helper_dev_name(const struct device *dev)
{
	return dev_name(dev);
}

void rust_helper_sg_set_buf(struct scatterlist *sg, const void *buf,
			    unsigned int buflen)
{
	sg_set_buf(sg, buf, buflen);
}

void rust_helper_sg_set_page(struct scatterlist *sg, struct page *page,
			     unsigned int len, unsigned int offset)
{
	sg_set_page(sg, page, len, offset);
}

void rust_helper_sg_mark_end(struct scatterlist *sg)
{
	sg_mark_end(sg);
}

void rust_helper_rcu_read_lock(void)
{
	rcu_read_lock();
}

void rust_helper_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

unsigned int rust_helper_raw_smp_processor_id(void)
{
	return raw_smp_processor_id();
}
