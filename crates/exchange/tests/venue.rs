//! The venue end to end with a real registry: trading modes, pre-trade rules (one test per
//! rule, with its message), market data, settlement into the registry, and a model-based run
//! of random order flow checking conservation of units and cash and replay to the same hash.

use ets_core::{Date, Tonnes};
use ets_exchange::auction::{AuctionRules, Bid};
use ets_exchange::venue::{Command, Envelope, Event, InstrumentSpec, Outcome, RejectKind, Style, TradeKind, Venue, Window};
use ets_exchange::{Side, Tif};
use ets_registry::{AccountKind, Command as R, HolderType, MarketLevel, MarketSpec, PendingPurpose, Registry, UnitRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

const OP: &str = "exchange";
const MEMBERS: [&str; 5] = ["alpha", "bravo", "charlie", "delta", "echo"];

/// 2025-06-02 is a Monday.
fn monday() -> Date {
    Date::from_ymd(2025, 6, 2).unwrap()
}

/// Local (UTC+8) time on a date, as UTC milliseconds.
fn at(date: Date, h: i64, m: i64) -> i64 {
    date.start().0 + (h * 60 + m - 8 * 60) * 60_000
}

struct Harness {
    registry: Registry,
    venue: Venue,
    accounts: BTreeMap<String, String>,
    clearing: String,
    issuance: String,
    n: u64,
    /// Every accepted venue envelope, for replay.
    journal: Vec<Envelope>,
    now: i64,
    lodge_n: u64,
}

impl Harness {
    fn new(spec: InstrumentSpec) -> Harness {
        let mut registry = Registry::new();
        let mut n = 0;
        let mut reg = |registry: &mut Registry, actor: &str, command: R| {
            n += 1;
            let env = ets_registry::Envelope { id: format!("setup-{n}"), actor: actor.into(), command };
            registry.execute(&env).unwrap_or_else(|e| panic!("{env:?}: {e}"));
        };
        reg(&mut registry, "admin", R::InitRegistry { admins: vec!["admin".into()] });
        reg(
            &mut registry,
            "admin",
            R::AddMarket(MarketSpec {
                code: "CN".into(),
                name: "national".into(),
                level: MarketLevel::National,
                allowance_code: "CEA".into(),
                offset_standards: vec!["CCER".into()],
                individuals_may_trade: false,
                authorities: vec!["cn-auth".into()],
            }),
        );
        let open = |registry: &mut Registry, reg: &mut dyn FnMut(&mut Registry, &str, R), kind, reps: &[&str]| {
            reg(
                registry,
                "cn-auth",
                R::OpenAccount {
                    market: "CN".into(),
                    kind,
                    holder: reps[0].into(),
                    holder_type: HolderType::Entity,
                    representatives: reps.iter().map(|s| s.to_string()).collect(),
                },
            );
            registry.accounts().last().unwrap().number.clone()
        };
        let clearing = open(&mut registry, &mut reg, AccountKind::Trading, &[OP]);
        let mut accounts = BTreeMap::new();
        for m in MEMBERS {
            accounts.insert(m.to_string(), open(&mut registry, &mut reg, AccountKind::Operator, &[m]));
        }
        accounts.insert("authority".into(), registry.account(registry.markets()[0].reserve).number.clone());
        let issuance = registry.account(registry.markets()[0].issuance).number.clone();
        reg(&mut registry, "cn-auth", R::Issue { unit: spec.unit.clone(), quantity: Tonnes(10_000_000), to: None });
        for m in MEMBERS {
            reg(
                &mut registry,
                "cn-auth",
                R::Allocate { from: issuance.clone(), to: accounts[m].clone(), unit: spec.unit.clone(), quantity: Tonnes(1_000_000) },
            );
        }
        let venue =
            Venue::new(OP, BTreeMap::from([("CN".to_string(), clearing.clone())]), BTreeSet::from([Date::from_ymd(2025, 6, 9).unwrap()]));
        let mut h =
            Harness { registry, venue, accounts, clearing, issuance, n: 0, journal: Vec::new(), now: at(monday(), 9, 30), lodge_n: 0 };
        h.ok(OP, Command::ListInstrument(spec));
        for m in MEMBERS.iter().chain(["authority"].iter()) {
            let accounts = BTreeMap::from([("CN".to_string(), h.accounts[*m].clone())]);
            h.ok(OP, Command::AddMember { member: m.to_string(), accounts });
        }
        h
    }

    fn code(&self) -> String {
        self.venue.instrument_codes()[0].clone()
    }

    fn unit(&self) -> UnitRef {
        self.venue.spec(&self.code()).unwrap().unit.clone()
    }

    fn send(&mut self, actor: &str, command: Command) -> Result<Outcome, ets_exchange::venue::Reject> {
        self.n += 1;
        let env = Envelope { id: format!("v{}", self.n), actor: actor.into(), at_ms: self.now, command };
        let before = self.venue.state_hash();
        let result = self.venue.execute(&env);
        match &result {
            Ok(outcome) => {
                self.journal.push(env);
                for ins in &outcome.instructions {
                    let e = ets_registry::Envelope { id: ins.id.clone(), actor: ins.actor.clone(), command: ins.command.clone() };
                    self.registry.execute(&e).unwrap_or_else(|err| panic!("instruction {e:?} refused: {err}"));
                }
            }
            Err(_) => assert_eq!(before, self.venue.state_hash(), "a refused command changed the venue"),
        }
        self.venue.check_invariants().unwrap();
        result
    }

    fn ok(&mut self, actor: &str, command: Command) -> Outcome {
        let c = command.clone();
        self.send(actor, command).unwrap_or_else(|e| panic!("{c:?} refused: {e}"))
    }

    fn no(&mut self, actor: &str, command: Command) -> (RejectKind, String) {
        match self.send(actor, command) {
            Err(e) => (e.kind, e.message),
            Ok(o) => panic!("accepted: {o:?}"),
        }
    }

    /// The member lodges units: the registry pending first, then the venue.
    fn lodge(&mut self, member: &str, qty: u64) {
        self.lodge_n += 1;
        let pending = format!("lodge-{}", self.lodge_n);
        let env = ets_registry::Envelope {
            id: pending.clone(),
            actor: member.into(),
            command: R::CreatePending {
                pending: pending.clone(),
                from: self.accounts[member].clone(),
                to: self.clearing.clone(),
                unit: self.unit(),
                quantity: Tonnes(qty),
                purpose: PendingPurpose::Settlement,
            },
        };
        self.registry.execute(&env).unwrap();
        let code = self.code();
        self.ok(OP, Command::Lodge { member: member.into(), instrument: code, qty, pending });
    }

    fn deposit(&mut self, member: &str, yuan: i64) {
        self.ok(OP, Command::Deposit { member: member.into(), amount_fen: yuan * 100 });
    }

    fn place(&mut self, order: u64, member: &str, side: Side, price: i64, qty: u64) -> Result<Outcome, ets_exchange::venue::Reject> {
        let instrument = self.code();
        self.send(member, Command::Place { order, member: member.into(), instrument, side, price: Some(price), qty, tif: Tif::Gtc })
    }

    /// Units held (free + encumbered) in a member's registry account.
    fn held(&self, member: &str) -> u64 {
        let a = self.registry.find_account(&self.accounts[member]).unwrap();
        let u = self.registry.unit_named(&self.unit()).unwrap();
        self.registry.holding(a, u).map_or(0, |h| h.free_total() + h.encumbered_total)
    }

    fn trades(outcome: &Outcome) -> Vec<(String, String, i64, u64, TradeKind)> {
        outcome
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Traded(t) => Some((t.buyer.to_string(), t.seller.to_string(), t.price, t.qty, t.kind)),
                _ => None,
            })
            .collect()
    }
}

