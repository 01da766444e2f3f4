//! Log lines on stderr: an RFC 3339 UTC timestamp and the level on every line,
//! as text or as one JSON object (`--log-format json`, for log shippers).

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// How log lines are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct StderrLog(Format);

static TEXT: StderrLog = StderrLog(Format::Text);
static JSON: StderrLog = StderrLog(Format::Json);

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) || !r.target().starts_with("gopherdiscovery") {
            return;
        }
        let ts = rfc3339(SystemTime::now());
        let level = r.level().as_str().to_lowercase();
        let line = match self.0 {
            Format::Text => format!("{ts} {:<5} {}", r.level(), r.args()),
            Format::Json => {
                let mut o = String::new();
                o.push_str("{\"ts\":\"");
                o.push_str(&ts);
                o.push_str("\",\"level\":\"");
                o.push_str(&level);
                o.push_str("\",\"msg\":");
                super::json_str(&mut o, &r.args().to_string());
                o.push('}');
                o
            }
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
    fn flush(&self) {}
}

/// Installs the logger.
pub fn init(format: Format, level: log::LevelFilter) {
    let _ = log::set_logger(match format {
        Format::Text => &TEXT,
        Format::Json => &JSON,
    });
    log::set_max_level(level);
}

/// `2024-05-01T12:34:56.789Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, dd) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Year, month, day of the `days`-th day after 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_of_known_instants() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789
        assert_eq!(rfc3339(at(951_827_696, 789)), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(at(1_709_251_199, 0)), "2024-02-29T23:59:59.000Z");
        assert_eq!(rfc3339(at(4_102_444_800, 5)), "2100-01-01T00:00:00.005Z");
    }
}
