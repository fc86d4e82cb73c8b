use poolscope::observe;

#[observe(kind = worker_strat)]
fn spawn() {}

fn main() {
    spawn();
}
