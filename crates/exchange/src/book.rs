//! A price-time priority order book for one instrument.
//!
//! Resting orders live in a slab (`Vec` of slots, freed slots reused) and are chained per price
//! level in arrival order (a doubly linked list of slot indexes), so placing at the back of a
//! level and cancelling from anywhere are O(1) after the level is found. The levels of each side
//! are a `Vec` sorted so that the best level is the last one (see `Ladder`): matching works at
//! the end of it, and a level is found by looking at the top few levels, then by binary search.
//! Ids ever accepted (to refuse a reused one) are a bitmap for sequential ids (see `IdSet`).
//!
//! Rules:
//! - A limit order matches against the opposite side while prices cross (buy price ≥ ask,
//!   sell price ≤ bid), at the resting order's price, oldest first at each level; what is left
//!   rests (GTC) or is cancelled (IOC). FOK fills completely at once or does nothing.
//! - A market order matches at any price and never rests; what cannot fill is cancelled.
//! - Self-trade prevention: an incoming order never trades with a resting order of the same
//!   owner; the incoming order's remainder is cancelled when it would (cancel-newest).
//! - Amend: reducing the quantity keeps the order's place; a quantity above the current one
//!   re-queues it at the back of its level, as a new arrival.

use ahash::{AHashMap as HashMap, AHashSet as HashSet};
use serde::{Deserialize, Serialize};
use std::fmt;

pub type OrderId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

