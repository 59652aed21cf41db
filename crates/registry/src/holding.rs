//! One account's holding of one unit type: free serial blocks in the order they arrived, plus
//! the total held aside (pending or frozen). Units leave first-in, first-out.

use crate::model::Block;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holding {
    free: VecDeque<Block>,
    free_total: u64,
    /// Units of this holding that are in pending transfers or frozen: owned, not movable.
    pub encumbered_total: u64,
}

impl Holding {
    pub fn free_total(&self) -> u64 {
        self.free_total
    }

    pub fn total(&self) -> u64 {
        self.free_total + self.encumbered_total
    }

    pub fn free_blocks(&self) -> impl Iterator<Item = &Block> {
        self.free.iter()
    }

    pub fn free_block_count(&self) -> usize {
        self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The blocks that taking `quantity` would move, oldest first, splitting the last one.
    /// The caller has checked that `quantity <= free_total`.
    pub fn plan_take(&self, quantity: u64) -> Vec<Block> {
        assert!(quantity <= self.free_total, "plan_take beyond free holding");
        let mut out = Vec::with_capacity(2);
        let mut rest = quantity;
        for block in &self.free {
            if rest == 0 {
                break;
            }
            let n = block.len().min(rest);
            out.push(Block { start: block.start, end: block.start + n });
            rest -= n;
        }
        assert_eq!(rest, 0, "free blocks sum to less than free_total");
        out
    }

    /// Appends blocks, merging with the newest block when serials are contiguous.
    pub fn receive(&mut self, blocks: &[Block]) {
        for &block in blocks {
            assert!(!block.is_empty(), "empty block received");
            self.free_total = self.free_total.checked_add(block.len()).expect("holding overflow");
            match self.free.back_mut() {
                Some(last) if last.end == block.start => last.end = block.end,
                _ => self.free.push_back(block),
            }
        }
    }

    /// Removes exactly these serials from the free blocks. Fast when they are the oldest blocks
    /// (the usual case: they came from `plan_take`); otherwise searches (corrections).
    /// Returns false, changing nothing, when some serial is not free here.
    pub fn remove(&mut self, blocks: &[Block]) -> bool {
        if self.is_front(blocks) {
            for block in blocks {
                let front = self.free.front_mut().expect("checked by is_front");
                if front.end == block.end {
                    self.free.pop_front();
                } else {
                    front.start = block.end;
                }
                self.free_total -= block.len();
            }
            return true;
        }
        if !self.holds_free(blocks) {
            return false;
        }
        for &block in blocks {
            // Free blocks are not kept coalesced (units that come back are appended), so one
            // requested block may span several free blocks: remove it piece by piece.
            let mut start = block.start;
            while start < block.end {
                let i = self.free.iter().position(|f| f.start <= start && start < f.end).expect("checked above");
                let outer = self.free[i];
                let piece = Block { start, end: block.end.min(outer.end) };
                let left = Block { start: outer.start, end: piece.start };
                let right = Block { start: piece.end, end: outer.end };
                match (left.is_empty(), right.is_empty()) {
                    (true, true) => {
                        self.free.remove(i);
                    }
                    (false, true) => self.free[i] = left,
                    (true, false) => self.free[i] = right,
                    (false, false) => {
                        self.free[i] = left;
                        self.free.insert(i + 1, right);
                    }
                }
                self.free_total -= piece.len();
                start = piece.end;
            }
        }
        true
    }

    /// Whether every serial of `blocks` is free here (non-mutating twin of `remove`).
    pub fn holds_free(&self, blocks: &[Block]) -> bool {
        blocks.iter().all(|b| self.covers(*b)) && !has_overlap(blocks)
    }

    /// Whether the free blocks (disjoint, in any order) together cover `block`.
    fn covers(&self, block: Block) -> bool {
        let mut start = block.start;
        while start < block.end {
            match self.free.iter().find(|f| f.start <= start && start < f.end) {
                Some(f) => start = f.end,
                None => return false,
            }
        }
        true
    }

    fn is_front(&self, blocks: &[Block]) -> bool {
        // Blocks from plan_take: all but the last equal whole front blocks, the last is a prefix.
        let mut iter = self.free.iter();
        for (i, block) in blocks.iter().enumerate() {
            let Some(free) = iter.next() else { return false };
            let whole = free == block;
            let prefix = i + 1 == blocks.len() && free.start == block.start && block.end < free.end;
            if !(whole || prefix) {
                return false;
            }
        }
        true
    }

    /// Sum of the free blocks, recomputed (for the full invariant check).
    pub fn recount_free(&self) -> u64 {
        self.free.iter().map(|b| b.len()).sum()
    }
}

fn has_overlap(blocks: &[Block]) -> bool {
    let mut sorted = blocks.to_vec();
    sorted.sort();
    sorted.windows(2).any(|w| w[0].end > w[1].start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(start: u64, end: u64) -> Block {
        Block { start, end }
    }

    #[test]
    fn take_splits_the_last_block_and_keeps_the_rest() {
        let mut h = Holding::default();
        h.receive(&[b(1, 11), b(21, 31)]);
        let plan = h.plan_take(15);
        assert_eq!(plan, vec![b(1, 11), b(21, 26)]);
        assert!(h.remove(&plan));
        assert_eq!(h.free_blocks().copied().collect::<Vec<_>>(), vec![b(26, 31)]);
        assert_eq!(h.free_total(), 5);
    }

    #[test]
    fn contiguous_receipts_merge() {
        let mut h = Holding::default();
        h.receive(&[b(1, 5), b(5, 9)]);
        assert_eq!(h.free_block_count(), 1);
        assert_eq!(h.free_total(), 8);
    }

    #[test]
    fn remove_from_the_middle_and_refuse_what_is_not_there() {
        let mut h = Holding::default();
        h.receive(&[b(1, 101)]);
        assert!(h.remove(&[b(40, 50)]));
        assert_eq!(h.free_blocks().copied().collect::<Vec<_>>(), vec![b(1, 40), b(50, 101)]);
        assert!(!h.remove(&[b(45, 46)]), "already removed");
        assert!(!h.remove(&[b(60, 70), b(65, 66)]), "overlapping request");
        assert_eq!(h.free_total(), 90);
    }
}
