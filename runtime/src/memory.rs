//! Memory: the process's resident and virtual size (from `/proc`), the
//! allocator's own statistics when jemalloc is the global allocator (feature
//! `jemalloc`), and the resident size of each pool's worker processes.
//!
//! A [`MemorySampler`] reads them on a timer and exports them as gauges;
//! [`latest`] hands the last reading to the health endpoints and the
//! dashboard without reading again.
//!
//! With the `jemalloc` feature, making jemalloc the allocator is one line in
//! the application's `main.rs`:
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: poolscope::memory::Jemalloc = poolscope::memory::Jemalloc;
//! ```

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

#[cfg(feature = "jemalloc")]
pub use tikv_jemallocator::Jemalloc;

use crate::interner::Label;

/// Resident and virtual size of one process, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident set size (`VmRSS`).
    pub resident_bytes: u64,
    /// Virtual memory size (`VmSize`).
    pub virtual_bytes: u64,
}

/// jemalloc's statistics, in bytes (see jemalloc's `stats.*` mallctls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "http", derive(serde::Serialize))]
pub struct JemallocStats {
    /// Bytes the application holds (`stats.allocated`).
    pub allocated: u64,
    /// Bytes in active pages: allocated plus fragmentation (`stats.active`).
    pub active: u64,
    /// Bytes in physically resident pages the allocator maps (`stats.resident`).
    pub resident: u64,
    /// Bytes in chunks mapped by the allocator (`stats.mapped`).
    pub mapped: u64,
    /// Bytes unmapped but retained for reuse (`stats.retained`).
    pub retained: u64,
    /// Bytes of the allocator's own metadata (`stats.metadata`).
    pub metadata: u64,
}

/// The worker processes of one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolMemory {
    /// The pool.
    pub pool: Label,
    /// Workers whose process could be read.
    pub processes: u64,
    /// Their resident sizes, summed.
    pub resident_bytes: u64,
}

/// One reading.
#[derive(Clone, Debug, PartialEq)]
pub struct MemorySnapshot {
    /// When it was taken.
    pub at: SystemTime,
    /// This process; `None` where `/proc` cannot be read.
    pub process: Option<ProcessMemory>,
    /// The allocator's statistics; `None` without the `jemalloc` feature.
    pub jemalloc: Option<JemallocStats>,
    /// Worker processes, per pool, for workers whose pid was reported
    /// ([`Worker::set_pid`](crate::Worker::set_pid)).
    pub pools: Vec<PoolMemory>,
}

/// Reads `/proc/<pid>/status` (`None`: this process).
pub fn process(pid: Option<u32>) -> Option<ProcessMemory> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        })
    };
    Some(ProcessMemory {
        resident_bytes: field("VmRSS")?,
        // Kernel threads and zombies have no VmSize; a live process has both.
        virtual_bytes: field("VmSize").unwrap_or(0),
    })
}

/// Reads jemalloc's statistics, advancing its epoch first so they are
/// current. `None` without the `jemalloc` feature or if a read fails.
pub fn jemalloc() -> Option<JemallocStats> {
    #[cfg(feature = "jemalloc")]
    {
        use tikv_jemalloc_ctl::{epoch, stats};
        epoch::advance().ok()?;
        Some(JemallocStats {
            allocated: stats::allocated::read().ok()? as u64,
            active: stats::active::read().ok()? as u64,
            resident: stats::resident::read().ok()? as u64,
            mapped: stats::mapped::read().ok()? as u64,
            retained: stats::retained::read().ok()? as u64,
            metadata: stats::metadata::read().ok()? as u64,
        })
    }
    #[cfg(not(feature = "jemalloc"))]
    None
}

