//! poolscope's own part of `/metrics`: the call-site series (requests,
//! pool, worker and session starts) and the pools' time saturated, written
//! straight from their statistics rather than through the `metrics`
//! recorder, which has neither per-outcome histograms over shared buckets
//! nor fractional counters. HELP and TYPE lines come from the catalogue,
//! written with the exporter's own formatting helpers.

use std::fmt::Write;

use metrics_exporter_prometheus::formatting::{write_help_line, write_type_line};

use super::series::Series;
use crate::model::catalogue;
use crate::model::stats::SeriesSnapshot;
use crate::model::{Kind, Outcome};

/// The HELP and TYPE lines of the catalogued family `name`.
fn head(out: &mut String, name: &str) {
    match catalogue::find(name) {
        Some(def) => {
            write_help_line(out, def.name, None, None, def.help);
            write_type_line(out, def.name, None, None, def.kind.as_str());
        }
        // A family missing from the catalogue is a bug the catalogue test
        // names; the exposition stays valid without its HELP line.
        None => write_type_line(out, name, None, None, "untyped"),
    }
}

/// The counter and histogram of one kind of observed call; their HELP
/// texts are the catalogue's.
struct Family {
    total: &'static str,
    duration: &'static str,
    has_command: bool,
}

fn family(kind: Kind) -> Family {
    match kind {
        Kind::Request => Family {
            total: "poolscope_requests_total",
            duration: "poolscope_request_duration_seconds",
            has_command: true,
        },
        Kind::PoolStart => Family {
            total: "poolscope_pool_starts_total",
            duration: "poolscope_pool_startup_duration_seconds",
            has_command: false,
        },
        Kind::WorkerStart => Family {
            total: "poolscope_worker_starts_total",
            duration: "poolscope_worker_startup_duration_seconds",
            has_command: false,
        },
        Kind::SessionCreate => Family {
            total: "poolscope_sessions_created_total",
            duration: "poolscope_session_create_duration_seconds",
            has_command: false,
        },
    }
}

/// Appends `value` with Prometheus label-value escaping.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn labels(out: &mut String, base: &str, outcome: Option<Outcome>, le: Option<&str>) {
    out.push('{');
    out.push_str(base);
    if let Some(outcome) = outcome {
        out.push_str(",outcome=\"");
        out.push_str(outcome.as_str());
        out.push('"');
    }
    if let Some(le) = le {
        out.push_str(",le=\"");
        out.push_str(le);
        out.push('"');
    }
    out.push('}');
}

/// `pool="..",command=".."`, escaped once per series per render rather than
/// once per line.
fn base_labels(series: &Series, has_command: bool) -> String {
    let mut base = String::from("pool=\"");
    escape_into(&mut base, series.pool.as_str());
    base.push('"');
    if has_command {
        base.push_str(",command=\"");
        escape_into(&mut base, series.command.as_str());
        base.push('"');
    }
    for (name, value) in series.extra {
        base.push(',');
        base.push_str(name);
        base.push_str("=\"");
        escape_into(&mut base, value);
        base.push('"');
    }
    base
}

