//! What a context generation is built from: one snapshot of the options and of the
//! contents of the files they name.
//!
//! Files are read here and nowhere else, with the care a path from configuration needs.
//! A file option must name a regular file (`ca-cert-dir` a directory). That is checked
//! with stat before the path is opened (opening some devices does something of its own)
//! and again on the descriptor, which is opened non-blocking, in case the path changed in
//! between: a FIFO, a device such as /dev/zero, a socket or a directory is refused at
//! once, where reading it would block the caller forever or grow the process until
//! memory runs out. What is read is capped.

use std::collections::BTreeMap;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::Options;
use crate::ossl;

/// The most a file option may hold. System CA bundles are about 200 KB; a certificate
/// chain or key is a few KB.
pub(crate) const MAX_FILE_BYTES: u64 = 8 << 20;
/// The most all the files of `ca-cert-dir` together may hold.
pub(crate) const MAX_DIR_BYTES: u64 = 64 << 20;

/// File-valued options, read whole when a generation is built.
pub(crate) const FILE_OPTIONS: [&str; 7] =
    ["cert-file", "key-file", "client-cert-file", "client-key-file", "ca-cert-file", "dh-params-file", "ca-cert-dir"];

/// One snapshot of everything a generation is built from.
pub struct Sources {
    pub options: Options,
    /// Contents of each file option that is set (ca-cert-dir: every regular file in it).
    files: BTreeMap<&'static str, Vec<(PathBuf, Vec<u8>)>>,
}

impl Sources {
    pub fn read(options: Options) -> Result<Sources, String> {
        let mut files = BTreeMap::new();
        for name in FILE_OPTIONS {
            let Some(path) = options.path(name) else { continue };
            let contents = if name == "ca-cert-dir" {
                read_dir(name, path)?
            } else {
                vec![(path.to_path_buf(), read_file(name, path)?)]
            };
            files.insert(name, contents);
        }
        Ok(Sources { options, files })
    }

    /// The bytes of a single-file option.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).and_then(|v| v.first()).map(|(_, data)| data.as_slice())
    }

    /// Every file read for `name` (ca-cert-dir: each file in it), None when unset.
    pub fn files(&self, name: &str) -> Option<&[(PathBuf, Vec<u8>)]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The path of a file option, for messages.
    pub fn shown(&self, name: &str) -> std::path::Display<'_> {
        self.options.path(name).unwrap_or(Path::new("")).display()
    }

    fn digest_of(&self, names: &[&str], extra: &[u8]) -> [u8; 32] {
        let mut all = extra.to_vec();
        for name in names {
            for (path, data) in self.files.get(name).into_iter().flatten() {
                for part in [name.as_bytes(), path.as_os_str().as_bytes(), data.as_slice()] {
                    all.extend_from_slice(&(part.len() as u64).to_le_bytes());
                    all.extend_from_slice(part);
                }
            }
        }
        ossl::sha256(&all)
    }

    /// Changes when any option or the content of any named file changes.
    pub fn digest(&self) -> [u8; 32] {
        self.digest_of(&FILE_OPTIONS, &self.options.canonical())
    }

    /// Changes when what peers are trusted with changes; sessions do not survive that.
    pub fn trust_digest(&self) -> [u8; 32] {
        let auth = self.options.get("auth-clients").unwrap_or_default();
        self.digest_of(&["ca-cert-file", "ca-cert-dir"], format!("auth-clients={auth}").as_bytes())
    }
}

fn describe_io_error(option: &str, path: &Path, e: &std::io::Error) -> String {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "missing",
        std::io::ErrorKind::PermissionDenied => "unreadable",
        _ => "cannot be read",
    };
    format!("{option} '{}': {reason} ({e})", path.display())
}

/// What a file is, in words.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

enum Opened {
    /// A regular file and its size.
    Regular(File, u64),
    /// Anything else, in words.
    Other(&'static str),
}

/// Opens `path` if stat says it is a regular file, without blocking (O_NONBLOCK: a FIFO
/// put there since does not wait for a writer), and says what it is, from the
/// descriptor itself.
fn open(option: &str, path: &Path) -> Result<Opened, String> {
    let meta = std::fs::metadata(path).map_err(|e| describe_io_error(option, path, &e))?;
    if !meta.is_file() {
        return Ok(Opened::Other(kind_of(&meta)));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| describe_io_error(option, path, &e))?;
    let meta = file.metadata().map_err(|e| describe_io_error(option, path, &e))?;
    Ok(if meta.is_file() { Opened::Regular(file, meta.len()) } else { Opened::Other(kind_of(&meta)) })
}

fn too_big(option: &str, path: &Path, what: &str, limit: u64) -> String {
    format!("{option} '{}': {what} is larger than the {} MiB a file option may hold", path.display(), limit >> 20)
}

/// All of a regular file, if it holds at most `cap` bytes.
fn read_capped(option: &str, path: &Path, file: File, len: u64, cap: u64) -> Result<Vec<u8>, String> {
    if len > cap {
        return Err(too_big(option, path, &format!("the file ({len} bytes)"), cap));
    }
    let mut data = Vec::with_capacity(len as usize);
    // The file may have grown since fstat: read one byte past the cap to notice.
    file.take(cap + 1).read_to_end(&mut data).map_err(|e| describe_io_error(option, path, &e))?;
    if data.len() as u64 > cap {
        return Err(too_big(option, path, "the file", cap));
    }
    Ok(data)
}

/// The contents of one file option, at most MAX_FILE_BYTES.
fn read_file(option: &str, path: &Path) -> Result<Vec<u8>, String> {
    match open(option, path)? {
        Opened::Regular(file, len) => read_capped(option, path, file, len, MAX_FILE_BYTES),
        Opened::Other(kind) => Err(format!("{option} '{}': not a regular file (it is {kind})", path.display())),
    }
}

/// Every regular file directly in `path`, sorted by name, at most MAX_DIR_BYTES in all.
/// Anything else in it (FIFOs, sockets, subdirectories) is skipped, as OpenSSL's own CA
/// directory lookup would.
fn read_dir(option: &str, path: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let meta = std::fs::metadata(path).map_err(|e| describe_io_error(option, path, &e))?;
    if !meta.is_dir() {
        return Err(format!("{option} '{}': not a directory (it is {})", path.display(), kind_of(&meta)));
    }
    let entries = std::fs::read_dir(path).map_err(|e| describe_io_error(option, path, &e))?;
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry.map_err(|e| describe_io_error(option, path, &e))?.path());
    }
    names.sort();
    let (mut files, mut left) = (Vec::new(), MAX_DIR_BYTES);
    for name in names {
        // A dangling link is skipped like anything else that is not a regular file.
        if std::fs::metadata(&name).is_err() {
            continue;
        }
        if let Opened::Regular(file, len) = open(option, &name)? {
            if len > left {
                return Err(too_big(option, path, "what the directory holds", MAX_DIR_BYTES));
            }
            let data = read_capped(option, &name, file, len, left.min(MAX_FILE_BYTES))?;
            left -= data.len() as u64;
            files.push((name, data));
        }
    }
    Ok(files)
}
