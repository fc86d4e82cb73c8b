//! The pool building blocks: the observed queue, the busy guard, jobs whose
//! panic the worker survives, the cheap reads, and the two ways to report a
//! start, each counting once. Every test runs in every build: with no
//! aspect the blocks behave the same and record nothing.

use poolscope_testkit as common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use poolscope::error::Panicked;
use poolscope::events::Event;
use poolscope::{observe, queue, Outcome, Pool, WorkerState};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_queue_reports_depth_at_both_ends_and_the_wait_of_each_item() {
    let pool = Pool::new("bb-depth");
    let (jobs, work) = queue::channel::<u32>(&pool, 4);
    runtime().block_on(async {
        jobs.send(1).await.unwrap();
        jobs.send(2).await.unwrap();
        assert_eq!(pool.queued(), if ANY { 2 } else { 0 });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(work.recv().await, Some(1));
        assert_eq!(pool.queued(), if ANY { 1 } else { 0 });
        assert_eq!(work.recv().await, Some(2));
    });
    assert_eq!(pool.queued(), 0);
    let state = pool_state("bb-depth");
    if ANY {
        let state = state.unwrap();
        assert_eq!(state.queue_capacity, Some(4));
        assert_eq!(state.queue_wait.count(), 2);
        assert!(
            state.queue_wait.sum_seconds >= 0.02,
            "{:?}",
            state.queue_wait
        );
    } else {
        assert!(state.is_none());
    }
}

#[test]
fn a_full_queue_begins_one_saturation_episode_and_an_empty_one_ends_it() {
    let captured = capture("bb-full");
    let pool = Pool::builder("bb-full")
        .with_saturation_hold(Duration::ZERO)
        .build();
    let (jobs, work) = queue::channel::<u32>(&pool, 1);
    jobs.try_send(1).unwrap();
    for i in 2..5 {
        let refused = jobs.try_send(i).unwrap_err();
        assert!(refused.is_full());
        assert_eq!(refused.into_inner(), i);
    }
    assert_eq!(pool.is_saturated(), ANY);
    assert_eq!(work.try_recv(), Some(1));
    assert!(!pool.is_saturated());
    let saturated = captured
        .take()
        .into_iter()
        .filter(|e| matches!(e, Event::PoolSaturated(_)))
        .count();
    assert_eq!(
        saturated,
        usize::from(ANY),
        "one episode, however many refusals"
    );
}

#[test]
fn a_sender_waiting_for_room_is_counted_until_cancelled() {
    let pool = Pool::new("bb-cancel");
    let (jobs, _work) = queue::channel::<u32>(&pool, 1);
    runtime().block_on(async {
        jobs.send(1).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(20), jobs.send(2)).await;
        assert!(waited.is_err(), "the queue is full: the send waits");
    });
    // The cancelled send left; the first item still waits.
    assert_eq!(pool.queued(), usize::from(ANY));
}

#[test]
fn dropping_the_last_receiver_empties_the_depth() {
    let pool = Pool::new("bb-drop");
    let (jobs, work) = queue::channel::<u32>(&pool, 4);
    jobs.try_send(1).unwrap();
    jobs.try_send(2).unwrap();
    let second = work.clone();
    drop(work);
    assert_eq!(pool.queued(), if ANY { 2 } else { 0 }, "a receiver is left");
    drop(second);
    assert_eq!(pool.queued(), 0);
    assert!(jobs.is_closed());
    assert!(jobs.send_blocking(3).is_err());
}

#[observe(pool = "bb-rejected", command = "submit")]
fn submit(jobs: &queue::Sender<u32>, job: u32) -> Result<(), queue::TrySendError<u32>> {
    jobs.try_send(job)
}

#[test]
fn a_refused_send_is_the_outcome_rejected() {
    let pool = Pool::new("bb-rejected");
    let (jobs, _work) = queue::channel::<u32>(&pool, 1);
    submit(&jobs, 1).unwrap();
    assert!(submit(&jobs, 2).is_err());
    let counts = all_outcome_counts("bb-rejected", "submit");
    if TIMING {
        assert_eq!(counts[Outcome::Ok.index()], 1);
        assert_eq!(counts[Outcome::Rejected.index()], 1);
    } else {
        assert_eq!(counts, [0; Outcome::COUNT]);
    }
}

