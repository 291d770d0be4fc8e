//! Human units on the command line, and back: sizes (`512M`, `1GiB`), durations (`30s`,
//! `1h30m`, `500ms`), CPU percentages (`25%`, with 0.01% resolution) and CPU lists (`0,2-3`).
//!
//! The parsers return a message fit to follow "bad value for --option: ". They use integer
//! arithmetic only (no floating point: `1e19`, `inf` and `nan` are not numbers here), refuse
//! what does not fit instead of wrapping or saturating, and never panic, whatever the text.

use std::time::Duration;

/// The longest duration accepted: 100 years of 365 days. `Instant` and `SystemTime` can add
/// it to any time now on every platform jobctl runs on.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The valid range of a duration, for messages.
const DURATION_RANGE: &str = "a duration is more than 0 and at most 36500d (100 years)";

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Parses a size in bytes: a number (fractions allowed) with an optional unit.
///
/// `K`, `M`, `G`, `T`, `P` (any case) and `KiB` .. `PiB` are powers of 1024; `KB` .. `PB` are
/// powers of 1000; `B` or no unit means bytes. Zero is refused: a limit of nothing is always
/// a mistake. So is a size beyond 2^64 - 1 bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = split_number(text);
    let unit = unit.trim();
    if !is_decimal(number) {
        return Err(format!(
            "{text:?} is not a size: use a number with an optional unit K, M, G or T (e.g. 512M)"
        ));
    }
    if let [prefix, b'b'] = unit.as_bytes() {
        let prefix = char::from(prefix.to_ascii_uppercase());
        return Err(format!(
            "{unit:?} in {text:?} is bits: for bytes write {prefix}B (powers of 1000) or \
             {prefix} / {prefix}iB (powers of 1024); 10Mb/s is 1.25MB/s"
        ));
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "p" | "pib" => 1 << 50,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} in {text:?}: use K, M, G, T or P (powers of 1024, \
                 also KiB..PiB) or KB..PB (powers of 1000), e.g. 512M"
            ));
        }
    };
    let bytes = scale(number, multiplier).ok_or_else(|| {
        format!("{text:?} is too large: a size is at most 16 EiB (2^64 - 1 bytes)")
    })?;
    if bytes == 0 {
        return Err(format!("{text:?} is zero: give a size of at least 1 byte"));
    }
    Ok(bytes)
}

/// Parses a memory size: as [`parse_size`], but the unit may not be left out (a bare `1` is
/// almost always a forgotten `G`); `B` says bytes.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "{trimmed:?} has no unit: add one, e.g. {trimmed}G or {trimmed}M (or {trimmed}B \
             for bytes)"
        ));
    }
    parse_size(text)
}

/// Parses a swap size: a memory size, or `0` (no swap at all).
pub fn parse_swap(text: &str) -> Result<u64, String> {
    if text.trim() == "0" {
        return Ok(0);
    }
    parse_memory(text)
}

/// Parses `on` or `off` (also `true`/`false`, `yes`/`no`, `1`/`0`).
pub fn parse_on_off(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        other => Err(format!("{other:?}: use on or off")),
    }
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

/// Splits `text` after its leading digits and dots: the number, and what follows.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// Whether `number` is a decimal number: digits with at most one dot, and a digit somewhere.
fn is_decimal(number: &str) -> bool {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty())
}

