//! The log sink: every poolscope event becomes one `tracing` event, at the
//! level its severity calls for, with the same fields in the same order.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::events::Subscription;
use crate::model::correlation::CorrelationId;
use crate::model::error::{ErrorContext, PythonFrame, PythonTraceback};
use crate::model::events::Interest;
use crate::model::events::{Event, Field};
use crate::model::Outcome;
use crate::seam::subscribe_with;

pub(crate) fn subscribe() -> Subscription {
    subscribe_with(Interest::Logs, Arc::new(log))
}

fn id(id: Option<CorrelationId>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// Milliseconds, or `None` (the field is left out) when not measured.
fn millis(duration: Option<std::time::Duration>) -> Option<f64> {
    duration.map(|d| d.as_secs_f64() * 1e3)
}

fn args(fields: &[Field]) -> String {
    if fields.is_empty() {
        return String::new();
    }
    let map: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect();
    Value::Object(map).to_string()
}

fn frames(frames: &[PythonFrame]) -> Value {
    frames
        .iter()
        .map(|f| {
            let mut frame = json!({ "file": f.file, "line": f.line, "function": f.function, "source": f.source });
            if f.repeated > 0 {
                frame["repeated"] = json!(f.repeated);
            }
            frame
        })
        .collect()
}

/// A Python exception: the traceback text only at the top (it holds the
/// members' text already).
fn python_json(py: &PythonTraceback, top: bool) -> Value {
    let chain: Vec<Value> = py
        .chain
        .iter()
        .map(|c| json!({ "relation": format!("{:?}", c.relation).to_lowercase(), "type": c.exception_type, "message": c.message, "frames": frames(&c.frames) }))
        .collect();
    let mut out = json!({ "type": py.exception_type, "message": py.message, "frames": frames(&py.frames), "chain": chain });
    if !py.notes.is_empty() {
        out["notes"] = json!(py.notes);
    }
    if !py.exceptions.is_empty() || py.more_exceptions > 0 {
        let members: Vec<Value> = py
            .exceptions
            .iter()
            .map(|e| python_json(e, false))
            .collect();
        out["exceptions"] = Value::Array(members);
        out["more_exceptions"] = json!(py.more_exceptions);
    }
    if let Some(thread) = &py.thread {
        out["thread"] = json!(thread);
    }
    if top {
        out["traceback"] = json!(py.formatted);
    }
    out
}

/// The `error` object of a line.
pub(crate) fn error_json(error: &ErrorContext) -> Value {
    let mut object = json!({
        "kind": error.kind.as_str(),
        "type": error.type_name,
        "message": error.message,
    });
    let map = object.as_object_mut().expect("a JSON object literal");
    if !error.chain.is_empty() {
        map.insert("chain".into(), json!(error.chain));
    }
    if let Some(location) = &error.location {
        map.insert("location".into(), json!(location));
    }
    if let Some(py) = &error.python {
        map.insert("python".into(), python_json(py, true));
    }
    if let Some(grpc) = &error.grpc {
        map.insert(
            "grpc".into(),
            json!({
                "code": grpc.code,
                "code_name": grpc.code_name,
                "message": grpc.message,
                "details": grpc.details,
                "metadata": grpc.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<Map<String, Value>>(),
            }),
        );
    }
    if let Some(crash) = &error.crash {
        map.insert(
            "crash".into(),
            json!({
                "pid": crash.pid,
                "exit_code": crash.exit_code,
                "signal": crash.signal,
                "core_dumped": crash.core_dumped,
                "stderr_tail": crash.stderr_tail,
                "uptime_seconds": crash.uptime.map(|u| u.as_secs_f64()),
                "last_command": crash.last_command,
                "in_flight": crash.in_flight,
                "stack": frames(&crash.stack),
                "resident_bytes": crash.resident_bytes,
                "host": crash.host,
            }),
        );
    }
    object
}

fn error_text(error: Option<&ErrorContext>) -> String {
    error.map(|e| error_json(e).to_string()).unwrap_or_default()
}

fn log(event: &Event) {
    match event {
        Event::RequestStarted(_) | Event::RequestCompleted(_) => request(event),
        Event::PoolStarted(_) | Event::PoolSaturated(_) | Event::PoolSaturationEnded(_) => {
            pool(event)
        }
        Event::WorkerStarted(_) | Event::WorkerCrashed(_) => worker(event),
        Event::SessionCreated(_) | Event::SessionCleanup(_) => session(event),
        Event::AlertFired(_) | Event::AlertResolved(_) => alert(event),
    }
}

/// A request event's line (target `poolscope::request`).
fn request(event: &Event) {
    match event {
        Event::RequestStarted(e) => tracing::info!(
            target: "poolscope::request",
            event = "request.started",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            command = %e.command,
            name = e.name,
            worker = e.worker.as_deref().unwrap_or_default(),
            args = %args(&e.args),
            "request started"
        ),
        Event::RequestCompleted(e) if e.outcome == Outcome::Ok => tracing::info!(
            target: "poolscope::request",
            event = "request.completed",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            command = %e.command,
            name = e.name,
            worker = e.worker.as_deref().unwrap_or_default(),
            outcome = e.outcome.as_str(),
            duration_ms = millis(e.duration),
            "request completed"
        ),
        Event::RequestCompleted(e) => tracing::error!(
            target: "poolscope::request",
            event = "request.completed",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            command = %e.command,
            name = e.name,
            worker = e.worker.as_deref().unwrap_or_default(),
            outcome = e.outcome.as_str(),
            duration_ms = millis(e.duration),
            error = %error_text(e.error.as_ref()),
            args = %args(&e.args),
            "request failed: {}",
            e.error.as_ref().map_or(e.outcome.as_str(), |err| err.message.as_str())
        ),
        _ => {}
    }
}

/// A pool event's line (target `poolscope::pool`).
fn pool(event: &Event) {
    match event {
        Event::PoolStarted(e) if e.outcome == Outcome::Ok => tracing::info!(
            target: "poolscope::pool",
            event = "pool.started",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            size = e.size,
            startup_ms = millis(e.startup),
            args = %args(&e.config),
            "pool started"
        ),
        Event::PoolStarted(e) => tracing::error!(
            target: "poolscope::pool",
            event = "pool.started",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            outcome = e.outcome.as_str(),
            error = %error_text(e.error.as_ref()),
            "pool failed to start"
        ),
        Event::PoolSaturated(e) => tracing::warn!(
            target: "poolscope::pool",
            event = "pool.saturated",
            pool = %e.pool,
            queue_size = e.queue_size,
            available_workers = e.available_workers,
            "pool saturated"
        ),
        Event::PoolSaturationEnded(e) => tracing::info!(
            target: "poolscope::pool",
            event = "pool.saturation_ended",
            pool = %e.pool,
            duration_ms = e.duration.as_secs_f64() * 1e3,
            peak_queue_size = e.peak_queue_size,
            "pool saturation ended"
        ),
        _ => {}
    }
}

/// A worker event's line (target `poolscope::worker`).
fn worker(event: &Event) {
    match event {
        Event::WorkerStarted(e) if e.outcome == Outcome::Ok => tracing::info!(
            target: "poolscope::worker",
            event = "worker.started",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            worker = e.worker.as_deref().unwrap_or_default(),
            pid = e.pid,
            startup_ms = millis(e.startup),
            "worker started"
        ),
        Event::WorkerStarted(e) => tracing::error!(
            target: "poolscope::worker",
            event = "worker.started",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            worker = e.worker.as_deref().unwrap_or_default(),
            outcome = e.outcome.as_str(),
            error = %error_text(e.error.as_ref()),
            "worker failed to start"
        ),
        Event::WorkerCrashed(e) => tracing::error!(
            target: "poolscope::worker",
            event = "worker.crashed",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            worker = e.worker.as_str(),
            uptime_ms = millis(e.uptime),
            error = %error_text(Some(&e.error)),
            "worker crashed: {}",
            e.reason
        ),
        _ => {}
    }
}

/// A session event's line (target `poolscope::session`).
fn session(event: &Event) {
    match event {
        Event::SessionCreated(e) => tracing::info!(
            target: "poolscope::session",
            event = "session.created",
            correlation_id = %id(e.correlation_id),
            pool = %e.pool,
            session_id = e.session_id.as_deref().unwrap_or_default(),
            ttl_ms = millis(e.ttl),
            outcome = e.outcome.as_str(),
            args = %args(&e.metadata),
            "session created"
        ),
        Event::SessionCleanup(e) => tracing::info!(
            target: "poolscope::session",
            event = "session.cleanup",
            pool = %e.pool,
            count = e.count,
            duration_ms = e.duration.as_secs_f64() * 1e3,
            "sessions cleaned up"
        ),
        _ => {}
    }
}

/// An alert event's line (target `poolscope::alert`).
fn alert(event: &Event) {
    match event {
        Event::AlertFired(e) => tracing::warn!(
            target: "poolscope::alert",
            event = "alert.fired",
            rule = e.rule.as_str(),
            pool = %e.pool.map(|p| p.as_str()).unwrap_or_default(),
            value = e.value,
            threshold = e.threshold,
            "alert fired: {}",
            e.rule
        ),
        Event::AlertResolved(e) => tracing::info!(
            target: "poolscope::alert",
            event = "alert.resolved",
            rule = e.rule.as_str(),
            pool = %e.pool.map(|p| p.as_str()).unwrap_or_default(),
            value = e.value,
            threshold = e.threshold,
            "alert resolved: {}",
            e.rule
        ),
        _ => {}
    }
}
