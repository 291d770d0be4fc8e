use super::*;

#[test]
fn sizes() {
    for (text, bytes) in [
        ("1", 1),
        ("4096", 4096),
        ("10B", 10),
        ("1K", 1024),
        ("1k", 1024),
        ("512M", 512 << 20),
        ("2G", 2 << 30),
        ("1T", 1 << 40),
        ("1KiB", 1024),
        ("3MiB", 3 << 20),
        ("1gib", 1 << 30),
        ("1TiB", 1 << 40),
        ("1KB", 1000),
        ("5MB", 5_000_000),
        ("1GB", 1_000_000_000),
        ("1TB", 1_000_000_000_000),
        ("1.5G", 3 << 29),
        ("0.5K", 512),
        (".5K", 512),
        (" 64 M ", 64 << 20),
        ("1P", 1 << 50),
        ("2PiB", 2 << 50),
        ("1PB", 1_000_000_000_000_000),
        ("16383.999P", 18_446_742_947_809_644_773),
        ("18446744073709551615", u64::MAX),
    ] {
        assert_eq!(parse_size(text), Ok(bytes), "{text}");
    }
    for text in [
        "",
        "M",
        "12Q",
        "0",
        "0M",
        "1.2.3M",
        "-1M",
        "1 2M",
        "99999999999T",
        "16384P",
        "18446744073709551616",
        "1e3",
        "inf",
        ".",
        "1E",
    ] {
        assert!(parse_size(text).is_err(), "{text} should be refused");
    }
    assert!(
        parse_size("12Q")
            .unwrap_err()
            .contains("unknown size unit \"Q\"")
    );
    for bits in ["10Mb", "1kb", "5Gb/s"] {
        let err = parse_bandwidth(bits).unwrap_err();
        assert!(err.contains("is bits"), "{bits}: {err}");
    }
    assert!(parse_memory("1").unwrap_err().contains("has no unit"));
    assert_eq!(parse_memory("1G"), Ok(1 << 30));
    assert_eq!(parse_memory("4096B"), Ok(4096));
    assert_eq!(parse_bandwidth("10M/s"), Ok(10 << 20));
    assert_eq!(parse_bandwidth("10M"), Ok(10 << 20));
}

#[test]
fn durations() {
    let ms = Duration::from_millis;
    for (text, expected) in [
        ("30s", ms(30_000)),
        ("2m", ms(120_000)),
        ("1h", ms(3_600_000)),
        ("500ms", ms(500)),
        ("1d", ms(86_400_000)),
        ("1.5s", ms(1500)),
        ("1h30m", ms(5_400_000)),
        ("1m30s", ms(90_000)),
        ("10", ms(10_000)),
        ("0.25", ms(250)),
        ("2 min", ms(120_000)),
    ] {
        assert_eq!(parse_duration(text), Ok(expected), "{text}");
    }
    for text in [
        "", "s", "0s", "0", "10x", "-1s", "+1s", "1..5s", "ms30", "1h30", ".", "1e19", "inf",
        "nan", "infs", "1e3s", "0x10s",
    ] {
        assert!(parse_duration(text).is_err(), "{text} should be refused");
    }
}

#[test]
fn durations_have_a_maximum() {
    assert_eq!(parse_duration("36500d"), Ok(MAX_DURATION));
    assert_eq!(parse_duration("3153600000"), Ok(MAX_DURATION));
    assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
    assert_eq!(parse_duration("0.000000001"), Ok(Duration::from_nanos(1)));
    for text in [
        "36500.001d",
        "36501d",
        "3153600001",
        "9223372036854775807s",
        "18446744073709551616ms",
        "99999999999999999999999999999999d",
        "36499d24h1ms",
    ] {
        let err = parse_duration(text).unwrap_err();
        assert!(err.contains("at most 36500d (100 years)"), "{text}: {err}");
    }
    // A malformed one names the range too.
    let err = parse_duration("1e19").unwrap_err();
    assert!(err.contains("at most 36500d"), "{err}");
    // The longest accepted can be added to now.
    assert!(
        std::time::Instant::now()
            .checked_add(MAX_DURATION)
            .is_some()
    );
    assert!(
        std::time::SystemTime::now()
            .checked_add(MAX_DURATION)
            .is_some()
    );
}

#[test]
fn percentages() {
    for (text, rate) in [
        ("25%", 2500),
        ("100%", 10_000),
        ("0.01%", 1),
        ("12.5%", 1250),
        ("12.34%", 1234),
        ("50.0%", 5000),
        (".5%", 50),
        ("12.500%", 1250),
    ] {
        assert_eq!(parse_percent(text), Ok(rate), "{text}");
    }
    for text in [
        "0%", "0", "25", "100.00", "0.00%", "100.01%", "101%", "12.345%", "abc", "%", "-5%", "",
    ] {
        assert!(parse_percent(text).is_err(), "{text} should be refused");
    }
    assert_eq!(percent(2500), "25%");
    assert_eq!(percent(1250), "12.5%");
    assert_eq!(percent(1), "0.01%");
}

#[test]
fn cpu_lists() {
    let set = |text: &str| parse_cpu_set(text).map(|s| s.to_string());
    assert_eq!(set("0"), Ok("0".into()));
    assert_eq!(set("0,2-3"), Ok("0,2-3".into()));
    assert_eq!(set("1-2, 5"), Ok("1-2,5".into()));
    assert_eq!(set("63-64,4095"), Ok("63-64,4095".into()));
    for text in ["", "a", "3-1", "65536", "0,,1", "1-"] {
        assert!(parse_cpu_set(text).is_err(), "{text} should be refused");
    }
}

#[test]
fn weights_and_counts() {
    assert_eq!(parse_weight("1"), Ok(1));
    assert_eq!(parse_weight("9"), Ok(9));
    assert!(parse_weight("0").is_err());
    assert!(parse_weight("10").is_err());
    assert_eq!(parse_count("500"), Ok(500));
    assert!(parse_count("0").is_err());
    assert!(parse_count("x").is_err());
    assert!(parse_count("-1").is_err());
    assert_eq!(parse_count("4294967295"), Ok(u32::MAX));
    assert!(parse_count("4294967296").unwrap_err().contains("too large"));
    assert_eq!(parse_pid("1"), Ok(1));
    assert_eq!(parse_pid("2147483647"), Ok(2_147_483_647));
    for text in ["0", "-1", "2147483648", "", "x", "1.5"] {
        assert!(parse_pid(text).is_err(), "{text} should be refused");
    }
}

#[test]
fn formatting() {
    assert_eq!(bytes(0), "0 B");
    assert_eq!(bytes(1023), "1023 B");
    assert_eq!(bytes(1024), "1 KiB");
    assert_eq!(bytes(1536), "1.5 KiB");
    assert_eq!(bytes(512 << 20), "512 MiB");
    assert_eq!(duration(Duration::from_millis(850)), "850ms");
    assert_eq!(duration(Duration::from_millis(12_345)), "12.35s");
    assert_eq!(duration(Duration::from_secs(245)), "4m05s");
    assert_eq!(duration(Duration::from_secs(7380)), "2h03m");
}
