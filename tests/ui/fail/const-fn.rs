use poolscope::observe;

#[observe]
const fn size() -> usize {
    4
}

fn main() {
    let _ = size();
}
