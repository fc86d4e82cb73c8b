use poolscope::observe;

trait Worker {
    #[observe]
    fn run(&self);
}

fn main() {}
