//! The boot timeline, read from the serial console.
//!
//! The kernel and every Cirrus program stamp their lines with the boot clock, `[    1.234567]`
//! (see docs/boot.md), so the console is one timeline. This finds the milestones of a boot in it.
//! Times are printed, never asserted.

use std::fmt::Write as _;
use std::time::Duration;

/// A point of the boot, and where it was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Milestone {
    pub label: &'static str,
    /// Seconds on the guest's boot clock; `None` when not seen.
    pub guest_secs: Option<f64>,
    /// Index of the line it was found on (`None` for the kernel start, which is 0 by definition).
    pub line: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub milestones: Vec<Milestone>,
    /// The figure of `boot completed in <secs>s`, as init reports it.
    pub reported_boot_secs: Option<f64>,
}

pub const KERNEL_START: &str = "kernel start";
pub const FIRST_STAGE: &str = "init first stage";
pub const SWITCH_ROOT: &str = "switching root";
pub const SECOND_STAGE: &str = "init second stage";
pub const COMPOSITOR_START: &str = "compositor start";
pub const FIRST_FRAME: &str = "first frame presented";
pub const BOOT_COMPLETED: &str = "boot completed";

/// The message that ends a boot (docs/boot.md).
pub const BOOT_COMPLETED_MESSAGE: &str = "boot completed in";

/// Finds the milestones in the serial console's lines.
pub fn parse<S: AsRef<str>>(lines: &[S]) -> Timeline {
    let lines: Vec<String> = lines.iter().map(|l| clean(l.as_ref())).collect();
    let find_from = |start: usize, needles: &[&str]| -> Option<(usize, f64)> {
        lines.iter().enumerate().skip(start).find_map(|(i, line)| {
            // The last mention: in a service line forwarded by init (`[t1] svc | [t2] … message`)
            // that is the program's own part, with its own stamp.
            let at = needles.iter().filter_map(|n| line.rfind(n)).max()?;
            Some((i, stamp_before(line, at)?))
        })
    };
    let next = |found: Option<(usize, f64)>| found.map_or(0, |(i, _)| i + 1);

    let first_stage = find_from(0, &["starting (first stage)"]);
    let switch_root = find_from(next(first_stage), &["switching root to"]);
    let second_stage = find_from(
        next(switch_root),
        &["starting (second stage)", "second stage"],
    );
    let compositor = find_from(
        next(second_stage),
        &["cirrus-compositor", "cirrus_compositor"],
    );
    let first_frame = find_from(0, &["first frame presented"]);
    let completed = find_from(0, &[BOOT_COMPLETED_MESSAGE]);
    let reported_boot_secs = completed.and_then(|(i, _)| reported_secs(&lines[i]));

    let milestone = |label, found: Option<(usize, f64)>| Milestone {
        label,
        guest_secs: found.map(|(_, t)| t),
        line: found.map(|(i, _)| i),
    };
    Timeline {
        milestones: vec![
            Milestone {
                label: KERNEL_START,
                guest_secs: Some(0.0),
                line: None,
            },
            milestone(FIRST_STAGE, first_stage),
            milestone(SWITCH_ROOT, switch_root),
            milestone(SECOND_STAGE, second_stage),
            milestone(COMPOSITOR_START, compositor),
            milestone(FIRST_FRAME, first_frame),
            milestone(BOOT_COMPLETED, completed),
        ],
        reported_boot_secs,
    }
}

impl Timeline {
    #[cfg(test)]
    pub fn get(&self, label: &str) -> Option<&Milestone> {
        self.milestones.iter().find(|m| m.label == label)
    }

    /// The table printed after a boot. `wall_of_line` gives the wall time (since QEMU started) at
    /// which a line of the console was read; `total_wall` is the wall time to `boot completed`.
    pub fn render(
        &self,
        wall_of_line: impl Fn(usize) -> Option<Duration>,
        total_wall: Option<Duration>,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "boot timeline (guest clock from the serial console; wall clock since QEMU started):"
        );
        let _ = writeln!(
            out,
            "  {:<24} {:>12} {:>12} {:>9}",
            "event", "guest s", "delta s", "wall s"
        );
        let mut previous: Option<f64> = None;
        for m in &self.milestones {
            let wall = m
                .line
                .and_then(&wall_of_line)
                .map_or_else(|| "-".to_owned(), |d| format!("{:.1}", d.as_secs_f64()));
            match m.guest_secs {
                Some(t) => {
                    let delta =
                        previous.map_or_else(|| "-".to_owned(), |p| format!("{:+.6}", t - p));
                    let _ = writeln!(out, "  {:<24} {t:>12.6} {delta:>12} {wall:>9}", m.label);
                    previous = Some(t);
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  {:<24} {:>12} {:>12} {wall:>9}",
                        m.label, "not seen", ""
                    );
                }
            }
        }
        if let Some(secs) = self.reported_boot_secs {
            let _ = writeln!(out, "  init reports: boot completed in {secs}s");
        }
        match total_wall {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "  wall time from QEMU start to `boot completed`: {:.1} s",
                    d.as_secs_f64()
                );
            }
            None => {
                let _ = writeln!(out, "  `boot completed` was not seen");
            }
        }
        out
    }
}

