use poolscope::observe;

const TIER: &str = "gold";

#[observe(labels(pool = "x", tier = TIER, region = "eu", region = "us", 3 = "x"))]
fn execute() {}

#[observe(labels = "gold")]
fn other() {}

fn main() {
    execute();
    other();
}
