//! The catalogue's HELP texts and units, handed to the `metrics` recorder:
//! the one place a metric recorded through the `metrics` crate is described
//! (`promtool check metrics` requires a HELP line), so the text on
//! `/metrics` is the catalogue's.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

use crate::model::catalogue::{MetricDef, MetricKind, METRICS};

/// A metric's unit, from its name's suffix as Prometheus's naming
/// conventions put it there.
fn unit(def: &MetricDef) -> Unit {
    let base = def.name.strip_suffix("_total").unwrap_or(def.name);
    if base.ends_with("_seconds") {
        Unit::Seconds
    } else if base.ends_with("_bytes") {
        Unit::Bytes
    } else {
        Unit::Count
    }
}

/// Describes every catalogued metric to the recorder installed now. Cheap
/// enough to call wherever a part starts recording (a pool built, a
/// sampler started), so a recorder installed before that point has every
/// description whichever part it meets first.
pub(crate) fn describe_all() {
    for def in METRICS {
        let (name, unit, help) = (def.name, unit(def), def.help);
        match def.kind {
            MetricKind::Counter => describe_counter!(name, unit, help),
            MetricKind::Gauge => describe_gauge!(name, unit, help),
            MetricKind::Histogram => describe_histogram!(name, unit, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_the_name_suffixes() {
        let of = |name| unit(crate::model::catalogue::find(name).unwrap());
        assert_eq!(of("poolscope_request_duration_seconds"), Unit::Seconds);
        assert_eq!(of("poolscope_pool_saturated_seconds_total"), Unit::Seconds);
        assert_eq!(of("poolscope_jemalloc_bytes"), Unit::Bytes);
        assert_eq!(of("poolscope_workers"), Unit::Count);
    }
}
