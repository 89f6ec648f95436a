//! One log entry and the wire/text forms it takes: parsing what the sources send (init's service
//! lines, syslog datagrams, /dev/kmsg records) and the line format readers and the log files use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Syslog levels, 0 (emergency) … 7 (debug).
pub const LEVEL_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
];

/// Parses a level name (`error`, `warn`, …) or number.
pub fn parse_level(text: &str) -> Option<u8> {
    if let Ok(n) = text.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    let lower = text.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "err" => "error",
        "warning" => "warn",
        "emergency" => "emerg",
        "critical" => "crit",
        other => other,
    };
    LEVEL_NAMES
        .iter()
        .position(|n| *n == alias)
        .and_then(|p| u8::try_from(p).ok())
}

/// Where an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A service's stdout/stderr, passed on by init.
    Service,
    /// A datagram on /dev/log.
    Syslog,
    /// /dev/kmsg.
    Kernel,
}

impl Source {
    pub fn word(self) -> &'static str {
        match self {
            Source::Service => "service",
            Source::Syslog => "syslog",
            Source::Kernel => "kernel",
        }
    }
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Wall-clock time, microseconds since the Unix epoch (when logd received it).
    pub time_us: u64,
    pub source: Source,
    /// The service name, the syslog tag, or `kernel`.
    pub tag: String,
    pub pid: i32,
    pub level: u8,
    pub message: String,
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect()
}

impl Entry {
    /// Init's datagram: `NAME\tPID\tLEVEL\tMESSAGE`.
    pub fn from_service(data: &[u8], time_us: u64) -> Option<Entry> {
        let text = String::from_utf8_lossy(data);
        let mut parts = text.splitn(4, '\t');
        let tag = parts.next()?.to_string();
        let pid = parts.next()?.parse().ok()?;
        let level = parts.next()?.parse::<u8>().ok().filter(|l| *l <= 7)?;
        let message = clean(parts.next()?);
        if tag.is_empty() {
            return None;
        }
        Some(Entry {
            time_us,
            source: Source::Service,
            tag,
            pid,
            level,
            message,
        })
    }

    /// A syslog datagram (RFC 3164 as glibc's syslog(3) and `logger` send it):
    /// `<PRI>TIMESTAMP TAG[PID]: MESSAGE`, the timestamp optional. `pid` is the sender's from
    /// SCM_CREDENTIALS when known (more trustworthy than the text).
    pub fn from_syslog(data: &[u8], sender_pid: Option<i32>, time_us: u64) -> Entry {
        let text = String::from_utf8_lossy(data);
        let text = text.trim_end_matches(['\n', '\0']);
        let (level, rest) = match text.strip_prefix('<').and_then(|t| t.split_once('>')) {
            Some((pri, rest)) => match pri.parse::<u32>() {
                Ok(pri) => ((pri & 7) as u8, rest),
                Err(_) => (6, text),
            },
            None => (6, text),
        };
        let rest = skip_rfc3164_timestamp(rest);
        let (tag, pid_text, message) = match rest.split_once(": ") {
            Some((head, message)) if !head.contains(' ') || head.ends_with(']') => {
                match head.split_once('[') {
                    Some((tag, pid)) => (tag, pid.strip_suffix(']'), message),
                    None => (head, None, message),
                }
            }
            _ => ("syslog", None, rest),
        };
        let pid = sender_pid
            .or_else(|| pid_text.and_then(|p| p.parse().ok()))
            .unwrap_or(0);
        Entry {
            time_us,
            source: Source::Syslog,
            tag: clean(tag),
            pid,
            level,
            message: clean(message),
        }
    }

    /// A /dev/kmsg record: `PRI,SEQ,TIMESTAMP_US,FLAGS[,…];MESSAGE\n[ KEY=VALUE\n…]`.
    pub fn from_kmsg(data: &[u8], time_us: u64) -> Option<Entry> {
        let text = String::from_utf8_lossy(data);
        let (head, body) = text.split_once(';')?;
        let pri: u32 = head.split(',').next()?.parse().ok()?;
        let message = body.lines().next().unwrap_or("");
        Some(Entry {
            time_us,
            source: Source::Kernel,
            tag: "kernel".to_string(),
            pid: 0,
            level: (pri & 7) as u8,
            message: clean(message),
        })
    }

