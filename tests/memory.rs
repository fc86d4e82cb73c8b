//! Memory statistics with jemalloc as this binary's allocator: the gauges
//! follow 100 MiB allocated and freed, the process figures come from /proc,
//! and a pool's worker processes are measured by pid.

use poolscope_testkit as common;
use std::time::Duration;

use poolscope::memory::{self, Jemalloc, MemorySampler};
use poolscope::{Pool, WorkerState};

#[global_allocator]
static GLOBAL: Jemalloc = Jemalloc;

const MIB: u64 = 1 << 20;

#[test]
fn the_gauges_follow_100_mib_allocated_and_freed() {
    let handle = poolscope::metrics::install().expect("recorder");
    let sampler = MemorySampler::start(Duration::from_millis(100)).unwrap();
    let before = memory::jemalloc().expect("jemalloc statistics");
    let mut block = vec![0u8; 100 * MIB as usize];
    // Touch every page so it is resident, not only reserved.
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    let held = memory::jemalloc().unwrap();
    assert!(
        held.allocated >= before.allocated + 100 * MIB,
        "allocated {} -> {}",
        before.allocated,
        held.allocated
    );
    assert!(
        held.active >= held.allocated && held.mapped >= held.active,
        "{held:?}"
    );
    assert!(held.metadata > 0, "{held:?}");
    let process = memory::process(None).unwrap();
    assert!(process.resident_bytes >= 100 * MIB, "{process:?}");

    // A later reading of the sampler, on /metrics.
    let allocated = || {
        common::expect_sample(
            &handle.render(),
            "poolscope_jemalloc_bytes{kind=\"allocated\"}",
        )
    };
    common::eventually("the sampler reads the 100 MiB", || {
        let text = handle.render();
        allocated() >= (100 * MIB) as f64
            && common::expect_sample(&text, "poolscope_process_resident_memory_bytes")
                >= (100 * MIB) as f64
    });
    let text = handle.render();
    assert!(common::expect_sample(&text, "poolscope_process_virtual_memory_bytes") > 0.0);
    for kind in ["active", "resident", "mapped", "retained", "metadata"] {
        common::expect_sample(
            &text,
            &format!("poolscope_jemalloc_bytes{{kind=\"{kind}\"}}"),
        );
    }

    std::hint::black_box(&block);
    drop(block);
    let freed = memory::jemalloc().unwrap();
    assert!(
        freed.allocated + 90 * MIB <= held.allocated,
        "allocated {} after freeing, {} before",
        freed.allocated,
        held.allocated
    );
    common::eventually("the sampler reads the block freed", || {
        allocated() < (50 * MIB) as f64
    });
    // Stopped, the sampler's last reading is both on /metrics and the
    // latest snapshot.
    drop(sampler);
    assert_eq!(
        memory::latest().unwrap().jemalloc.unwrap().allocated as f64,
        allocated()
    );
}

#[test]
fn worker_processes_are_measured_by_pid() {
    /// Killed when dropped, so a failing test leaves no process behind.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Child(
        std::process::Command::new("python3")
            .args([
                "-c",
                "import time; x = bytearray(30 * 1024 * 1024); time.sleep(600)",
            ])
            .spawn()
            .expect("python3"),
    );
    let pool = Pool::new("memory-pool");
    let worker = pool.worker(0);
    worker.set_pid(child.0.id());
    worker.set_state(WorkerState::Available);
    let until = std::time::Instant::now() + common::PATIENCE;
    let measured = loop {
        let snapshot = memory::snapshot();
        let pool = snapshot
            .pools
            .iter()
            .find(|p| p.pool.as_str() == "memory-pool")
            .cloned();
        if let Some(pool) = pool.filter(|p| p.resident_bytes >= 30 * MIB) {
            break pool;
        }
        assert!(std::time::Instant::now() < until, "{snapshot:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(measured.processes, 1);
    drop(child);
    // A dead worker's process is skipped, not an error.
    let snapshot = memory::snapshot();
    let after = snapshot
        .pools
        .iter()
        .find(|p| p.pool.as_str() == "memory-pool")
        .unwrap();
    assert_eq!(after.processes, 0);
    pool.retire();
}
