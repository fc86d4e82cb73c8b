//! Parsing arbitrary text as a Python traceback never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poolscope_runtime::error::PythonTraceback;

fuzz_target!(|data: &[u8]| {
    let _ = PythonTraceback::parse(&String::from_utf8_lossy(data));
});
