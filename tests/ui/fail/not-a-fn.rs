use poolscope::observe;

#[observe]
struct Pool {
    size: usize,
}

fn main() {
    let _ = Pool { size: 1 }.size;
}