#[test]
fn threads_share_one_queue_and_each_item_is_taken_once() {
    let pool = Pool::new("bb-threads");
    let (jobs, work) = queue::channel::<u32>(&pool, 2);
    let taken = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let work = work.clone();
            let taken = taken.clone();
            std::thread::spawn(move || {
                while let Some(item) = work.recv_blocking() {
                    taken.lock().unwrap().push(item);
                }
            })
        })
        .collect();
    drop(work);
    for i in 0..100 {
        jobs.send_blocking(i).unwrap();
    }
    jobs.close();
    for worker in workers {
        worker.join().unwrap();
    }
    let mut taken = taken.lock().unwrap().clone();
    taken.sort_unstable();
    assert_eq!(taken, (0..100).collect::<Vec<_>>());
    assert_eq!(pool.queued(), 0);
}

#[test]
fn the_busy_guard_restores_available_and_a_panic_leaves_crashed() {
    let pool = Pool::new("bb-guard");
    let worker = pool.worker(1);
    worker.set_state(WorkerState::Available);
    {
        let _busy = worker.busy();
        assert_eq!(
            (pool.busy(), pool.available()),
            if ANY { (1, 0) } else { (0, 0) }
        );
    }
    assert_eq!(pool.available(), usize::from(ANY));
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _busy = worker.busy();
        panic!("the job took its worker down");
    }));
    assert!(unwound.is_err());
    if ANY {
        assert_eq!(worker.state(), WorkerState::Crashed);
        assert_eq!(pool.available(), 0);
    }
    // A state the job set itself is left as it is.
    worker.set_state(WorkerState::Available);
    {
        let _busy = worker.busy();
        worker.set_state(WorkerState::Stopped);
    }
    if ANY {
        assert_eq!(worker.state(), WorkerState::Stopped);
    }
}

#[observe(pool = "bb-run", command = "job")]
fn job(worker: &poolscope::Worker, input: u32) -> Result<u32, Panicked> {
    worker.run(|| {
        assert!(input != 13, "unlucky {input}");
        input * 2
    })
}

#[test]
fn a_panicking_job_is_the_outcome_panic_and_its_worker_lives_on() {
    let captured = capture("bb-run");
    let pool = Pool::new("bb-run");
    let worker = pool.worker(1);
    worker.set_state(WorkerState::Available);
    assert_eq!(job(&worker, 2), Ok(4));
    let panicked = job(&worker, 13).unwrap_err();
    assert_eq!(panicked.message, "unlucky 13");
    assert_eq!(job(&worker, 3), Ok(6), "the worker took the next job");
    assert_eq!(pool.available(), usize::from(ANY));
    if TIMING {
        let counts = all_outcome_counts("bb-run", "job");
        assert_eq!(counts[Outcome::Ok.index()], 2);
        assert_eq!(counts[Outcome::Panic.index()], 1);
    }
    if ERRORS {
        let events = captured.take();
        let failed = completions(&events)
            .into_iter()
            .find(|c| c.outcome != Outcome::Ok)
            .expect("the panic's completion");
        assert_eq!(failed.outcome, Outcome::Panic);
        let error = failed.error.as_ref().unwrap();
        assert_eq!(error.message, "unlucky 13");
        assert!(
            error
                .location
                .as_deref()
                .is_some_and(|l| l.contains("building_blocks.rs")),
            "{error:?}"
        );
    }
}

#[test]
fn an_async_job_that_panics_comes_back_as_panicked() {
    let pool = Pool::new("bb-async");
    let worker = pool.worker(1);
    worker.set_state(WorkerState::Available);
    runtime().block_on(async {
        let ok = worker
            .run_async(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                5
            })
            .await;
        assert_eq!(ok, Ok(5));
        let failed = worker
            .run_async(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                panic!("after an await")
            })
            .await;
        let failed: Result<(), _> = failed;
        assert_eq!(failed.unwrap_err().message, "after an await");
    });
    assert_eq!(
        worker.state(),
        if ANY {
            WorkerState::Available
        } else {
            WorkerState::Stopped
        }
    );
}