fn national() -> InstrumentSpec {
    InstrumentSpec::national(2025, 8_000)
}

fn open_day(h: &mut Harness, date: Date) {
    h.now = at(date, 9, 0);
    h.ok(OP, Command::OpenDay { date });
    h.now = at(date, 10, 0);
}

#[test]
fn listed_trading_settles_delivery_versus_payment_and_sets_the_close() {
    let mut h = Harness::new(national());
    h.lodge("alpha", 50_000);
    h.deposit("bravo", 10_000_000);
    open_day(&mut h, monday());
    let before = (h.held("alpha"), h.held("bravo"));
    h.place(1, "alpha", Side::Sell, 8_100, 30_000).unwrap();
    h.place(2, "alpha", Side::Sell, 8_200, 20_000).unwrap();
    // A buy crossing both levels trades at the makers' prices, oldest first.
    let o = h.place(3, "bravo", Side::Buy, 8_200, 40_000).unwrap();
    assert_eq!(
        Harness::trades(&o),
        [
            ("bravo".into(), "alpha".into(), 8_100, 30_000, TradeKind::Listed),
            ("bravo".into(), "alpha".into(), 8_200, 10_000, TradeKind::Listed)
        ]
    );
    let cost = 8_100 * 30_000 + 8_200 * 10_000;
    // Reserved at 82.00 for 40,000, trades at 81.00 and 82.00: what is owed is the trade value.
    assert_eq!(h.venue.cash("bravo"), Some((1_000_000_000, 0, cost)));
    // The seller cannot sell the same units twice: of 50,000 lodged, 40,000 are sold and
    // 10,000 rest on order 2.
    let (kind, msg) = h.no(
        "alpha",
        Command::Place {
            order: 4,
            member: "alpha".into(),
            instrument: h.code(),
            side: Side::Sell,
            price: Some(8_000),
            qty: 10_001,
            tif: Tif::Gtc,
        },
    );
    assert_eq!(kind, RejectKind::Insufficient);
    assert_eq!(msg, "member alpha has 0 t of CEA-2025 lodged and free to sell; 10001 t needed");
    // A block trade does not count for the close.
    h.deposit("charlie", 100_000_000);
    h.lodge("delta", 200_000);
    h.now = at(monday(), 13, 30);
    h.ok(
        "delta",
        Command::ProposeBlock {
            deal: "d1".into(),
            member: "delta".into(),
            counterparty: "charlie".into(),
            instrument: h.code(),
            side: Side::Sell,
            price: 6_000,
            qty: 100_000,
        },
    );
    let o = h.ok("charlie", Command::ConfirmBlock { deal: "d1".into(), member: "charlie".into() });
    assert_eq!(Harness::trades(&o), [("charlie".into(), "delta".into(), 6_000, 100_000, TradeKind::Block)]);
    h.now = at(monday(), 15, 30);
    let o = h.ok(OP, Command::CloseDay);
    // Close = VWAP of listed trades = (81.00 × 30,000 + 82.00 × 10,000) / 40,000 = 81.25.
    assert_eq!(h.venue.previous_close(&h.code()), Some(8_125));
    let bar = h.venue.bars(&h.code())[0].clone();
    assert_eq!(
        (bar.open, bar.high, bar.low, bar.close, bar.listed_volume, bar.block_volume),
        (Some(8_100), Some(8_200), Some(8_100), 8_125, 40_000, 100_000)
    );
    // T+0: settled at the close: cash moved, units delivered through clearing.
    assert!(o.events.iter().any(|e| matches!(e, Event::Settled { trades: 3, .. })));
    assert_eq!(h.venue.cash("bravo"), Some((1_000_000_000 - cost, 0, 0)));
    assert_eq!(h.venue.cash("alpha"), Some((cost, 0, 0)));
    assert_eq!((h.held("alpha"), h.held("bravo")), (before.0 - 40_000, before.1 + 40_000));
    let clearing = h.registry.find_account(&h.clearing).unwrap();
    let u = h.registry.unit_named(&h.unit()).unwrap();
    assert_eq!(h.registry.holding(clearing, u).map_or(0, |x| x.free_total()), 0, "clearing passes units through");
    // The resting remainder was a day order: cancelled at the close, its units free again.
    assert_eq!(h.venue.position("alpha", &h.code()), (10_000, 0, 0, 0));
    h.registry.check_invariants().unwrap();
    // The next day's band is around 81.25: [73.13, 89.37].
    open_day(&mut h, monday().plus_days(1));
    let (_, msg) = h.no(
        "bravo",
        Command::Place {
            order: 9,
            member: "bravo".into(),
            instrument: h.code(),
            side: Side::Buy,
            price: Some(8_938),
            qty: 1,
            tif: Tif::Gtc,
        },
    );
    assert_eq!(msg, "Listed price ¥89.38 is outside the band [¥73.13, ¥89.37]");
}

