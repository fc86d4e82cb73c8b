use poolscope::observe;

#[observe(name = 42)]
fn execute() {}

fn main() {
    execute();
}
