use poolscope::observe;

#[observe(kind = "pool_start")]
fn start() {}

fn main() {
    start();
}