#[test]
fn each_pre_trade_rule_rejects_with_its_reason() {
    let mut h = Harness::new(InstrumentSpec { position_limit_t: Some(150_000), ..national() });
    h.lodge("alpha", 300_000);
    h.deposit("bravo", 100_000_000);
    let code = h.code();
    let place = |order, member: &str, side, price, qty| Command::Place {
        order,
        member: member.into(),
        instrument: code.clone(),
        side,
        price: Some(price),
        qty,
        tif: Tif::Gtc,
    };
    // Market closed: no trading day open.
    assert_eq!(h.no("alpha", place(1, "alpha", Side::Sell, 8_000, 10)).1, "the market is closed: no trading day is open");
    // Weekend and holiday.
    assert_eq!(h.no(OP, Command::OpenDay { date: monday().plus_days(5) }).1, "2025-06-07 is not a trading day (weekend or holiday)");
    assert_eq!(h.no(OP, Command::OpenDay { date: monday().plus_days(7) }).1, "2025-06-09 is not a trading day (weekend or holiday)");
    open_day(&mut h, monday());
    // Session: listed trading closes 11:30-13:00.
    h.now = at(monday(), 12, 0);
    assert_eq!(
        h.no("alpha", place(1, "alpha", Side::Sell, 8_000, 10)),
        (RejectKind::Rule, "listed trading in CEA-2025 is closed at 12:00 local time (sessions: 09:30-11:30, 13:00-15:00)".into())
    );
    // Block trading is afternoon only.
    h.now = at(monday(), 10, 0);
    let block = |deal: &str, price, qty| Command::ProposeBlock {
        deal: deal.into(),
        member: "alpha".into(),
        counterparty: "bravo".into(),
        instrument: "CEA-2025".into(),
        side: Side::Sell,
        price,
        qty,
    };
    assert_eq!(
        h.no("alpha", block("d1", 8_000, 100_000)).1,
        "block trading in CEA-2025 is closed at 10:00 local time (sessions: 13:00-15:00)"
    );
    // Band (example 13): listed ±10% of 80.00.
    assert_eq!(h.no("alpha", place(2, "alpha", Side::Sell, 8_801, 10)).1, "Listed price ¥88.01 is outside the band [¥72.00, ¥88.00]");
    assert_eq!(h.no("alpha", place(3, "alpha", Side::Sell, 7_199, 10)).1, "Listed price ¥71.99 is outside the band [¥72.00, ¥88.00]");
    // Size: 100,000 t must go to block trading; a block below 100,000 t must go listed.
    assert_eq!(
        h.no("alpha", place(4, "alpha", Side::Sell, 8_000, 100_000)).1,
        "an order of 100000 t must go to block trading: listed orders are below 100000 t"
    );
    h.now = at(monday(), 14, 0);
    assert_eq!(
        h.no("alpha", block("d2", 8_000, 99_999)).1,
        "an order of 99999 t must go to listed trading: block orders are at least 100000 t"
    );
    // Block band ±30%: 104.01 is out, 104.00 in.
    assert_eq!(h.no("alpha", block("d3", 10_401, 100_000)).1, "Block price ¥104.01 is outside the band [¥56.00, ¥104.00]");
    h.ok("alpha", block("d4", 10_400, 100_000));
    // Only the named counterparty confirms.
    assert_eq!(
        h.no("charlie", Command::ConfirmBlock { deal: "d4".into(), member: "charlie".into() }),
        (RejectKind::Forbidden, "block deal d4 is not addressed to charlie".into())
    );
    // Position limit 150,000 t: bravo may not buy 100,000 + 60,000.
    h.ok("bravo", Command::ConfirmBlock { deal: "d4".into(), member: "bravo".into() });
    assert_eq!(
        h.no("bravo", place(5, "bravo", Side::Buy, 8_000, 60_000)).1,
        "member bravo would hold up to 160000 t of CEA-2025, above the position limit of 150000 t"
    );
    // Cash: an order must be covered.
    assert_eq!(
        h.no("charlie", place(6, "charlie", Side::Buy, 8_000, 10)),
        (RejectKind::Insufficient, "member charlie has ¥0.00 free cash; ¥800.00 needed".into())
    );
    // Acting for someone else.
    assert_eq!(h.no("bravo", place(7, "alpha", Side::Sell, 8_000, 10)).0, RejectKind::Forbidden);
    // Market orders cannot rest; order ids are single-use.
    assert_eq!(
        h.no(
            "alpha",
            Command::Place {
                order: 8,
                member: "alpha".into(),
                instrument: "CEA-2025".into(),
                side: Side::Sell,
                price: None,
                qty: 10,
                tif: Tif::Gtc
            }
        )
        .1,
        "a market order cannot rest: use IOC or FOK"
    );
    h.ok("alpha", place(9, "alpha", Side::Sell, 8_000, 10));
    assert_eq!(h.no("alpha", place(9, "alpha", Side::Sell, 8_000, 10)).1, "order id 9 is already used");
}

