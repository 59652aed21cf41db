use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a state machine (the registry, the MRV workflow, ...) refused a command: a kind, which
/// each machine defines and each edge maps to an exit code or status, and a message that says
/// what was wrong and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection<K> {
    pub kind: K,
    pub message: String,
}

impl<K> Rejection<K> {
    pub fn new(kind: K, message: impl Into<String>) -> Rejection<K> {
        Rejection { kind, message: message.into() }
    }
}

impl<K> fmt::Display for Rejection<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<K: fmt::Debug> std::error::Error for Rejection<K> {}
