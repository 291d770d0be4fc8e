use super::*;

#[test]
fn lists_round_trip_to_4096_cpus() {
    for list in [
        "",
        "0",
        "63",
        "64",
        "0-4095",
        "0-1,3,64-127,4095",
        "1,3,5,7,100-200,1000",
    ] {
        let set = CpuSet::parse(list).unwrap();
        assert_eq!(set.to_string(), list);
        assert_eq!(CpuSet::parse(&set.to_string()).unwrap(), set);
    }
    let all = CpuSet::parse("0-4095").unwrap();
    assert_eq!(all.len(), 4096);
    assert!(all.contains(4095) && !all.contains(4096));
    let every_other: CpuSet = (0..4096).step_by(2).collect();
    assert_eq!(every_other.len(), 2048);
    assert_eq!(
        CpuSet::parse(&every_other.to_string()).unwrap(),
        every_other
    );
    assert_eq!(CpuSet::parse(" 0 , 2-3 ").unwrap().to_string(), "0,2-3");
}

#[test]
fn masks_are_the_first_64() {
    assert_eq!(CpuSet::from_mask(0b1011).to_string(), "0-1,3");
    assert_eq!(CpuSet::from_mask(1 << 63).to_string(), "63");
    assert_eq!(CpuSet::from_mask(0), CpuSet::new());
    assert_eq!(CpuSet::parse("0-63").unwrap().mask(), Some(u64::MAX));
    assert_eq!(CpuSet::parse("64").unwrap().mask(), None);
    assert_eq!(CpuSet::new().mask(), Some(0));
    // Removing the CPUs from 64 up gives a mask again.
    let set = CpuSet::parse("1,64-65").unwrap();
    let high = CpuSet::parse("64-127").unwrap();
    assert_eq!(set.difference(&high).mask(), Some(0b10));
    assert!(!set.is_subset(&high) && set.difference(&high).is_subset(&set));
}

#[test]
fn bad_lists_are_refused() {
    for bad in ["3-1", "x", "1,,2", "65536", "-1", "1-", "0x3", "+1", "1.5"] {
        assert!(CpuSet::parse(bad).is_err(), "{bad:?}");
    }
}
