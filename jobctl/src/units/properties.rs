//! No text makes a parser panic, and what a formatter writes parses back.

use super::*;
use proptest::prelude::*;

/// Text that looks like input: digits (many), dots, units, signs, blanks, anything.
fn unitish() -> impl Strategy<Value = String> {
    "[0-9]{0,40}(\\.[0-9]{0,40})?[ a-zA-Z%/.,+-]{0,6}([0-9]{0,30}[a-z]{0,3}){0,3}"
}

/// Huge numbers: hundreds of digits, with or without a fraction and a unit.
fn huge() -> impl Strategy<Value = String> {
    "[0-9]{1,400}(\\.[0-9]{1,400})?(ms|s|m|h|d|K|M|G|T|P|%|)"
}

fn every_parser(text: &str) {
    let _ = parse_size(text);
    let _ = parse_bandwidth(text);
    let _ = parse_duration(text);
    let _ = parse_percent(text);
    let _ = parse_weight(text);
    let _ = parse_count(text);
    let _ = parse_cpu_set(text);
    let _ = parse_pid(text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_panic_on_any_string(text in any::<String>()) {
        every_parser(&text);
    }

    #[test]
    fn no_panic_on_unit_like_text(text in unitish()) {
        every_parser(&text);
    }

    #[test]
    fn no_panic_on_huge_numbers(text in huge()) {
        every_parser(&text);
    }

    #[test]
    fn no_panic_on_any_printable_unicode(text in "\\PC{0,30}") {
        every_parser(&text);
    }

    #[test]
    fn durations_stay_in_range(text in unitish()) {
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(!d.is_zero() && d <= MAX_DURATION, "{text:?} gave {d:?}");
        }
    }

    #[test]
    fn whole_units_are_exact(n in 1u64..=3_153_600_000) {
        prop_assert_eq!(parse_duration(&format!("{n}s")), Ok(Duration::from_secs(n)));
        prop_assert_eq!(parse_duration(&n.to_string()), Ok(Duration::from_secs(n)));
        let ms = Duration::from_millis(n);
        prop_assert_eq!(parse_duration(&format!("{n}ms")), Ok(ms));
    }

    #[test]
    fn a_sequence_is_the_sum_of_its_parts(h in 0u64..1000, m in 0u64..1000, s in 1u64..1000) {
        let expected = Duration::from_secs(h * 3600 + m * 60 + s);
        prop_assert_eq!(parse_duration(&format!("{h}h{m}m{s}s")), Ok(expected));
    }

    #[test]
    fn a_formatted_duration_parses_back(ms in 1u64..=3_153_600_000_000) {
        let d = Duration::from_millis(ms);
        let text = duration(d);
        let back = parse_duration(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        // The display rounds: 2 decimals below a minute, whole seconds below an hour,
        // whole minutes beyond.
        let slack = if ms < 60_000 {
            Duration::from_millis(5)
        } else if ms < 3_600_000 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(60)
        };
        prop_assert!(d.abs_diff(back) <= slack, "{d:?} -> {text} -> {back:?}");
    }

    #[test]
    fn a_formatted_size_parses_back(n in 1u64..=u64::MAX / 2) {
        let text = bytes(n);
        let back = parse_size(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        // One decimal below 100 of a unit: within 5%.
        prop_assert!(n.abs_diff(back) <= n / 20 + 1, "{n} -> {text} -> {back}");
    }

    #[test]
    fn a_whole_size_parses_back_exactly(m in 1u64..1024, unit in 0u32..6) {
        let n = m << (10 * unit);
        prop_assert_eq!(parse_size(&bytes(n)), Ok(n));
        prop_assert_eq!(parse_bandwidth(&format!("{}/s", bytes(n))), Ok(n));
    }

    #[test]
    fn a_formatted_percentage_parses_back(rate in 1u32..=10_000) {
        prop_assert_eq!(parse_percent(&percent(rate)), Ok(rate));
    }

    #[test]
    fn percentages_stay_in_range(text in unitish()) {
        if let Ok(rate) = parse_percent(&text) {
            prop_assert!((1..=10_000).contains(&rate));
        }
    }

    #[test]
    fn counts_and_weights_parse_back(n in 1u32..) {
        prop_assert_eq!(parse_count(&n.to_string()), Ok(n));
        prop_assert_eq!(parse_weight(&n.to_string()).is_ok(), n <= 9);
    }

    #[test]
    fn pids_parse_back(pid in 1u32..=0x7fff_ffff) {
        prop_assert_eq!(parse_pid(&pid.to_string()), Ok(pid));
    }

    #[test]
    fn a_formatted_cpu_list_parses_back(cpus in proptest::collection::vec(0u16..4096, 1..64)) {
        let set: jobobject::CpuSet = cpus.into_iter().collect();
        prop_assert_eq!(parse_cpu_set(&set.to_string()), Ok(set));
    }
}
