use std::fmt;

/// Why a calculation or a factor lookup was refused. Every variant carries enough text to tell
/// the user which input was wrong and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MrvError {
    /// An input was outside its allowed range (negative quantity, oxidation factor > 1, ...).
    InvalidInput { name: &'static str, value: String, rule: &'static str },
    /// Exact decimal arithmetic overflowed (more than 28 significant digits needed).
    Overflow { step: &'static str },
    /// No factor with this key is valid on the requested date, or the key is unknown.
    FactorNotFound { key: String, on: Option<String> },
    /// The key has several dated entries, so a date must be given to choose one.
    FactorAmbiguous { key: String },
    /// A GWP set name other than AR4, AR5 or AR6.
    UnknownGwpSet(String),
    /// The rule does not apply (e.g. purchased electricity after it stopped counting).
    NotApplicable(String),
    /// The factor data file is malformed or fails validation.
    BadFactorData(String),
}

impl fmt::Display for MrvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MrvError::InvalidInput { name, value, rule } => write!(f, "invalid {name} = {value}: {rule}"),
            MrvError::Overflow { step } => write!(f, "decimal overflow while computing {step}"),
            MrvError::FactorNotFound { key, on: Some(on) } => write!(f, "no factor '{key}' is valid on {on}"),
            MrvError::FactorNotFound { key, on: None } => write!(f, "no factor '{key}' in the factor data"),
            MrvError::FactorAmbiguous { key } => {
                write!(f, "factor '{key}' has several dated entries; look it up for a specific date")
            }
            MrvError::UnknownGwpSet(name) => write!(f, "unknown GWP set '{name}': expected AR4, AR5 or AR6"),
            MrvError::NotApplicable(why) => write!(f, "not applicable: {why}"),
            MrvError::BadFactorData(why) => write!(f, "bad factor data: {why}"),
        }
    }
}

impl std::error::Error for MrvError {}

pub type Result<T> = std::result::Result<T, MrvError>;
