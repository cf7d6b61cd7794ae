//! Runs `lake build <target>:shared` and turns its output into typed diagnostics, then finds the
//! shared library Lake produced. The `lake` executable is a parameter, which is the seam tests
//! use to substitute a fake.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::Env;
use crate::error::{ErrorCode, Result, ToolchainError};

/// Diagnostic severity as Lake prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// `error:`
    Error,
    /// `warning:`
    Warning,
    /// `info:`
    Info,
}

/// One message from a Lake run, with its source position when Lean reported one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error, warning or info.
    pub severity: Severity,
    /// The Lean file, if the message points into one.
    pub file: Option<PathBuf>,
    /// 1-based line.
    pub line: Option<u32>,
    /// Column as Lean reports it.
    pub column: Option<u32>,
    /// The message text.
    pub message: String,
}

/// What a Lake run printed and how it ended.
#[derive(Clone, Debug)]
pub struct LakeOutput {
    /// Exit status was zero.
    pub success: bool,
    /// Parsed `error:`/`warning:`/`info:` lines from stdout and stderr.
    pub diagnostics: Vec<Diagnostic>,
    /// Raw standard output.
    pub stdout: String,
    /// Raw standard error.
    pub stderr: String,
}

impl LakeOutput {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }
}

/// A `lake build <target>:shared` invocation.
#[derive(Clone, Debug)]
pub struct LakeBuild {
    lake: PathBuf,
    package_dir: PathBuf,
    target: String,
    env: Env,
}

impl LakeBuild {
    /// Builds `target` (a `lean_lib` name) of the package in `package_dir` with `lake`.
    pub fn new(lake: impl Into<PathBuf>, package_dir: impl Into<PathBuf>, target: &str) -> Self {
        Self { lake: lake.into(), package_dir: package_dir.into(), target: target.into(), env: Env::process() }
    }

    /// Runs Lake with this environment instead of the process's.
    pub fn with_env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// The arguments passed to `lake`.
    pub fn args(&self) -> Vec<String> {
        vec!["build".into(), format!("{}:shared", self.target)]
    }

    /// Runs Lake and reports how it went, failing only when Lake could not be started.
    pub fn run(&self) -> Result<LakeOutput> {
        let out = Command::new(&self.lake)
            .args(self.args())
            .current_dir(&self.package_dir)
            .env_clear()
            .envs(self.env.vars())
            .output()
            .map_err(|e| {
                ToolchainError::new(
                    ErrorCode::LakeNotRunnable,
                    format!("cannot run {}: {e}", self.lake.display()),
                    "install Lean with elan or set LEAN_SYSROOT to a toolchain prefix that has bin/lake",
                )
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let diagnostics = stdout.lines().chain(stderr.lines()).filter_map(parse_line).collect();
        Ok(LakeOutput { success: out.status.success(), diagnostics, stdout, stderr })
    }

    /// Runs Lake and turns a failed build into an error naming the first Lean errors.
    pub fn build(&self) -> Result<LakeOutput> {
        let out = self.run()?;
        if out.success {
            return Ok(out);
        }
        let errors: Vec<String> = out.errors().map(render).take(5).collect();
        Err(ToolchainError::new(
            ErrorCode::LakeBuildFailed,
            format!(
                "`lake {}` failed in {}: {}",
                self.args().join(" "),
                self.package_dir.display(),
                if errors.is_empty() { out.stderr.trim().to_string() } else { errors.join("; ") }
            ),
            format!("run `lake build {}:shared` in {} and fix the reported errors", self.target, self.package_dir.display()),
        ))
    }

    /// Finds the shared library Lake wrote for `package`'s library `lib`.
    pub fn shared_library(&self, package: &str, lib: &str) -> Result<PathBuf> {
        locate_shared_library(&self.package_dir, package, lib)
    }
}

/// Looks for Lake's shared library of `lib` under `package_dir/.lake/build`.
pub fn locate_shared_library(package_dir: &Path, package: &str, lib: &str) -> Result<PathBuf> {
    let dirs = [package_dir.join(".lake/build/lib"), package_dir.join(".lake/build/lib/lean")];
    let mut tried = Vec::new();
    for dir in &dirs {
        for name in crate::names::shared_library_candidates(package, lib) {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(path);
            }
            tried.push(path);
        }
    }
    Err(ToolchainError::new(
        ErrorCode::SharedLibraryMissing,
        format!("no shared library for {package}/{lib}; looked for {}", crate::error::display_paths(&tried)),
        format!("run `lake build {lib}:shared` in {} (the lean_lib must exist in the lakefile)", package_dir.display()),
    ))
}

fn render(d: &Diagnostic) -> String {
    match (&d.file, d.line, d.column) {
        (Some(f), Some(l), Some(c)) => format!("{}:{l}:{c}: {}", f.display(), d.message),
        _ => d.message.clone(),
    }
}

/// Parses one Lake output line such as `error: ./Demo.lean:3:7: unknown identifier 'x'`.
pub fn parse_line(line: &str) -> Option<Diagnostic> {
    let line = line.trim_start();
    let (severity, rest) = [("error: ", Severity::Error), ("warning: ", Severity::Warning), ("info: ", Severity::Info)]
        .into_iter()
        .find_map(|(prefix, sev)| line.strip_prefix(prefix).map(|rest| (sev, rest)))?;
    let located = (|| {
        let (file, tail) = rest.split_once(".lean:")?;
        let mut parts = tail.splitn(3, ':');
        let line_no = parts.next()?.trim().parse().ok()?;
        let column = parts.next()?.trim().parse().ok()?;
        let message = parts.next()?.trim().to_string();
        Some(Diagnostic { severity, file: Some(PathBuf::from(format!("{file}.lean"))), line: Some(line_no), column: Some(column), message })
    })();
    Some(located.unwrap_or(Diagnostic { severity, file: None, line: None, column: None, message: rest.trim().to_string() }))
}
