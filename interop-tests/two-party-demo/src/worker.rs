//! `two-party-demo worker`: a capability in a worker child, its progress drawn as a bar while
//! its rows stream in.

use std::io::Write;
use std::path::Path;

use capnp_lean_worker::{Event, Worker, WorkerConfig};
use futures::StreamExt;

const BAR: usize = 40;

/// Runs `command` with `input` in a worker for the capability at `manifest` (or the fixture).
pub fn run(manifest: Option<&Path>, command: &str, input: &str) -> Result<(), String> {
    let fixture_dir = std::env::temp_dir().join(format!("two-party-demo-worker-{}", std::process::id()));
    let manifest = match manifest {
        Some(path) => path.to_path_buf(),
        None => capnp_lean_worker::test_support::build_fixture(&fixture_dir)
            .ok_or("the Lean runtime is not provisioned: run bash scripts/fetch-lean-runtime.sh")?,
    };
    let outcome = capnp_lean::block_on(async {
        let worker = Worker::spawn(WorkerConfig::new(&manifest)).await.map_err(|e| e.to_string())?;
        let state = worker.state();
        println!("worker: pid {} runs {} ({})", state.pid.unwrap_or(0), manifest.display(), state.metadata);
        let mut run = worker.start(command, input.as_bytes()).await.map_err(|e| e.to_string())?;
        let (mut rows, mut first) = (0u64, Vec::new());
        let mut stdout = std::io::stdout();
        while let Some(event) = run.next().await {
            match event {
                Event::Rows(batch) => {
                    rows += batch.len() as u64;
                    first.extend(batch.into_iter().take(3usize.saturating_sub(first.len())));
                }
                Event::Progress { done, total, label } => {
                    let filled = if total == 0 { 0 } else { (done.min(total) as usize * BAR) / total as usize };
                    let _ = write!(stdout, "\r[{}{}] {done}/{total} {label}", "#".repeat(filled), ".".repeat(BAR - filled));
                    let _ = stdout.flush();
                }
                Event::Diagnostic(d) => {
                    let at = d.position.map(|(file, line, column)| format!(" at {file}:{line}:{column}")).unwrap_or_default();
                    println!("\n{:?} {}: {}{at}", d.severity, d.code, d.message);
                }
            }
        }
        let summary = run.summary().await.map_err(|e| e.to_string())?;
        println!();
        for row in &first {
            println!("row: {row:02x?}");
        }
        println!(
            "{rows} rows streamed; summary: output {:?}, {} rows, {} diagnostics, {} µs in the worker",
            String::from_utf8_lossy(&summary.output),
            summary.rows,
            summary.diagnostics,
            summary.elapsed_micros
        );
        Ok::<_, String>(())
    });
    let _ = std::fs::remove_dir_all(&fixture_dir);
    outcome.map_err(|e| e.to_string())?
}
