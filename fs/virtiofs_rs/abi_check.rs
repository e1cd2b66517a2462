// SPDX-License-Identifier: GPL-2.0-only

//! Build-time checks that the wire structs of `proto::fuse::abi` (written
//! by hand, so that the codec also builds on the host) have the size of
//! the kernel's own `include/uapi/linux/fuse.h` structs.

use crate::proto::fuse::abi::*;
use kernel::bindings;

/// `const` assertions, one per mirrored struct: a mismatch fails the build.
macro_rules! same_size {
    ($($ours:ident => $theirs:ident,)*) => {
        $(
            const _: () = assert!(
                <$ours as Wire>::SIZE == core::mem::size_of::<bindings::$theirs>(),
                concat!(stringify!($ours), " differs from struct ", stringify!($theirs)),
            );
        )*
    };
}

same_size! {
    InHeader => fuse_in_header,
    OutHeader => fuse_out_header,
    InitIn => fuse_init_in,
    InitOut => fuse_init_out,
    Attr => fuse_attr,
    EntryOut => fuse_entry_out,
    AttrOut => fuse_attr_out,
    GetattrIn => fuse_getattr_in,
    Kstatfs => fuse_kstatfs,
    StatfsOut => fuse_statfs_out,
    OpenIn => fuse_open_in,
    OpenOut => fuse_open_out,
    ReleaseIn => fuse_release_in,
    FlushIn => fuse_flush_in,
    FileLockWire => fuse_file_lock,
    LkIn => fuse_lk_in,
    LkOut => fuse_lk_out,
    ReadIn => fuse_read_in,
    WriteIn => fuse_write_in,
    WriteOut => fuse_write_out,
    ForgetIn => fuse_forget_in,
    ForgetOne => fuse_forget_one,
    BatchForgetIn => fuse_batch_forget_in,
    SetupMappingIn => fuse_setupmapping_in,
    RemoveMappingIn => fuse_removemapping_in,
    RemoveMappingOne => fuse_removemapping_one,
    MknodIn => fuse_mknod_in,
    MkdirIn => fuse_mkdir_in,
    CreateIn => fuse_create_in,
    RenameIn => fuse_rename_in,
    Rename2In => fuse_rename2_in,
    LinkIn => fuse_link_in,
    SetattrIn => fuse_setattr_in,
    FsyncIn => fuse_fsync_in,
    InterruptIn => fuse_interrupt_in,
    AccessIn => fuse_access_in,
    GetxattrIn => fuse_getxattr_in,
    GetxattrOut => fuse_getxattr_out,
    SetxattrIn => fuse_setxattr_in,
    SyncfsIn => fuse_syncfs_in,
    CopyFileRangeIn => fuse_copy_file_range_in,
    DirentHeader => fuse_dirent,
}
