use poolscope::observe;

#[observe(skip_all, skip(token))]
fn execute(token: &str) {
    let _ = token;
}

fn main() {
    execute("t");
}