#[test]
fn listed_agreement_taker_picks_among_the_best_five_levels() {
    let mut h = Harness::new(national());
    h.lodge("alpha", 10_000);
    h.lodge("charlie", 10_000);
    h.deposit("bravo", 10_000_000);
    open_day(&mut h, monday());
    for (i, price) in [8_010, 8_020, 8_030, 8_040, 8_050, 8_060].into_iter().enumerate() {
        h.place(i as u64 + 1, "alpha", Side::Sell, price, 100).unwrap();
    }
    h.place(7, "charlie", Side::Sell, 8_030, 100).unwrap();
    // The 6th level (80.60) is out of reach.
    let (kind, msg) = h.no("bravo", Command::Take { order: 100, member: "bravo".into(), maker: 6, qty: 50 });
    assert_eq!((kind, msg.as_str()), (RejectKind::Rule, "order 6 at ¥80.60 is not among the best 5 price levels"));
    // At equal prices any counterparty may be chosen: charlie's later order at 80.30.
    let o = h.ok("bravo", Command::Take { order: 101, member: "bravo".into(), maker: 7, qty: 60 });
    assert_eq!(Harness::trades(&o), [("bravo".into(), "charlie".into(), 8_030, 60, TradeKind::Agreement)]);
    assert_eq!(h.venue.open_order(7).map(|o| o.4), Some(40));
    // The traded quantity is the taker's; more than the order offers is refused.
    assert_eq!(
        h.no("bravo", Command::Take { order: 102, member: "bravo".into(), maker: 7, qty: 41 }).1,
        "order 7 offers 40 t; 41 t cannot be taken from it"
    );
}

#[test]
fn one_way_bidding_fills_best_bids_first() {
    let mut h = Harness::new(national());
    h.lodge("alpha", 300_000);
    for m in ["bravo", "charlie", "delta"] {
        h.deposit(m, 20_000_000);
    }
    open_day(&mut h, monday());
    h.ok(
        "alpha",
        Command::OpenBidding {
            bidding: "b1".into(),
            member: "alpha".into(),
            instrument: h.code(),
            side: Side::Sell,
            qty: 200_000,
            limit_price: 7_500,
        },
    );
    assert_eq!(
        h.no("bravo", Command::Bid { bidding: "b1".into(), member: "bravo".into(), price: 7_499, qty: 1 }).1,
        "bid price ¥74.99 is worse than the bidding's limit ¥75.00"
    );
    h.ok("bravo", Command::Bid { bidding: "b1".into(), member: "bravo".into(), price: 7_600, qty: 100_000 });
    h.ok("charlie", Command::Bid { bidding: "b1".into(), member: "charlie".into(), price: 7_800, qty: 80_000 });
    h.ok("delta", Command::Bid { bidding: "b1".into(), member: "delta".into(), price: 7_600, qty: 100_000 });
    let o = h.ok("alpha", Command::CloseBidding { bidding: "b1".into() });
    assert_eq!(
        Harness::trades(&o),
        [
            ("charlie".into(), "alpha".into(), 7_800, 80_000, TradeKind::Bidding),
            ("bravo".into(), "alpha".into(), 7_600, 100_000, TradeKind::Bidding),
            ("delta".into(), "alpha".into(), 7_600, 20_000, TradeKind::Bidding),
        ]
    );
    // Delta's unfilled 80,000 t at 76.00 is released.
    assert_eq!(h.venue.cash("delta"), Some((2_000_000_000, 0, 7_600 * 20_000)));
}

