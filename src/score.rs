//! The score of an IOC, 0–100 (SPEC §8). Every term is kept so `iocfeed ioc` can show its working.
//!
//! ```text
//! score = round( confidence × decay × corroboration × compromised ), clamped to 0..=100
//!   decay         = 0.5 ^ (days since last activity / half_life_days)
//!   corroboration = 1 + 0.1 × min(reports − 1, 5)      (each further report or source: +10 %, at most +50 %)
//!   compromised   = compromised_factor if the IOC is a hijacked legitimate site, else 1
//! ```
//! Last activity is the latest first_seen or last_seen of any report (when no report gave either, the last
//! pull that saw the IOC).

use serde::Serialize;

use crate::config::ScoringConfig;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreTerms {
    pub confidence: u8,
    pub age_days: f64,
    pub decay: f64,
    pub reports: usize,
    pub corroboration: f64,
    pub compromised: f64,
    pub score: u8,
}

/// Last activity: the latest first_seen or last_seen any report gave, or (no report gave either) the last
/// time a pull saw the IOC. Taken over the reports, not the merged first_seen (the earliest): a report
/// dated years back, from any source, must not age out what other reports saw yesterday.
pub fn activity(reports: impl Iterator<Item = (Option<i64>, Option<i64>, i64)>) -> i64 {
    let mut seen = None;
    let mut pulled = 0;
    for (first, last, pulled_last) in reports {
        seen = seen.max(first).max(last);
        pulled = pulled.max(pulled_last);
    }
    seen.unwrap_or(pulled)
}

/// True when an IOC last active at `activity` has aged out of every list.
pub fn is_aged(cfg: &ScoringConfig, activity: i64, now: i64) -> bool {
    now - activity > cfg.max_age_days as i64 * 86_400
}

pub fn score(
    cfg: &ScoringConfig,
    confidence: u8,
    activity: i64,
    now: i64,
    reports: usize,
    is_compromised: bool,
) -> ScoreTerms {
    let age_days = ((now - activity).max(0) as f64) / 86_400.0;
    let decay = if cfg.half_life_days > 0.0 {
        0.5f64.powf(age_days / cfg.half_life_days)
    } else {
        1.0
    };
    let corroboration = 1.0 + 0.1 * (reports.saturating_sub(1).min(5) as f64);
    let compromised = if is_compromised {
        cfg.compromised_factor
    } else {
        1.0
    };
    let raw = confidence as f64 * decay * corroboration * compromised;
    ScoreTerms {
        confidence,
        age_days,
        decay,
        reports,
        corroboration,
        compromised,
        score: raw.round().clamp(0.0, 100.0) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms() {
        let cfg = ScoringConfig::default();
        let day = 86_400;
        assert_eq!(score(&cfg, 80, 0, 0, 1, false).score, 80);
        assert_eq!(score(&cfg, 80, 0, 30 * day, 1, false).score, 40);
        assert_eq!(score(&cfg, 80, 0, 0, 3, false).score, 96);
        assert_eq!(score(&cfg, 100, 0, 0, 9, false).score, 100);
        assert_eq!(score(&cfg, 80, 0, 0, 1, true).score, 40);
        // Activity in the future (clock skew upstream) does not raise a score.
        assert_eq!(score(&cfg, 80, 10 * day, 0, 1, false).score, 80);
    }
}
