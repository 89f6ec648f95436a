//! The headless display: input commands from stdin (one a line) and frames written to a file, for
//! tests and benchmarks that run an app without a compositor.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::host::exports::cirrus::app::events::PointerPhase;

/// An input command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Command {
    Pointer(PointerPhase, f64, f64),
    Key(u32, bool),
    Resize(u32, u32),
    Pause,
    Resume,
    Stop,
}

/// Parses `pointer down|move|up|cancel X Y`, `key CODE 0|1`, `resize W H`, `pause`, `resume`, `stop`.
pub fn parse_command(line: &str) -> Option<Command> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["pointer", phase, x, y] => {
            let phase = match *phase {
                "down" => PointerPhase::Down,
                "move" => PointerPhase::Move,
                "up" => PointerPhase::Up,
                "cancel" => PointerPhase::Cancel,
                _ => return None,
            };
            Some(Command::Pointer(phase, x.parse().ok()?, y.parse().ok()?))
        }
        ["key", code, pressed] => Some(Command::Key(code.parse().ok()?, *pressed == "1")),
        ["resize", w, h] => Some(Command::Resize(
            w.parse().ok().filter(|w| (1..=8192).contains(w))?,
            h.parse().ok().filter(|h| (1..=8192).contains(h))?,
        )),
        ["pause"] => Some(Command::Pause),
        ["resume"] => Some(Command::Resume),
        ["stop"] => Some(Command::Stop),
        _ => None,
    }
}

pub struct Headless {
    commands: Receiver<Command>,
    frame_out: Option<PathBuf>,
}

impl Headless {
    pub fn new(frame_out: Option<PathBuf>) -> Headless {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                match parse_command(&line) {
                    Some(c) => {
                        if tx.send(c).is_err() {
                            return;
                        }
                    }
                    None => tracing::warn!("unknown headless command `{line}`"),
                }
            }
        });
        Headless {
            commands: rx,
            frame_out,
        }
    }

    pub fn next_command(&self, wait: Duration) -> Option<Command> {
        match self.commands.recv_timeout(wait) {
            Ok(c) => Some(c),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                if wait > Duration::ZERO
                    && matches!(
                        self.commands.try_recv(),
                        Err(std::sync::mpsc::TryRecvError::Disconnected)
                    )
                {
                    std::thread::sleep(wait);
                }
                None
            }
        }
    }

    /// Writes the frame atomically (header: width, height as little-endian u32; then RGBA).
    pub fn show(&mut self, (width, height, pixels): &(u32, u32, Vec<u8>)) -> Result<()> {
        let Some(path) = &self.frame_out else {
            return Ok(());
        };
        let mut bytes = Vec::with_capacity(8 + pixels.len());
        bytes.extend_from_slice(&width.to_le_bytes());
        bytes.extend_from_slice(&height.to_le_bytes());
        bytes.extend_from_slice(pixels);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(
            parse_command("pointer down 10 20.5"),
            Some(Command::Pointer(PointerPhase::Down, 10.0, 20.5))
        );
        assert_eq!(parse_command("key 30 1"), Some(Command::Key(30, true)));
        assert_eq!(parse_command("resize 0 5"), None);
        assert_eq!(parse_command("pointer sideways 1 2"), None);
        assert_eq!(parse_command("stop"), Some(Command::Stop));
    }
}
