use poolscope::observe;

#[observe(skip(passwrd))]
fn login(user: &str, password: &str) -> bool {
    user.len() == password.len()
}

fn main() {
    login("a", "b");
}