#[test]
fn the_pool_reads_what_it_tracks() {
    let pool = Pool::new("bb-reads");
    pool.set_size(3);
    pool.queue_depth(2);
    let workers: Vec<_> = (0..3).map(|i| pool.worker(i)).collect();
    workers[0].set_state(WorkerState::Available);
    workers[1].set_state(WorkerState::Busy);
    let reads = (pool.size(), pool.queued(), pool.available(), pool.busy());
    assert_eq!(reads, if ANY { (3, 2, 1, 1) } else { (0, 0, 0, 0) });
}

#[observe(kind = pool_start, pool = "bb-attr", size = workers)]
fn start_pool(workers: usize) -> Pool {
    Pool::new("bb-attr")
}

#[observe(kind = worker_start, pool = "bb-attr", worker = id, skip(pool))]
fn start_worker(id: u32, pool: &Pool) -> Result<poolscope::Worker, std::io::Error> {
    Ok(pool.worker(id))
}

#[test]
fn the_attribute_sets_the_size_and_state_it_implies_and_counts_once() {
    let pool = start_pool(2);
    let workers: Vec<_> = (0..2).map(|i| start_worker(i, &pool).unwrap()).collect();
    if ANY {
        assert_eq!(pool.size(), 2);
        assert!(workers.iter().all(|w| w.state() == WorkerState::Available));
        assert_eq!(pool.available(), 2);
    }
    let starts = poolscope::stats::series(poolscope::Kind::WorkerStart, "bb-attr", "");
    if TIMING {
        assert_eq!(starts.unwrap().by_outcome[Outcome::Ok.index()].count(), 2);
    }
}

#[observe(kind = worker_start, pool = "bb-both", worker = id)]
fn spawn_only(id: u32) -> Result<(), std::io::Error> {
    Ok(())
}

#[test]
fn each_way_to_report_a_start_counts_once_and_both_are_reported() {
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let pool = Pool::new("bb-both");
    tracing::subscriber::with_default(subscriber, || {
        // The attribute first, the handle after (it begins available)...
        spawn_only(1).unwrap();
        let first = pool.worker(1);
        assert_eq!(
            first.state(),
            if ANY {
                WorkerState::Available
            } else {
                WorkerState::Stopped
            }
        );
        // ...then `started` on it too: reported, not counted.
        first.started(Some(4242), Duration::from_millis(3));
        // The call alone counts once.
        pool.worker(2).started(None, Duration::from_millis(3));
        // The call first, then the attribute on the same worker.
        let third = pool.worker(3);
        third.started(None, Duration::from_millis(3));
        spawn_only(3).unwrap();
        drop((first, third));
    });
    let text = logs.text();
    if ANY {
        let warnings: Vec<_> = text
            .lines()
            .filter(|l| l.contains("reported twice"))
            .collect();
        assert_eq!(warnings.len(), 2, "{text}");
        assert!(warnings[0].contains("worker 1 of pool bb-both"), "{text}");
        assert!(
            warnings[0].contains("building_blocks.rs:"),
            "names the call site: {text}"
        );
        assert!(
            warnings[0].contains("spawn_only"),
            "names the attribute's function: {text}"
        );
        assert!(warnings[1].contains("worker 3 of pool bb-both"), "{text}");
    } else {
        assert!(text.is_empty(), "{text}");
    }
    if TIMING {
        let starts = poolscope::stats::series(poolscope::Kind::WorkerStart, "bb-both", "").unwrap();
        // Worker 1 once (attribute), worker 2 once (call), worker 3 twice:
        // the attribute's count comes before it can know.
        assert_eq!(starts.by_outcome[Outcome::Ok.index()].count(), 4);
    }
}
