//! The SHA-256 hash chain shared by every journal in ets (the registry's and the MRV journal).
//!
//! A record's hash is `SHA-256(prev_hash || seq as 8 big-endian bytes || body)`, with 32 zero
//! bytes before record 1. Changing, removing or reordering any record changes every later hash.

use crate::Timestamp;
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// A record as stored: body bytes plus its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub command_id: String,
    pub body: Vec<u8>,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

pub fn chain_hash(prev_hash: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(seq.to_be_bytes());
    h.update(body);
    h.finalize().into()
}

/// Walks records in order and reports the first one that breaks the chain.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: u64,
    prev_hash: [u8; 32],
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier { expected_seq: 1, prev_hash: GENESIS_HASH }
    }
}

impl ChainVerifier {
    /// Continues a chain whose record `next_seq - 1` has hash `prev_hash` (after a snapshot).
    pub fn starting_at(next_seq: u64, prev_hash: [u8; 32]) -> ChainVerifier {
        ChainVerifier { expected_seq: next_seq, prev_hash }
    }

    /// Checks one stored record (seq, body, stored prev_hash, stored hash) against the chain so far.
    pub fn check(&mut self, seq: u64, body: &[u8], prev_hash: &[u8; 32], hash: &[u8; 32]) -> Result<(), String> {
        if seq != self.expected_seq {
            return Err(if seq > self.expected_seq {
                format!("record {} is missing (next stored record is {seq})", self.expected_seq)
            } else {
                format!("record {seq} appears out of order (expected {})", self.expected_seq)
            });
        }
        if prev_hash != &self.prev_hash {
            return Err(format!(
                "record {seq}: its link to record {} does not match that record's hash (a record was altered, removed or inserted)",
                seq - 1
            ));
        }
        if &chain_hash(prev_hash, seq, body) != hash {
            return Err(format!("record {seq} was altered: its content does not match its hash"));
        }
        self.expected_seq += 1;
        self.prev_hash = *hash;
        Ok(())
    }

    pub fn head(&self) -> (u64, [u8; 32]) {
        (self.expected_seq - 1, self.prev_hash)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SealedRecord {
    pub fn seal(seq: u64, at: Timestamp, command_id: String, body: Vec<u8>, prev_hash: [u8; 32]) -> SealedRecord {
        let hash = chain_hash(&prev_hash, seq, &body);
        SealedRecord { seq, at, command_id, body, prev_hash, hash }
    }
}
