//! What a waiting caller is told about the wait: only what recent history supports.

/// Answered waits needed before an estimate is given at all.
pub const MIN_HISTORY: usize = 5;
/// How far back answered waits count.
pub const HISTORY_MINUTES: i64 = 60;

/// How long a caller at `position` can expect to wait, from recent history: the median
/// wait of recently answered callers, plus the time it recently took to answer each caller
/// times the number of callers ahead of this one beyond the first. `None` (say nothing)
/// when fewer than [`MIN_HISTORY`] callers were answered in the last [`HISTORY_MINUTES`]:
/// no estimate is better than a made-up one.
pub fn estimate(recent_waits: &[i64], position: u32) -> Option<String> {
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
    // Seconds between answers over the window, at the recent rate.
    let per_answer = HISTORY_MINUTES * 60 / i64::try_from(w.len()).unwrap_or(i64::MAX);
    let ahead = i64::from(position.saturating_sub(1));
    let seconds = median.saturating_add(ahead.saturating_mul(per_answer));
    Some(match seconds {
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
        assert_eq!(estimate(&[], 1), None);
        assert_eq!(estimate(&[60, 60, 60, 60], 1), None);
    }

    #[test]
    fn first_in_line_hears_the_typical_wait() {
        assert_eq!(
            estimate(&[30, 40, 50, 20, 10], 1).as_deref(),
            Some("less than a minute")
        );
        assert_eq!(
            estimate(&[100, 200, 240, 250, 9000], 1).as_deref(),
            Some("4 minutes")
        );
        assert_eq!(
            estimate(&[60, 70, 80, 90, 100, 110], 1).as_deref(),
            Some("1 minute")
        );
        assert_eq!(
            estimate(&[4000; 5], 1).as_deref(),
            Some("more than an hour")
        );
    }

    #[test]
    fn callers_further_back_wait_longer() {
        // 12 answered in the last hour: one every 5 minutes; typical wait 4 minutes.
        let waits = [240; 12];
        assert_eq!(estimate(&waits, 1).as_deref(), Some("4 minutes"));
        assert_eq!(estimate(&waits, 3).as_deref(), Some("14 minutes"));
        assert_eq!(estimate(&waits, 8).as_deref(), Some("39 minutes"));
        assert_eq!(estimate(&waits, 20).as_deref(), Some("more than an hour"));
    }
}
