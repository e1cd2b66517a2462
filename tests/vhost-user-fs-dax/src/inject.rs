// SPDX-License-Identifier: GPL-2.0-only
//! Fault injection, off unless `--inject SPEC` is given (repeatable).
//!
//! SPEC grammar (fields separated by `:`; `nth` counts matching requests from 1; without
//! `nth` a fail/delay/corrupt rule applies to every matching request):
//!
//! ```text
//! setupmapping:nth=N:errno=E          fail the Nth FUSE_SETUPMAPPING with errno E
//! removemapping:nth=N:errno=E         fail the Nth FUSE_REMOVEMAPPING with errno E
//! fail:opcode=OP:errno=E[:nth=N][:name=NAME]
//!                                     do nothing for OP and answer it with -E (any OP
//!                                     but INIT, DESTROY, FORGET, BATCH_FORGET, INTERRUPT)
//! delay:opcode=OP:ms=M[:nth=N][:name=NAME]
//!                                     hold the reply of OP for M milliseconds
//! corrupt:opcode=OP:field=len|unique[:nth=N][:name=NAME]
//!                                     corrupt the reply header of OP (len += 4096,
//!                                     or unique ^= 1 << 63)
//! ```
//! E is a name (EIO, ENOSPC, ...) or a number 1..4095; OP is a FUSE opcode name (READ,
//! GETATTR, SETUPMAPPING, ...) or number. `name=NAME` limits a rule to requests about NAME,
//! or about a name starting with NAME minus its trailing `*`; `nth` then counts only those
//! requests. A request is about its name argument (LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK,
//! LINK, UNLINK, RMDIR, and the old name of RENAME and RENAME2; see [`request_name`]), or,
//! for every other opcode, about the name under which this session's host last handed out
//! the node in the request header (an entry reply: LOOKUP, CREATE, MKNOD, MKDIR, SYMLINK,
//! LINK, READDIRPLUS; see [`NodeNames`]). The root has no name.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use fuse_backend_rs::abi::fuse_abi::Opcode;

/// FUSE opcodes by name (include/uapi/linux/fuse.h, protocol 7.41).
const OPCODES: &[(&str, u32)] = &[
    ("LOOKUP", 1),
    ("FORGET", 2),
    ("GETATTR", 3),
    ("SETATTR", 4),
    ("READLINK", 5),
    ("SYMLINK", 6),
    ("MKNOD", 8),
    ("MKDIR", 9),
    ("UNLINK", 10),
    ("RMDIR", 11),
    ("RENAME", 12),
    ("LINK", 13),
    ("OPEN", 14),
    ("READ", 15),
    ("WRITE", 16),
    ("STATFS", 17),
    ("RELEASE", 18),
    ("FSYNC", 20),
    ("SETXATTR", 21),
    ("GETXATTR", 22),
    ("LISTXATTR", 23),
    ("REMOVEXATTR", 24),
    ("FLUSH", 25),
    ("INIT", 26),
    ("OPENDIR", 27),
    ("READDIR", 28),
    ("RELEASEDIR", 29),
    ("FSYNCDIR", 30),
    ("GETLK", 31),
    ("SETLK", 32),
    ("SETLKW", 33),
    ("ACCESS", 34),
    ("CREATE", 35),
    ("INTERRUPT", 36),
    ("BMAP", 37),
    ("DESTROY", 38),
    ("IOCTL", 39),
    ("POLL", 40),
    ("NOTIFY_REPLY", 41),
    ("BATCH_FORGET", 42),
    ("FALLOCATE", 43),
    ("READDIRPLUS", 44),
    ("RENAME2", 45),
    ("LSEEK", 46),
    ("COPY_FILE_RANGE", 47),
    ("SETUPMAPPING", 48),
    ("REMOVEMAPPING", 49),
    ("SYNCFS", 50),
    ("TMPFILE", 51),
    ("STATX", 52),
];

/// FUSE_SETUPMAPPING.
pub const OP_SETUPMAPPING: u32 = 48;
/// FUSE_REMOVEMAPPING.
pub const OP_REMOVEMAPPING: u32 = 49;