/// Time in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tif {
    /// Good till cancelled: the remainder rests.
    Gtc,
    /// Immediate or cancel: the remainder is cancelled.
    Ioc,
    /// Fill or kill: all at once or nothing.
    Fok,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A limit order (`price` in ticks) or, with `price: None`, a market order (never rests).
    Place {
        id: OrderId,
        owner: u32,
        side: Side,
        price: Option<i64>,
        qty: u64,
        tif: Tif,
    },
    Cancel {
        id: OrderId,
    },
    /// Set the order's remaining quantity.
    Amend {
        id: OrderId,
        qty: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Accepted {
        id: OrderId,
    },
    /// A trade at the resting (maker) order's price.
    Trade {
        maker: OrderId,
        taker: OrderId,
        price: i64,
        qty: u64,
    },
    /// The order rests in the book with this quantity.
    Rested {
        id: OrderId,
        qty: u64,
    },
    /// What was left of an order left the book or was never placed (IOC/FOK/market remainder,
    /// self-trade prevention, cancel).
    Cancelled {
        id: OrderId,
        qty: u64,
    },
    Amended {
        id: OrderId,
        qty: u64,
        kept_priority: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reject {
    ZeroQuantity,
    NonPositivePrice(i64),
    DuplicateId(OrderId),
    UnknownOrder(OrderId),
    MarketGtc,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::ZeroQuantity => f.write_str("an order needs a quantity of at least one lot"),
            Reject::NonPositivePrice(p) => write!(f, "price {p} ticks must be positive"),
            Reject::DuplicateId(id) => write!(f, "order id {id} is already in use"),
            Reject::UnknownOrder(id) => write!(f, "no resting order {id}"),
            Reject::MarketGtc => f.write_str("a market order cannot rest: use IOC or FOK"),
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Slot {
    id: OrderId,
    owner: u32,
    side: Side,
    price: i64,
    qty: u64,
    prev: u32,
    next: u32,
}

/// One price level: a FIFO of slots (head is oldest) and their total quantity.
#[derive(Clone, Copy, Debug)]
struct Level {
    /// The price for bids, minus the price for asks: higher is better on both sides.
    key: i64,
    head: u32,
    tail: u32,
    total: u64,
}

impl Level {
    fn price(&self, side: Side) -> i64 {
        match side {
            Side::Buy => self.key,
            Side::Sell => -self.key,
        }
    }
}

/// The levels of one side in a `Vec` sorted by `key` ascending, so the best level is the last
/// one: matching takes from and pops the end, and new orders mostly land near it, so inserting
/// or removing a level moves few entries. A book within a price band holds a few hundred
/// levels, where this beats a tree.
#[derive(Clone, Debug, Default)]
struct Ladder {
    levels: Vec<Level>,
}

fn key(side: Side, price: i64) -> i64 {
    match side {
        Side::Buy => price,
        Side::Sell => -price,
    }
}

impl Ladder {
    /// The position of the level with this key, or where it would go.
    #[inline]
    fn find(&self, key: i64) -> Result<usize, usize> {
        let levels = &self.levels;
        // Most activity is at the top of the book: look at the last few levels first.
        let n = levels.len();
        let mut i = n;
        while i > 0 && n - i < 4 {
            let k = levels[i - 1].key;
            if k == key {
                return Ok(i - 1);
            }
            if k < key {
                return Err(i);
            }
            i -= 1;
        }
        let pos = levels[..i].partition_point(|l| l.key < key);
        if pos < i && levels[pos].key == key {
            Ok(pos)
        } else {
            Err(pos)
        }
    }

    #[inline]
    fn level_mut(&mut self, key: i64) -> &mut Level {
        let pos = self.find(key).expect("resting level");
        &mut self.levels[pos]
    }
}

/// Every order id ever accepted. Ids are usually assigned in sequence, so those below a bound
/// that grows with the number of ids held are bits in a bitmap (a sequential id costs a bit and
/// touches the cache line of its neighbours); any other id goes to a hash set.
#[derive(Clone, Debug, Default)]
struct IdSet {
    bits: Vec<u64>,
    len: usize,
    other: HashSet<OrderId>,
}

impl IdSet {
    /// Adds the id; false if it was already there.
    #[inline]
    fn insert(&mut self, id: OrderId) -> bool {
        let word = id / 64;
        if word < self.bits.len() as u64 {
            let (w, bit) = (&mut self.bits[word as usize], 1u64 << (id % 64));
            if *w & bit != 0 {
                return false;
            }
            *w |= bit;
            self.len += 1;
            return true;
        }
        self.insert_beyond(id)
    }

    #[cold]
    fn insert_beyond(&mut self, id: OrderId) -> bool {
        let word = id / 64;
        // The bitmap may cover the id if it stays within 4 bits per id held plus 128 KiB.
        let words = (word + 1).next_power_of_two().max(1024);
        if words <= (self.len as u64 / 16) + 16_384 {
            let old = self.bits.len() as u64 * 64;
            let cover = words * 64;
            self.bits.resize(words as usize, 0);
            // Ids held in the set that the bitmap now covers move into it.
            let bits = &mut self.bits;
            self.other.retain(|&o| {
                if (old..cover).contains(&o) {
                    bits[(o / 64) as usize] |= 1 << (o % 64);
                    false
                } else {
                    true
                }
            });
            return self.insert(id);
        }
        if self.other.insert(id) {
            self.len += 1;
            true
        } else {
            false
        }
    }
}

/// The book of one instrument.
#[derive(Clone, Debug)]
pub struct OrderBook {
    slots: Vec<Slot>,
    free: Vec<u32>,
    bids: Ladder,
    asks: Ladder,
    /// Resting orders by id.
    index: HashMap<OrderId, u32>,
    /// Every id ever accepted (ids are never reused).
    seen: IdSet,
}

impl Default for OrderBook {
    fn default() -> OrderBook {
        OrderBook::new()
    }
}

impl OrderBook {
    pub fn new() -> OrderBook {
        OrderBook {
            slots: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            bids: Ladder::default(),
            asks: Ladder::default(),
            index: HashMap::with_capacity(1024),
            seen: IdSet::default(),
        }
    }

    pub fn best_bid(&self) -> Option<(i64, u64)> {
        self.bids.levels.last().map(|l| (l.price(Side::Buy), l.total))
    }

    pub fn best_ask(&self) -> Option<(i64, u64)> {
        self.asks.levels.last().map(|l| (l.price(Side::Sell), l.total))
    }

    /// Levels of one side, best first: (price, total quantity).
    pub fn depth(&self, side: Side, levels: usize) -> Vec<(i64, u64)> {
        self.ladder(side).levels.iter().rev().take(levels).map(|l| (l.price(side), l.total)).collect()
    }

    /// Resting orders of one side in priority order: (id, owner, price, quantity).
    pub fn orders(&self, side: Side) -> Vec<(OrderId, u32, i64, u64)> {
        let mut out = Vec::new();
        for level in self.ladder(side).levels.iter().rev() {
            let mut i = level.head;
            while i != NIL {
                let s = &self.slots[i as usize];
                out.push((s.id, s.owner, s.price, s.qty));
                i = s.next;
            }
        }
        out
    }

    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    #[inline]
    pub fn execute(&mut self, command: &Command, events: &mut Vec<Event>) -> Result<(), Reject> {
        match *command {
            Command::Place { id, owner, side, price, qty, tif } => self.place(id, owner, side, price, qty, tif, events),
            Command::Cancel { id } => {
                let slot = *self.index.get(&id).ok_or(Reject::UnknownOrder(id))?;
                let qty = self.slots[slot as usize].qty;
                self.unlink(slot);
                events.push(Event::Cancelled { id, qty });
                Ok(())
            }
            Command::Amend { id, qty } => {
                let slot = *self.index.get(&id).ok_or(Reject::UnknownOrder(id))?;
                if qty == 0 {
                    return Err(Reject::ZeroQuantity);
                }
                let s = &self.slots[slot as usize];
                let (old, side, price) = (s.qty, s.side, s.price);
                if qty <= old {
                    self.slots[slot as usize].qty = qty;
                    self.ladder_mut(side).level_mut(key(side, price)).total -= old - qty;
                    events.push(Event::Amended { id, qty, kept_priority: true });
                } else {
                    // A larger quantity goes to the back of the level, as a new arrival.
                    let owner = s.owner;
                    self.unlink(slot);
                    self.rest(id, owner, side, price, qty);
                    events.push(Event::Amended { id, qty, kept_priority: false });
                }
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn place(
        &mut self,
        id: OrderId,
        owner: u32,
        side: Side,
        price: Option<i64>,
        qty: u64,
        tif: Tif,
        events: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        if qty == 0 {
            return Err(Reject::ZeroQuantity);
        }
        if let Some(p) = price {
            if p <= 0 {
                return Err(Reject::NonPositivePrice(p));
            }
        }
        if price.is_none() && tif == Tif::Gtc {
            return Err(Reject::MarketGtc);
        }
        if !self.seen.insert(id) {
            return Err(Reject::DuplicateId(id));
        }
        events.push(Event::Accepted { id });
        if tif == Tif::Fok && self.fillable(owner, side, price) < qty {
            events.push(Event::Cancelled { id, qty });
            return Ok(());
        }
        let opposite = side.opposite();
        // The worst key of the opposite side this order may trade at (a market order: any).
        let limit = price.map_or(i64::MIN, |p| key(opposite, p));
        let mut left = qty;
        let mut self_trade = false;
        let OrderBook { slots, free, bids, asks, index, .. } = self;
        let ladder = match side {
            Side::Buy => asks,
            Side::Sell => bids,
        };
        'levels: while left > 0 {
            let Some(level) = ladder.levels.last_mut() else { break };
            if level.key < limit {
                break;
            }
            let level_price = level.price(opposite);
            // Orders leave a level only from its head while matching.
            while level.head != NIL && left > 0 {
                let i = level.head;
                let s = &mut slots[i as usize];
                if s.owner == owner {
                    // Self-trade prevention: the incoming order's remainder is cancelled.
                    self_trade = true;
                    break 'levels;
                }
                let q = s.qty.min(left);
                left -= q;
                level.total -= q;
                events.push(Event::Trade { maker: s.id, taker: id, price: level_price, qty: q });
                if q == s.qty {
                    let (maker, next) = (s.id, s.next);
                    index.remove(&maker);
                    free.push(i);
                    level.head = next;
                    if next == NIL {
                        level.tail = NIL;
                    } else {
                        slots[next as usize].prev = NIL;
                    }
                } else {
                    s.qty -= q;
                }
            }
            if level.head == NIL {
                ladder.levels.pop();
            }
        }
        if left > 0 {
            match (tif, price) {
                (Tif::Gtc, Some(p)) if !self_trade => {
                    self.rest(id, owner, side, p, left);
                    events.push(Event::Rested { id, qty: left });
                }
                _ => events.push(Event::Cancelled { id, qty: left }),
            }
        }
        Ok(())
    }

    /// What an order could fill now (for FOK), stopping at the owner's own orders as matching would.
    fn fillable(&self, owner: u32, side: Side, price: Option<i64>) -> u64 {
        let opposite = side.opposite();
        let limit = price.map_or(i64::MIN, |p| key(opposite, p));
        let mut total = 0;
        for level in self.ladder(opposite).levels.iter().rev() {
            if level.key < limit {
                break;
            }
            let mut i = level.head;
            while i != NIL {
                let s = &self.slots[i as usize];
                if s.owner == owner {
                    return total;
                }
                total += s.qty;
                i = s.next;
            }
        }
        total
    }

    #[inline]
    fn rest(&mut self, id: OrderId, owner: u32, side: Side, price: i64, qty: u64) {
        let slot = Slot { id, owner, side, price, qty, prev: NIL, next: NIL };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let k = key(side, price);
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let pos = match ladder.find(k) {
            Ok(pos) => pos,
            Err(pos) => {
                ladder.levels.insert(pos, Level { key: k, head: NIL, tail: NIL, total: 0 });
                pos
            }
        };
        let level = &mut ladder.levels[pos];
        let tail = level.tail;
        level.tail = i;
        level.total += qty;
        if tail == NIL {
            level.head = i;
        } else {
            self.slots[tail as usize].next = i;
            self.slots[i as usize].prev = tail;
        }
        self.index.insert(id, i);
    }

    /// Takes a resting order out of its level and the index; frees its slot.
    fn unlink(&mut self, i: u32) {
        let (id, side, price, qty, prev, next) = {
            let s = &self.slots[i as usize];
            (s.id, s.side, s.price, s.qty, s.prev, s.next)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        }
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let pos = ladder.find(key(side, price)).expect("resting level");
        let level = &mut ladder.levels[pos];
        if level.head == i {
            level.head = next;
        }
        if level.tail == i {
            level.tail = prev;
        }
        level.total -= qty;
        if level.head == NIL {
            ladder.levels.remove(pos);
        }
        self.index.remove(&id);
        self.free.push(i);
    }
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_set_refuses_every_repeat_sequential_sparse_and_moved() {
        let mut set = IdSet::default();
        let mut ids: Vec<OrderId> = (0..200_000).collect();
        // Sparse ids held in the hash set, some of which a later growth of the bitmap covers.
        ids.extend([u64::MAX, u64::MAX - 1, 1 << 40, 13_000_000, 15_000_000, 70_000_000, 1 << 33]);
        ids.extend(200_000..12_000_000);
        for &id in &ids {
            assert!(set.insert(id), "{id}");
        }
        for &id in &ids {
            assert!(!set.insert(id), "{id} accepted twice");
        }
        assert_eq!(set.len, ids.len());
        // The bitmap grew over the sequential ids and took in 13,000,000 and 15,000,000.
        assert!(set.bits.len() as u64 * 64 > 15_000_000);
        assert_eq!(set.other.len(), 5);
    }

    #[test]
    fn ladder_finds_levels_anywhere() {
        let mut book = OrderBook::new();
        let mut ev = Vec::new();
        // 100 levels per side, placed in scrambled order; cancel them all, from everywhere.
        let prices: Vec<i64> = (0..100).map(|i| (i * 37) % 100).collect();
        for (n, &p) in prices.iter().enumerate() {
            let id = n as u64 * 2 + 1;
            book.execute(&Command::Place { id, owner: 1, side: Side::Buy, price: Some(1_000 + p), qty: 1, tif: Tif::Gtc }, &mut ev)
                .unwrap();
            book.execute(
                &Command::Place { id: id + 1, owner: 1, side: Side::Sell, price: Some(2_000 + p), qty: 2, tif: Tif::Gtc },
                &mut ev,
            )
            .unwrap();
        }
        assert_eq!(book.best_bid(), Some((1_099, 1)));
        assert_eq!(book.best_ask(), Some((2_000, 2)));
        let bids = book.depth(Side::Buy, usize::MAX);
        assert_eq!(bids.len(), 100);
        assert!(bids.windows(2).all(|w| w[0].0 > w[1].0));
        let asks = book.depth(Side::Sell, usize::MAX);
        assert!(asks.windows(2).all(|w| w[0].0 < w[1].0));
        for n in (0..200u64).rev().step_by(3).chain((0..200u64).filter(|n| n % 3 != 199 % 3)) {
            book.execute(&Command::Cancel { id: n + 1 }, &mut ev).unwrap();
        }
        assert_eq!(book.best_bid(), None);
        assert_eq!(book.best_ask(), None);
    }
}
