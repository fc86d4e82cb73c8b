//! A small in-process pool of worker threads, observed with poolscope.
//!
//! ```text
//! cargo run --release --features observe --example quickstart   # prints the Prometheus text
//! cargo run --release --example quickstart                       # same program, poolscope compiled out
//! ```

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use poolscope::{observe, WorkerState};

#[derive(Debug)]
struct JobError(String);

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job failed: {}", self.0)
    }
}

impl std::error::Error for JobError {}

struct Job {
    input: u64,
    reply: Sender<Result<u64, JobError>>,
}

struct ThreadPool {
    jobs: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    observed: poolscope::Pool,
    threads: Vec<JoinHandle<()>>,
}

#[observe(kind = worker_start, pool = "quickstart", worker = id, skip(jobs, observed, queued))]
fn spawn_worker(
    id: usize,
    jobs: Arc<Mutex<Receiver<Job>>>,
    observed: poolscope::Pool,
    queued: Arc<AtomicUsize>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("worker-{id}"))
        .spawn(move || {
            let worker = observed.worker(id);
            worker.set_state(WorkerState::Available);
            loop {
                let job = match jobs.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(job) = job else { break };
                observed.queue_depth(queued.fetch_sub(1, Ordering::Relaxed) - 1);
                worker.set_state(WorkerState::Busy);
                let _ = job.reply.send(run(job.input));
                worker.set_state(WorkerState::Available);
            }
            worker.set_state(WorkerState::Stopped);
        })
}

/// The work itself: squares, slowly, and refuses multiples of 7.
fn run(input: u64) -> Result<u64, JobError> {
    std::thread::sleep(Duration::from_micros(200 + input % 5 * 100));
    if input.is_multiple_of(7) {
        return Err(JobError(format!("{input} is a multiple of 7")));
    }
    Ok(input * input)
}

#[observe(kind = pool_start, pool = "quickstart", size = workers)]
fn start(workers: usize, queue_capacity: usize) -> std::io::Result<ThreadPool> {
    let (jobs, rx) = mpsc::sync_channel(queue_capacity);
    let rx = Arc::new(Mutex::new(rx));
    let observed = poolscope::Pool::new("quickstart");
    observed.set_size(workers);
    let queued = Arc::new(AtomicUsize::new(0));
    let threads = (0..workers)
        .map(|id| spawn_worker(id, rx.clone(), observed.clone(), queued.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(ThreadPool {
        jobs,
        queued,
        observed,
        threads,
    })
}

impl ThreadPool {
    #[observe(pool = "quickstart", command = "square")]
    fn execute(&self, input: u64) -> Result<u64, JobError> {
        let (reply, answer) = mpsc::channel();
        let depth = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        self.observed.queue_depth(depth);
        if let Err(mpsc::TrySendError::Full(job)) = self.jobs.try_send(Job { input, reply }) {
            self.observed.saturated(depth, 0);
            self.jobs
                .send(job)
                .map_err(|_| JobError("pool stopped".into()))?;
        }
        answer.recv().map_err(|_| JobError("worker gone".into()))?
    }

    fn shutdown(self) {
        drop(self.jobs);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics = poolscope::metrics::install()?;
    let events = Arc::new(Mutex::new(
        std::collections::BTreeMap::<&'static str, usize>::new(),
    ));
    let counts = events.clone();
    let _subscription = poolscope::events::subscribe(move |event| {
        if let Ok(mut counts) = counts.lock() {
            *counts.entry(event.name()).or_default() += 1;
        }
    });

    let pool = start(4, 8)?;
    let callers: Vec<_> = (0..4_u64)
        .map(|caller| {
            let pool = &pool;
            move || {
                (0..50)
                    .map(|i| pool.execute(caller * 50 + i).is_ok())
                    .filter(|ok| *ok)
                    .count()
            }
        })
        .collect();
    let ok: usize = std::thread::scope(|s| {
        let handles: Vec<_> = callers.into_iter().map(|c| s.spawn(c)).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    pool.shutdown();

    // Written, not printed: a closed pipe (`| head`) is an error, not a panic.
    let mut out = std::io::stdout().lock();
    writeln!(out, "# 200 requests, {ok} succeeded")?;
    if !poolscope::COMPILED_IN {
        writeln!(
            out,
            "# poolscope is compiled out: build with `--features observe` to see what it records"
        )?;
        return Ok(());
    }
    if let Ok(counts) = events.lock() {
        for (name, n) in counts.iter() {
            writeln!(out, "# event {name}: {n}")?;
        }
    }
    write!(out, "{}", metrics.render())?;
    Ok(())
}
