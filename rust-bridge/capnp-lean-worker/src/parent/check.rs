//! [`check`]: everything that can be verified before the first command, each problem with a
//! stable code and a repair hint (like the loader's preflight, which it includes).

use std::fmt;
use std::path::PathBuf;

use crate::parent::config::WorkerConfig;
use crate::parent::worker::Worker;
use crate::WorkerError;

/// One problem [`check`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFinding {
    /// Stable code: `WORKER-…`, or the loader's `LOADER-…`/`LT-…` codes from the preflight.
    pub code: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

/// What [`check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// The worker binary that would be started.
    pub binary: Option<PathBuf>,
    /// The protocol the child answered the handshake with.
    pub protocol: Option<u32>,
    /// The capability's metadata, as the child reported it after opening it.
    pub metadata: Option<String>,
    /// Problems, in the order found; empty means the worker is ready.
    pub findings: Vec<CheckFinding>,
}

impl CheckReport {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }

    fn add(&mut self, code: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.findings.push(CheckFinding { code: code.into(), message: message.into(), hint: hint.into() });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return write!(f, "worker check passed");
        }
        for finding in &self.findings {
            writeln!(f, "[{}] {} (hint: {})", finding.code, finding.message, finding.hint)?;
        }
        Ok(())
    }
}

/// The loader's preflight run by the worker binary itself (`--preflight`), in the environment
/// the child would get: what the worker's own process exports counts as provided.
fn preflight_in_worker(binary: &std::path::Path, config: &WorkerConfig, report: &mut CheckReport) {
    let mut command = std::process::Command::new(binary);
    command.arg("--preflight").arg(&config.manifest);
    if let Some(runtime) = &config.runtime {
        command.arg("--runtime").arg(runtime);
    }
    let output = command
        .env_clear()
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .output();
    match output {
        Err(e) => report.add("WORKER-SPAWN", format!("cannot run {}: {e}", binary.display()), "check the binary's permissions and architecture"),
        Ok(output) => {
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let mut fields = line.splitn(3, '\t');
                if let (Some(code), Some(message), Some(hint)) = (fields.next(), fields.next(), fields.next()) {
                    report.add(code, message, hint);
                }
            }
            if !output.status.success() && report.is_ok() {
                report.add(
                    "WORKER-SPAWN",
                    format!("{} --preflight failed: {}", binary.display(), String::from_utf8_lossy(&output.stderr).trim()),
                    "rebuild capnp-lean-worker from the same release as the parent",
                );
            }
        }
    }
}

/// Checks, in order, stopping where a later step cannot run: the worker binary is found and
/// executable; the manifest passes the loader's preflight (run by the worker binary, so the
/// glue's externs it exports count; here in the parent when the binary is missing); a child
/// starts, answers the handshake with this parent's protocol and opens the capability; and,
/// when `expected_metadata` is given, the capability's metadata equals it. The child started
/// for the check is stopped again.
pub async fn check(config: &WorkerConfig, expected_metadata: Option<&str>) -> CheckReport {
    let mut report = CheckReport::default();
    match config.locate_binary() {
        Ok(binary) => {
            preflight_in_worker(&binary, config, &mut report);
            report.binary = Some(binary);
        }
        Err(e) => {
            report.add(e.code(), e.to_string(), "build it with `cargo build -p capnp-lean-worker`, or set WorkerConfig::binary or CAPNP_LEAN_WORKER");
            // Without the worker, check the manifest here (symbols the worker would export to
            // the capability may then be reported missing).
            if let Err(findings) = capnp_lean_loader::preflight(&config.manifest, config.runtime.as_deref()) {
                for finding in findings.0 {
                    report.add(finding.code.code(), finding.message, finding.hint);
                }
            }
        }
    }
    if !report.is_ok() {
        return report;
    }
    match Worker::spawn(config.clone()).await {
        Ok(worker) => {
            report.protocol = Some(capnp_schemas::worker_capnp::PROTOCOL_VERSION);
            let metadata = worker.state().metadata;
            if let Some(expected) = expected_metadata {
                if metadata != expected {
                    report.add(
                        "WORKER-METADATA-MISMATCH",
                        format!("the capability describes itself as {metadata:?}, not {expected:?}"),
                        "point the manifest at the capability build you expect, or update the expected metadata",
                    );
                }
            }
            report.metadata = Some(metadata);
            worker.shutdown();
        }
        Err(error) => {
            if let WorkerError::Protocol { found, .. } = &error {
                report.protocol = Some(*found);
            }
            let hint = match &error {
                WorkerError::Protocol { .. } => "rebuild capnp-lean-worker from the same release as the parent",
                WorkerError::Open { .. } => "fix what the loader reports above, then rebuild the capability",
                WorkerError::Crashed { .. } => "the child died while starting: read its last output above",
                _ => "see the message",
            };
            report.add(error.code(), error.to_string(), hint);
        }
    }
    report
}
