//! The contract: the behaviour every platform promises, checked by one suite that runs on
//! Linux (the host's hybrid cgroups, and the pure v2 and v1-only guests) and on Windows (under
//! Wine in CI). What only one platform does stays in that platform's test files
//! (`lifecycle.rs`, `membership.rs`, ... for Linux; `windows.rs`).
//!
//! Where the platforms differ in a detail the contract allows, the helpers say so in one
//! place: how a terminated process ends ([`common::assert_terminated`]), how a removed job is
//! seen ([`common::wait_removed`]), and what Wine leaves unimplemented
//! ([`common::limits_implemented`]). Children are this binary run again in a child mode
//! ([`common::child`]), so no other program is needed.

#[path = "../common/mod.rs"]
mod common;

mod capabilities;
mod closed;
mod lifecycle;
mod limits;
mod membership;
mod notifications;
mod spawn;

/// Not a test: the child modes, run when this binary is started with `JOBOBJECT_TEST_CHILD`.
#[test]
fn child_mode() {
    common::run_child_mode();
}
