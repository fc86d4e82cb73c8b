//! A variable used only in an argument expression is used, and a pool
//! named by a constant is a label known before the call, in every build.
#![deny(warnings)]

use std::time::Duration;

use poolscope::observe;

const POOL: &str = "python";
const COMMAND: &str = "echo";

mod pools {
    pub static BACKGROUND: &str = "background";
}

#[observe(kind = worker_start, pool = POOL, worker = id)]
fn start_worker(id: u32) {}

#[observe(pool = POOL, command = COMMAND, correlation = request_id)]
fn execute(request_id: &str, payload: &str) -> usize {
    payload.len()
}

#[observe(pool = pools::BACKGROUND, worker = format!("bg-{n}"))]
fn background(n: u8) {}

#[observe(kind = pool_start, pool = POOL, size = workers)]
fn start_pool(workers: usize) {}

#[observe(kind = session_create, pool = POOL, ttl = Duration::from_secs(secs))]
fn create_session(secs: u64) {}

fn main() {
    start_worker(1);
    assert_eq!(execute("00f067aa0ba902b7", "hi"), 2);
    background(3);
    start_pool(4);
    create_session(30);
}