/// Drops ANSI escape sequences (coloured logs) and carriage returns.
fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // Parameters and intermediates, up to the final byte (@ to ~).
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Every `[   12.345678]` stamp in a line: (byte offset, seconds).
fn stamps(line: &str) -> Vec<(usize, f64)> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(open) = line[i..].find('[').map(|o| o + i) {
        i = open + 1;
        let Some(close) = line[i..].find(']').map(|c| c + i) else {
            break;
        };
        let inner = line[open + 1..close].trim_start_matches(' ');
        let is_stamp = !inner.is_empty()
            && inner.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && inner.bytes().filter(|&b| b == b'.').count() == 1;
        if is_stamp && let Ok(secs) = inner.parse::<f64>() {
            found.push((open, secs));
        }
    }
    found
}

/// The stamp of a message found at byte `at`: the last stamp before it (a service line forwarded by
/// init carries init's stamp first and the program's own nearer the message), else the line's first.
fn stamp_before(line: &str, at: usize) -> Option<f64> {
    let stamps = stamps(line);
    stamps
        .iter()
        .rev()
        .find(|(pos, _)| *pos < at)
        .or(stamps.first())
        .map(|(_, secs)| *secs)
}

/// `4.21` from `… boot completed in 4.21s`.
fn reported_secs(line: &str) -> Option<f64> {
    let rest = &line[line.find(BOOT_COMPLETED_MESSAGE)? + BOOT_COMPLETED_MESSAGE.len()..];
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LOG: &str = "\
[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)\r
[    0.912000] Run /init as init process\r
[    1.532101] INFO cirrus_init: cirrus-init 0.1.0 starting (first stage)\r
[    1.600000] INFO cirrus_init::first_stage: loaded module virtio_blk\r
[    2.100000] INFO cirrus_init::first_stage: switching root to /newroot\r
[    2.210000] INFO cirrus_init: cirrus-init 0.1.0 starting (second stage)\r
[    2.300000] INFO cirrus_init::service: starting cirrus-compositor\r
[    3.400000] cirrus-compositor | [    3.390000] \u{1b}[32m INFO\u{1b}[0m cirrus_compositor: first frame presented\r
[    3.500000] INFO cirrus_init: boot completed in 3.50s\r
";

    #[test]
    fn finds_the_milestones() {
        let lines: Vec<&str> = LOG.lines().collect();
        let t = parse(&lines);
        let at = |label| t.get(label).unwrap().guest_secs;
        assert_eq!(at(KERNEL_START), Some(0.0));
        assert_eq!(at(FIRST_STAGE), Some(1.532101));
        assert_eq!(at(SWITCH_ROOT), Some(2.1));
        assert_eq!(at(SECOND_STAGE), Some(2.21));
        assert_eq!(at(COMPOSITOR_START), Some(2.3));
        // The compositor's own stamp, not init's forwarding stamp.
        assert_eq!(at(FIRST_FRAME), Some(3.39));
        assert_eq!(at(BOOT_COMPLETED), Some(3.5));
        assert_eq!(t.reported_boot_secs, Some(3.5));
        assert_eq!(t.get(BOOT_COMPLETED).unwrap().line, Some(8));
    }

    #[test]
    fn missing_milestones_are_none_and_rendered_as_not_seen() {
        let lines = [
            "[    1.000000] INFO cirrus_init: cirrus-init starting (first stage)",
            "[    1.5] kernel panic",
        ];
        let t = parse(&lines);
        assert_eq!(t.get(FIRST_STAGE).unwrap().guest_secs, Some(1.0));
        assert_eq!(t.get(SWITCH_ROOT).unwrap().guest_secs, None);
        assert_eq!(t.get(BOOT_COMPLETED).unwrap().guest_secs, None);
        let text = t.render(|_| None, None);
        assert!(text.contains("not seen"), "{text}");
        assert!(text.contains("was not seen"), "{text}");
    }

    #[test]
    fn render_shows_deltas_and_wall_time() {
        let lines: Vec<&str> = LOG.lines().collect();
        let t = parse(&lines);
        let text = t.render(
            |i| Some(Duration::from_secs(10 + i as u64)),
            Some(Duration::from_millis(18_250)),
        );
        assert!(
            text.contains("+0.567899"),
            "switch root minus first stage:\n{text}"
        );
        assert!(text.contains("18.2 s") || text.contains("18.3 s"), "{text}");
        assert!(text.contains("boot completed in 3.5s"), "{text}");
        assert_eq!(text.lines().count(), 2 + 7 + 2);
    }

    #[test]
    fn compositor_is_looked_for_after_the_second_stage() {
        // A mention in the first stage (e.g. a unit list) is not the compositor's start.
        let lines = [
            "[    1.0] cirrus-init starting (first stage), will start cirrus-compositor later",
            "[    2.0] switching root to /newroot",
            "[    2.1] cirrus-init starting (second stage)",
            "[    2.5] cirrus-compositor | [    2.4] INFO cirrus_compositor: hello",
        ];
        let t = parse(&lines);
        assert_eq!(t.get(COMPOSITOR_START).unwrap().guest_secs, Some(2.4));
    }

    #[test]
    fn stamps_are_parsed_strictly() {
        assert_eq!(stamps("[    1.234567] x"), vec![(0, 1.234567)]);
        assert_eq!(stamps("[ 12.5] a [  3.25] b"), vec![(0, 12.5), (10, 3.25)]);
        assert!(stamps("[   boot-time] x [1] [1.2.3] [] [").is_empty());
        assert_eq!(clean("\u{1b}[1;32mgreen\u{1b}[0m\r"), "green");
        assert_eq!(reported_secs("boot completed in 12.75s"), Some(12.75));
        assert_eq!(reported_secs("boot completed in ?"), None);
    }
}
