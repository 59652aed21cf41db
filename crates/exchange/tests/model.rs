//! Random order flow against a naive reference matcher: the same events (trades, rests,
//! cancellations, amendments, refusals) and the same book after every command.
//! `PROPTEST_CASES` sets the number of random flows (default 256).

use ets_exchange::{Command, Event, OrderBook, OrderId, Side, Tif};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Resting {
    id: OrderId,
    owner: u32,
    side: Side,
    price: i64,
    qty: u64,
    seq: u64,
}

/// Every resting order in one vector; matching scans for the best one each time.
#[derive(Default)]
struct Naive {
    resting: Vec<Resting>,
    seen: Vec<OrderId>,
    seq: u64,
}

impl Naive {
    fn best(&self, side: Side) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, r) in self.resting.iter().enumerate() {
            if r.side != side {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let o = &self.resting[b];
                    let better = match side {
                        Side::Sell => r.price < o.price || (r.price == o.price && r.seq < o.seq),
                        Side::Buy => r.price > o.price || (r.price == o.price && r.seq < o.seq),
                    };
                    Some(if better { i } else { b })
                }
            };
        }
        best
    }

    fn execute(&mut self, c: &Command) -> Result<Vec<Event>, ()> {
        let mut ev = Vec::new();
        match *c {
            Command::Place { id, owner, side, price, qty, tif } => {
                if qty == 0 || price.is_some_and(|p| p <= 0) || (price.is_none() && tif == Tif::Gtc) || self.seen.contains(&id) {
                    return Err(());
                }
                self.seen.push(id);
                ev.push(Event::Accepted { id });
                let crosses = |p: i64| match (side, price) {
                    (_, None) => true,
                    (Side::Buy, Some(l)) => p <= l,
                    (Side::Sell, Some(l)) => p >= l,
                };
                if tif == Tif::Fok {
                    // What could fill: opposite orders in priority order, stopping at own ones.
                    let mut opp: Vec<&Resting> = self.resting.iter().filter(|r| r.side != side && crosses(r.price)).collect();
                    opp.sort_by_key(|r| (if side == Side::Buy { r.price } else { -r.price }, r.seq));
                    let mut avail = 0;
                    for r in opp {
                        if r.owner == owner {
                            break;
                        }
                        avail += r.qty;
                    }
                    if avail < qty {
                        ev.push(Event::Cancelled { id, qty });
                        return Ok(ev);
                    }
                }
                let mut left = qty;
                let mut self_trade = false;
                while left > 0 {
                    let Some(b) = self.best(side.opposite()) else { break };
                    let r = self.resting[b].clone();
                    if !crosses(r.price) {
                        break;
                    }
                    if r.owner == owner {
                        self_trade = true;
                        break;
                    }
                    let q = r.qty.min(left);
                    left -= q;
                    ev.push(Event::Trade { maker: r.id, taker: id, price: r.price, qty: q });
                    if q == r.qty {
                        self.resting.remove(b);
                    } else {
                        self.resting[b].qty -= q;
                    }
                }
                if left > 0 {
                    match (tif, price) {
                        (Tif::Gtc, Some(p)) if !self_trade => {
                            self.seq += 1;
                            self.resting.push(Resting { id, owner, side, price: p, qty: left, seq: self.seq });
                            ev.push(Event::Rested { id, qty: left });
                        }
                        _ => ev.push(Event::Cancelled { id, qty: left }),
                    }
                }
            }
            Command::Cancel { id } => {
                let i = self.resting.iter().position(|r| r.id == id).ok_or(())?;
                let r = self.resting.remove(i);
                ev.push(Event::Cancelled { id, qty: r.qty });
            }
            Command::Amend { id, qty } => {
                let i = self.resting.iter().position(|r| r.id == id).ok_or(())?;
                if qty == 0 {
                    return Err(());
                }
                let kept = qty <= self.resting[i].qty;
                if !kept {
                    self.seq += 1;
                    self.resting[i].seq = self.seq;
                }
                self.resting[i].qty = qty;
                ev.push(Event::Amended { id, qty, kept_priority: kept });
            }
        }
        Ok(ev)
    }

    fn orders(&self, side: Side) -> Vec<(OrderId, u32, i64, u64)> {
        let mut v: Vec<&Resting> = self.resting.iter().filter(|r| r.side == side).collect();
        v.sort_by_key(|r| (if side == Side::Sell { r.price } else { -r.price }, r.seq));
        v.into_iter().map(|r| (r.id, r.owner, r.price, r.qty)).collect()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Place { owner: u32, buy: bool, price: Option<i64>, qty: u64, tif: u8, reuse_id: bool },
    Cancel(usize),
    Amend(usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..4, any::<bool>(), prop::option::weighted(0.9, 95i64..106), 0u64..30, 0u8..3, prop::bool::weighted(0.02))
            .prop_map(|(owner, buy, price, qty, tif, reuse_id)| Op::Place { owner, buy, price, qty, tif, reuse_id }),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => (any::<usize>(), 0u64..40).prop_map(|(i, q)| Op::Amend(i, q)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)))]

    #[test]
    fn the_book_agrees_with_the_naive_matcher(ops in prop::collection::vec(op(), 1..300)) {
        let mut book = OrderBook::new();
        let mut naive = Naive::default();
        let mut next_id: OrderId = 1;
        let mut traded = 0u64;
        for op in &ops {
            let ids: Vec<OrderId> = naive.resting.iter().map(|r| r.id).collect();
            let command = match op {
                Op::Place { owner, buy, price, qty, tif, reuse_id } => {
                    let id = if *reuse_id && next_id > 1 { next_id - 1 } else { next_id += 1; next_id - 1 };
                    let tif = [Tif::Gtc, Tif::Ioc, Tif::Fok][*tif as usize];
                    Command::Place { id, owner: *owner, side: if *buy { Side::Buy } else { Side::Sell }, price: *price, qty: *qty, tif }
                }
                Op::Cancel(i) => Command::Cancel { id: if ids.is_empty() { 999_999 } else { ids[i % ids.len()] } },
                Op::Amend(i, q) => Command::Amend { id: if ids.is_empty() { 999_999 } else { ids[i % ids.len()] }, qty: *q },
            };
            let mut events = Vec::new();
            let got = book.execute(&command, &mut events).map(|_| events);
            let want = naive.execute(&command);
            prop_assert_eq!(got.is_ok(), want.is_ok(), "{:?}", command);
            if let (Ok(g), Ok(w)) = (&got, &want) {
                prop_assert_eq!(g, w, "{:?}", command);
                traded += g.iter().filter_map(|e| if let Event::Trade { qty, .. } = e { Some(*qty) } else { None }).sum::<u64>();
            }
            prop_assert_eq!(book.orders(Side::Buy), naive.orders(Side::Buy));
            prop_assert_eq!(book.orders(Side::Sell), naive.orders(Side::Sell));
            // The book is never left crossed (self-trade prevention cancels rather than rests).
            if let (Some((bid, _)), Some((ask, _))) = (book.best_bid(), book.best_ask()) {
                prop_assert!(bid < ask, "crossed book: bid {} ask {}", bid, ask);
            }
            // Depth totals agree with the orders at each level.
            for side in [Side::Buy, Side::Sell] {
                let levels = book.depth(side, usize::MAX);
                let sum: u64 = levels.iter().map(|l| l.1).sum();
                prop_assert_eq!(sum, book.orders(side).iter().map(|o| o.3).sum::<u64>());
            }
        }
        prop_assert!(traded <= ops.len() as u64 * 30);
    }
}