/// Takes a reading now: this process, the allocator, every pool's workers.
pub fn snapshot() -> MemorySnapshot {
    let pools = crate::stats::pools()
        .into_iter()
        .filter_map(|pool| {
            let state = pool.state?;
            let pids: Vec<u32> = state.worker_list.iter().filter_map(|w| w.pid).collect();
            if pids.is_empty() {
                return None;
            }
            let mut memory = PoolMemory {
                pool: pool.pool,
                processes: 0,
                resident_bytes: 0,
            };
            let mut readings = Vec::with_capacity(pids.len());
            for pid in pids {
                // A worker that just died has no /proc entry: skipped.
                if let Some(p) = process(Some(pid)) {
                    memory.processes += 1;
                    memory.resident_bytes += p.resident_bytes;
                    readings.push((pid, p.resident_bytes));
                }
            }
            // Compiled out, no worker handle keeps anything.
            crate::seam::note_resident(pool.pool, &readings);
            Some(memory)
        })
        .collect();
    MemorySnapshot {
        at: SystemTime::now(),
        process: process(None),
        jemalloc: jemalloc(),
        pools,
    }
}

static LATEST: Mutex<Option<Arc<MemorySnapshot>>> = Mutex::new(None);

/// The last reading a [`MemorySampler`] took, if one runs.
pub fn latest() -> Option<Arc<MemorySnapshot>> {
    LATEST.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// What can go wrong starting a sampler.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The period is out of range.
    #[error("memory sampler period is {0:?}: it must be between 100 ms and 1 h")]
    Period(Duration),
    /// The sampler's thread could not start.
    #[error("cannot start the memory sampler thread: {0}")]
    Thread(String),
}

/// Samples memory on a thread of its own until dropped.
#[derive(Debug)]
pub struct MemorySampler {
    // Dropping the sender wakes the thread at once.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MemorySampler {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl MemorySampler {
    /// Reads memory every `every` (at least 100 ms) and exports it:
    /// `poolscope_process_resident_memory_bytes`,
    /// `poolscope_process_virtual_memory_bytes`,
    /// `poolscope_jemalloc_bytes{kind}` (with jemalloc) and
    /// `poolscope_pool_workers_resident_bytes{pool}`. The first reading is
    /// taken before this returns.
    ///
    /// # Errors
    ///
    /// [`MemoryError::Period`] for a period out of range,
    /// [`MemoryError::Thread`] if the thread cannot start.
    pub fn start(every: Duration) -> Result<MemorySampler, MemoryError> {
        if every < Duration::from_millis(100) || every > Duration::from_secs(3600) {
            return Err(MemoryError::Period(every));
        }
        crate::describe::describe_all();
        sample();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("poolscope-memory".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    sample();
                }
            })
            .map_err(|e| MemoryError::Thread(e.to_string()))?;
        Ok(MemorySampler {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Takes a reading, exports it, and keeps it as the latest.
fn sample() {
    let snapshot = snapshot();
    if let Some(process) = snapshot.process {
        metrics::gauge!("poolscope_process_resident_memory_bytes")
            .set(process.resident_bytes as f64);
        metrics::gauge!("poolscope_process_virtual_memory_bytes").set(process.virtual_bytes as f64);
    }
    if let Some(j) = snapshot.jemalloc {
        for (kind, value) in [
            ("allocated", j.allocated),
            ("active", j.active),
            ("resident", j.resident),
            ("mapped", j.mapped),
            ("retained", j.retained),
            ("metadata", j.metadata),
        ] {
            metrics::gauge!("poolscope_jemalloc_bytes", "kind" => kind).set(value as f64);
        }
    }
    for pool in &snapshot.pools {
        metrics::gauge!("poolscope_pool_workers_resident_bytes", "pool" => pool.pool.as_str())
            .set(pool.resident_bytes as f64);
    }
    *LATEST.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(snapshot));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_and_a_virtual_size() {
        let me = process(None).expect("/proc/self/status");
        assert!(me.resident_bytes > 1 << 20, "{me:?}");
        assert!(me.virtual_bytes >= me.resident_bytes, "{me:?}");
        let by_pid = process(Some(std::process::id())).unwrap();
        assert!(by_pid.resident_bytes > 0);
    }

    #[test]
    fn a_missing_process_reads_as_none() {
        assert_eq!(process(Some(u32::MAX)), None);
    }

    #[test]
    fn periods_out_of_range_are_refused() {
        assert!(matches!(
            MemorySampler::start(Duration::from_millis(1)),
            Err(MemoryError::Period(_))
        ));
    }
}