/// Opcodes a `fail` rule refuses to touch: the guest waits for no reply to them (FORGET,
/// BATCH_FORGET, INTERRUPT), or they start and end the session itself (INIT, DESTROY),
/// whose failure is not a request's failure but a dead mount.
const NEVER_FAIL: &[Opcode] = &[
    Opcode::Init,
    Opcode::Destroy,
    Opcode::Forget,
    Opcode::BatchForget,
    Opcode::Interrupt,
];

const ERRNOS: &[(&str, i32)] = &[
    ("EPERM", libc::EPERM),
    ("ENOENT", libc::ENOENT),
    ("EIO", libc::EIO),
    ("ENXIO", libc::ENXIO),
    ("EBADF", libc::EBADF),
    ("EAGAIN", libc::EAGAIN),
    ("ENOMEM", libc::ENOMEM),
    ("EACCES", libc::EACCES),
    ("EFAULT", libc::EFAULT),
    ("EBUSY", libc::EBUSY),
    ("EEXIST", libc::EEXIST),
    ("EINVAL", libc::EINVAL),
    ("ENOSPC", libc::ENOSPC),
    ("EROFS", libc::EROFS),
    ("ERANGE", libc::ERANGE),
    ("ENOSYS", libc::ENOSYS),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EDQUOT", libc::EDQUOT),
    ("EFBIG", libc::EFBIG),
    ("EMLINK", libc::EMLINK),
    ("ENOTEMPTY", libc::ENOTEMPTY),
    ("EXDEV", libc::EXDEV),
    ("ENODATA", libc::ENODATA),
    ("ENOLCK", libc::ENOLCK),
    ("EDEADLK", libc::EDEADLK),
];

/// An errno's name if the table has it, else its number (for logs and [`Action`]'s
/// `Display`, which must parse back).
fn errno_name(errno: i32) -> String {
    ERRNOS
        .iter()
        .find(|(_, n)| *n == errno)
        .map_or_else(|| errno.to_string(), |(s, _)| (*s).to_string())
}

/// Name of a FUSE opcode, for logs.
pub fn opcode_name(op: u32) -> &'static str {
    OPCODES
        .iter()
        .find(|(_, n)| *n == op)
        .map(|(s, _)| *s)
        .unwrap_or("?")
}

/// Where the name argument of an `opcode` request starts, after the opcode's fixed argument
/// (include/uapi/linux/fuse.h); `None` for opcodes without one.
fn name_offset(opcode: u32) -> Option<usize> {
    match opcode_name(opcode) {
        "LOOKUP" | "UNLINK" | "RMDIR" | "SYMLINK" => Some(0),
        "MKDIR" | "LINK" | "RENAME" => Some(8), // fuse_mkdir_in, fuse_link_in, fuse_rename_in
        "MKNOD" | "CREATE" | "RENAME2" => Some(16), // fuse_mknod_in, fuse_create_in, fuse_rename2_in
        _ => None,
    }
}

/// The name argument of a request (the NUL-terminated entry name; RENAME's and RENAME2's
/// old name), given its opcode and the bytes after `fuse_in_header`; `None` for opcodes
/// without one.
pub fn request_name(opcode: u32, body: &[u8]) -> Option<&[u8]> {
    let off = name_offset(opcode)?;
    let rest = body.get(off..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    Some(&rest[..end])
}

fn parse_opcode(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let up = up.strip_prefix("FUSE_").unwrap_or(&up);
    OPCODES
        .iter()
        .find(|(name, _)| *name == up)
        .map(|(_, n)| *n)
        .ok_or_else(|| format!("unknown FUSE opcode `{s}`"))
}

fn parse_errno(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        return if n > 0 && n < 4096 {
            Ok(n)
        } else {
            Err(format!("errno `{s}` out of range 1..4095"))
        };
    }
    let up = s.to_ascii_uppercase();
    ERRNOS
        .iter()
        .find(|(name, _)| *name == up)
        .map(|(_, n)| *n)
        .ok_or_else(|| format!("unknown errno `{s}`"))
}

fn parse_nth(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("nth must be a positive integer, got `{s}`")),
    }
}

/// Reply-header field a `corrupt` rule damages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `fuse_out_header.len` (+4096: claims more bytes than were written).
    Len,
    /// `fuse_out_header.unique` (top bit flipped: matches no request).
    Unique,
}

