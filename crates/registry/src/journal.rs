//! Journal records and their SHA-256 chain. Pure functions: the store decides where records live.
//!
//! A record's body is the postcard encoding of `Record`; its hash is
//! `SHA-256(prev_hash || seq as 8 big-endian bytes || body)`, with 32 zero bytes before record 1.
//! Changing, removing or reordering any record changes every later hash.

use crate::command::Envelope;
use crate::event::Event;
use ets_core::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use ets_core::chain::{chain_hash, hex, ChainVerifier, SealedRecord, GENESIS_HASH};
use std::hash::{Hash, Hasher};

/// Version of the record body encoding; bump when `Record` or `Event` change shape.
pub const JOURNAL_FORMAT: u32 = 1;

/// One accepted command: who asked, under which id, when the shell accepted it, and what happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `JOURNAL_FORMAT` of the program that wrote the record; replay refuses other formats.
    pub format: u32,
    pub seq: u64,
    pub at: Timestamp,
    pub command_id: String,
    pub actor: String,
    /// Fingerprint of the command's content, so a repeated id can be told apart from a reused one.
    pub fingerprint: u64,
    pub events: Vec<Event>,
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("record encodes")
    }

    pub fn decode(body: &[u8]) -> Result<Record, String> {
        postcard::from_bytes(body).map_err(|e| format!("record body does not decode: {e}"))
    }

    pub fn seal(&self, prev_hash: [u8; 32]) -> SealedRecord {
        SealedRecord::seal(self.seq, self.at, self.command_id.clone(), self.encode(), prev_hash)
    }
}

/// Fingerprint of a command's content (actor and command), to tell a retried command from an
/// id reused for something else. It needs no resistance to attack: a client can only confuse
/// its own commands. It is computed through `#[derive(Hash)]` with the fixed, endian-explicit
/// `StableHasher` below, which is several times cheaper than encoding the command; should a
/// future compiler change how derived `Hash` feeds fields, a command retried across that upgrade
/// would be refused as a reused id, never applied twice.
pub fn fingerprint(envelope: &Envelope) -> u64 {
    let mut hasher = StableHasher::default();
    envelope.actor.hash(&mut hasher);
    envelope.command.hash(&mut hasher);
    hasher.finish()
}

/// A word-at-a-time multiply-rotate hasher (the FxHash step) with a fixed seed and
/// little-endian integer encoding: the same input gives the same value on every machine.
struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0x243f_6a88_85a3_08d3)
    }
}

impl StableHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    fn step(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.step(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.step(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        self.step(u64::from_le_bytes(tail));
    }

    fn write_u8(&mut self, i: u8) {
        self.step(u64::from(i));
    }

    fn write_u16(&mut self, i: u16) {
        self.step(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.step(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.step(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.step(i as u64);
    }

    fn write_isize(&mut self, i: isize) {
        self.step(i as i64 as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The idempotency index key of a command id: the first 16 bytes of its SHA-256. Fixed-size
/// keys keep the index compact and cache-friendly; a cryptographic hash means no client can
/// choose an id that collides with another's.
pub fn command_key(id: &str) -> u128 {
    let digest = Sha256::digest(id.as_bytes());
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"))
}