/// Appends the Prometheus text exposition of every series.
pub(crate) fn render_series(out: &mut String) {
    let ordered = super::series::registered();
    // `le` values are the same text for every series with the same bounds.
    let mut le_text: Option<(Vec<f64>, Vec<String>)> = None;
    for kind in [
        Kind::Request,
        Kind::PoolStart,
        Kind::WorkerStart,
        Kind::SessionCreate,
    ] {
        let fam = family(kind);
        let of_kind: Vec<(String, SeriesSnapshot)> = ordered
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| (base_labels(s, fam.has_command), s.snapshot()))
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        head(out, fam.total);
        for (base, snapshot) in &of_kind {
            for outcome in Outcome::ALL {
                out.push_str(fam.total);
                labels(out, base, Some(outcome), None);
                let _ = writeln!(out, " {}", snapshot.outcome(outcome).count());
            }
        }
        head(out, fam.duration);
        for (base, snapshot) in &of_kind {
            for outcome in Outcome::ALL {
                let hist = snapshot.outcome(outcome);
                // Outcomes that never happened would add a full set of zero
                // buckets per series; the counter above already reports zero.
                if hist.count() == 0 && outcome != Outcome::Ok {
                    continue;
                }
                if le_text
                    .as_ref()
                    .is_none_or(|(bounds, _)| *bounds != hist.bounds)
                {
                    let text = hist
                        .bounds
                        .iter()
                        .map(f64::to_string)
                        .chain(["+Inf".to_owned()])
                        .collect();
                    le_text = Some((hist.bounds.clone(), text));
                }
                let les = le_text
                    .as_ref()
                    .map(|(_, text)| text.as_slice())
                    .unwrap_or_default();
                let mut cumulative = 0;
                for (count, le) in hist.counts.iter().zip(les) {
                    cumulative += count;
                    out.push_str(fam.duration);
                    out.push_str("_bucket");
                    labels(out, base, Some(outcome), Some(le));
                    let _ = writeln!(out, " {cumulative}");
                }
                out.push_str(fam.duration);
                out.push_str("_sum");
                labels(out, base, Some(outcome), None);
                let _ = writeln!(out, " {}", hist.sum_seconds);
                out.push_str(fam.duration);
                out.push_str("_count");
                labels(out, base, Some(outcome), None);
                let _ = writeln!(out, " {cumulative}");
            }
        }
        if kind == Kind::Request {
            head(out, "poolscope_requests_in_flight");
            for (base, snapshot) in &of_kind {
                out.push_str("poolscope_requests_in_flight");
                labels(out, base, None, None);
                let _ = writeln!(out, " {}", snapshot.in_flight);
            }
        }
    }
}

/// Appends `poolscope_pool_saturated_seconds_total` for every pool: a
/// counter in fractional seconds, which the exporter's integer counters
/// cannot hold.
pub(crate) fn render_pools(out: &mut String) {
    let pools = super::pool::saturated_seconds();
    if pools.is_empty() {
        return;
    }
    let name = "poolscope_pool_saturated_seconds_total";
    head(out, name);
    for (pool, seconds) in pools {
        out.push_str(name);
        out.push_str("{pool=\"");
        escape_into(out, pool.as_str());
        let _ = writeln!(out, "\"}} {seconds}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imp::series::series;
    use crate::interner::Label;

    #[cfg(feature = "metrics")]
    #[test]
    fn renders_cumulative_buckets_and_escaped_labels() {
        let pool = Label::new("render \"test\"\\pool");
        let s = series(Kind::Request, pool, Label::new("cmd\nline"));
        s.start();
        s.record(None, Outcome::Ok, 2_000_000_000);
        let mut out = String::new();
        render_series(&mut out);
        let labels = r#"pool="render \"test\"\\pool",command="cmd\nline""#;
        assert!(
            out.contains(&format!(
                "poolscope_requests_total{{{labels},outcome=\"ok\"}} 1\n"
            )),
            "{out}"
        );
        assert!(out.contains(&format!(
            "poolscope_request_duration_seconds_bucket{{{labels},outcome=\"ok\",le=\"1\"}} 0\n"
        )));
        assert!(out.contains(&format!(
            "poolscope_request_duration_seconds_bucket{{{labels},outcome=\"ok\",le=\"2.5\"}} 1\n"
        )));
        assert!(out.contains(&format!(
            "poolscope_request_duration_seconds_bucket{{{labels},outcome=\"ok\",le=\"+Inf\"}} 1\n"
        )));
        assert!(out.contains(&format!(
            "poolscope_request_duration_seconds_sum{{{labels},outcome=\"ok\"}} 2\n"
        )));
        assert!(out.contains(&format!("poolscope_requests_in_flight{{{labels}}} 0\n")));
        assert_eq!(
            out.matches("# TYPE poolscope_requests_total counter")
                .count(),
            1
        );
    }
}
