//! A price-time priority order book for one instrument.
//!
//! Resting orders live in a slab (`Vec` of slots, freed slots reused) and are chained per price
//! level in arrival order (a doubly linked list of slot indexes), so placing at the back of a
//! level and cancelling from anywhere are O(1) after the level is found; levels are kept in a
//! `BTreeMap` per side, so the best price is the first (asks) or last (bids) key.
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

use ahash::AHashMap as HashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

#[derive(Clone, Copy, Debug, Default)]
struct Level {
    head: u32,
    tail: u32,
    total: u64,
}

/// The book of one instrument.
#[derive(Clone, Debug, Default)]
pub struct OrderBook {
    slots: Vec<Slot>,
    free: Vec<u32>,
    bids: BTreeMap<i64, Level>,
    asks: BTreeMap<i64, Level>,
    /// Resting orders by id.
    index: HashMap<OrderId, u32>,
    /// Every id ever accepted (ids are never reused).
    seen: HashMap<OrderId, ()>,
}

impl OrderBook {
    pub fn new() -> OrderBook {
        OrderBook::default()
    }

    pub fn best_bid(&self) -> Option<(i64, u64)> {
        self.bids.iter().next_back().map(|(p, l)| (*p, l.total))
    }

    pub fn best_ask(&self) -> Option<(i64, u64)> {
        self.asks.iter().next().map(|(p, l)| (*p, l.total))
    }

    /// Levels of one side, best first: (price, total quantity).
    pub fn depth(&self, side: Side, levels: usize) -> Vec<(i64, u64)> {
        match side {
            Side::Buy => self.bids.iter().rev().take(levels).map(|(p, l)| (*p, l.total)).collect(),
            Side::Sell => self.asks.iter().take(levels).map(|(p, l)| (*p, l.total)).collect(),
        }
    }

    /// Resting orders of one side in priority order: (id, owner, price, quantity).
    pub fn orders(&self, side: Side) -> Vec<(OrderId, u32, i64, u64)> {
        let levels: Box<dyn Iterator<Item = (&i64, &Level)>> =
            if side == Side::Buy { Box::new(self.bids.iter().rev()) } else { Box::new(self.asks.iter()) };
        let mut out = Vec::new();
        for (_, level) in levels {
            let mut i = level.head;
            while i != NIL {
                let s = &self.slots[i as usize];
                out.push((s.id, s.owner, s.price, s.qty));
                i = s.next;
            }
        }
        out
    }

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
                    self.level_mut(side, price).expect("resting level").total -= old - qty;
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

    fn level_mut(&mut self, side: Side, price: i64) -> Option<&mut Level> {
        match side {
            Side::Buy => self.bids.get_mut(&price),
            Side::Sell => self.asks.get_mut(&price),
        }
    }

    #[allow(clippy::too_many_arguments)]
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
        if self.seen.contains_key(&id) {
            return Err(Reject::DuplicateId(id));
        }
        self.seen.insert(id, ());
        events.push(Event::Accepted { id });
        if tif == Tif::Fok && self.fillable(owner, side, price) < qty {
            events.push(Event::Cancelled { id, qty });
            return Ok(());
        }
        let mut left = qty;
        let mut self_trade = false;
        let crosses = |level_price: i64| match (side, price) {
            (_, None) => true,
            (Side::Buy, Some(p)) => level_price <= p,
            (Side::Sell, Some(p)) => level_price >= p,
        };
        'levels: while left > 0 {
            let best = match side {
                Side::Buy => self.asks.iter().next().map(|(p, l)| (*p, l.head)),
                Side::Sell => self.bids.iter().next_back().map(|(p, l)| (*p, l.head)),
            };
            let Some((level_price, head)) = best else { break };
            if !crosses(level_price) {
                break;
            }
            let mut i = head;
            while i != NIL && left > 0 {
                let (maker, maker_owner, available, next) = {
                    let s = &self.slots[i as usize];
                    (s.id, s.owner, s.qty, s.next)
                };
                if maker_owner == owner {
                    // Self-trade prevention: the incoming order's remainder is cancelled.
                    self_trade = true;
                    break 'levels;
                }
                let q = available.min(left);
                left -= q;
                events.push(Event::Trade { maker, taker: id, price: level_price, qty: q });
                if q == available {
                    self.unlink(i);
                } else {
                    self.slots[i as usize].qty -= q;
                    self.level_mut(side.opposite(), level_price).expect("level").total -= q;
                }
                i = next;
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
        let levels: Box<dyn Iterator<Item = (&i64, &Level)>> =
            if side == Side::Buy { Box::new(self.asks.iter()) } else { Box::new(self.bids.iter().rev()) };
        let mut total = 0;
        for (p, level) in levels {
            let crosses = match (side, price) {
                (_, None) => true,
                (Side::Buy, Some(limit)) => *p <= limit,
                (Side::Sell, Some(limit)) => *p >= limit,
            };
            if !crosses {
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
        let level = match side {
            Side::Buy => self.bids.entry(price).or_insert(Level { head: NIL, tail: NIL, total: 0 }),
            Side::Sell => self.asks.entry(price).or_insert(Level { head: NIL, tail: NIL, total: 0 }),
        };
        let tail = level.tail;
        level.tail = i;
        if tail == NIL {
            level.head = i;
        }
        level.total += qty;
        if tail != NIL {
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
        let levels = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let level = levels.get_mut(&price).expect("resting level");
        if level.head == i {
            level.head = next;
        }
        if level.tail == i {
            level.tail = prev;
        }
        level.total -= qty;
        if level.head == NIL {
            levels.remove(&price);
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
