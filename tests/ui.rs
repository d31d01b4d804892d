//! Compile-time guarantees of tenant-scope, proven with trybuild (see docs/guarantees.md).
//!
//! Every `tests/ui/fail/<name>.rs` is a misuse that must not compile; its `.stderr` is the
//! compiler's answer, checked in so that a case cannot start failing for another reason unnoticed.
//! Every `tests/ui/pass/<name>.rs` beside it is the right way to do the same thing, and must compile.
//! Each file opens with a comment stating the guarantee it proves.
//!
//! Regenerate the `.stderr` files (after a toolchain or SeaORM upgrade) with
//! `TRYBUILD=overwrite cargo test --test ui`, then read every diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
