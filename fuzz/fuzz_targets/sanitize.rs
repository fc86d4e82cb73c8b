//! The sanitizer never panics, and sanitizing its output changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poolscope_runtime::sanitize::Sanitizer;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static SANITIZER: OnceLock<Sanitizer> = OnceLock::new();
    let sanitizer = SANITIZER.get_or_init(Sanitizer::new);
    let text = String::from_utf8_lossy(data);
    let once = sanitizer.sanitize(&text).into_owned();
    let twice = sanitizer.sanitize(&once);
    assert_eq!(twice, once.as_str(), "sanitizing twice changed the text");
});
