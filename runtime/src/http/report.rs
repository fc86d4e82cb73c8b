//! The bodies of `/health`, `/health/ready` and `/health/detailed`, as JSON;
//! the dashboard shows the same pool reports.

use serde::Serialize;

use super::health::{Check, WindowStats};
use crate::model::stats::PoolSnapshot;

/// `/health`.
#[derive(Serialize)]
pub(crate) struct Liveness {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: f64,
}

/// `/health/ready`.
#[derive(Serialize)]
pub(crate) struct Readiness {
    pub status: &'static str,
    pub failed: Vec<Check>,
    pub checks: Vec<Check>,
}

/// `/health/detailed`.
#[derive(Serialize)]
pub(crate) struct Detailed {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_seconds: f64,
    pub window_seconds: f64,
    pub memory: MemoryReport,
    pub pools: Vec<PoolReport>,
    pub checks: Vec<Check>,
}

/// This process's memory, from the memory sampler's last reading when one
/// runs, else read now.
#[derive(Serialize, Debug, Default)]
pub(crate) struct MemoryReport {
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub jemalloc: Option<crate::memory::JemallocStats>,
}

impl MemoryReport {
    pub(crate) fn now() -> MemoryReport {
        let (process, jemalloc) = match crate::memory::latest() {
            Some(latest) => (latest.process, latest.jemalloc),
            None => (crate::memory::process(None), crate::memory::jemalloc()),
        };
        MemoryReport {
            resident_bytes: process.map(|p| p.resident_bytes),
            virtual_bytes: process.map(|p| p.virtual_bytes),
            jemalloc,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct PoolReport {
    pub pool: String,
    pub size: Option<u64>,
    pub workers: Option<Workers>,
    pub worker_list: Option<Vec<WorkerItem>>,
    pub queue_depth: Option<u64>,
    pub in_flight: u64,
    pub requests_total: u64,
    pub requests_by_outcome: Outcomes,
    pub request_rate: f64,
    pub error_rate: Option<f64>,
    pub latency_seconds: Latency,
    pub saturations_total: Option<u64>,
    pub crashes_total: Option<u64>,
    pub sessions: Option<Sessions>,
    /// The pool's worker processes' resident size, summed, from the memory
    /// sampler's last reading (`null` without a sampler or without pids).
    pub workers_resident_bytes: Option<u64>,
    /// Busy time over wall time times workers, over the window (0 to 1).
    pub utilization: Option<f64>,
    /// Queue wait percentiles over the window (`Pool::queue_wait`).
    pub queue_wait_seconds: Percentiles,
    /// Time in worker (busy period) percentiles over the window.
    pub time_in_worker_seconds: Percentiles,
    pub window: WindowCounts,
}

#[derive(Serialize)]
pub(crate) struct Workers {
    pub starting: u64,
    pub available: u64,
    pub busy: u64,
    pub crashed: u64,
    pub stopped: u64,
}

#[derive(Serialize)]
pub(crate) struct WorkerItem {
    pub id: String,
    pub state: &'static str,
    pub uptime_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

#[derive(Serialize)]
pub(crate) struct Outcomes {
    pub ok: u64,
    pub error: u64,
    pub panic: u64,
    pub cancelled: u64,
    pub timeout: u64,
    pub rejected: u64,
}

#[derive(Serialize)]
pub(crate) struct Latency {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
}

#[derive(Serialize)]
pub(crate) struct Sessions {
    pub active: u64,
    pub expired_total: u64,
}

#[derive(Serialize)]
pub(crate) struct WindowCounts {
    pub seconds: f64,
    pub requests: u64,
    pub failed: u64,
    pub saturations: u64,
    pub crashes: u64,
    pub queue_waits: u64,
}

impl PoolReport {
    pub(crate) fn new(pool: &PoolSnapshot, window: &WindowStats) -> PoolReport {
        let by_outcome = pool
            .requests
            .as_ref()
            .map_or([0; crate::Outcome::COUNT], |r| r.by_outcome);
        let state = pool.state.as_ref();
        PoolReport {
            pool: pool.pool.as_str().to_owned(),
            size: state.map(|s| s.size),
            workers: state.map(|s| Workers {
                starting: s.workers.starting,
                available: s.workers.available,
                busy: s.workers.busy,
                crashed: s.workers.crashed,
                stopped: s.workers.stopped,
            }),
            worker_list: state.map(|s| {
                s.worker_list
                    .iter()
                    .map(|w| WorkerItem {
                        id: w.id.clone(),
                        state: w.state.as_str(),
                        uptime_seconds: w.uptime.as_secs_f64(),
                        pid: w.pid,
                    })
                    .collect()
            }),
            queue_depth: state.map(|s| s.queue_depth),
            in_flight: pool.requests.as_ref().map_or(0, |r| r.in_flight),
            requests_total: by_outcome.iter().sum(),
            requests_by_outcome: Outcomes {
                ok: by_outcome[0],
                error: by_outcome[1],
                panic: by_outcome[2],
                cancelled: by_outcome[3],
                timeout: by_outcome[4],
                rejected: by_outcome[5],
            },
            request_rate: window.request_rate,
            error_rate: window.error_rate,
            latency_seconds: Latency {
                p50: window.p50,
                p90: window.p90,
                p99: window.p99,
                p999: window.p999,
            },
            saturations_total: state.map(|s| s.saturations),
            crashes_total: state.map(|s| s.crashes),
            sessions: state.map(|s| Sessions {
                active: s.sessions_active,
                expired_total: s.sessions_expired,
            }),
            workers_resident_bytes: crate::memory::latest().and_then(|m| {
                m.pools
                    .iter()
                    .find(|p| p.pool == pool.pool)
                    .map(|p| p.resident_bytes)
            }),
            utilization: window.utilization,
            queue_wait_seconds: Percentiles {
                p50: window.queue_wait_p50,
                p99: window.queue_wait_p99,
            },
            time_in_worker_seconds: Percentiles {
                p50: window.time_in_worker_p50,
                p99: window.time_in_worker_p99,
            },
            window: WindowCounts {
                seconds: window.seconds,
                requests: window.requests,
                failed: window.failed,
                saturations: window.saturations,
                crashes: window.crashes,
                queue_waits: window.queue_waits,
            },
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Percentiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}
