// SPDX-License-Identifier: GPL-2.0-only
//! Unit-test helper: a passthrough file system over a fresh directory.

use std::path::PathBuf;

use fuse_backend_rs::passthrough::{Config, PassthroughFs};

/// A fresh directory named after `tag` and this process, holding file `f`
/// ("data"), and a passthrough file system over it, imported.
pub(crate) fn fresh(tag: &str) -> (PassthroughFs<()>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("vufs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), b"data").unwrap();
    let fs = PassthroughFs::<()>::new(Config {
        root_dir: dir.to_string_lossy().into_owned(),
        do_import: true,
        ..Default::default()
    })
    .unwrap();
    fs.import().unwrap();
    (fs, dir)
}