#[test]
fn price_time_priority_amend_and_self_trade_prevention() {
    let mut b = OrderBook::new();
    let mut ev = Vec::new();
    let place = |id, owner, side, price, qty, tif| Command::Place { id, owner, side, price, qty, tif };
    b.execute(&place(1, 1, Side::Sell, Some(101), 10, Tif::Gtc), &mut ev).unwrap();
    b.execute(&place(2, 2, Side::Sell, Some(100), 10, Tif::Gtc), &mut ev).unwrap();
    b.execute(&place(3, 3, Side::Sell, Some(100), 10, Tif::Gtc), &mut ev).unwrap();
    // Amending 2 down keeps it first at 100; amending 3 up would re-queue it.
    b.execute(&Command::Amend { id: 2, qty: 5 }, &mut ev).unwrap();
    ev.clear();
    b.execute(&place(4, 4, Side::Buy, Some(101), 18, Tif::Ioc), &mut ev).unwrap();
    assert_eq!(
        ev,
        vec![
            Event::Accepted { id: 4 },
            Event::Trade { maker: 2, taker: 4, price: 100, qty: 5 },
            Event::Trade { maker: 3, taker: 4, price: 100, qty: 10 },
            Event::Trade { maker: 1, taker: 4, price: 101, qty: 3 },
        ]
    );
    // Owner 1 buying into its own offer: nothing trades, the remainder is cancelled.
    ev.clear();
    b.execute(&place(5, 1, Side::Buy, Some(101), 2, Tif::Gtc), &mut ev).unwrap();
    assert_eq!(ev, vec![Event::Accepted { id: 5 }, Event::Cancelled { id: 5, qty: 2 }]);
    // FOK larger than what can fill does nothing; a market order may not rest.
    ev.clear();
    b.execute(&place(6, 9, Side::Buy, Some(101), 8, Tif::Fok), &mut ev).unwrap();
    assert_eq!(ev, vec![Event::Accepted { id: 6 }, Event::Cancelled { id: 6, qty: 8 }]);
    assert_eq!(
        b.execute(&place(7, 9, Side::Buy, None, 1, Tif::Gtc), &mut ev).unwrap_err().to_string(),
        "a market order cannot rest: use IOC or FOK"
    );
    assert_eq!(b.best_ask(), Some((101, 7)));
}
