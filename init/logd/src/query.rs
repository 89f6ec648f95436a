//! The reader protocol on logd's reader socket: one request line, then entries as lines
//! (`Entry::to_line`), then the connection closes — or, with `follow`, stays open for new entries.
//!
//! Request: `dump|follow [service=NAME] [level=LEVEL] [since=UNIX_SECONDS]`; `level` keeps entries
//! at that level or more severe.

use crate::entry::{Entry, parse_level};

/// A reader's filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub follow: bool,
    pub tag: Option<String>,
    pub max_level: Option<u8>,
    pub since_us: Option<u64>,
}

impl Query {
    pub fn parse(line: &str) -> Result<Query, String> {
        let mut words = line.split_whitespace();
        let mut query = Query {
            follow: match words.next() {
                Some("dump") => false,
                Some("follow") => true,
                other => return Err(format!("expected `dump` or `follow`, got {other:?}")),
            },
            ..Query::default()
        };
        for word in words {
            match word.split_once('=') {
                Some(("service", v)) => query.tag = Some(v.to_string()),
                Some(("level", v)) => {
                    query.max_level =
                        Some(parse_level(v).ok_or_else(|| format!("unknown level `{v}`"))?)
                }
                Some(("since", v)) => {
                    let secs: f64 = v
                        .parse()
                        .map_err(|_| format!("`since` takes Unix seconds, got `{v}`"))?;
                    query.since_us = Some((secs.max(0.0) * 1e6) as u64);
                }
                _ => return Err(format!("unknown filter `{word}`")),
            }
        }
        Ok(query)
    }

    pub fn to_line(&self) -> String {
        let mut line = String::from(if self.follow { "follow" } else { "dump" });
        if let Some(tag) = &self.tag {
            line.push_str(&format!(" service={tag}"));
        }
        if let Some(level) = self.max_level {
            line.push_str(&format!(" level={level}"));
        }
        if let Some(since) = self.since_us {
            line.push_str(&format!(
                " since={}.{:06}",
                since / 1_000_000,
                since % 1_000_000
            ));
        }
        line
    }

    pub fn matches(&self, entry: &Entry) -> bool {
        self.tag.as_ref().is_none_or(|t| *t == entry.tag)
            && self.max_level.is_none_or(|l| entry.level <= l)
            && self.since_us.is_none_or(|s| entry.time_us >= s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Source;

    #[test]
    fn parse_and_match() {
        let q = Query::parse("follow service=compositor level=warn since=10.5").unwrap();
        assert_eq!(
            q,
            Query {
                follow: true,
                tag: Some("compositor".into()),
                max_level: Some(4),
                since_us: Some(10_500_000)
            }
        );
        assert_eq!(Query::parse(&q.to_line()), Ok(q.clone()));
        let e = |tag: &str, level, t| Entry {
            time_us: t,
            source: Source::Service,
            tag: tag.into(),
            pid: 1,
            level,
            message: String::new(),
        };
        assert!(q.matches(&e("compositor", 3, 11_000_000)));
        assert!(!q.matches(&e("compositor", 6, 11_000_000)));
        assert!(!q.matches(&e("other", 3, 11_000_000)));
        assert!(!q.matches(&e("compositor", 3, 9_000_000)));
        assert!(Query::parse("tail").is_err());
        assert!(Query::parse("dump level=loud").is_err());
    }
}