#[test]
fn continuous_instrument_uncrosses_its_call_auctions_at_one_price() {
    let spec = InstrumentSpec {
        code: "EUA-2025".into(),
        style: Style::Continuous,
        opening_call: Some(Window::new((9, 0), (9, 30))),
        closing_call: Some(Window::new((15, 0), (15, 5))),
        close_rule: ets_exchange::venue::CloseRule::ClosingAuction,
        ..national()
    };
    let mut h = Harness::new(spec);
    for m in ["alpha", "charlie"] {
        h.lodge(m, 10_000);
    }
    for m in ["bravo", "delta"] {
        h.deposit(m, 10_000_000);
    }
    h.now = at(monday(), 8, 0);
    h.ok(OP, Command::OpenDay { date: monday() });
    h.now = at(monday(), 9, 10);
    h.place(1, "bravo", Side::Buy, 8_100, 500).unwrap();
    h.place(2, "delta", Side::Buy, 8_000, 500).unwrap();
    h.place(3, "alpha", Side::Sell, 7_900, 300).unwrap();
    let o = h.place(4, "charlie", Side::Sell, 8_000, 400).unwrap();
    assert!(Harness::trades(&o).is_empty(), "orders collect during the call");
    h.now = at(monday(), 9, 30);
    let o = h.ok(OP, Command::Uncross { instrument: "EUA-2025".into() });
    // At 80.00: demand 1,000, supply 700 → 700 trade; at 79.00/81.00 less trades. One price.
    let trades = Harness::trades(&o);
    assert!(trades.iter().all(|t| t.2 == 8_000), "{trades:?}");
    assert_eq!(trades.iter().map(|t| t.3).sum::<u64>(), 700);
    // Bravo (81.00) fills first, 500; delta gets 200 and rests with 300 in the continuous book.
    assert_eq!(h.venue.book("EUA-2025").unwrap().best_bid(), Some((8_000, 300)));
}

#[test]
fn primary_auction_through_the_venue_checks_guarantees_and_delivers() {
    let mut h = Harness::new(national());
    // The authority's reserve account holds the auction volume.
    let reserve = h.accounts["authority"].clone();
    let env = ets_registry::Envelope {
        id: "to-reserve".into(),
        actor: "cn-auth".into(),
        command: R::Allocate { from: h.issuance.clone(), to: reserve, unit: h.unit(), quantity: Tonnes(10_000) },
    };
    h.registry.execute(&env).unwrap();
    h.deposit("alpha", 300_000);
    h.deposit("bravo", 300_000);
    let bids = vec![
        Bid { bidder: "alpha".into(), price: 7_010, qty: 3_000 },
        Bid { bidder: "bravo".into(), price: 7_005, qty: 4_000 },
        Bid { bidder: "alpha".into(), price: 7_000, qty: 5_000 },
    ];
    let auction = |bids: Vec<Bid>, id: &str| Command::PrimaryAuction {
        auction: id.into(),
        instrument: "CEA-2025".into(),
        seller: "authority".into(),
        authority_actor: "cn-auth".into(),
        volume: 10_000,
        rules: AuctionRules::eu(6_000),
        bids,
        secondary_reference: Some(7_000),
        seed: 42,
    };
    // alpha's bids need 210,300 + 350,000 yuan; it has 300,000.
    let (kind, msg) = h.no(OP, auction(bids.clone(), "a1"));
    assert_eq!(kind, RejectKind::Insufficient);
    assert_eq!(msg, "bid 3 of alpha: ¥350,000.00 is not covered by the bid guarantee (¥89,700.00 free)");
    h.deposit("alpha", 300_000);
    let before = h.held("alpha");
    let o = h.ok(OP, auction(bids, "a1"));
    assert!(o.events.contains(&Event::AuctionCleared { auction: "a1".into(), price: 7_000, sold: 10_000 }));
    // alpha wins 3,000 + 3,000 (the marginal bid's remainder), bravo 4,000, all at 70.00.
    assert_eq!(h.held("alpha"), before + 6_000);
    assert_eq!(h.venue.cash("alpha"), Some((60_000_000 - 6_000 * 7_000, 0, 0)));
    assert_eq!(h.venue.cash("authority"), Some((10_000 * 7_000, 0, 0)));
    // The result is kept for publication: offered, bid, cleared, who won what.
    let records: Vec<_> = h.venue.auctions().collect();
    assert_eq!(records.len(), 1);
    let r = records[0];
    assert_eq!((r.auction.as_str(), r.instrument.as_str(), r.volume, r.reserve_price), ("a1", "CEA-2025", 10_000, 6_000));
    assert_eq!((r.bids, r.bidders, r.bid_qty), (3, 2, 12_000));
    let won = std::collections::BTreeMap::from([("alpha".to_string(), 6_000), ("bravo".to_string(), 4_000)]);
    assert_eq!(r.outcome, ets_exchange::venue::AuctionOutcome::Cleared { price: 7_000, sold: 10_000, allocations: won });
    // Undersubscribed under EU rules: cancelled, and the reason kept.
    let o = h.ok(OP, auction(vec![Bid { bidder: "bravo".into(), price: 7_000, qty: 100 }], "a2"));
    assert!(matches!(&o.events[..], [Event::AuctionCancelled { .. }]), "{:?}", o.events);
    let a2 = h.venue.auctions().find(|r| r.auction == "a2").unwrap();
    assert!(matches!(&a2.outcome, ets_exchange::venue::AuctionOutcome::Cancelled { reason } if !reason.is_empty()), "{a2:?}");
}

