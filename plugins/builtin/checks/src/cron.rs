//! CronJob schedule validation: the five-field syntax Kubernetes accepts (robfig/cron's
//! standard parser), with names, ranges, steps, `?`, and the `@hourly`-style macros.

/// Checks `schedule`; the error says what is wrong.
pub fn validate(schedule: &str) -> Result<(), String> {
    let schedule = schedule.trim();
    if schedule.is_empty() {
        return Err("empty schedule".to_owned());
    }
    if schedule.starts_with("TZ=") || schedule.starts_with("CRON_TZ=") {
        return Err("time zones go in spec.timeZone, not in the schedule".to_owned());
    }
    if let Some(name) = schedule.strip_prefix('@') {
        return match name {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ if name.starts_with("every ") => duration(name["every ".len()..].trim()),
            _ => Err(format!("unknown macro @{name}")),
        };
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected 5 fields, found {}", fields.len()));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    field(fields[0], "minute", 0, 59, &[], false)?;
    field(fields[1], "hour", 0, 23, &[], false)?;
    field(fields[2], "day of month", 1, 31, &[], true)?;
    field(fields[3], "month", 1, 12, MONTHS, false)?;
    field(fields[4], "day of week", 0, 7, DAYS, true)?;
    Ok(())
}

fn field(
    text: &str,
    what: &str,
    min: u32,
    max: u32,
    names: &[&str],
    question: bool,
) -> Result<(), String> {
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if n > 0 => {}
                _ => return Err(format!("{what}: bad step {step:?}")),
            }
        }
        if range == "*" || (question && range == "?") {
            continue;
        }
        let (low, high) = match range.split_once('-') {
            Some((low, high)) => (
                value(low, what, min, max, names)?,
                value(high, what, min, max, names)?,
            ),
            None => {
                let v = value(range, what, min, max, names)?;
                (v, v)
            }
        };
        if low > high {
            return Err(format!("{what}: range {range:?} runs backwards"));
        }
    }
    Ok(())
}

fn value(text: &str, what: &str, min: u32, max: u32, names: &[&str]) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        // Month names count from 1, day names from 0.
        return Ok(i as u32 + min);
    }
    match text.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{what}: {v} is outside {min}-{max}")),
        Err(_) => Err(format!("{what}: {text:?} is not a number")),
    }
}

/// A Go duration such as `1h30m` or `90s`.
fn duration(text: &str) -> Result<(), String> {
    let mut rest = text;
    if rest.is_empty() {
        return Err("@every needs a duration".to_owned());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {text:?} lacks a unit"))?;
        if digits == 0 {
            return Err(format!("bad duration {text:?}"));
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u))
            .ok_or_else(|| format!("duration {text:?} has an unknown unit"))?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}