/// Which names a rule applies to (`name=`): exactly one, or a prefix (`slow-*`).
///
/// `Display` gives back the form it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    /// The name is exactly this.
    Exact(Vec<u8>),
    /// The name starts with this.
    Prefix(Vec<u8>),
}

impl NameMatch {
    fn parse(s: &str) -> Result<Self, String> {
        let m = match s.strip_suffix('*') {
            Some(p) => NameMatch::Prefix(p.as_bytes().to_vec()),
            None => NameMatch::Exact(s.as_bytes().to_vec()),
        };
        match &m {
            NameMatch::Exact(n) if n.is_empty() => Err("name= needs a name".into()),
            _ if s.contains('/') || s.as_bytes()[..s.len().saturating_sub(1)].contains(&b'*') => {
                Err(format!("name `{s}`: no `/`, and `*` only at the end"))
            }
            _ => Ok(m),
        }
    }

    /// Whether `name` (what the request is about, if it has a name) matches.
    pub fn matches(&self, name: Option<&[u8]>) -> bool {
        match (self, name) {
            (_, None) => false,
            (NameMatch::Exact(want), Some(n)) => want == n,
            (NameMatch::Prefix(p), Some(n)) => n.starts_with(p),
        }
    }
}

impl fmt::Display for NameMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameMatch::Exact(n) => write!(f, "{}", n.escape_ascii()),
            NameMatch::Prefix(p) => write!(f, "{}*", p.escape_ascii()),
        }
    }
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fail the Nth SETUPMAPPING (before any SHMEM_MAP) with `errno`.
    FailSetupmapping { nth: u64, errno: i32 },
    /// Fail the Nth REMOVEMAPPING (before any SHMEM_UNMAP) with `errno`.
    FailRemovemapping { nth: u64, errno: i32 },
    /// Answer `opcode` with `-errno` without serving it (only for names matching `name`,
    /// if given). Never INIT, DESTROY, FORGET, BATCH_FORGET or INTERRUPT ([`NEVER_FAIL`]).
    Fail {
        opcode: u32,
        errno: i32,
        nth: Option<u64>,
        name: Option<NameMatch>,
    },
    /// Delay the reply to `opcode` (only for names matching `name`, if given).
    Delay {
        opcode: u32,
        delay: Duration,
        nth: Option<u64>,
        name: Option<NameMatch>,
    },
    /// Corrupt the reply header of `opcode` (only for names matching `name`, if given).
    Corrupt {
        opcode: u32,
        field: Field,
        nth: Option<u64>,
        name: Option<NameMatch>,
    },
}

impl Action {
    fn opcode(&self) -> u32 {
        match self {
            Action::FailSetupmapping { .. } => OP_SETUPMAPPING,
            Action::FailRemovemapping { .. } => OP_REMOVEMAPPING,
            Action::Fail { opcode, .. }
            | Action::Delay { opcode, .. }
            | Action::Corrupt { opcode, .. } => *opcode,
        }
    }

    fn nth(&self) -> Option<u64> {
        match self {
            Action::FailSetupmapping { nth, .. } | Action::FailRemovemapping { nth, .. } => {
                Some(*nth)
            }
            Action::Fail { nth, .. } | Action::Delay { nth, .. } | Action::Corrupt { nth, .. } => {
                *nth
            }
        }
    }

    fn name(&self) -> Option<&NameMatch> {
        match self {
            Action::Fail { name, .. }
            | Action::Delay { name, .. }
            | Action::Corrupt { name, .. } => name.as_ref(),
            _ => None,
        }
    }
}

/// The rule as a SPEC that parses back to it (errno and opcode by name where they have
/// one), so the host's log names each rule the way a plan wrote it.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = |op: u32| match opcode_name(op) {
            "?" => op.to_string(),
            name => name.to_string(),
        };
        let (nth, name) = match self {
            Action::FailSetupmapping { nth, errno } => {
                return write!(f, "setupmapping:nth={nth}:errno={}", errno_name(*errno));
            }
            Action::FailRemovemapping { nth, errno } => {
                return write!(f, "removemapping:nth={nth}:errno={}", errno_name(*errno));
            }
            Action::Fail {
                opcode,
                errno,
                nth,
                name,
            } => {
                let (op, e) = (op(*opcode), errno_name(*errno));
                write!(f, "fail:opcode={op}:errno={e}")?;
                (nth, name)
            }
            Action::Delay {
                opcode,
                delay,
                nth,
                name,
            } => {
                let (op, ms) = (op(*opcode), delay.as_millis());
                write!(f, "delay:opcode={op}:ms={ms}")?;
                (nth, name)
            }
            Action::Corrupt {
                opcode,
                field,
                nth,
                name,
            } => {
                let field = match field {
                    Field::Len => "len",
                    Field::Unique => "unique",
                };
                write!(f, "corrupt:opcode={}:field={field}", op(*opcode))?;
                (nth, name)
            }
        };
        if let Some(nth) = nth {
            write!(f, ":nth={nth}")?;
        }
        if let Some(name) = name {
            write!(f, ":name={name}")?;
        }
        Ok(())
    }
}

