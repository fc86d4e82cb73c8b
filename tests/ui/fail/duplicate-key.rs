use poolscope::observe;

#[observe(pool = "a", pool = "b")]
fn execute() {}

fn main() {
    execute();
}