    /// The stored/wire line: `TIME_US\tSOURCE\tTAG\tPID\tLEVEL\tMESSAGE`.
    pub fn to_line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            self.time_us,
            self.source.word(),
            self.tag,
            self.pid,
            self.level,
            self.message
        )
    }

    pub fn from_line(line: &str) -> Option<Entry> {
        let mut p = line.splitn(6, '\t');
        let time_us = p.next()?.parse().ok()?;
        let source = match p.next()? {
            "service" => Source::Service,
            "syslog" => Source::Syslog,
            "kernel" => Source::Kernel,
            _ => return None,
        };
        Some(Entry {
            time_us,
            source,
            tag: p.next()?.to_string(),
            pid: p.next()?.parse().ok()?,
            level: p.next()?.parse().ok()?,
            message: p.next()?.to_string(),
        })
    }

    /// How readers print it: `2026-01-02 03:04:05.678 error compositor[123]: message`.
    pub fn display(&self) -> String {
        let secs = self.time_us / 1_000_000;
        let millis = (self.time_us / 1000) % 1000;
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03} {:<6} {}[{}]: {}",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60,
            LEVEL_NAMES.get(usize::from(self.level)).unwrap_or(&"?"),
            self.tag,
            self.pid,
            self.message
        )
    }

    /// Approximate memory held, for the ring buffer's byte budget.
    pub fn size(&self) -> usize {
        64 + self.tag.len() + self.message.len()
    }
}

/// `Mmm dd hh:mm:ss ` at the start of a syslog message.
fn skip_rfc3164_timestamp(text: &str) -> &str {
    let b = text.as_bytes();
    if b.len() > 16
        && b[3] == b' '
        && b[6] == b' '
        && b[9] == b':'
        && b[12] == b':'
        && b[15] == b' '
    {
        &text[16..]
    } else {
        text
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        let e = Entry::from_service(b"compositor\t12\t3\tno\tdisplay", 5).unwrap();
        assert_eq!(
            (e.tag.as_str(), e.pid, e.level, e.message.as_str()),
            ("compositor", 12, 3, "no display")
        );
        assert!(Entry::from_service(b"garbage", 5).is_none());
        let e = Entry::from_syslog(b"<11>Jan  2 03:04:05 myapp[77]: it broke", Some(78), 5);
        assert_eq!(
            (e.tag.as_str(), e.pid, e.level, e.message.as_str()),
            ("myapp", 78, 3, "it broke")
        );
        let e = Entry::from_syslog(b"<14>tagonly: hello", None, 5);
        assert_eq!((e.tag.as_str(), e.pid, e.level), ("tagonly", 0, 6));
        let e = Entry::from_syslog(b"no header at all", None, 5);
        assert_eq!(
            (e.tag.as_str(), e.message.as_str()),
            ("syslog", "no header at all")
        );
        let e = Entry::from_kmsg(b"4,1234,5678,-;virtio_blk: disk\n SUBSYSTEM=block\n", 5).unwrap();
        assert_eq!((e.level, e.message.as_str()), (4, "virtio_blk: disk"));
        assert!(Entry::from_kmsg(b"nonsense", 5).is_none());
    }

    #[test]
    fn line_round_trip_and_display() {
        let e = Entry::from_service(b"svc\t1\t4\thello", 1_700_000_000_123_000).unwrap();
        assert_eq!(Entry::from_line(&e.to_line()), Some(e.clone()));
        assert_eq!(e.display(), "2023-11-14 22:13:20.123 warn   svc[1]: hello");
        assert_eq!(parse_level("warning"), Some(4));
        assert_eq!(parse_level("3"), Some(3));
        assert_eq!(parse_level("loud"), None);
    }
}