#[test]
fn members_bid_themselves_in_an_auction_window_and_units_come_out_of_the_escrow() {
    let mut h = Harness::new(national());
    let reserve = h.accounts["authority"].clone();
    let env = ets_registry::Envelope {
        id: "to-reserve".into(),
        actor: "cn-auth".into(),
        command: R::Allocate { from: h.issuance.clone(), to: reserve.clone(), unit: h.unit(), quantity: Tonnes(10_000) },
    };
    h.registry.execute(&env).unwrap();
    // The authority sets the volume aside for the exchange before the window opens.
    let escrow = ets_registry::Envelope {
        id: "escrow-a1".into(),
        actor: "cn-auth".into(),
        command: R::CreatePending {
            pending: "escrow-a1".into(),
            from: reserve.clone(),
            to: h.clearing.clone(),
            unit: h.unit(),
            quantity: Tonnes(8_000),
            purpose: PendingPurpose::Escrow,
        },
    };
    h.registry.execute(&escrow).unwrap();
    let code = h.code();
    let open = |id: &str, pending: &str| Command::OpenAuction {
        auction: id.into(),
        instrument: code.clone(),
        seller: "authority".into(),
        volume: 8_000,
        rules: AuctionRules { lot_t: 100, ..AuctionRules::eu(6_000) },
        pending: pending.into(),
        secondary_reference: Some(7_000),
        seed: 7,
    };
    assert_eq!(h.no("alpha", open("a1", "escrow-a1")).0, RejectKind::Forbidden);
    h.ok(OP, open("a1", "escrow-a1"));
    assert_eq!(h.no(OP, open("a1", "escrow-a1")).0, RejectKind::Conflict);
    h.deposit("alpha", 400_000);
    h.deposit("bravo", 300_000);
    let bid = |member: &str, price: i64, qty: u64| Command::AuctionBid { auction: "a1".into(), member: member.into(), price, qty };
    // Members bid for themselves only; neither the operator nor another member can.
    assert_eq!(h.no(OP, bid("alpha", 7_100, 1_000)).0, RejectKind::Forbidden);
    assert_eq!(h.no("bravo", bid("alpha", 7_100, 1_000)).0, RejectKind::Forbidden);
    assert_eq!(h.no("authority", bid("authority", 7_100, 1_000)).0, RejectKind::Rule, "the seller does not bid");
    assert_eq!(h.no("alpha", bid("alpha", 7_100, 150)).1, "150 t is not a multiple of the auction's 100 t lot");
    assert_eq!(h.no("alpha", bid("alpha", 5_999, 100)).1, "price ¥59.99 is below the reserve price ¥60.00");
    // The guarantee: alpha has ¥400,000; 4,000 t at ¥71 (¥284,000) fits, another 2,000 t at ¥70 does not.
    h.ok("alpha", bid("alpha", 7_100, 4_000));
    assert_eq!(h.venue.cash("alpha"), Some((40_000_000, 28_400_000, 0)));
    let (kind, msg) = h.no("alpha", bid("alpha", 7_000, 2_000));
    assert_eq!(kind, RejectKind::Insufficient);
    assert_eq!(msg, "the bid guarantee of ¥140,000.00 is not covered: member alpha has ¥116,000.00 free cash");
    h.ok("alpha", bid("alpha", 6_500, 1_000));
    // Reserved cash cannot be withdrawn or spent while the bid stands.
    let (kind, _) = h.no(OP, Command::WithdrawCash { member: "alpha".into(), amount_fen: 6_000_000 });
    assert_eq!(kind, RejectKind::Insufficient);
    h.ok("bravo", bid("bravo", 7_000, 3_000));
    h.ok("bravo", bid("bravo", 6_900, 1_000));
    // Bids are sealed: each member sees its own.
    let a = h.venue.open_auction("a1").unwrap();
    assert_eq!(a.bids_of("alpha"), vec![(0, 7_100, 4_000), (1, 6_500, 1_000)]);
    assert_eq!(a.bids_of("bravo"), vec![(2, 7_000, 3_000), (3, 6_900, 1_000)]);
    // bravo withdraws its lower bid; its guarantee comes back. Nobody withdraws another's bid.
    let withdraw = |member: &str, bid: usize| Command::WithdrawAuctionBid { auction: "a1".into(), member: member.into(), bid };
    assert_eq!(h.no("alpha", withdraw("alpha", 3)).0, RejectKind::NotFound);
    h.ok("bravo", withdraw("bravo", 3));
    assert_eq!(h.no("bravo", withdraw("bravo", 3)).0, RejectKind::NotFound, "a bid is withdrawn once");
    assert_eq!(h.venue.cash("bravo"), Some((30_000_000, 21_000_000, 0)));
    // Clearing: 4,000 (alpha at 71) + 3,000 (bravo at 70) + 1,000 of alpha's at 65 = 8,000 t at ¥65.
    let alpha_before = h.held("alpha");
    assert_eq!(h.no("alpha", Command::ClearAuction { auction: "a1".into() }).0, RejectKind::Forbidden);
    let o = h.ok(OP, Command::ClearAuction { auction: "a1".into() });
    assert!(o.events.contains(&Event::AuctionCleared { auction: "a1".into(), price: 6_500, sold: 8_000 }), "{:?}", o.events);
    assert!(
        o.instructions.iter().all(|i| matches!(i.command, R::DeliverPending { .. })),
        "sold out: every unit is delivered from the escrow, nothing allocated: {:?}",
        o.instructions
    );
    assert_eq!(h.held("alpha"), alpha_before + 5_000);
    assert_eq!(h.venue.cash("alpha"), Some((40_000_000 - 5_000 * 6_500, 0, 0)));
    assert_eq!(h.venue.cash("bravo"), Some((30_000_000 - 3_000 * 6_500, 0, 0)));
    assert_eq!(h.venue.cash("authority"), Some((8_000 * 6_500, 0, 0)));
    assert!(h.registry.pending("escrow-a1").is_none(), "the escrow is fully delivered");
    assert!(h.venue.open_auction("a1").is_none());
    assert_eq!(h.no("bravo", bid("bravo", 7_000, 100)).0, RejectKind::NotFound, "the window is closed");
    // A member with nothing lodged: unlodging or selling is refused, and the refusal changes
    // nothing (the harness compares the state hash), not even an empty position.
    let code = h.code();
    assert_eq!(
        h.no("charlie", Command::Unlodge { member: "charlie".into(), instrument: code.clone(), qty: 1 }).0,
        RejectKind::Insufficient
    );

    // An undersubscribed auction is cancelled and the escrow goes back to the reserve whole.
    let escrow = ets_registry::Envelope {
        id: "escrow-a2".into(),
        actor: "cn-auth".into(),
        command: R::CreatePending {
            pending: "escrow-a2".into(),
            from: reserve.clone(),
            to: h.clearing.clone(),
            unit: h.unit(),
            quantity: Tonnes(2_000),
            purpose: PendingPurpose::Escrow,
        },
    };
    h.registry.execute(&escrow).unwrap();
    let Command::OpenAuction { auction, instrument, seller, rules, pending, secondary_reference, seed, .. } = open("a2", "escrow-a2")
    else {
        unreachable!()
    };
    h.ok(OP, Command::OpenAuction { auction, instrument, seller, volume: 2_000, rules, pending, secondary_reference, seed });
    h.ok("bravo", Command::AuctionBid { auction: "a2".into(), member: "bravo".into(), price: 7_000, qty: 100 });
    let o = h.ok(OP, Command::ClearAuction { auction: "a2".into() });
    assert!(matches!(&o.events[..], [Event::AuctionBidsClosed { bids: 1, .. }, Event::AuctionCancelled { .. }]), "{:?}", o.events);
    assert!(matches!(&o.instructions[..], [i] if matches!(i.command, R::VoidPending { .. })), "{:?}", o.instructions);
    assert_eq!(h.venue.cash("bravo"), Some((30_000_000 - 3_000 * 6_500, 0, 0)), "the guarantee is released");
    let reserve_idx = h.registry.find_account(&reserve).unwrap();
    let u = h.registry.unit_named(&h.unit()).unwrap();
    assert_eq!(h.registry.holding(reserve_idx, u).map(|x| (x.free_total(), x.encumbered_total)), Some((2_000, 0)));
    let a2 = h.venue.auction("a2").unwrap();
    assert_eq!((a2.bids, a2.bidders, a2.bid_qty), (1, 1, 100));

    // One member cannot fill an auction's bid limit by bidding and withdrawing: after its
    // allowance of bids (withdrawn ones included) it is refused, and the others still bid.
    let escrow = ets_registry::Envelope {
        id: "escrow-a3".into(),
        actor: "cn-auth".into(),
        command: R::CreatePending {
            pending: "escrow-a3".into(),
            from: reserve.clone(),
            to: h.clearing.clone(),
            unit: h.unit(),
            quantity: Tonnes(2_000),
            purpose: PendingPurpose::Escrow,
        },
    };
    h.registry.execute(&escrow).unwrap();
    let Command::OpenAuction { auction, instrument, seller, rules, pending, secondary_reference, seed, .. } = open("a3", "escrow-a3")
    else {
        unreachable!()
    };
    h.ok(OP, Command::OpenAuction { auction, instrument, seller, volume: 2_000, rules, pending, secondary_reference, seed });
    let limit = ets_exchange::venue::MAX_BIDS_PER_MEMBER_PER_AUCTION as usize;
    for n in 0..limit {
        h.ok("bravo", Command::AuctionBid { auction: "a3".into(), member: "bravo".into(), price: 7_000, qty: 100 });
        h.ok("bravo", Command::WithdrawAuctionBid { auction: "a3".into(), member: "bravo".into(), bid: n });
    }
    let (kind, msg) = h.no("bravo", Command::AuctionBid { auction: "a3".into(), member: "bravo".into(), price: 7_000, qty: 100 });
    assert_eq!(kind, RejectKind::Rule);
    assert!(msg.contains("withdrawn ones included"), "{msg}");
    h.ok("alpha", Command::AuctionBid { auction: "a3".into(), member: "alpha".into(), price: 7_000, qty: 100 });
}

