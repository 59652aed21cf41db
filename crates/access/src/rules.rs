//! Every parameter of the controls, as data with documented defaults. Sources are the keys of
//! `shared/domain/mechanisms.md` §8 ([S1] = Delegated Reg. (EU) 2019/1122 as amended by
//! 2023/1642, [S2] = registry guidance on opening hours, [S6] = the 2,000,000 limit notice,
//! [S7] = Art. 35); "platform choice" marks a value no domain source gives.

use crate::calendar::Calendar;
use serde::{Deserialize, Serialize};

/// How the registry treats proposals and approvals made outside opening hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutsideHours {
    /// Accept them; execution waits for the next opening (Art. 35(2): "proposed before 10:00 →
    /// 10:00 same day") [S7]. The default.
    Defer,
    /// Refuse them with a message naming the next opening.
    Refuse,
}

/// Argon2id cost parameters (RFC 9106). Default m = 19,456 KiB, t = 2, p = 1: the OWASP
/// Password Storage Cheat Sheet's minimum for Argon2id (platform choice). Tests use lower costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordRules {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Shortest password accepted, in characters. Default 12 (platform choice).
    pub length_min: usize,
    /// Longest password accepted, in bytes; bounds the hashing work. Default 1,024.
    pub length_max_bytes: usize,
}

impl Default for PasswordRules {
    fn default() -> PasswordRules {
        PasswordRules { memory_kib: 19_456, iterations: 2, parallelism: 1, length_min: 12, length_max_bytes: 1_024 }
    }
}

/// Login throttling: `failures_max` failed logins within `window_ms` lock the user (and,
/// separately, the origin) for `lockout_ms`. Defaults 5 in 15 minutes lock for 15 minutes
/// (platform choice; the registries' own numbers are not in our sources).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleRules {
    pub failures_max: u32,
    pub window_ms: i64,
    pub lockout_ms: i64,
}

impl Default for ThrottleRules {
    fn default() -> ThrottleRules {
        ThrottleRules { failures_max: 5, window_ms: 15 * 60_000, lockout_ms: 15 * 60_000 }
    }
}

/// The rules of the security controls, validated on load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlRules {
    pub calendar: Calendar,
    /// Working days after approval on which a trusted-list addition takes effect. Default 4
    /// (Art. 23(4) as amended 2023 [S1]; 7 before 2023 [S2][S3][S4]).
    pub trusted_addition_delay_working_days: u32,
    /// Local minute of that day at which it takes effect. Default 720 (12:00 CET, Art. 23(4) [S1]).
    pub trusted_addition_effective_minute: u32,
    /// The "26-hour" rule for transfers to accounts not on the trusted list (Art. 35(3) [S7]):
    /// approved on a working day before `untrusted_cutoff_minute` → released at
    /// `untrusted_release_minute` of the working day `untrusted_delay_working_days_before_cutoff`
    /// later; at or after the cutoff (or on a closed day, counted from the working day before)
    /// → `untrusted_delay_working_days_after_cutoff` working days later. Defaults 12:00, 12:00,
    /// 1 and 2.
    pub untrusted_cutoff_minute: u32,
    pub untrusted_release_minute: u32,
    pub untrusted_delay_working_days_before_cutoff: u32,
    pub untrusted_delay_working_days_after_cutoff: u32,
    /// Largest quantity one transfer may carry to an account not on the source's trusted list.
    /// Default 2,000,000 t (the central administrator's limit since 10 Sep 2023 [S1][S6]).
    pub untrusted_transfer_limit_t: u64,
    /// Proposals and approvals outside opening hours. Default `Defer` [S7].
    pub outside_hours: OutsideHours,
    pub throttle: ThrottleRules,
    pub password: PasswordRules,
    /// Lifetime of a login session. Default 8 hours (platform choice).
    pub session_lifetime_ms: i64,
    /// Longest lifetime of an API token. Default 90 days (platform choice).
    pub token_lifetime_max_ms: i64,
    /// Shortest session or token secret accepted, in bytes. Default 32 (256 bits if the shell
    /// draws it from a random source, as it must).
    pub secret_length_min: usize,
    /// Limits on everything (platform choices).
    pub sessions_per_user_max: usize,
    pub tokens_per_user_max: usize,
    pub roles_per_user_max: usize,
    pub open_proposals_per_account_max: usize,
    pub trusted_per_account_max: usize,
}

impl Default for ControlRules {
    fn default() -> ControlRules {
        ControlRules {
            calendar: Calendar::default(),
            trusted_addition_delay_working_days: 4,
            trusted_addition_effective_minute: 720,
            untrusted_cutoff_minute: 720,
            untrusted_release_minute: 720,
            untrusted_delay_working_days_before_cutoff: 1,
            untrusted_delay_working_days_after_cutoff: 2,
            untrusted_transfer_limit_t: 2_000_000,
            outside_hours: OutsideHours::Defer,
            throttle: ThrottleRules::default(),
            password: PasswordRules::default(),
            session_lifetime_ms: 8 * 3_600_000,
            token_lifetime_max_ms: 90 * 86_400_000,
            secret_length_min: 32,
            sessions_per_user_max: 16,
            tokens_per_user_max: 32,
            roles_per_user_max: 64,
            open_proposals_per_account_max: 1_000,
            trusted_per_account_max: 1_000,
        }
    }
}

