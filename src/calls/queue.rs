//! What a waiting caller is told about the wait: only what recent history supports.

/// Answered waits needed before an estimate is given at all.
pub const MIN_HISTORY: usize = 5;
/// How far back answered waits count.
pub const HISTORY_MINUTES: i64 = 60;

/// "about 4 minutes" from the recent answered waits (seconds), or `None` when there are
/// too few to be honest about. The median is used: one very long wait does not scare
/// everyone, and one lucky caller does not raise false hopes.
pub fn estimate(recent_waits: &[i64]) -> Option<String> {
    if recent_waits.len() < MIN_HISTORY {
        return None;
    }
    let mut w: Vec<i64> = recent_waits.iter().copied().filter(|s| *s >= 0).collect();
    if w.len() < MIN_HISTORY {
        return None;
    }
    w.sort_unstable();
    let mid = w.len() / 2;
    let median = if w.len().is_multiple_of(2) {
        (w[mid - 1] + w[mid]) / 2
    } else {
        w[mid]
    };
    Some(match median {
        s if s < 60 => "less than a minute".to_string(),
        s if s >= 3600 => "more than an hour".to_string(),
        s => {
            let minutes = (s + 30) / 60;
            if minutes == 1 {
                "1 minute".to_string()
            } else {
                format!("{minutes} minutes")
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_estimate_without_history() {
        assert_eq!(estimate(&[]), None);
        assert_eq!(estimate(&[60, 60, 60, 60]), None);
    }

    #[test]
    fn median_rounded_to_minutes() {
        assert_eq!(
            estimate(&[30, 40, 50, 20, 10]).as_deref(),
            Some("less than a minute")
        );
        assert_eq!(
            estimate(&[100, 200, 240, 250, 9000]).as_deref(),
            Some("4 minutes")
        );
        assert_eq!(
            estimate(&[60, 70, 80, 90, 100, 110]).as_deref(),
            Some("1 minute")
        );
        assert_eq!(estimate(&[4000; 5]).as_deref(), Some("more than an hour"));
    }
}
