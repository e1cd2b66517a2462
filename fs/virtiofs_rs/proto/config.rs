// SPDX-License-Identifier: GPL-2.0-only

//! The virtio-fs device configuration space (`struct virtio_fs_config`).
//!
//! The device is untrusted: the tag and queue count it advertises are
//! checked here before the driver uses them. The rules match the C driver
//! (fs/fuse/virtio_fs.c, `virtio_fs_read_tag()` and `virtio_fs_setup_vqs()`).

/// Size of the `tag` field of `struct virtio_fs_config`.
pub const TAG_SIZE: usize = 36;

/// Offset of the little-endian `num_request_queues` field.
pub const NUM_REQUEST_QUEUES_OFFSET: usize = TAG_SIZE;

/// Why a configuration space was refused. Every variant maps to `EINVAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// The tag is empty (its first byte is NUL).
    EmptyTag,
    /// The tag contains a newline, which breaks mount(8), sysfs and uevents.
    NewlineInTag,
    /// The device offers no request queue.
    NoRequestQueues,
}

/// Returns the tag held in the raw `tag` field: the bytes before the first
/// NUL, or all 36 bytes when there is none.
pub fn parse_tag(raw: &[u8; TAG_SIZE]) -> Result<&[u8], ConfigError> {
    let len = raw.iter().position(|&b| b == 0).unwrap_or(TAG_SIZE);
    let tag = &raw[..len];
    if tag.is_empty() {
        return Err(ConfigError::EmptyTag);
    }
    if tag.contains(&b'\n') {
        return Err(ConfigError::NewlineInTag);
    }
    Ok(tag)
}

/// Returns how many request queues to use: the device's count, clamped to
/// the number of possible CPUs (`nr_cpu_ids`), since more would sit idle.
pub fn request_queue_count(advertised: u32, nr_cpu_ids: u32) -> Result<u32, ConfigError> {
    if advertised == 0 {
        return Err(ConfigError::NoRequestQueues);
    }
    Ok(advertised.min(nr_cpu_ids.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &[u8]) -> [u8; TAG_SIZE] {
        let mut r = [0u8; TAG_SIZE];
        r[..s.len()].copy_from_slice(s);
        r
    }

    #[test]
    fn tag_nul_terminated() {
        assert_eq!(parse_tag(&raw(b"myfs")), Ok(&b"myfs"[..]));
    }

    #[test]
    fn tag_fills_field_without_nul() {
        let r = [b'a'; TAG_SIZE];
        assert_eq!(parse_tag(&r).map(|t| t.len()), Ok(TAG_SIZE));
    }

    #[test]
    fn tag_stops_at_first_nul() {
        assert_eq!(parse_tag(&raw(b"ab\0cd")), Ok(&b"ab"[..]));
    }

    #[test]
    fn tag_empty_refused() {
        assert_eq!(parse_tag(&raw(b"")), Err(ConfigError::EmptyTag));
    }

    #[test]
    fn tag_newline_refused() {
        assert_eq!(parse_tag(&raw(b"a\nb")), Err(ConfigError::NewlineInTag));
    }

    #[test]
    fn queues_clamped_to_cpus() {
        assert_eq!(request_queue_count(0, 4), Err(ConfigError::NoRequestQueues));
        assert_eq!(request_queue_count(1, 4), Ok(1));
        assert_eq!(request_queue_count(16, 4), Ok(4));
        assert_eq!(request_queue_count(u32::MAX, 0), Ok(1));
    }
}
