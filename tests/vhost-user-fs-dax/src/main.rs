// SPDX-License-Identifier: GPL-2.0-only
//! vhost-user-fs-dax: the virtiofs-rs DAX test host.
//!
//! A vhost-user virtio-fs device (virtio id 26) for QEMU 11.1.3's
//! `vhost-user-test-device(-pci)`: FUSE over the virtqueues with a passthrough filesystem,
//! a cache window announced as shared-memory region 0 (GET_SHMEM_CONFIG), and
//! FUSE_SETUPMAPPING / FUSE_REMOVEMAPPING served with SHMEM_MAP / SHMEM_UNMAP.
//! See README.md for the protocol caveats and how each is answered.

mod account;
mod backend;
mod dax;
mod inject;
mod locks;
#[cfg(test)]
mod testdir;
mod window;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fuse_backend_rs::passthrough::{CachePolicy, Config, PassthroughFs};
use log::{error, info};
use vhost_user_backend::VhostUserDaemon;

use crate::backend::FsBackend;
use crate::inject::{Action, Injector};
use crate::window::PAGE_SIZE;

/// Largest window accepted (the PCI BAR must hold it; 64 GiB is far beyond any test).
const MAX_CACHE: u64 = 64 << 30;

/// Parses a size like `64M`, `1G`, `2097152`, `512K` (binary units).
fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                _ => return Err(format!("unknown size suffix `{c}` (K, M, G)")),
            };
            (&s[..i], shift)
        }
        _ => (s, 0),
    };
    let n: u64 = num.parse().map_err(|_| format!("bad size `{s}`"))?;
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or_else(|| format!("size `{s}` overflows"))?;
    if bytes == 0 || bytes > MAX_CACHE {
        return Err(format!("cache size must be 1 byte..64G, got `{s}`"));
    }
    // The guest divides the window into 2 MiB ranges and QEMU's BAR needs a power of two;
    // require at least page alignment here and warn about the rest in main().
    if bytes % PAGE_SIZE != 0 {
        return Err(format!("cache size `{s}` is not a multiple of 4 KiB"));
    }
    Ok(bytes)
}

fn parse_tag(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 36 {
        return Err("tag must be 1..=36 bytes".into());
    }
    if s.bytes().any(|b| b == 0) {
        return Err("tag must not contain NUL".into());
    }
    Ok(s.to_string())
}

/// Command line.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "vhost-user virtio-fs daemon with a DAX cache window (test host)"
)]
struct Args {
    /// vhost-user UNIX socket to listen on (QEMU connects to it).
    #[arg(long)]
    socket: PathBuf,
    /// Directory exported to the guest.
    #[arg(long)]
    shared_dir: PathBuf,
    /// Size of the DAX cache window (shared-memory region 0), e.g. 64M, 1G.
    #[arg(long, value_parser = parse_size)]
    cache_size: u64,
    /// Mount tag the guest uses (at most 36 bytes).
    #[arg(long, default_value = "myfs", value_parser = parse_tag)]
    tag: String,
    /// Number of request queues (QEMU's num_vqs must be this plus one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=62))]
    num_request_queues: u32,
    /// Per-file DAX (`-o dax=inode` guests): files of at least this size, e.g. 4M, carry
    /// FUSE_ATTR_DAX in their entry replies (0: every file). Without it no file does.
    #[arg(long, value_parser = parse_size)]
    dax_file_size: Option<u64>,
    /// Fault injection rule, repeatable; see README.md (e.g. setupmapping:nth=3:errno=EIO).
    #[arg(long = "inject", value_parser = |s: &str| s.parse::<Action>())]
    inject: Vec<Action>,
    /// FUSE remote locks: grant FUSE_POSIX_LOCKS and FUSE_FLOCK_LOCKS at INIT and serve
    /// GETLK/SETLK/SETLKW with host kernel locks (OFD locks and flock(2)); see README.md.
    #[arg(long)]
    locks: bool,
    /// Consume every FUSE_INTERRUPT and do nothing with it (a server may): a
    /// waiting SETLKW then waits on until the lock is free.
    #[arg(long, requires = "locks")]
    ignore_interrupts: bool,
    /// Serve FUSE_TMPFILE as the CREATE of a hidden name then its UNLINK (fuse-backend-rs
    /// has none); the file cannot be linked again. See README.md.
    #[arg(long)]
    tmpfile: bool,
}

/// SIGTERM/SIGINT: leave with status 0. The daemon keeps no state that needs flushing (file
/// data goes to the host files synchronously; mappings belong to QEMU), so exiting is clean.
fn install_signal_thread(socket: PathBuf) -> std::io::Result<()> {
    // SAFETY: plain sigset manipulation on a local, then blocking the signals in this (main)
    // thread before any other thread exists, so every later thread inherits the mask and only
    // the sigwait thread below receives them.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        set
    };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: `set` is a valid initialised sigset, `sig` a valid out pointer.
            unsafe { libc::sigwait(&set, &mut sig) };
            info!("signal {sig}: shutting down");
            let _ = std::fs::remove_file(&socket);
            std::process::exit(0);
        })?;
    Ok(())
}