impl FromStr for Action {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let mut parts = spec.split(':');
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut nth, mut errno, mut opcode, mut ms, mut field) = (None, None, None, None, None);
        let mut name = None;
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("`{kv}` is not key=value in `{spec}`"))?;
            let dup = |name: &str| format!("`{name}` given twice in `{spec}`");
            match k {
                "nth" if nth.is_none() => nth = Some(parse_nth(v)?),
                "errno" if errno.is_none() => errno = Some(parse_errno(v)?),
                "opcode" if opcode.is_none() => opcode = Some(parse_opcode(v)?),
                "ms" if ms.is_none() => {
                    ms = Some(
                        v.parse::<u64>()
                            .ok()
                            .filter(|m| *m <= 600_000)
                            .ok_or_else(|| format!("ms must be 0..=600000, got `{v}`"))?,
                    )
                }
                "field" if field.is_none() => {
                    field = Some(match v {
                        "len" => Field::Len,
                        "unique" => Field::Unique,
                        _ => return Err(format!("field must be len or unique, got `{v}`")),
                    })
                }
                "name" if name.is_none() => name = Some(NameMatch::parse(v)?),
                "nth" | "errno" | "opcode" | "ms" | "field" | "name" => return Err(dup(k)),
                _ => return Err(format!("unknown key `{k}` in `{spec}`")),
            }
        }
        let unexpected = |what: &str, present: bool| {
            if present {
                Err(format!("`{what}` does not apply to `{kind}` in `{spec}`"))
            } else {
                Ok(())
            }
        };
        let need = |what: &str| format!("`{kind}` needs `{what}=` in `{spec}`");
        match kind.as_str() {
            "setupmapping" | "removemapping" => {
                unexpected("opcode", opcode.is_some())?;
                unexpected("ms", ms.is_some())?;
                unexpected("field", field.is_some())?;
                unexpected("name", name.is_some())?;
                let nth = nth.ok_or_else(|| need("nth"))?;
                let errno = errno.ok_or_else(|| need("errno"))?;
                Ok(if kind == "setupmapping" {
                    Action::FailSetupmapping { nth, errno }
                } else {
                    Action::FailRemovemapping { nth, errno }
                })
            }
            "fail" => {
                unexpected("ms", ms.is_some())?;
                unexpected("field", field.is_some())?;
                let opcode = opcode.ok_or_else(|| need("opcode"))?;
                if NEVER_FAIL.iter().any(|op| *op as u32 == opcode) {
                    return Err(format!(
                        "`fail` cannot refuse {} in `{spec}`: INIT and DESTROY start and end \
                         the session, FORGET, BATCH_FORGET and INTERRUPT get no reply",
                        opcode_name(opcode)
                    ));
                }
                Ok(Action::Fail {
                    opcode,
                    errno: errno.ok_or_else(|| need("errno"))?,
                    nth,
                    name,
                })
            }
            "delay" => {
                unexpected("errno", errno.is_some())?;
                unexpected("field", field.is_some())?;
                Ok(Action::Delay {
                    opcode: opcode.ok_or_else(|| need("opcode"))?,
                    delay: Duration::from_millis(ms.ok_or_else(|| need("ms"))?),
                    nth,
                    name,
                })
            }
            "corrupt" => {
                unexpected("errno", errno.is_some())?;
                unexpected("ms", ms.is_some())?;
                Ok(Action::Corrupt {
                    opcode: opcode.ok_or_else(|| need("opcode"))?,
                    field: field.ok_or_else(|| need("field"))?,
                    nth,
                    name,
                })
            }
            _ => Err(format!(
                "unknown injection `{kind}` (setupmapping, removemapping, fail, delay, corrupt)"
            )),
        }
    }
}

