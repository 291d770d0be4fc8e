//! Human units on the command line, and back: sizes (`512M`, `1GiB`), durations (`30s`,
//! `1h30m`, `500ms`), CPU percentages (`25%`, with 0.01% resolution) and CPU lists (`0,2-3`).
//!
//! The parsers return a message fit to follow "invalid value ... for --option: ".

use std::time::Duration;

/// Parses a size in bytes: a number (fractions allowed) with an optional unit.
///
/// `K`, `M`, `G`, `T` (any case) and `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024; `KB`, `MB`, `GB`, `TB` are powers of 1000; `B` or no unit
/// means bytes. Zero is refused: a limit of nothing is always a mistake.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a size: use a number with an optional unit K, M, G or T (e.g. 512M)"
        ));
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} in {text:?}: use K, M, G or T (powers of 1024, \
                 also KiB..TiB) or KB..TB (powers of 1000), e.g. 512M"
            ));
        }
    };
    let bytes = scale(number, multiplier).ok_or_else(|| format!("{text:?} is not a size"))?;
    if bytes == 0 {
        return Err(format!("{text:?} is zero: give a size of at least 1 byte"));
    }
    Ok(bytes)
}

/// Parses a bandwidth: a size, optionally followed by `/s`.
pub fn parse_bandwidth(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let size = trimmed
        .strip_suffix("/s")
        .or_else(|| trimmed.strip_suffix("/S"))
        .unwrap_or(trimmed);
    parse_size(size)
}

/// `number × multiplier` for a decimal number such as `1.5`, rounded to the nearest integer;
/// `None` when malformed or too large.
fn scale(number: &str, multiplier: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(multiplier)?;
    if !fraction.is_empty() {
        // Up to 18 digits keep 10^digits within u64; further digits cannot matter here.
        let digits = &fraction[..fraction.len().min(18)];
        let numerator: u128 = digits.parse().ok()?;
        let denominator = 10u128.pow(digits.len() as u32);
        let part = (numerator * u128::from(multiplier) + denominator / 2) / denominator;
        total = total.checked_add(u64::try_from(part).ok()?)?;
    }
    Some(total)
}

/// Parses a duration: `500ms`, `30s`, `2m`, `1h`, `1d`, a plain number of seconds, or a
/// sequence such as `1h30m`. Fractions are allowed (`1.5s`). Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a duration: use a number with a unit ms, s, m, h or d (e.g. 30s, 2m, 1h30m, 500ms)"
        )
    };
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return positive(
            Duration::try_from_secs_f64(seconds).map_err(|_| bad())?,
            text,
        );
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, after) = rest.split_at(number_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let seconds_per_unit = match unit.trim().to_ascii_lowercase().as_str() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86400.0,
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} in {text:?}: use ms, s, m, h or d (e.g. 30s)"
                ));
            }
        };
        let value: f64 = number.parse().map_err(|_| bad())?;
        let part = Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| bad())?;
        total = total.checked_add(part).ok_or_else(bad)?;
        rest = after;
    }
    positive(total, text)
}

fn positive(duration: Duration, text: &str) -> Result<Duration, String> {
    if duration.is_zero() {
        Err(format!("{text:?} is zero: give a duration such as 30s"))
    } else {
        Ok(duration)
    }
}

/// Parses a CPU rate as a percentage of all the host's CPUs (`25%`, `12.5%`, `0.01%`; the `%`
/// may be left out) into the library's unit, percent × 100: `25%` is 2500.
pub fn parse_percent(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    let number = trimmed.strip_suffix('%').unwrap_or(trimmed).trim();
    let range = "a CPU rate is 0.01% to 100% of all the host's CPUs (e.g. 25%)";
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if number.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || whole.is_empty() && fraction.is_empty()
    {
        return Err(format!("{trimmed:?} is not a percentage: {range}"));
    }
    if fraction.len() > 2 {
        return Err(format!(
            "{trimmed:?} is finer than the 0.01% a CPU rate can express: {range}"
        ));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("{trimmed:?} is too large: {range}"))?
    };
    let hundredths: u64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    let rate = whole.saturating_mul(100).saturating_add(hundredths);
    if rate == 0 || rate > 10_000 {
        return Err(format!("{trimmed:?} is out of range: {range}"));
    }
    Ok(rate as u32)
}

/// Parses a CPU weight, 1 to 9.
pub fn parse_weight(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(w @ 1..=9) => Ok(w),
        _ => Err(format!(
            "{text:?} is not a CPU weight: use 1 (least) to 9 (most); 5 is the default"
        )),
    }
}

/// Parses a positive whole number (a process count or an IOPS limit).
pub fn parse_count(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(0) => Err(format!("{text:?} is zero: give a number of at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number (e.g. 100)")),
    }
}

/// Parses a CPU list such as `0,2-3` into an affinity mask (bit `i` = CPU `i`).
pub fn parse_cpu_list(text: &str) -> Result<u64, String> {
    match jobobject::parse_cpu_list(text) {
        Ok(0) => Err(format!("{text:?} names no CPU: use e.g. 0,2-3")),
        Ok(mask) => Ok(mask),
        Err(jobobject::Error::InvalidArgument { message }) => Err(message),
        Err(err) => Err(err.to_string()),
    }
}

/// Formats an affinity mask as a CPU list (`0,2-3`).
pub fn cpu_list(mask: u64) -> String {
    jobobject::format_cpu_list(mask)
}

/// Formats bytes with a binary unit: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Formats a duration for people: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// Formats a CPU rate (percent × 100) as a percentage: `25%`, `12.5%`, `0.01%`.
pub fn percent(rate: u32) -> String {
    let text = format!("{}.{:02}", rate / 100, rate % 100);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

#[cfg(test)]
mod tests {
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
        ] {
            assert!(parse_size(text).is_err(), "{text} should be refused");
        }
        assert!(
            parse_size("12Q")
                .unwrap_err()
                .contains("unknown size unit \"Q\"")
        );
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
        for text in ["", "s", "0s", "0", "10x", "-1s", "1..5s", "ms30"] {
            assert!(parse_duration(text).is_err(), "{text} should be refused");
        }
    }

    #[test]
    fn percentages() {
        for (text, rate) in [
            ("25%", 2500),
            ("25", 2500),
            ("100%", 10_000),
            ("0.01%", 1),
            ("12.5%", 1250),
            ("12.34%", 1234),
            ("50.0%", 5000),
            (".5%", 50),
        ] {
            assert_eq!(parse_percent(text), Ok(rate), "{text}");
        }
        for text in [
            "0%", "0", "0.00%", "100.01%", "101%", "12.345%", "abc", "%", "-5%", "",
        ] {
            assert!(parse_percent(text).is_err(), "{text} should be refused");
        }
        assert_eq!(percent(2500), "25%");
        assert_eq!(percent(1250), "12.5%");
        assert_eq!(percent(1), "0.01%");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Ok(0b1));
        assert_eq!(parse_cpu_list("0,2-3"), Ok(0b1101));
        assert_eq!(parse_cpu_list("1-2, 5"), Ok(0b100110));
        assert_eq!(parse_cpu_list("63"), Ok(1 << 63));
        for text in ["", "a", "3-1", "64", "0,,1", "1-"] {
            assert!(parse_cpu_list(text).is_err(), "{text} should be refused");
        }
        assert_eq!(cpu_list(0b1101), "0,2-3");
        assert_eq!(cpu_list(0b111), "0-2");
        assert_eq!(cpu_list(1 << 63), "63");
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
}
