//! Argument expressions are type-checked in every build: with no aspect
//! compiled in, too, where nothing would evaluate them.
use poolscope::observe;

struct NotDisplay;

#[observe(kind = worker_start, worker = wid)]
fn start_worker(id: u32) {}

#[observe(kind = worker_start, worker = NotDisplay)]
fn start_opaque() {}

#[observe(pool = pool_name, command = 42_u8)]
fn execute(pool: &str) {}

#[observe(kind = session_create, ttl = 30)]
fn create_session() {}

fn main() {
    start_worker(1);
    start_opaque();
    execute("p");
    create_session();
}