/// A rule plus how many matching requests it has seen.
#[derive(Debug)]
struct Rule {
    action: Action,
    seen: AtomicU64,
}

/// What to do to one request/reply, decided by [`Injector::on_request`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Reply this errno instead of serving the request.
    pub fail: Option<i32>,
    /// Sleep before sending the reply.
    pub delay: Option<Duration>,
    /// Damage these reply-header fields.
    pub corrupt: Vec<Field>,
}

/// The name under which the host last handed out each node of the session (in an entry
/// reply), so that `name=` rules can pick requests that carry only a node id (GETATTR, READ,
/// FLUSH, ...). A node handed out under two names (LINK) goes by the later one; a RENAME
/// changes nothing until the node is handed out again. FUSE_INIT starts afresh: node ids
/// are per session.
#[derive(Debug, Default)]
pub struct NodeNames(Mutex<HashMap<u64, Vec<u8>>>);

impl NodeNames {
    /// An entry reply handed out `nodeid` as `name` (`.` and `..` are not names).
    pub fn handed_out(&self, nodeid: u64, name: &[u8]) {
        if name != b"." && name != b".." {
            self.0.lock().unwrap().insert(nodeid, name.to_vec());
        }
    }

    /// The name `nodeid` was last handed out under, if any.
    pub fn get(&self, nodeid: u64) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(&nodeid).cloned()
    }

    /// A new session: forgets every node.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// All rules. Empty (the default) means no injection.
#[derive(Debug, Default)]
pub struct Injector {
    rules: Vec<Rule>,
    /// Kept only if a `name=` rule is for an opcode without a name argument.
    nodes: Option<NodeNames>,
}

impl Injector {
    /// Builds the injector from parsed rules.
    pub fn new(actions: Vec<Action>) -> Self {
        let by_node = actions
            .iter()
            .any(|a| a.name().is_some() && name_offset(a.opcode()).is_none());
        Injector {
            rules: actions
                .into_iter()
                .map(|action| Rule {
                    action,
                    seen: AtomicU64::new(0),
                })
                .collect(),
            nodes: by_node.then(NodeNames::default),
        }
    }

    /// An entry reply handed out `nodeid` as `name` (see [`NodeNames`]).
    pub fn handed_out(&self, nodeid: u64, name: &[u8]) {
        if let Some(nodes) = &self.nodes {
            nodes.handed_out(nodeid, name);
        }
    }

    /// A new FUSE session (FUSE_INIT): node ids start afresh.
    pub fn new_session(&self) {
        if let Some(nodes) = &self.nodes {
            nodes.clear();
        }
    }

    /// What `name=` rules match a request against: its name argument ([`request_name`]),
    /// else the name its node (`nodeid`, from the request header) was handed out under.
    /// `body` is the request after `fuse_in_header`.
    pub fn subject(&self, opcode: u32, nodeid: u64, body: &[u8]) -> Option<Vec<u8>> {
        match request_name(opcode, body) {
            Some(name) => Some(name.to_vec()),
            None => self.nodes.as_ref()?.get(nodeid),
        }
    }