/// Random order flow (places, takes, cancels, amends, blocks, days) through the venue into a
/// real registry: after every step the venue's invariants hold; at the end units and cash are
/// conserved (each member's registry units + venue cash equal the start ± what trades moved),
/// and replaying the journal into a fresh venue reproduces the state hash.
#[test]
fn random_flow_conserves_units_and_cash_and_replays_to_the_same_hash() {
    for seed in 0..6 {
        let mut h = Harness::new(InstrumentSpec { settlement_days: (seed % 2) as u8, ..national() });
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for m in MEMBERS {
            h.lodge(m, 200_000);
            h.deposit(m, 50_000_000);
        }
        let start_units: u64 = MEMBERS.iter().map(|m| h.held(m)).sum();
        let mut day = monday();
        let mut order = 1u64;
        for _ in 0..8 {
            while !h.venue.is_trading_day(day) {
                day = day.plus_days(1);
            }
            open_day(&mut h, day);
            for step in 0..400 {
                h.now = at(day, 9, 30) + step * 1_000 + if step >= 200 { 3 * 3_600_000 + 30 * 60_000 } else { 0 };
                let m = MEMBERS[rng.gen_range(0..MEMBERS.len())];
                let close = h.venue.previous_close(&h.code()).unwrap();
                let price = close + rng.gen_range(-300..=300);
                let roll = rng.gen_range(0..100);
                let code = h.code();
                let command = if roll < 60 {
                    order += 1;
                    let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
                    let tif = [Tif::Gtc, Tif::Gtc, Tif::Ioc, Tif::Fok][rng.gen_range(0..4)];
                    Command::Place {
                        order,
                        member: m.into(),
                        instrument: code,
                        side,
                        price: Some(price),
                        qty: rng.gen_range(1..5_000),
                        tif,
                    }
                } else if roll < 75 {
                    Command::Cancel { order: rng.gen_range(1..=order) }
                } else if roll < 85 {
                    Command::Amend { order: rng.gen_range(1..=order), qty: rng.gen_range(1..5_000) }
                } else if roll < 95 {
                    order += 1;
                    Command::Take { order, member: m.into(), maker: rng.gen_range(1..=order), qty: rng.gen_range(1..2_000) }
                } else {
                    let other = MEMBERS[rng.gen_range(0..MEMBERS.len())];
                    let deal = format!("d{order}");
                    order += 1;
                    let _ = h.send(
                        m,
                        Command::ProposeBlock {
                            deal: deal.clone(),
                            member: m.into(),
                            counterparty: other.into(),
                            instrument: code,
                            side: Side::Sell,
                            price,
                            qty: 100_000,
                        },
                    );
                    Command::ConfirmBlock { deal, member: other.into() }
                };
                let actor = match &command {
                    Command::Cancel { order } | Command::Amend { order, .. } => h.venue.open_order(*order).map_or(m.to_string(), |o| o.0),
                    Command::ConfirmBlock { member, .. } => member.clone(),
                    _ => m.to_string(),
                };
                let _ = h.send(&actor, command);
            }
            h.now = at(day, 15, 30);
            h.ok(OP, Command::CloseDay);
            day = day.plus_days(1);
        }
        // Settle whatever T+1 left: one more (empty) day.
        while !h.venue.is_trading_day(day) {
            day = day.plus_days(1);
        }
        open_day(&mut h, day);
        h.ok(OP, Command::CloseDay);
        assert!(!h.venue.trades().is_empty());
        // Units: conserved across members (clearing passes through), and each member's
        // registry holding moved exactly by its net traded quantity.
        let end_units: u64 = MEMBERS.iter().map(|m| h.held(m)).sum();
        assert_eq!(start_units, end_units, "seed {seed}");
        for m in MEMBERS {
            let net: i64 = h
                .venue
                .trades()
                .iter()
                .map(|t| {
                    if &*t.buyer == m {
                        t.qty as i64
                    } else if &*t.seller == m {
                        -(t.qty as i64)
                    } else {
                        0
                    }
                })
                .sum();
            let paid: i64 = h
                .venue
                .trades()
                .iter()
                .map(|t| {
                    if &*t.buyer == m {
                        -t.value_fen()
                    } else if &*t.seller == m {
                        t.value_fen()
                    } else {
                        0
                    }
                })
                .sum();
            assert_eq!(h.held(m) as i64, 1_000_000 + net, "seed {seed} member {m}");
            assert_eq!(h.venue.cash(m).unwrap().0, 5_000_000_000 + paid, "seed {seed} member {m}");
        }
        h.registry.check_invariants().unwrap();
        // Replay.
        let mut again =
            Venue::new(OP, BTreeMap::from([("CN".to_string(), h.clearing.clone())]), BTreeSet::from([Date::from_ymd(2025, 6, 9).unwrap()]));
        for env in &h.journal {
            again.execute(env).unwrap();
        }
        assert_eq!(again.state_hash(), h.venue.state_hash(), "seed {seed}");
        assert_eq!(again.trades(), h.venue.trades());
    }
}
