use poolscope::observe;

#[observe(pool = "p", command = "buy", labels(tier = "gold", region = "eu"))]
fn buy(n: u32) -> Result<u32, std::fmt::Error> {
    Ok(n)
}

#[observe(labels())]
async fn nothing_extra() {}

fn main() {
    let _ = buy(1);
    drop(nothing_extra());
}
