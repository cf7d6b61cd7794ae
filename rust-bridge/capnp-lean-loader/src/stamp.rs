//! The preflight record: proof that a bundle passed the preflight, so that opening it again —
//! in this process or another — need not read its libraries' symbol tables again (the runtime's
//! alone hold 230,000 names; reading and indexing them is most of the cost of opening a
//! capability for the first time).
//!
//! After a clean preflight, `Capability::open` writes `<manifest>.preflight.json` beside the
//! manifest: the loader version, the fallback runtime it was given, and every file the preflight
//! read (the manifest, each library of the bundle, the runtime and the system libraries they
//! need) with its size and modification time. The next open skips the preflight only when the
//! record names the same loader version and fallback runtime and every file still has the
//! recorded size and time (and, when the check counted the running program's own exports, the
//! open is by that same program); anything else (an edited, rebuilt, moved or deleted file, or a
//! missing or unreadable record) means a full preflight, with its findings as before. Writing is
//! best effort: in a read-only folder there is simply no record. Delete the record (or use
//! [`crate::preflight`]) to force a check. Not covered: a new library appearing earlier on the
//! system search path for a `DT_NEEDED` name than the one recorded.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Record {
    loader: String,
    runtime: Option<PathBuf>,
    files: Vec<FileStamp>,
    /// The program whose own exports the check counted (e.g. the Lean glue's externs in
    /// `capnp-lean-worker`): the record then holds for that program only.
    #[serde(default)]
    host: Option<FileStamp>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct FileStamp {
    path: PathBuf,
    size: u64,
    modified_secs: u64,
    modified_nanos: u32,
}

impl FileStamp {
    /// The stamp of `path` as it is now, under its canonical name (so that a record made
    /// through a relative path still matches an open through an absolute one, and back).
    fn of(path: &Path) -> Option<Self> {
        let path = std::fs::canonicalize(path).ok()?;
        let metadata = std::fs::metadata(&path).ok()?;
        let modified = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        Some(Self { path, size: metadata.len(), modified_secs: modified.as_secs(), modified_nanos: modified.subsec_nanos() })
    }
}

thread_local! {
    /// Files read while [`recording`] runs on this thread.
    static READ: RefCell<Option<Vec<PathBuf>>> = const { RefCell::new(None) };
    /// Whether that check counted a symbol the running program exports.
    static USED_HOST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that the preflight counted a symbol only the running program provides (e.g. the Lean
/// glue's externs in `capnp-lean-worker`): its result holds for this program only, so the record
/// names the program.
pub(crate) fn note_host_symbol() {
    USED_HOST.with(|h| h.set(true));
}

/// Notes that the preflight read `path` (called for every library it consults).
pub(crate) fn note_read(path: &Path) {
    READ.with(|r| {
        if let Some(files) = r.borrow_mut().as_mut() {
            if !files.iter().any(|f| f == path) {
                files.push(path.to_path_buf());
            }
        }
    });
}

/// What a check read: files, and whether it counted the running program's own exports.
pub(crate) struct Read {
    files: Vec<PathBuf>,
    host: bool,
}

/// Runs `check`, returning its result and what it read.
pub(crate) fn recording<R>(check: impl FnOnce() -> R) -> (R, Read) {
    let previous = READ.with(|r| r.replace(Some(Vec::new())));
    let used_host = USED_HOST.with(|h| h.replace(false));
    let result = check();
    let files = READ.with(|r| r.replace(previous)).unwrap_or_default();
    let host = USED_HOST.with(|h| h.replace(used_host));
    (result, Read { files, host })
}

fn record_path(manifest: &Path) -> Option<PathBuf> {
    let name = manifest.file_name()?.to_string_lossy().into_owned();
    Some(manifest.with_file_name(format!("{name}.preflight.json")))
}

fn current(manifest: &Path, runtime: Option<&Path>, files: &[PathBuf], host: bool) -> Option<Record> {
    let stamps = std::iter::once(manifest).chain(files.iter().map(PathBuf::as_path)).map(FileStamp::of).collect::<Option<Vec<_>>>()?;
    let runtime = runtime.map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.to_path_buf()));
    let host = if host { Some(FileStamp::of(&std::env::current_exe().ok()?)?) } else { None };
    Some(Record { loader: env!("CARGO_PKG_VERSION").into(), runtime, files: stamps, host })
}

/// Whether a record shows that this bundle, exactly as it is now, passed the preflight.
pub(crate) fn still_valid(manifest: &Path, runtime: Option<&Path>) -> bool {
    let Some(text) = record_path(manifest).and_then(|p| std::fs::read_to_string(p).ok()) else { return false };
    let Ok(recorded) = serde_json::from_str::<Record>(&text) else { return false };
    let files: Vec<PathBuf> = recorded.files.iter().skip(1).map(|f| f.path.clone()).collect();
    current(manifest, runtime, &files, recorded.host.is_some()).is_some_and(|now| now == recorded)
}

/// Records a clean preflight that read `read` (best effort).
pub(crate) fn write(manifest: &Path, runtime: Option<&Path>, read: &Read) {
    let (Some(path), Some(record)) = (record_path(manifest), current(manifest, runtime, &read.files, read.host)) else { return };
    let Ok(text) = serde_json::to_string_pretty(&record) else { return };
    // Written whole and renamed, so a concurrent open never reads half a record.
    let partial = path.with_extension(format!("json.{}.tmp", std::process::id()));
    if std::fs::write(&partial, text).is_ok() && std::fs::rename(&partial, &path).is_err() {
        let _ = std::fs::remove_file(&partial);
    }
}
