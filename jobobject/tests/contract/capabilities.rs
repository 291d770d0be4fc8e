//! The capability probe: every feature named, tried on a throwaway job that is gone after,
//! and the answers true to what the platform does.

use jobobject::{Capabilities, JobObject};

use crate::common::*;

#[test]
fn the_probe_names_every_feature_and_tells_the_truth() {
    if !require_jobs("the_probe_names_every_feature_and_tells_the_truth") {
        return;
    }
    let found = Capabilities::probe(&anonymous_options());
    let names: Vec<&str> = found.features.iter().map(|f| f.name).collect();
    assert_eq!(names, Capabilities::NAMES);
    assert!(!found.facts.is_empty());
    for feature in &found.features {
        println!(
            "{:18} {:5} {}",
            feature.name, feature.available, feature.detail
        );
        assert!(!feature.detail.is_empty(), "{}", feature.name);
    }
    let works = |name: &str| found.get(name).unwrap().available;
    assert!(works("jobs") && works("notifications") && works("terminate"));
    // What it says matches what a job here does.
    let job = JobObject::create(&anonymous_options().notifications(true)).unwrap();
    assert_eq!(works("freeze"), job.freeze().is_ok(), "freeze");
    job.thaw().ok();
    assert_eq!(works("pressure"), job.pressure_stats().is_ok(), "pressure");
    assert_eq!(
        works("memory_high"),
        job.set_memory_high(Some(64 << 20)).is_ok(),
        "memory_high"
    );
    if limits_implemented("the_probe_names_every_feature_and_tells_the_truth") {
        assert!(works("memory_limit") && works("process_limit"));
    } else {
        assert!(!works("memory_limit"), "Wine has no memory limit");
    }
    #[cfg(windows)]
    for name in [
        "freeze",
        "pressure",
        "memory_high",
        "swap_limit",
        "oom_group_kill",
    ] {
        assert!(!works(name), "{name} on Windows");
    }
    job.close().unwrap();
}
