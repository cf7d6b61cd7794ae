//! Where `rpc-bench` runs its processes: every server on one CPU and every client on another
//! (`taskset -c`), so a client and the server it measures never take turns on one core and the
//! scheduler does not move them mid-measurement. On a machine with one allowed CPU, or with
//! `--no-pin`, nothing is pinned.

use std::path::Path;

/// The CPUs servers and clients are pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pinning {
    /// Where every server runs.
    pub server_cpu: usize,
    /// Where every client runs.
    pub client_cpu: usize,
}

/// Which side of a pair a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server, started once for the whole run.
    Server,
    /// A client process (also the `strace` that runs one).
    Client,
}

impl Pinning {
    /// Servers on the first of `allowed`, clients on the last; `None` with fewer than two.
    pub fn choose(allowed: &[usize]) -> Option<Pinning> {
        match (allowed.first(), allowed.last()) {
            (Some(&first), Some(&last)) if first != last => Some(Pinning { server_cpu: first, client_cpu: last }),
            _ => None,
        }
    }

    /// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`).
    pub fn allowed_cpus() -> Result<Vec<usize>, String> {
        let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .ok_or("no Cpus_allowed_list in /proc/self/status")?;
        parse_cpu_list(list.trim()).ok_or_else(|| format!("cannot parse Cpus_allowed_list {list:?}"))
    }

    /// The command that runs `program args` pinned for `role`: `taskset -c CPU program args`.
    pub fn command(pinning: Option<Pinning>, role: Role, program: &Path, args: &[String]) -> (String, Vec<String>) {
        let program = program.display().to_string();
        let Some(pinning) = pinning else { return (program, args.to_vec()) };
        let cpu = match role {
            Role::Server => pinning.server_cpu,
            Role::Client => pinning.client_cpu,
        };
        let mut pinned = vec!["-c".to_string(), cpu.to_string(), program];
        pinned.extend(args.iter().cloned());
        ("taskset".into(), pinned)
    }
}

/// A kernel CPU list (`0-3,8,10-11`) as CPU numbers, ascending.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((from, to)) => cpus.extend(from.parse::<usize>().ok()?..=to.parse::<usize>().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_expand_ranges() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn servers_and_clients_get_different_cpus_or_none() {
        assert_eq!(Pinning::choose(&[0, 1]), Some(Pinning { server_cpu: 0, client_cpu: 1 }));
        assert_eq!(Pinning::choose(&[3]), None);
    }

    #[test]
    fn a_pinned_command_runs_under_taskset() {
        let pinning = Some(Pinning { server_cpu: 0, client_cpu: 1 });
        let (program, args) = Pinning::command(pinning, Role::Client, Path::new("/x/peer"), &["bench".into()]);
        assert_eq!((program.as_str(), args), ("taskset", vec!["-c".to_string(), "1".into(), "/x/peer".into(), "bench".into()]));
        let (program, args) = Pinning::command(None, Role::Server, Path::new("/x/peer"), &["serve".into()]);
        assert_eq!((program.as_str(), args), ("/x/peer", vec!["serve".to_string()]));
    }
}
