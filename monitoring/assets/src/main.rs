//! Writes the monitoring assets generated from poolscope's metric catalogue
//! into `monitoring/` (or the directory given): the Grafana dashboard and
//! the Prometheus recording and alerting rules.

use std::path::PathBuf;

use poolscope::catalogue::{self, MetricKind};

fn main() -> std::process::ExitCode {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("monitoring"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let dashboard = serde_json::to_string_pretty(&poolscope_assets::grafana_dashboard())?;
        std::fs::write(dir.join("poolscope-grafana.json"), dashboard + "\n")?;
        std::fs::write(
            dir.join("poolscope-rules.yml"),
            poolscope_assets::prometheus_rules(),
        )?;
        Ok(())
    };
    match write() {
        Ok(()) => {
            let counters = catalogue::METRICS
                .iter()
                .filter(|m| m.kind == MetricKind::Counter)
                .count();
            println!(
                "wrote {0}/poolscope-grafana.json and {0}/poolscope-rules.yml ({1} metrics in the catalogue, {counters} counters)",
                dir.display(),
                catalogue::METRICS.len()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("assets: cannot write to {}: {err}", dir.display());
            std::process::ExitCode::FAILURE
        }
    }
}