    /// Called once per incoming request with its opcode and what it is about (see
    /// [`Injector::subject`]); counts and decides.
    pub fn on_request(&self, opcode: u32, name: Option<&[u8]>) -> Decision {
        let mut d = Decision::default();
        for r in &self.rules {
            if r.action.opcode() != opcode {
                continue;
            }
            if r.action.name().is_some_and(|m| !m.matches(name)) {
                continue;
            }
            let n = r.seen.fetch_add(1, Ordering::Relaxed) + 1;
            if r.action.nth().is_some_and(|nth| nth != n) {
                continue;
            }
            log::warn!("inject: {} hits {} #{n}", r.action, opcode_name(opcode));
            match r.action {
                Action::FailSetupmapping { errno, .. }
                | Action::FailRemovemapping { errno, .. }
                | Action::Fail { errno, .. } => {
                    d.fail.get_or_insert(errno);
                }
                Action::Delay { delay, .. } => {
                    d.delay = Some(d.delay.unwrap_or_default() + delay);
                }
                Action::Corrupt { field, .. } => d.corrupt.push(field),
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Action, String> {
        s.parse()
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            p("setupmapping:nth=3:errno=EIO"),
            Ok(Action::FailSetupmapping {
                nth: 3,
                errno: libc::EIO
            })
        );
        assert_eq!(
            p("removemapping:nth=1:errno=5"),
            Ok(Action::FailRemovemapping { nth: 1, errno: 5 })
        );
        assert_eq!(
            p("delay:opcode=READ:ms=200"),
            Ok(Action::Delay {
                opcode: 15,
                delay: Duration::from_millis(200),
                nth: None,
                name: None,
            })
        );
        assert_eq!(
            p("corrupt:opcode=GETATTR:field=len:nth=1"),
            Ok(Action::Corrupt {
                opcode: 3,
                field: Field::Len,
                nth: Some(1),
                name: None,
            })
        );
        assert_eq!(
            p("corrupt:opcode=fuse_lookup:field=unique"),
            Ok(Action::Corrupt {
                opcode: 1,
                field: Field::Unique,
                nth: None,
                name: None,
            })
        );
        assert_eq!(
            p("delay:opcode=LOOKUP:ms=3000:name=slow-*"),
            Ok(Action::Delay {
                opcode: 1,
                delay: Duration::from_millis(3000),
                nth: None,
                name: Some(NameMatch::Prefix(b"slow-".to_vec())),
            })
        );
        assert_eq!(
            p("corrupt:opcode=CREATE:field=len:name=x"),
            Ok(Action::Corrupt {
                opcode: 35,
                field: Field::Len,
                nth: None,
                name: Some(NameMatch::Exact(b"x".to_vec())),
            })
        );
        assert_eq!(
            p("errno=EIO:nth=1:setupmapping").unwrap_err(),
            "`setupmapping` is not key=value in `errno=EIO:nth=1:setupmapping`"
        );
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "explode:nth=1",
            "setupmapping:errno=EIO",
            "setupmapping:nth=1",
            "setupmapping:nth=0:errno=EIO",
            "setupmapping:nth=1:errno=EWHAT",
            "setupmapping:nth=1:errno=0",
            "setupmapping:nth=1:errno=EIO:ms=3",
            "setupmapping:nth=1:nth=2:errno=EIO",
            "delay:opcode=READ",
            "delay:ms=10",
            "delay:opcode=NOPE:ms=1",
            "delay:opcode=READ:ms=-1",
            "delay:opcode=READ:ms=10:errno=EIO",
            "corrupt:opcode=READ:field=error",
            "corrupt:opcode=READ",
            "corrupt:opcode=READ:field=len:color=red",
            "delay:opcode=LOOKUP:ms=1:name=",
            "delay:opcode=LOOKUP:ms=1:name=a/b",
            "delay:opcode=LOOKUP:ms=1:name=*a",
            "delay:opcode=LOOKUP:ms=1:name=a:name=b",
            "setupmapping:nth=1:errno=EIO:name=a",
            "fail:opcode=READ",
            "fail:errno=EIO",
            "fail:opcode=READ:errno=EIO:ms=5",
            "fail:opcode=READ:errno=EIO:field=len",
            "fail:opcode=READ:errno=0",
            "fail:opcode=READ:errno=4096",
            "fail:opcode=READ:errno=EIO:nth=0",
            "fail:opcode=NOPE:errno=EIO",
            "fail:opcode=LOOKUP:errno=EIO:name=a/b",
        ] {
            assert!(p(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn parses_fail() {
        assert_eq!(
            p("fail:opcode=GETATTR:errno=EIO"),
            Ok(Action::Fail {
                opcode: 3,
                errno: libc::EIO,
                nth: None,
                name: None,
            })
        );
        assert_eq!(
            p("fail:errno=EDQUOT:opcode=fuse_mkdir:name=d:nth=2"),
            Ok(Action::Fail {
                opcode: 9,
                errno: libc::EDQUOT,
                nth: Some(2),
                name: Some(NameMatch::Exact(b"d".to_vec())),
            })
        );
        assert_eq!(
            p("fail:opcode=47:errno=1"),
            Ok(Action::Fail {
                opcode: 47,
                errno: libc::EPERM,
                nth: None,
                name: None,
            })
        );
    }

    #[test]
    fn fail_refuses_what_has_no_request_to_fail() {
        for op in [
            "INIT",
            "destroy",
            "FUSE_FORGET",
            "BATCH_FORGET",
            "INTERRUPT",
            "26",
            "38",
            "2",
            "42",
            "36",
        ] {
            let err = p(&format!("fail:opcode={op}:errno=EIO")).unwrap_err();
            assert!(err.starts_with("`fail` cannot refuse "), "{op}: {err}");
            assert!(err.contains("FORGET, BATCH_FORGET and INTERRUPT"), "{err}");
        }
        // The same opcodes may still be delayed or corrupted.
        assert!(p("delay:opcode=INIT:ms=1").is_ok());
        assert!(p("fail:opcode=RELEASE:errno=EIO").is_ok());
        assert!(p("fail:opcode=SETUPMAPPING:errno=EIO").is_ok());
    }

    #[test]
    fn display_parses_back() {
        for spec in [
            "setupmapping:nth=3:errno=EIO",
            "removemapping:nth=1:errno=ENOSPC",
            "fail:opcode=GETATTR:errno=EIO",
            "fail:opcode=MKDIR:errno=EDQUOT:nth=2:name=d",
            "fail:opcode=READ:errno=77:name=slow-*",
            "delay:opcode=READDIRPLUS:ms=1500:name=dir",
            "delay:opcode=LOOKUP:ms=3000:nth=1",
            "corrupt:opcode=GETATTR:field=len:nth=1",
            "corrupt:opcode=CREATE:field=unique:name=x",
            "fail:opcode=99:errno=EIO",
        ] {
            let a = p(spec).unwrap();
            assert_eq!(a.to_string(), spec);
            assert_eq!(p(&a.to_string()), Ok(a));
        }
        // Numbers with a name come back by name.
        assert_eq!(
            p("fail:opcode=14:errno=13").unwrap().to_string(),
            "fail:opcode=OPEN:errno=EACCES"
        );
    }

    #[test]
    fn fail_hits_the_nth_matching_request() {
        let inj = Injector::new(vec![
            p("fail:opcode=MKDIR:errno=EDQUOT:name=d").unwrap(),
            p("fail:opcode=WRITE:errno=ENOSPC:nth=2").unwrap(),
            p("delay:opcode=WRITE:ms=3:nth=2").unwrap(),
        ]);
        assert_eq!(inj.on_request(9, Some(b"e")), Decision::default());
        assert_eq!(inj.on_request(9, Some(b"d")).fail, Some(libc::EDQUOT));
        assert_eq!(inj.on_request(9, Some(b"d")).fail, Some(libc::EDQUOT));
        assert_eq!(inj.on_request(16, None), Decision::default());
        let d = inj.on_request(16, None);
        assert_eq!(d.fail, Some(libc::ENOSPC));
        assert_eq!(d.delay, Some(Duration::from_millis(3)));
        assert_eq!(inj.on_request(16, None), Decision::default());
    }

    #[test]
    fn name_rules_see_node_names_for_nameless_opcodes() {
        let inj = Injector::new(vec![
            p("fail:opcode=GETATTR:errno=EIO:name=f").unwrap(),
            p("delay:opcode=READDIRPLUS:ms=9:name=dir-*").unwrap(),
        ]);
        let getattr = |nodeid| inj.on_request(3, inj.subject(3, nodeid, &[0; 16]).as_deref());
        // Not handed out yet: no name, no match.
        assert_eq!(getattr(5), Decision::default());
        inj.handed_out(5, b"f");
        inj.handed_out(6, b"g");
        inj.handed_out(7, b"dir-1");
        inj.handed_out(5, b".");
        assert_eq!(getattr(5).fail, Some(libc::EIO));
        assert_eq!(getattr(6), Decision::default());
        assert_eq!(getattr(1), Decision::default());
        assert_eq!(
            inj.on_request(44, inj.subject(44, 7, &[0; 40]).as_deref())
                .delay,
            Some(Duration::from_millis(9))
        );
        // A LINK hands the node out under a second name: the later one counts.
        inj.handed_out(5, b"f2");
        assert_eq!(getattr(5), Decision::default());
        inj.handed_out(5, b"f");
        // A new session: node ids mean nothing any more.
        inj.new_session();
        assert_eq!(getattr(5), Decision::default());
        // A name argument wins over the node's (the parent's) name.
        inj.handed_out(8, b"f");
        assert_eq!(inj.subject(1, 8, b"child\0"), Some(b"child".to_vec()));
        assert_eq!(inj.subject(3, 8, &[0; 16]), Some(b"f".to_vec()));
    }

    #[test]
    fn node_names_kept_only_for_rules_that_need_them() {
        let inj = Injector::new(vec![
            p("delay:opcode=LOOKUP:ms=1:name=x").unwrap(),
            p("fail:opcode=GETATTR:errno=EIO").unwrap(),
        ]);
        inj.handed_out(5, b"x");
        assert_eq!(inj.subject(3, 5, &[]), None);
        assert_eq!(inj.subject(1, 5, b"x\0"), Some(b"x".to_vec()));
    }

    #[test]
    fn nth_counts_matching_requests_only() {
        let inj = Injector::new(vec![
            p("setupmapping:nth=2:errno=ENOSPC").unwrap(),
            p("delay:opcode=READ:ms=5").unwrap(),
            p("corrupt:opcode=READ:field=unique:nth=2").unwrap(),
        ]);
        assert_eq!(inj.on_request(OP_SETUPMAPPING, None), Decision::default());
        assert_eq!(inj.on_request(3, None), Decision::default());
        assert_eq!(
            inj.on_request(OP_SETUPMAPPING, None).fail,
            Some(libc::ENOSPC)
        );
        assert_eq!(inj.on_request(OP_SETUPMAPPING, None), Decision::default());
        let d1 = inj.on_request(15, None);
        assert_eq!(d1.delay, Some(Duration::from_millis(5)));
        assert!(d1.corrupt.is_empty());
        let d2 = inj.on_request(15, None);
        assert_eq!(d2.corrupt, vec![Field::Unique]);
        assert_eq!(
            Injector::default().on_request(15, None),
            Decision::default()
        );
    }

    #[test]
    fn name_rules_see_and_count_matching_names_only() {
        let inj = Injector::new(vec![
            p("delay:opcode=LOOKUP:ms=7:name=slow-*").unwrap(),
            p("corrupt:opcode=LOOKUP:field=len:name=exact:nth=2").unwrap(),
        ]);
        let ms7 = Some(Duration::from_millis(7));
        assert_eq!(inj.on_request(1, Some(b"fast")), Decision::default());
        assert_eq!(inj.on_request(1, None), Decision::default());
        assert_eq!(inj.on_request(1, Some(b"slow-a")).delay, ms7);
        assert_eq!(inj.on_request(1, Some(b"slow-")).delay, ms7);
        assert_eq!(inj.on_request(1, Some(b"slow")), Decision::default());
        assert_eq!(inj.on_request(3, Some(b"slow-a")), Decision::default());
        assert_eq!(inj.on_request(1, Some(b"exact")), Decision::default());
        assert_eq!(inj.on_request(1, Some(b"exactly")), Decision::default());
        assert_eq!(inj.on_request(1, Some(b"exact")).corrupt, vec![Field::Len]);
    }

    #[test]
    fn request_names() {
        assert_eq!(request_name(1, b"abc\0"), Some(&b"abc"[..]));
        assert_eq!(request_name(1, b"abc"), None);
        assert_eq!(request_name(3, b"abc\0"), None);
        let mut create = vec![0u8; 16];
        create.extend_from_slice(b"new\0");
        assert_eq!(request_name(35, &create), Some(&b"new"[..]));
        assert_eq!(request_name(35, &create[..10]), None);
        let mut mkdir = vec![0xffu8; 8];
        mkdir.extend_from_slice(b"d\0");
        assert_eq!(request_name(9, &mkdir), Some(&b"d"[..]));
        // RENAME and RENAME2: the old name, after fuse_rename_in / fuse_rename2_in.
        let mut rename = vec![0xffu8; 8];
        rename.extend_from_slice(b"old\0new\0");
        assert_eq!(request_name(12, &rename), Some(&b"old"[..]));
        let mut rename2 = vec![0xffu8; 16];
        rename2.extend_from_slice(b"old2\0new\0");
        assert_eq!(request_name(45, &rename2), Some(&b"old2"[..]));
        assert_eq!(request_name(45, &rename2[..12]), None);
    }
}
