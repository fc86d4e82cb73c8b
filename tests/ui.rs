//! Compile-time behaviour of `#[observe]`: bad arguments give one clear error
//! at the offending token, in every feature combination (the `.stderr` files
//! are the same with and without aspects, which is the point), and every
//! supported function shape compiles without warnings.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
