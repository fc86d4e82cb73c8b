//! The chart: per pool, one point a second of requests per second and p99,
//! computed from consecutive samples of the call-site series.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::unix_ms;
use crate::interner::Label;
use crate::model::stats::{HistogramSnapshot, PoolSnapshot};

/// The chart gets one point a second.
pub(super) const CHART_STEP: Duration = Duration::from_secs(1);

/// One second of the chart; sent as `[unix ms, requests/s, p99 or null]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChartPoint {
    pub(super) seq: u64,
    at_ms: u64,
    rate: f64,
    p99: Option<f64>,
}

impl Serialize for ChartPoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.at_ms, self.rate, self.p99).serialize(serializer)
    }
}

/// Per-pool points of the chart, one a second.
pub(super) struct Chart {
    next_point: u64,
    span: Duration,
    pools: HashMap<Label, PoolChart>,
}

struct PoolChart {
    last: Option<(Instant, u64, HistogramSnapshot)>,
    points: VecDeque<ChartPoint>,
}

impl Chart {
    pub(super) fn new(span: Duration) -> Chart {
        Chart {
            next_point: 0,
            span,
            pools: HashMap::new(),
        }
    }

    pub(super) fn record(&mut self, now: Instant, wall: SystemTime, pools: &[PoolSnapshot]) {
        let keep = (self.span.as_secs() / CHART_STEP.as_secs()).max(1) as usize;
        for pool in pools {
            let Some(requests) = &pool.requests else {
                continue;
            };
            let entry = self.pools.entry(pool.pool).or_insert_with(|| PoolChart {
                last: None,
                points: VecDeque::new(),
            });
            let count = requests.completed();
            if let Some((then, then_count, then_durations)) = &entry.last {
                let seconds = now.duration_since(*then).as_secs_f64();
                if seconds > 0.0 {
                    let rate = count.saturating_sub(*then_count) as f64 / seconds;
                    let p99 = requests
                        .durations
                        .since(then_durations)
                        .and_then(|d| d.quantile(0.99));
                    self.next_point += 1;
                    entry.points.push_back(ChartPoint {
                        seq: self.next_point,
                        at_ms: unix_ms(wall),
                        rate,
                        p99,
                    });
                    while entry.points.len() > keep {
                        entry.points.pop_front();
                    }
                }
            }
            entry.last = Some((now, count, requests.durations.clone()));
        }
    }

    pub(super) fn series(&self, pool: &str) -> Vec<ChartPoint> {
        self.pools
            .iter()
            .find(|(label, _)| label.as_str() == pool)
            .map(|(_, chart)| chart.points.iter().copied().collect())
            .unwrap_or_default()
    }
}
