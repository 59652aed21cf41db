use serde::{Deserialize, Serialize};
use std::fmt;

/// A whole number of tonnes of CO2e. One compliance unit is one tonne.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tonnes(pub u64);

/// Money in fen (1 yuan = 100 fen). Signed: cash ledgers record debits and credits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fen(pub i64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuantityError {}

impl Tonnes {
    pub const ZERO: Tonnes = Tonnes(0);

    pub fn checked_add(self, other: Tonnes) -> Option<Tonnes> {
        self.0.checked_add(other.0).map(Tonnes)
    }

    pub fn checked_sub(self, other: Tonnes) -> Option<Tonnes> {
        self.0.checked_sub(other.0).map(Tonnes)
    }

    /// Parses a positive whole number of tonnes: digits, optionally grouped with `_` or `,`.
    /// Rejects signs, decimals, exponents, zero and values beyond `Tonnes::MAX_PARSED`.
    pub fn parse_positive(text: &str) -> Result<Tonnes, QuantityError> {
        let trimmed = text.trim();
        let err = |why: &str| QuantityError(format!("quantity '{text}' {why}"));
        if trimmed.is_empty() {
            return Err(err("is empty; give a whole number of tonnes such as 1000"));
        }
        if trimmed.starts_with('-') {
            return Err(err("is negative; quantities are positive whole tonnes"));
        }
        if trimmed.contains('.') {
            return Err(err("has a decimal point; quantities are whole tonnes"));
        }
        let mut value: u64 = 0;
        let mut digits = 0usize;
        for c in trimmed.chars() {
            match c {
                '0'..='9' => {
                    digits += 1;
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(c as u8 - b'0')))
                        .filter(|v| *v <= Self::MAX_PARSED.0)
                        .ok_or_else(|| err(&format!("is too large; the limit is {}", Self::MAX_PARSED.0)))?;
                }
                '_' | ',' if digits > 0 => {}
                _ => return Err(err(&format!("has {c:?}; use digits only, e.g. 1000"))),
            }
        }
        if value == 0 {
            return Err(err("is zero; give at least 1 tonne"));
        }
        Ok(Tonnes(value))
    }

    /// Bound on a single quantity: 10^15 t, far beyond any market (global emissions are ~4*10^10 t)
    /// while leaving headroom so that sums of many quantities cannot overflow u64.
    pub const MAX_PARSED: Tonnes = Tonnes(1_000_000_000_000_000);
}

impl fmt::Display for Tonnes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", group_thousands(self.0 as i128))
    }
}

impl Fen {
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// Parses yuan with at most two decimals ("104.89", "-3", "1,000.5") into fen, exactly.
    pub fn parse_yuan(text: &str) -> Result<Fen, QuantityError> {
        let trimmed = text.trim();
        let err = |why: &str| QuantityError(format!("amount '{text}' {why}"));
        let (negative, body) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, fraction) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        if whole.is_empty() || fraction.len() > 2 {
            return Err(err("must look like 104.89: yuan with at most two decimals"));
        }
        let mut fen: i64 = 0;
        for c in whole.chars().filter(|c| *c != ',' && *c != '_') {
            let d = c.to_digit(10).ok_or_else(|| err(&format!("has {c:?}")))?;
            fen = fen.checked_mul(10).and_then(|v| v.checked_add(i64::from(d))).ok_or_else(|| err("is too large"))?;
        }
        fen = fen.checked_mul(100).ok_or_else(|| err("is too large"))?;
        let mut scale = 10;
        for c in fraction.chars() {
            let d = c.to_digit(10).ok_or_else(|| err(&format!("has {c:?}")))?;
            fen = fen.checked_add(i64::from(d) * scale).ok_or_else(|| err("is too large"))?;
            scale /= 10;
        }
        Ok(Fen(if negative { -fen } else { fen }))
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = (self.0 as i128).abs();
        write!(f, "{sign}{}.{:02}", group_thousands(abs / 100), abs % 100)
    }
}

fn group_thousands(value: i128) -> String {
    let digits = value.abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonnes_parse_accepts_whole_positive_numbers() {
        for (text, expected) in [("1", 1), ("1000", 1000), ("1_000_000", 1_000_000), ("12,345", 12_345)] {
            assert_eq!(Tonnes::parse_positive(text), Ok(Tonnes(expected)), "{text}");
        }
    }

    #[test]
    fn tonnes_parse_rejects_with_reason() {
        for (text, why) in [
            ("", "empty"),
            ("0", "zero"),
            ("-5", "negative"),
            ("1.5", "decimal"),
            ("1e3", "'e'"),
            ("abc", "'a'"),
            ("99999999999999999999", "too large"),
            (",1", "','"),
        ] {
            let error = Tonnes::parse_positive(text).unwrap_err().0;
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn fen_parse_and_display_are_exact() {
        for (text, fen, shown) in
            [("104.89", 10_489, "104.89"), ("-3", -300, "-3.00"), ("1,000.5", 100_050, "1,000.50"), ("0.01", 1, "0.01")]
        {
            let parsed = Fen::parse_yuan(text).unwrap();
            assert_eq!(parsed, Fen(fen));
            assert_eq!(parsed.to_string(), shown);
        }
        assert!(Fen::parse_yuan("1.234").is_err());
        assert!(Fen::parse_yuan(".5").is_err());
    }

    #[test]
    fn tonnes_display_groups_thousands() {
        assert_eq!(Tonnes(1_234_567).to_string(), "1,234,567");
        assert_eq!(Tonnes(12).to_string(), "12");
    }
}
