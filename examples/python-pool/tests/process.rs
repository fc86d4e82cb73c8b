//! Worker processes never outlive their host: a child bound with
//! `process::bind_to_host` dies with the host however it dies, the
//! flagship's worker exits when its stdin closes, and the flagship host
//! stopped by SIGTERM drains and exits 0, or killed by SIGKILL, leaves no
//! worker behind.

use poolscope_testkit as common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::PATIENCE;

/// How soon after its host's end a worker must be gone (the bound;
/// it takes milliseconds).
const GONE_WITHIN: Duration = Duration::from_secs(2);

/// Whether `pid` runs: it has a `/proc` entry and is not a zombie (a dead
/// process its parent has not reaped yet).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next()),
            Some("Z" | "X" | "x")
        ),
        Err(_) => false,
    }
}

/// The processes whose parent is `parent` and whose command line holds
/// `needle`.
fn children(parent: u32, needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .collect()
}

/// Waits until none of `pids` runs; how long that took after `since`.
fn all_gone(pids: &[u32], since: Instant) -> Duration {
    loop {
        let left: Vec<_> = pids.iter().copied().filter(|&p| running(p)).collect();
        if left.is_empty() {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < GONE_WITHIN,
            "processes {left:?} still run {:?} after their host ended",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child of ours, which we have not reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

/// Run as a helper process (see `a_child_bound_to_the_host_dies_with_it`):
/// spawns a bound `sleep`, prints its pid, and waits to be killed.
#[test]
fn bound_child_host() {
    if std::env::var_os("POOLSCOPE_BOUND_CHILD_HOST").is_none() {
        return;
    }
    let mut command = Command::new("sleep");
    command.arg("600").stdin(Stdio::null());
    poolscope::process::bind_to_host(&mut command);
    let mut child = command.spawn().unwrap();
    println!("CHILD {}", child.id());
    // The test kills this process long before; should it not, the child
    // goes with it.
    std::thread::sleep(PATIENCE);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_child_bound_to_the_host_dies_with_it() {
    // The host is this test binary, run again as `bound_child_host`; its
    // child, `sleep`, watches no pipe: only the binding can end it.
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bound_child_host",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("POOLSCOPE_BOUND_CHILD_HOST", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    let child: u32 = lines
        .by_ref()
        .map_while(Result::ok)
        // libtest may print `test bound_child_host ... ` on the same line.
        .find_map(|l| l.split_once("CHILD ")?.1.trim().parse().ok())
        .expect("the helper prints its child's pid");
    assert!(running(child));
    signal(host.id(), libc::SIGKILL);
    let killed = Instant::now();
    let _ = host.wait();
    all_gone(&[child], killed);
}

#[test]
fn an_unbound_child_outlives_its_host() {
    // The control for the test above: without the binding, `sleep` lives on.
    let mut host = Command::new("sh")
        .args([
            "-c",
            "sleep 600 </dev/null >/dev/null & echo $!; exec sleep 600",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(host.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let child: u32 = line.trim().parse().unwrap();
    signal(host.id(), libc::SIGKILL);
    let _ = host.wait();
    std::thread::sleep(Duration::from_millis(300));
    assert!(running(child), "an unbound child died with its host");
    signal(child, libc::SIGKILL);
}

fn worker_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("worker.py")
}

#[test]
fn the_flagship_worker_exits_when_its_stdin_closes() {
    let mut worker = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(worker_script())
        .args(["--id", "0", "--port", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(worker.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("READY "), "{ready:?}");
    drop(worker.stdin.take());
    let closed = Instant::now();
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(closed.elapsed() < GONE_WITHIN, "the worker still runs");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(0));
}

/// The flagship demo binary, which cargo builds for this package's tests.
fn flagship() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_python-pool"))
}

/// Starts the flagship with two workers and waits until they serve.
fn start_flagship() -> (Child, Vec<u32>) {
    let mut host = Command::new(flagship())
        .args(["--listen", "127.0.0.1:0", "--workers", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("sending a mixed load"));
    assert!(ready, "the flagship did not start (is grpcio installed?)");
    // Keep reading stdout so the host never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    let workers = children(host.id(), "worker.py");
    assert_eq!(workers.len(), 2, "{workers:?}");
    (host, workers)
}

fn wait_exit(host: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    common::eventually("the host's exit", || {
        status = host.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

#[test]
fn the_flagship_stopped_by_sigterm_drains_exits_0_and_leaves_no_worker() {
    let (mut host, workers) = start_flagship();
    std::thread::sleep(Duration::from_millis(500));
    signal(host.id(), libc::SIGTERM);
    let sent = Instant::now();
    let status = wait_exit(&mut host);
    assert_eq!(status.code(), Some(0), "{status:?}");
    all_gone(&workers, sent);
}

#[test]
fn the_flagship_killed_by_sigkill_leaves_no_worker() {
    let (mut host, workers) = start_flagship();
    std::thread::sleep(Duration::from_millis(500));
    signal(host.id(), libc::SIGKILL);
    let sent = Instant::now();
    let _ = wait_exit(&mut host);
    all_gone(&workers, sent);
}

#[test]
fn the_flagship_demo_logs_saturation_once_per_episode_and_crashes_with_pid_and_stack() {
    // 800 requests of the demo's mix, eight at a time on four workers:
    // saturated over and over, four crashes (two by SIGSEGV).
    let host = Command::new(flagship())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "4",
            "--requests",
            "800",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = host.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let episodes: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("saturation episodes")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no episode count in:\n{stdout}"));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let saturated = lines
        .iter()
        .filter(|l| l["event"] == "pool.saturated")
        .count() as u64;
    assert_eq!(saturated, episodes, "one line per episode");
    assert!(
        saturated < 80,
        "{saturated} saturation lines for 800 requests"
    );
    let crashes: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "worker.crashed")
        .collect();
    assert_eq!(crashes.len(), 4, "{crashes:?}");
    for crash in &crashes {
        let context = &crash["error"]["crash"];
        assert!(
            context["pid"].as_u64().is_some_and(|pid| pid > 0),
            "{crash}"
        );
        if context["signal"] == "SIGSEGV" {
            let stack = context["stack"].as_array().expect("error.crash.stack");
            assert!(
                stack.iter().any(|f| f["function"] == "run"
                    && f["file"]
                        .as_str()
                        .is_some_and(|file| file.ends_with("worker.py"))),
                "{crash}"
            );
        }
    }
    let segv = crashes
        .iter()
        .filter(|c| c["error"]["crash"]["signal"] == "SIGSEGV")
        .count();
    assert_eq!(segv, 2);
}
