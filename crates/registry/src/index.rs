//! The idempotency index: every accepted command's key (the first 16 bytes of the SHA-256 of its
//! id), its fingerprint and its receipt, kept for ever.
//!
//! At millions of commands this table is far larger than the caches, and each new command costs
//! a random memory access; it dominated the transfer path. Two things keep it cheap: keys are
//! already uniformly random, so a key's low bits are its slot (open addressing, linear probing,
//! no rehashing of the key), and a batch can prefetch the slots of the commands ahead of the one
//! being executed, so the access overlaps with useful work.

use crate::model::{AccountIdx, MarketIdx, TxId};
use crate::registry::Receipt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    pub fingerprint: u64,
    pub receipt: Receipt,
}

/// One slot: half a cache line. The receipt lives in `receipts`, in journal order, so the
/// random-access table stays small.
#[derive(Clone, Copy)]
#[repr(align(32))]
struct Slot {
    /// 0 marks an empty slot; a real key of 0 is stored as 1 (see `stored`).
    key: u128,
    fingerprint: u64,
    seq: u64,
}

const EMPTY: Slot = Slot { key: 0, fingerprint: 0, seq: 0 };

/// A receipt without its sequence number (that is its position), without `Option` padding.
#[derive(Clone, Copy)]
struct PackedReceipt {
    tx: u64,
    account: u32,
    market: u16,
}

const NONE_U32: u32 = u32::MAX;
const NONE_U16: u16 = u16::MAX;

/// Capacity of a new index, in slots (a power of two).
const CAPACITY_MIN: usize = 1024;

#[derive(Clone)]
pub(crate) struct CommandIndex {
    slots: Vec<Slot>,
    len: usize,
    /// Receipts by journal sequence number - 1.
    receipts: Vec<Option<PackedReceipt>>,
}

impl Default for CommandIndex {
    fn default() -> Self {
        CommandIndex { slots: vec![EMPTY; CAPACITY_MIN], len: 0, receipts: Vec::new() }
    }
}

impl std::fmt::Debug for CommandIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommandIndex({} commands)", self.len)
    }
}

/// Keys equal to the empty marker are stored as 1 (a 2^-128 coincidence).
fn stored(key: u128) -> u128 {
    key.max(1)
}

impl CommandIndex {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn applied(&self, slot: &Slot) -> Applied {
        let packed = self.receipts[(slot.seq - 1) as usize].expect("every indexed command has a receipt");
        Applied {
            fingerprint: slot.fingerprint,
            receipt: Receipt {
                seq: slot.seq,
                tx: (packed.tx != 0).then_some(TxId(packed.tx)),
                account: (packed.account != NONE_U32).then_some(AccountIdx(packed.account)),
                market: (packed.market != NONE_U16).then_some(MarketIdx(packed.market)),
            },
        }
    }

    pub fn get(&self, key: u128) -> Option<Applied> {
        let key = stored(key);
        let mut i = (key as usize) & self.mask();
        loop {
            let slot = &self.slots[i];
            if slot.key == key {
                return Some(self.applied(slot));
            }
            if slot.key == 0 {
                return None;
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Inserts a key that is not present (the caller looked it up first).
    pub fn insert(&mut self, key: u128, applied: Applied) {
        // Keep the load at most 3/4: short probe runs, each within a few adjacent cache lines.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let key = stored(key);
        let mask = self.mask();
        let mut i = (key as usize) & mask;
        while self.slots[i].key != 0 {
            assert_ne!(self.slots[i].key, key, "command key inserted twice");
            i = (i + 1) & mask;
        }
        let r = applied.receipt;
        self.slots[i] = Slot { key, fingerprint: applied.fingerprint, seq: r.seq };
        self.len += 1;
        let position = (r.seq - 1) as usize;
        if self.receipts.len() <= position {
            self.receipts.resize(position + 1, None);
        }
        self.receipts[position] = Some(PackedReceipt {
            tx: r.tx.map_or(0, |t| t.0),
            account: r.account.map_or(NONE_U32, |a| a.0),
            market: r.market.map_or(NONE_U16, |m| m.0),
        });
    }

    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.mask();
        for slot in old.into_iter().filter(|s| s.key != 0) {
            let mut i = (slot.key as usize) & mask;
            while self.slots[i].key != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Makes room for `more` commands without growing again.
    pub fn reserve(&mut self, more: usize) {
        while (self.len + more) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.receipts.reserve(more);
    }

    /// Asks the CPU to start loading the slot of `key`; a hint with no effect on results.
    pub fn prefetch(&self, key: u128) {
        let i = (stored(key) as usize) & self.mask();
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `i` is within `slots`, and a prefetch never faults or changes memory.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.slots.as_ptr().add(i) as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    pub fn iter(&self) -> impl Iterator<Item = (u128, Applied)> + '_ {
        self.slots.iter().filter(|s| s.key != 0).map(|s| (s.key, self.applied(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(seq: u64) -> Applied {
        Applied { fingerprint: seq * 7, receipt: Receipt { seq, tx: Some(TxId(seq * 3)), account: None, market: None } }
    }

    #[test]
    fn finds_what_was_inserted_across_growth_and_collisions() {
        let mut index = CommandIndex::default();
        // Keys sharing their low bits collide on purpose.
        let keys: Vec<u128> = (0..5000u128).map(|i| (i << 64) | (i % 7)).chain([1 << 100]).collect();
        for (n, key) in keys.iter().enumerate() {
            assert!(index.get(*key).is_none());
            index.insert(*key, applied(n as u64 + 1));
        }
        for (n, key) in keys.iter().enumerate() {
            assert_eq!(index.get(*key), Some(applied(n as u64 + 1)), "key {key:x}");
        }
        assert!(index.get(12345 << 64).is_none());
        assert_eq!(index.iter().count(), keys.len());
    }
}
