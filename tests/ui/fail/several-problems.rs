use poolscope::observe;

#[observe(name = "", kind = reqest, skip(missing))]
fn execute(present: u8) -> u8 {
    present
}

fn main() {
    execute(1);
}
