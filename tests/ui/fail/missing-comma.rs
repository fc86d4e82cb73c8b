use poolscope::observe;

#[observe(pool = "a" command = "b")]
fn execute() {}

fn main() {
    execute();
}
