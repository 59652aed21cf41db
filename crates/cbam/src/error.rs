//! One error type for the crate. Every input error names the field (a path such as
//! `processes[2].precursors[0].mass_t`) and the reason.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CbamError {
    /// Bad input: the field and why.
    Input { field: String, reason: String },
    /// Precursor references form a cycle; the path names every process on it, first = last.
    Cycle { path: Vec<String> },
    /// The reference data file is invalid.
    Data(String),
    /// An exact-decimal step overflowed (28 significant digits).
    Overflow { step: &'static str },
}

pub type Result<T> = std::result::Result<T, CbamError>;

impl CbamError {
    pub fn input(field: impl Into<String>, reason: impl Into<String>) -> CbamError {
        CbamError::Input { field: field.into(), reason: reason.into() }
    }

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            CbamError::Input { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Prefixes the field path (an error found inside `lines[3]` becomes `lines[3].cn`).
    pub fn within(self, prefix: &str) -> CbamError {
        match self {
            CbamError::Input { field, reason } => CbamError::Input { field: format!("{prefix}.{field}"), reason },
            other => other,
        }
    }
}

impl fmt::Display for CbamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CbamError::Input { field, reason } => write!(f, "{field}: {reason}"),
            CbamError::Cycle { path } => write!(f, "precursor cycle: {} (a process cannot be its own precursor)", path.join(" -> ")),
            CbamError::Data(m) => write!(f, "CBAM reference data: {m}"),
            CbamError::Overflow { step } => write!(f, "arithmetic overflow in {step}"),
        }
    }
}

impl std::error::Error for CbamError {}