/// `number × multiplier` for a decimal number such as `1.5`, rounded to the nearest integer;
/// `None` when it is not a decimal number or the result does not fit a `u64`.
fn scale(number: &str, multiplier: u64) -> Option<u64> {
    if !is_decimal(number) {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(multiplier)?;
    if !fraction.is_empty() {
        // 18 digits keep 10^digits within u64 and the product below within u128; further
        // digits cannot change the result by a whole unit of any multiplier used here. The
        // slice is at a char boundary: the fraction is ASCII digits.
        let digits = &fraction[..fraction.len().min(18)];
        let numerator: u128 = digits.parse().ok()?;
        let denominator = 10u128.pow(u32::try_from(digits.len()).ok()?);
        let part = (numerator * u128::from(multiplier) + denominator / 2) / denominator;
        total = total.checked_add(u64::try_from(part).ok()?)?;
    }
    Some(total)
}

/// Parses a duration: `500ms`, `30s`, `2m`, `1h`, `1d`, a plain number of seconds, or a
/// sequence such as `1h30m`. Fractions are allowed (`1.5s`), with nanosecond resolution.
/// Zero is refused, and so is anything beyond [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let malformed = || {
        format!(
            "{text:?} is not a duration: use a number with a unit ms, s, m, h or d (e.g. 30s, \
             2m, 1h30m, 500ms) or a number of seconds; {DURATION_RANGE}"
        )
    };
    let too_long = || format!("{text:?} is too long: {DURATION_RANGE}");
    if text.is_empty() {
        return Err(malformed());
    }
    let mut nanos: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after) = split_number(rest);
        if !is_decimal(number) {
            return Err(malformed());
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let nanos_per_unit = match unit.trim().to_ascii_lowercase().as_str() {
            // A bare number is seconds, but only on its own: `1h30` is a mistake.
            "" if rest.len() == text.len() => NANOS_PER_SECOND,
            "ms" => 1_000_000,
            "s" | "sec" | "secs" => NANOS_PER_SECOND,
            "m" | "min" | "mins" => 60 * NANOS_PER_SECOND,
            "h" | "hr" | "hour" | "hours" => 3_600 * NANOS_PER_SECOND,
            "d" | "day" | "days" => 86_400 * NANOS_PER_SECOND,
            other => {
                return Err(format!(
                    "unknown duration unit {other:?} in {text:?}: use ms, s, m, h or d (e.g. \
                     30s); {DURATION_RANGE}"
                ));
            }
        };
        let part = scale(number, nanos_per_unit).ok_or_else(too_long)?;
        nanos = nanos.checked_add(part).ok_or_else(too_long)?;
        rest = after;
    }
    let duration = Duration::from_nanos(nanos);
    if duration > MAX_DURATION {
        return Err(too_long());
    }
    if duration.is_zero() {
        return Err(format!(
            "{text:?} is zero: give a duration such as 30s; {DURATION_RANGE}"
        ));
    }
    Ok(duration)
}

/// Parses a CPU rate as a percentage of all the host's CPUs (`25%`, `12.5%`, `0.01%`) into the
/// library's unit, percent × 100: `25%` is 2500. The `%` is required: a bare `50` could be
/// meant as a share of one CPU.
pub fn parse_percent(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    let range = "a CPU rate is 0.01% to 100% of all the host's CPUs (e.g. 25%)";
    let Some(number) = trimmed.strip_suffix('%').map(str::trim) else {
        return Err(format!(
            "{trimmed:?} has no %: write {trimmed}% ({range}; 100% is every CPU of the host)"
        ));
    };
    if !is_decimal(number) {
        return Err(format!("{trimmed:?} is not a percentage: {range}"));
    }
    let (_, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.trim_end_matches('0').len() > 2 {
        return Err(format!(
            "{trimmed:?} is finer than the 0.01% a CPU rate can express: {range}"
        ));
    }
    // Exact: the fraction has at most two significant digits.
    match scale(number, 100).map(u32::try_from) {
        Some(Ok(rate @ 1..=10_000)) => Ok(rate),
        _ => Err(format!("{trimmed:?} is out of range: {range}")),
    }
}

/// Parses a CPU weight, 1 to 9.
pub fn parse_weight(text: &str) -> Result<u32, String> {
    match parse_count(text) {
        Ok(w @ 1..=9) => Ok(w),
        _ => Err(format!(
            "{text:?} is not a CPU weight: use 1 (least) to 9 (most); 5 is the default"
        )),
    }
}

/// Parses a positive whole number (a process count or an IOPS limit), 1 to 2^32 - 1.
pub fn parse_count(text: &str) -> Result<u32, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a whole number (e.g. 100)"));
    }
    match trimmed.parse::<u32>() {
        Ok(0) => Err(format!("{text:?} is zero: give a number of at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is too large: at most {}", u32::MAX)),
    }
}

/// Parses a process id: a whole number from 1 up to the largest pid a system can have
/// (2^31 - 1). Zero is refused: written to a cgroup it means the writer itself.
pub fn parse_pid(text: &str) -> Result<u32, String> {
    match parse_count(text) {
        Ok(pid) if i32::try_from(pid).is_ok() => Ok(pid),
        _ => Err(format!(
            "{text:?} is not a process id: use a number from 1 to {}",
            i32::MAX
        )),
    }
}

/// Parses a limit: `none` removes it, anything else is a value for `parse`.
pub fn limit<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<jobobject::Limit<T>, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(jobobject::Limit::Clear);
    }
    parse(text).map(jobobject::Limit::Set)
}

/// Parses a CPU list such as `0,2-3,64-127` into a CPU set of any size.
pub fn parse_cpu_set(text: &str) -> Result<jobobject::CpuSet, String> {
    match jobobject::CpuSet::parse(text) {
        Ok(set) if set.is_empty() => Err(format!("{text:?} names no CPU: use e.g. 0,2-3")),
        Ok(set) => Ok(set),
        Err(jobobject::Error::InvalidArgument { message }) => Err(message),
        Err(err) => Err(err.to_string()),
    }
}

/// Formats bytes with a binary unit: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    // Float division is exact enough for a display with one decimal, and cannot panic.
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
mod tests;

#[cfg(test)]
mod properties;
