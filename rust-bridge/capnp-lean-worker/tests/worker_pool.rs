//! A pool of worker children under 8 concurrent clients, one worker SIGKILLed mid-run: every
//! request gets exactly one answer (its own echo, or a crash report naming the killed pid),
//! none is lost or answered twice, and the pool keeps serving on the replacement; plus the
//! bounded admission queue.

mod worker_support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use capnp_lean::block_on;
use capnp_lean_worker::{PoolConfig, WorkerError, WorkerPool};

const CLIENTS: usize = 8;
const REQUESTS_PER_CLIENT: usize = 60;

#[test]
fn a_worker_killed_mid_run_loses_no_request_and_answers_none_twice() {
    let config = fixture_config!();
    let pool = block_on(WorkerPool::spawn(config, PoolConfig { workers: 3, per_worker: 1, queue_limit: 64 })).unwrap().unwrap();
    let victim = pool.workers()[1].pid().unwrap();
    let answers: Mutex<HashMap<String, Vec<Result<String, String>>>> = Mutex::new(HashMap::new());
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (pool, answers) = (&pool, &answers);
            scope.spawn(move || {
                for request in 0..REQUESTS_PER_CLIENT {
                    let id = format!("{client}-{request}");
                    let outcome = match block_on(pool.call("slow_echo", id.as_bytes())).unwrap() {
                        Ok(summary) => Ok(String::from_utf8(summary.output).unwrap()),
                        Err(WorkerError::Crashed { pid, status, .. }) => Err(format!("crashed {pid} {status}")),
                        Err(other) => Err(format!("unexpected: {other}")),
                    };
                    answers.lock().unwrap().entry(id).or_default().push(outcome);
                }
            });
        }
        // Mid-run: a third of the requests answered.
        while answers.lock().unwrap().len() < CLIENTS * REQUESTS_PER_CLIENT / 3 {
            std::thread::sleep(Duration::from_millis(2));
        }
        let killed = std::process::Command::new("kill").args(["-9", &victim.to_string()]).status().unwrap();
        assert!(killed.success());
    });
    let answers = answers.into_inner().unwrap();
    assert_eq!(answers.len(), CLIENTS * REQUESTS_PER_CLIENT, "every request got an answer");
    let mut crashed = 0;
    for (id, outcomes) in &answers {
        assert_eq!(outcomes.len(), 1, "{id} answered {outcomes:?}");
        match &outcomes[0] {
            Ok(echo) => assert_eq!(echo, id, "a request got another's answer"),
            Err(reason) => {
                assert_eq!(reason, &format!("crashed {victim} signal 9 (SIGKILL)"), "{id}");
                crashed += 1;
            }
        }
    }
    eprintln!("{} requests, {crashed} failed with the killed worker (at most its one in flight)", answers.len());
    assert!(crashed <= 1, "only the command running on the killed worker may fail: {crashed}");
    let state = pool.state();
    assert_eq!(state.workers.iter().map(|w| w.served).sum::<u64>(), (CLIENTS * REQUESTS_PER_CLIENT) as u64);
    assert_eq!(state.workers[1].restarts, 1, "{state:?}");
    assert!(state.workers.iter().all(|w| w.live && w.in_flight == 0), "{state:?}");
}

#[test]
fn beyond_the_admission_queue_requests_are_refused_not_buffered() {
    let config = fixture_config!();
    let pool = block_on(WorkerPool::spawn(config, PoolConfig { workers: 1, per_worker: 1, queue_limit: 2 })).unwrap().unwrap();
    // One running, two waiting: the fourth is refused at once.
    let running = block_on(pool.start("sleep_ms", b"500")).unwrap().unwrap();
    std::thread::scope(|scope| {
        let waiters: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|payload| {
                let pool = &pool;
                scope.spawn(move || block_on(pool.call("echo", payload.as_bytes())).unwrap())
            })
            .collect();
        let waited = std::time::Instant::now();
        while pool.state().queued < 2 {
            assert!(waited.elapsed() < Duration::from_secs(5), "the waiters never queued");
            std::thread::sleep(Duration::from_millis(1));
        }
        let error = block_on(pool.call("echo", b"c")).unwrap().unwrap_err();
        assert_eq!(error.code(), "WORKER-POOL-FULL", "{error}");
        block_on(running.summary()).unwrap().unwrap();
        let mut answered: Vec<Vec<u8>> = waiters.into_iter().map(|w| w.join().unwrap().unwrap().output).collect();
        answered.sort();
        assert_eq!(answered, vec![b"a".to_vec(), b"b".to_vec()]);
    });
}
