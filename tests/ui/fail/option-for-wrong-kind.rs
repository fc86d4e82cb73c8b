use poolscope::observe;

#[observe(size = 4, command = "echo", kind = worker_start)]
fn spawn() {}

fn main() {
    spawn();
}
