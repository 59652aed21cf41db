//! Argon2id password hashes as PHC strings. Deterministic given the salt, which the caller
//! supplies (the shell draws it from a random source); the cost parameters are data
//! (`PasswordRules`), and verification reads them back from the stored string.

use crate::rules::PasswordRules;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Length of the salt the caller supplies (128 bits, RFC 9106's recommendation).
pub const SALT_BYTES: usize = 16;

/// Checks the password's length against the rules; the message says what to do.
pub fn check_password(rules: &PasswordRules, password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < rules.length_min {
        return Err(format!("the password has {chars} characters; at least {} are required", rules.length_min));
    }
    if password.len() > rules.length_max_bytes {
        return Err(format!("the password is {} bytes long; the limit is {}", password.len(), rules.length_max_bytes));
    }
    Ok(())
}

/// The Argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `password`.
pub fn hash_password(rules: &PasswordRules, password: &str, salt: &[u8; SALT_BYTES]) -> Result<String, String> {
    let params =
        Params::new(rules.memory_kib, rules.iterations, rules.parallelism, None).map_err(|e| format!("Argon2id parameters: {e}"))?;
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(salt).map_err(|e| format!("salt: {e}"))?;
    let hash = hasher.hash_password(password.as_bytes(), &salt).map_err(|e| format!("hashing: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string. A string that does not parse, or is not
/// Argon2id, matches nothing.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) if parsed.algorithm.as_str() == "argon2id" => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_deterministically_and_verifies() {
        let rules = PasswordRules { memory_kib: 64, iterations: 1, parallelism: 1, ..PasswordRules::default() };
        let a = hash_password(&rules, "correct horse battery", &[7; SALT_BYTES]).unwrap();
        assert_eq!(a, hash_password(&rules, "correct horse battery", &[7; SALT_BYTES]).unwrap());
        assert_ne!(a, hash_password(&rules, "correct horse battery", &[8; SALT_BYTES]).unwrap());
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert!(check_password(&rules, "short").is_err());
    }
}
