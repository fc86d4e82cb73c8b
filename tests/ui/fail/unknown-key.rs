use poolscope::observe;

#[observe(nmae = "execute")]
fn execute() {}

fn main() {
    execute();
}