fn run(args: Args) -> Result<(), String> {
    let shared = args
        .shared_dir
        .canonicalize()
        .map_err(|e| format!("--shared-dir {}: {e}", args.shared_dir.display()))?;
    if !shared.is_dir() {
        return Err(format!(
            "--shared-dir {} is not a directory",
            shared.display()
        ));
    }
    if !args.cache_size.is_power_of_two() {
        log::warn!(
            "cache size {:#x} is not a power of two; QEMU may refuse the BAR",
            args.cache_size
        );
    }
    if args.cache_size < 2 << 20 {
        log::warn!("cache size below 2 MiB: the C guest gets zero DAX ranges and hangs on DAX I/O");
    }

    let cfg = Config {
        root_dir: shared.to_string_lossy().into_owned(),
        do_import: true,
        xattr: true,
        // FUSE_HANDLE_KILLPRIV_V2, as virtiofsd --killpriv-v2: writes, truncations and
        // chowns that ask for it remove set-id bits here, so the guest may mark its
        // superblock SB_NOSEC and not ask for `security.capability` before every write.
        killpriv_v2: true,
        cache_policy: CachePolicy::Auto,
        // Without --dax-file-size no file carries FUSE_ATTR_DAX: `-o dax=inode` (the
        // default) means no DAX, as with virtiofsd. With it, fuse-backend-rs marks the files
        // at least that large in its entry replies (once the guest offers
        // FUSE_HAS_INODE_DAX).
        dax_file_size: args.dax_file_size,
        entry_timeout: Duration::from_secs(1),
        attr_timeout: Duration::from_secs(1),
        // O_DIRECT stays out of the host's opens, as virtiofsd's default: the
        // data goes through this host's own buffers, whose alignment is not
        // the guest's, so an O_DIRECT host fd would refuse aligned guest I/O.
        allow_direct_io: false,
        ..Default::default()
    };
    let fs = PassthroughFs::<()>::new(cfg).map_err(|e| format!("passthrough: {e}"))?;
    fs.import()
        .map_err(|e| format!("import {}: {e}", shared.display()))?;

    let backend = std::sync::Arc::new(
        FsBackend::new(
            fs,
            &args.tag,
            args.num_request_queues,
            args.cache_size,
            Injector::new(args.inject.clone()),
            args.locks,
        )
        .with_interrupts_ignored(args.ignore_interrupts)
        .with_tmpfile(args.tmpfile),
    );
    let mem = backend.memory();
    let mut daemon = VhostUserDaemon::new("vhost-user-fs-dax".into(), backend, mem)
        .map_err(|e| format!("daemon: {e}"))?;

    info!(
        "serving {} as tag `{}` on {} ({} request queue(s), cache {:#x}, {} injection rule(s), \
         remote locks {}{}{})",
        shared.display(),
        args.tag,
        args.socket.display(),
        args.num_request_queues,
        args.cache_size,
        args.inject.len(),
        if args.locks { "on" } else { "off" },
        if args.ignore_interrupts {
            ", interrupts ignored"
        } else {
            ""
        },
        if args.tmpfile { ", tmpfile" } else { "" }
    );
    let res = daemon.serve(&args.socket);
    let _ = std::fs::remove_file(&args.socket);
    match res {
        Ok(()) => {
            info!("front-end disconnected, exiting");
            Ok(())
        }
        Err(e) => Err(format!("vhost-user session ended with an error: {e}")),
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
    let args = Args::parse();
    if let Err(e) = install_signal_thread(args.socket.clone()) {
        error!("signal thread: {e}");
        return ExitCode::FAILURE;
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("2097152"), Ok(2 << 20));
        for bad in [
            "",
            "0",
            "M",
            "12Q",
            "100",
            "65G",
            "99999999999999999999G",
            "-1M",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert!(parse_tag("myfs").is_ok());
        assert!(parse_tag("").is_err());
        assert!(parse_tag(&"x".repeat(37)).is_err());
        assert!(parse_tag(&"x".repeat(36)).is_ok());
    }

    #[test]
    fn cli() {
        let a = Args::try_parse_from([
            "x",
            "--socket",
            "/tmp/s",
            "--shared-dir",
            "/tmp",
            "--cache-size",
            "64M",
            "--inject",
            "setupmapping:nth=1:errno=EIO",
            "--inject",
            "delay:opcode=READ:ms=5",
        ])
        .unwrap();
        assert_eq!(a.inject.len(), 2);
        assert_eq!(a.num_request_queues, 1);
        assert!(Args::try_parse_from([
            "x",
            "--socket",
            "/s",
            "--shared-dir",
            "/",
            "--cache-size",
            "1M",
            "--inject",
            "bogus"
        ])
        .is_err());
    }
}
