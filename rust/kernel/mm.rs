// SPDX-License-Identifier: GPL-2.0

//! Memory mappings: page faults (`struct vm_fault`) and the operations a
//! file system gives its mappings (`struct vm_operations_struct`).
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/mm_types.h`](srctree/include/linux/mm_types.h)

use crate::{bindings, fs::file::File, prelude::*, types::Opaque};
use core::marker::PhantomData;

/// A fault handler's result (`vm_fault_t`: `VM_FAULT_*` bits).
pub type VmFaultT = u32;

/// `VM_FAULT_*` results.
pub mod fault {
    use crate::bindings;
    /// `VM_FAULT_OOM`.
    pub const OOM: u32 = bindings::vm_fault_reason_VM_FAULT_OOM;
    /// `VM_FAULT_SIGBUS`.
    pub const SIGBUS: u32 = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    /// `VM_FAULT_NOPAGE`: the handler installed the entry itself.
    pub const NOPAGE: u32 = bindings::vm_fault_reason_VM_FAULT_NOPAGE;
    /// `VM_FAULT_FALLBACK`: retry with a smaller order.
    pub const FALLBACK: u32 = bindings::vm_fault_reason_VM_FAULT_FALLBACK;
    /// `VM_FAULT_NEEDDSYNC`: a synchronous fault must sync metadata.
    pub const NEEDDSYNC: u32 = bindings::vm_fault_reason_VM_FAULT_NEEDDSYNC;
    /// `VM_FAULT_ERROR`: any of the error bits.
    pub const ERROR: u32 = bindings::vm_fault_reason_VM_FAULT_OOM
        | bindings::vm_fault_reason_VM_FAULT_SIGBUS
        | bindings::vm_fault_reason_VM_FAULT_SIGSEGV
        | bindings::vm_fault_reason_VM_FAULT_HWPOISON
        | bindings::vm_fault_reason_VM_FAULT_HWPOISON_LARGE
        | bindings::vm_fault_reason_VM_FAULT_FALLBACK;
}

/// A page fault in a file mapping (`struct vm_fault`), given to the
/// handlers of [`VmOperations`].
#[repr(transparent)]
pub struct VmFault(Opaque<bindings::vm_fault>);

impl VmFault {
    /// The raw `struct vm_fault *`.
    pub fn as_raw(&self) -> *mut bindings::vm_fault {
        self.0.get()
    }

    /// Whether the access is a write (`FAULT_FLAG_WRITE`).
    pub fn is_write(&self) -> bool {
        // SAFETY: The fault is valid while its handler runs.
        unsafe { (*self.0.get()).flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0 }
    }

    /// The file the faulting mapping maps.
    pub fn file(&self) -> &File {
        // SAFETY: Handlers of `VmOperations` are only installed on file
        // mappings, whose `vm_file` is held by the mapping, which the
        // faulting task holds (`mmap_lock` or the VMA lock) for the call.
        unsafe { File::from_raw((*(*self.0.get()).__bindgen_anon_1.vma).vm_file) }
    }

    /// The page offset in the file of the faulting address (`pgoff`).
    pub fn pgoff(&self) -> u64 {
        // SAFETY: The fault is valid while its handler runs.
        unsafe { (*self.0.get()).__bindgen_anon_1.pgoff as u64 }
    }
}

/// The operations of a file system's mappings (`vm_operations_struct`).
/// Each returns `VM_FAULT_*` bits ([`fault`]).
#[vtable]
pub trait VmOperations {
    /// A page is missing (`fault`).
    fn fault(_vmf: &VmFault) -> VmFaultT {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// An entry of `PAGE_SIZE << order` bytes is missing (`huge_fault`).
    fn huge_fault(_vmf: &VmFault, _order: u32) -> VmFaultT {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// A read-only page is about to become writable (`page_mkwrite`).
    fn page_mkwrite(_vmf: &VmFault) -> VmFaultT {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }

    /// A read-only pfn entry is about to become writable (`pfn_mkwrite`).
    fn pfn_mkwrite(_vmf: &VmFault) -> VmFaultT {
        crate::build_error(crate::error::VTABLE_DEFAULT_ERROR)
    }
}

/// A `vm_operations_struct` table.
#[derive(Clone, Copy)]
pub struct VmOps(&'static bindings::vm_operations_struct);

impl VmOps {
    /// The table of `U`'s operations.
    pub const fn new<U: VmOperations + ?Sized>() -> Self {
        struct Table<U: ?Sized>(PhantomData<U>);
        impl<U: VmOperations + ?Sized> Table<U> {
            const TABLE: bindings::vm_operations_struct = bindings::vm_operations_struct {
                fault: if U::HAS_FAULT {
                    Some(fault_callback::<U>)
                } else {
                    None
                },
                huge_fault: if U::HAS_HUGE_FAULT {
                    Some(huge_fault_callback::<U>)
                } else {
                    None
                },
                page_mkwrite: if U::HAS_PAGE_MKWRITE {
                    Some(page_mkwrite_callback::<U>)
                } else {
                    None
                },
                pfn_mkwrite: if U::HAS_PFN_MKWRITE {
                    Some(pfn_mkwrite_callback::<U>)
                } else {
                    None
                },
                // SAFETY: All-zeroes is valid for the remaining (optional)
                // callbacks.
                ..unsafe { core::mem::zeroed() }
            };
        }
        Self(&Table::<U>::TABLE)
    }

    /// The raw table.
    pub fn as_raw(&self) -> *const bindings::vm_operations_struct {
        self.0
    }
}

/// # Safety
///
/// Called only by the MM through a `VmOps` table, with a valid fault.
unsafe extern "C" fn fault_callback<U: VmOperations + ?Sized>(
    vmf: *mut bindings::vm_fault,
) -> bindings::vm_fault_t {
    // SAFETY: The fault is valid for the call; `VmFault` is transparent.
    U::fault(unsafe { &*vmf.cast::<VmFault>() })
}

/// # Safety
///
/// As `fault_callback`.
unsafe extern "C" fn huge_fault_callback<U: VmOperations + ?Sized>(
    vmf: *mut bindings::vm_fault,
    order: core::ffi::c_uint,
) -> bindings::vm_fault_t {
    // SAFETY: As in `fault_callback`.
    U::huge_fault(unsafe { &*vmf.cast::<VmFault>() }, order)
}

/// # Safety
///
/// As `fault_callback`.
unsafe extern "C" fn page_mkwrite_callback<U: VmOperations + ?Sized>(
    vmf: *mut bindings::vm_fault,
) -> bindings::vm_fault_t {
    // SAFETY: As in `fault_callback`.
    U::page_mkwrite(unsafe { &*vmf.cast::<VmFault>() })
}

/// # Safety
///
/// As `fault_callback`.
unsafe extern "C" fn pfn_mkwrite_callback<U: VmOperations + ?Sized>(
    vmf: *mut bindings::vm_fault,
) -> bindings::vm_fault_t {
    // SAFETY: As in `fault_callback`.
    U::pfn_mkwrite(unsafe { &*vmf.cast::<VmFault>() })
}

/// Virtual memory areas (`struct vm_area_struct`), named and shaped as
/// upstream's `kernel::mm::virt` (6.16): [`VmaRef`] for a mapping one may
/// look at, [`VmaNew`] for one being set up by a file's `mmap`.
pub mod virt {
    use crate::{bindings, types::Opaque};
    use core::ops::Deref;

    /// The flags of a mapping (`vm_flags_t`).
    #[allow(non_camel_case_types)]
    pub type vm_flags_t = usize;

    /// `VM_*` flags of a mapping.
    pub mod flags {
        use super::vm_flags_t;
        use crate::bindings;
        /// `VM_READ`.
        pub const READ: vm_flags_t = bindings::VM_READ as vm_flags_t;
        /// `VM_WRITE`.
        pub const WRITE: vm_flags_t = bindings::VM_WRITE as vm_flags_t;
        /// `VM_SHARED`: stores reach the file.
        pub const SHARED: vm_flags_t = bindings::VM_SHARED as vm_flags_t;
        /// `VM_MAYWRITE`: may become writable (`mprotect`).
        pub const MAYWRITE: vm_flags_t = bindings::VM_MAYWRITE as vm_flags_t;
        /// `VM_MAYSHARE`: a shared mapping (even a read-only one).
        pub const MAYSHARE: vm_flags_t = bindings::VM_MAYSHARE as vm_flags_t;
        /// `VM_MIXEDMAP`: page frames with and without `struct page`.
        pub const MIXEDMAP: vm_flags_t = bindings::VM_MIXEDMAP as vm_flags_t;
        /// `VM_HUGEPAGE`: huge entries are wanted (`MADV_HUGEPAGE`).
        pub const HUGEPAGE: vm_flags_t = bindings::VM_HUGEPAGE as vm_flags_t;
    }

    /// A mapping whose fields may be read.
    ///
    /// # Invariants
    ///
    /// The mapping is valid and its flags and bounds do not change while a
    /// `&VmaRef` exists (its `mmap_lock` is held, for read at least).
    #[repr(transparent)]
    pub struct VmaRef {
        vma: Opaque<bindings::vm_area_struct>,
    }

    impl VmaRef {
        /// Borrows `vma` for `'a`.
        ///
        /// # Safety
        ///
        /// `vma` is a valid mapping whose `mmap_lock` is held for `'a`.
        pub unsafe fn from_raw<'a>(vma: *const bindings::vm_area_struct) -> &'a Self {
            // SAFETY: Transparent wrapper; validity from the caller.
            unsafe { &*vma.cast() }
        }

        /// The raw `struct vm_area_struct *`.
        pub fn as_ptr(&self) -> *mut bindings::vm_area_struct {
            self.vma.get()
        }

        /// The mapping's flags ([`flags`]).
        pub fn flags(&self) -> vm_flags_t {
            // SAFETY: Valid and stable under the lock (type invariant).
            unsafe { bindings::vfs_vma_flags(self.as_ptr()) as vm_flags_t }
        }

        /// The first address of the mapping.
        pub fn start(&self) -> usize {
            // SAFETY: As `flags`.
            unsafe { bindings::vfs_vma_start(self.as_ptr()) as usize }
        }

        /// The address just past the mapping.
        pub fn end(&self) -> usize {
            // SAFETY: As `flags`.
            unsafe { bindings::vfs_vma_end(self.as_ptr()) as usize }
        }
    }

    /// A mapping being set up by a file's `mmap` (not yet visible to other
    /// threads: its flags may still change).
    ///
    /// # Invariants
    ///
    /// As [`VmaRef`], and the mapping is being set up by `f_op->mmap`
    /// with `mmap_lock` held for writing.
    #[repr(transparent)]
    pub struct VmaNew {
        vma: VmaRef,
    }

    impl VmaNew {
        /// Borrows `vma` for `'a`.
        ///
        /// # Safety
        ///
        /// `vma` is a mapping being set up by `f_op->mmap`, with its
        /// `mmap_lock` held for writing, for `'a`.
        pub unsafe fn from_raw<'a>(vma: *mut bindings::vm_area_struct) -> &'a Self {
            // SAFETY: Transparent wrapper; validity from the caller.
            unsafe { &*vma.cast() }
        }

        /// Whether stores through the mapping reach the file and it may
        /// become writable (`VM_SHARED` and `VM_MAYWRITE`): the file system
        /// will see dirty pages of it. Not in upstream's `VmaNew`: a
        /// convenience of this tree over [`VmaRef::flags`].
        pub fn shared_writable(&self) -> bool {
            let f = self.flags();
            f & flags::SHARED != 0 && f & flags::MAYWRITE != 0
        }
    }

    impl Deref for VmaNew {
        type Target = VmaRef;

        fn deref(&self) -> &VmaRef {
            &self.vma
        }
    }
}