/// Longest delay in working days any rule may ask for; a limit on every calendar walk.
pub const DELAY_WORKING_DAYS_MAX: u32 = 30;

impl ControlRules {
    /// Reads rules from JSON (absent fields take their defaults) and validates them, reporting
    /// every problem at once.
    pub fn from_json(text: &str) -> Result<ControlRules, Vec<String>> {
        let rules: ControlRules = serde_json::from_str(text).map_err(|e| vec![format!("control rules: {e}")])?;
        let problems = rules.problems();
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(problems)
        }
    }

    /// Every problem with these rules, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.calendar.problems();
        let minute = |p: &mut Vec<String>, name: &str, value: u32| {
            if value >= 1_440 {
                p.push(format!("{name} {value} is not a minute of the day (0..1440)"));
            }
        };
        minute(&mut p, "trusted_addition_effective_minute", self.trusted_addition_effective_minute);
        minute(&mut p, "untrusted_cutoff_minute", self.untrusted_cutoff_minute);
        minute(&mut p, "untrusted_release_minute", self.untrusted_release_minute);
        let cal = &self.calendar;
        if !(cal.opening_minute..cal.closing_minute).contains(&self.untrusted_release_minute) {
            p.push(format!(
                "untrusted_release_minute {} must lie within opening hours [{}, {}): transfers execute only while the registry is open",
                self.untrusted_release_minute, cal.opening_minute, cal.closing_minute
            ));
        }
        for (name, days) in [
            ("trusted_addition_delay_working_days", self.trusted_addition_delay_working_days),
            ("untrusted_delay_working_days_before_cutoff", self.untrusted_delay_working_days_before_cutoff),
            ("untrusted_delay_working_days_after_cutoff", self.untrusted_delay_working_days_after_cutoff),
        ] {
            if days > DELAY_WORKING_DAYS_MAX {
                p.push(format!("{name} {days} exceeds the limit of {DELAY_WORKING_DAYS_MAX} working days"));
            }
        }
        if self.untrusted_delay_working_days_before_cutoff == 0 {
            p.push(
                "untrusted_delay_working_days_before_cutoff must be at least 1: a transfer to an untrusted account is always delayed"
                    .into(),
            );
        }
        if self.untrusted_delay_working_days_after_cutoff < self.untrusted_delay_working_days_before_cutoff {
            p.push("untrusted_delay_working_days_after_cutoff must be at least the delay before the cutoff".into());
        }
        if self.untrusted_transfer_limit_t == 0 {
            p.push("untrusted_transfer_limit_t must be positive (a transfer of 0 t is not a transfer)".into());
        }
        let t = &self.throttle;
        if t.failures_max == 0 || t.window_ms <= 0 || t.lockout_ms <= 0 {
            p.push("throttle.failures_max, window_ms and lockout_ms must all be positive".into());
        }
        let pw = &self.password;
        if argon2::Params::new(pw.memory_kib, pw.iterations, pw.parallelism, None).is_err() {
            p.push(format!(
                "password Argon2id parameters m = {} KiB, t = {}, p = {} are out of range (m ≥ 8·p KiB, t ≥ 1, p ≥ 1)",
                pw.memory_kib, pw.iterations, pw.parallelism
            ));
        }
        if pw.length_min == 0 || pw.length_min > pw.length_max_bytes {
            p.push(format!("password.length_min {} must be positive and at most length_max_bytes {}", pw.length_min, pw.length_max_bytes));
        }
        if self.session_lifetime_ms <= 0 || self.token_lifetime_max_ms <= 0 {
            p.push("session_lifetime_ms and token_lifetime_max_ms must be positive".into());
        }
        if self.secret_length_min < 16 {
            p.push(format!("secret_length_min {} is below 16 bytes (128 bits)", self.secret_length_min));
        }
        for (name, value) in [
            ("sessions_per_user_max", self.sessions_per_user_max),
            ("tokens_per_user_max", self.tokens_per_user_max),
            ("roles_per_user_max", self.roles_per_user_max),
            ("open_proposals_per_account_max", self.open_proposals_per_account_max),
            ("trusted_per_account_max", self.trusted_per_account_max),
        ] {
            if value == 0 {
                p.push(format!("{name} must be positive"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_files_name_every_problem() {
        assert!(ControlRules::default().problems().is_empty());
        assert_eq!(ControlRules::from_json("{}").unwrap(), ControlRules::default());
        let rules =
            ControlRules::from_json(r#"{"trusted_addition_delay_working_days": 7, "calendar": {"holidays": ["2026-12-25"]}}"#).unwrap();
        assert_eq!(rules.trusted_addition_delay_working_days, 7);
        assert_eq!(rules.calendar.holidays.len(), 1);
        let problems = ControlRules::from_json(
            r#"{"untrusted_release_minute": 1000, "untrusted_transfer_limit_t": 0, "throttle": {"failures_max": 0}}"#,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(ControlRules::from_json(r#"{"no_such_rule": 1}"#).unwrap_err()[0].contains("no_such_rule"));
    }
}
