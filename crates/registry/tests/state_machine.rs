//! Property-based state-machine test: random sequences of every registry command, run against
//! the real `Registry` and against a deliberately simple reference model (`Model` below), with
//! every observable compared after every step.
//!
//! The default case count (256 cases of up to 250 steps) is small so that
//!     cargo test -p ets-registry --release --test state_machine
//! takes a few seconds on a 2-core machine. Run it at full size (about 40 s) with
//!     PROPTEST_CASES=5000 cargo test -p ets-registry --release --test state_machine
//! Failures are persisted (and replayed first on later runs) in
//! `crates/registry/proptest-regressions/state_machine.txt`. `generator_reaches_every_outcome`
//! guards the generator itself: it fails if some command is never accepted or some rejection
//! kind never produced (print the tallies with `-- --nocapture`).
//!
//! Steps name existing accounts, units, pendings, freezes and transactions by index, so most
//! are valid, with invalid ones mixed in: wrong actor, wrong market, too much, zero or absurd
//! quantity, blocked or closed accounts, names that do not exist or are misspelt (a NUL-padded
//! or lower-case code, a leading zero), a reused id with other content, an exact retry.
//!
//! What the model is: plain maps keyed by account number and unit name (`CEA:2024`,
//! `CCER:P1:2024`). Balances are `(free, encumbered)` per (account, unit); the free serial
//! numbers are kept one by one, oldest first, so that the model can say which serials a
//! first-in-first-out take moves and whether a correction's serials are still held. It predicts
//! accept / duplicate / reject (with the `RejectKind`) for every command, applying the command's
//! effect itself on accept. Validation order follows the registry's documented order: where a
//! command breaks several rules, the first failed check decides the kind.
//!
//! Checked after every step: the outcome (and receipt) agrees with the model, a rejected or
//! duplicate command changes nothing (state hash before == after), `check_invariants()` holds,
//! and balances (free and encumbered, and the free serials in order), surrendered amounts,
//! issued totals and conservation buckets, caps, account status / representatives, pendings,
//! freezes and the transaction log agree with the model.
//!
//! Checked at the end of each case: replaying the journaled events (through an encode/decode of
//! each `Record`) into a fresh registry gives the same state hash; a snapshot round trip gives
//! the same state hash; the sealed hash chain verifies, and flipping one byte of one body makes
//! `ChainVerifier` name exactly that record. Random `Restore` steps also swap the live registry
//! mid-run for one rebuilt from a snapshot or from the journal, so the rebuilt indexes are
//! exercised by later commands.

use ets_core::{Timestamp, Tonnes, IDENTIFIER_LENGTH_MAX};
use ets_registry::journal::{fingerprint, GENESIS_HASH};
use ets_registry::*;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// Cases per run unless PROPTEST_CASES says otherwise.
const DEFAULT_CASES: u32 = 256;
/// Random steps per case (after the setup commands).
const MAX_STEPS: usize = 250;

const ADMIN: &str = "admin";
/// People who represent holder accounts ("mallory" represents nothing unless added).
const PERSONS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "mallory"];
const VINTAGES: [u16; 3] = [2023, 2024, 2025];
const PROJECTS: [&str; 2] = ["P1", "P2"];
/// Compliance years for surrenders; the last is not plausible (Invalid).
const YEARS: [u16; 4] = [2023, 2024, 2025, 1900];
const PENDING_POOL: usize = 5;
const FREEZE_POOL: usize = 4;
const UNKNOWN_ACCOUNT: &str = "ZZ-999999";
const UNKNOWN_MARKET: &str = "ZZ";

struct MarketDef {
    code: &'static str,
    name: &'static str,
    level: MarketLevel,
    allowance: &'static str,
    offsets: &'static [&'static str],
    authority: &'static str,
    individuals: bool,
}

const MARKET_DEFS: [MarketDef; 4] = [
    MarketDef {
        code: "CN",
        name: "National",
        level: MarketLevel::National,
        allowance: "CEA",
        offsets: &["CCER"],
        authority: "cn-auth",
        individuals: false,
    },
    MarketDef {
        code: "BJ",
        name: "Beijing",
        level: MarketLevel::Pilot,
        allowance: "BEA",
        offsets: &[],
        authority: "bj-auth",
        individuals: true,
    },
    MarketDef {
        code: "GD",
        name: "Guangdong",
        level: MarketLevel::Pilot,
        allowance: "GDEA",
        offsets: &["PHCER"],
        authority: "gd-auth",
        individuals: false,
    },
    // Only ever added by a random AddMarket step.
    MarketDef {
        code: "SH",
        name: "Shanghai",
        level: MarketLevel::Pilot,
        allowance: "SHEA",
        offsets: &[],
        authority: "sh-auth",
        individuals: true,
    },
];

fn spec_of(d: &MarketDef) -> MarketSpec {
    MarketSpec {
        code: d.code.into(),
        name: d.name.into(),
        level: d.level,
        allowance_code: d.allowance.into(),
        offset_standards: d.offsets.iter().map(|s| s.to_string()).collect(),
        individuals_may_trade: d.individuals,
        authorities: vec![d.authority.into()],
    }
}

/// Everyone who may appear as an actor.
fn all_actors() -> Vec<&'static str> {
    let mut v = vec![ADMIN];
    v.extend(MARKET_DEFS.iter().map(|d| d.authority));
    v.extend(PERSONS);
    v
}

// =====================================================================================
// The reference model
// =====================================================================================

type R<T> = Result<T, RejectKind>;
use RejectKind::{Conflict, Forbidden, Invalid, NotFound, Refused};

#[derive(Clone, Debug)]
struct MMarket {
    code: String,
    name: String,
    allowance: String,
    offsets: Vec<String>,
    authorities: Vec<String>,
    individuals: bool,
    recognised: BTreeSet<usize>,
    next_serial: u64,
    caps: BTreeMap<u16, u64>,
    allowances_issued: BTreeMap<u16, u64>,
    opened: u32,
    issuance: usize,
    reserve: usize,
    surrender: usize,
    cancellation: usize,
}

#[derive(Clone, Debug)]
struct MAccount {
    number: String,
    market: usize,
    kind: AccountKind,
    status: AccountStatus,
    reps: Vec<String>,
}

#[derive(Clone, Debug)]
struct MUnit {
    name: String,
    unit: UnitRef,
    issuer: usize,
    allowance: bool,
    issued: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum MTxKind {
    Issuance,
    Allocation,
    Transfer,
    Surrender(u16),
    Cancellation,
    PendingPost,
    Reversal,
    IssuanceReversal,
    Withdrawal,
}

#[derive(Clone, Debug)]
struct MTx {
    kind: MTxKind,
    from: Option<usize>,
    to: usize,
    unit: usize,
    serials: Vec<u64>,
    reversed: bool,
}

/// Units held aside: a pending transfer (from -> to) or a freeze (from == to).
#[derive(Clone, Debug)]
struct MLock {
    from: usize,
    to: usize,
    unit: usize,
    serials: Vec<u64>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    admins: Vec<String>,
    markets: Vec<MMarket>,
    accounts: Vec<MAccount>,
    units: Vec<MUnit>,
    /// (account number, unit name) -> (free, encumbered).
    balances: HashMap<(String, String), (u64, u64)>,
    /// (account number, unit name) -> free serial numbers, oldest first.
    free_serials: HashMap<(String, String), VecDeque<u64>>,
    pendings: BTreeMap<String, MLock>,
    freezes: BTreeMap<String, MLock>,
    /// (account number, compliance year) -> tonnes surrendered and not reversed.
    surrendered: HashMap<(String, u16), u64>,
    txs: Vec<MTx>,
    /// Accepted command ids: actor, command, receipt.
    commands: HashMap<String, (String, Command, Receipt)>,
    seq: u64,
}

#[derive(Clone, Debug)]
enum Prediction {
    Accept(Receipt),
    Duplicate(Receipt),
    Reject(RejectKind),
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= IDENTIFIER_LENGTH_MAX && s.chars().all(|c| c.is_ascii_graphic())
}

fn ident(s: &str) -> R<()> {
    if ident_ok(s) {
        Ok(())
    } else {
        Err(Invalid)
    }
}

fn quantity(t: Tonnes) -> R<u64> {
    if t.0 == 0 || t.0 > Tonnes::MAX_PARSED.0 {
        Err(Invalid)
    } else {
        Ok(t.0)
    }
}

fn is_holder(kind: AccountKind) -> bool {
    matches!(kind, AccountKind::Operator | AccountKind::Trading)
}

impl Model {
    // ---- lookups -------------------------------------------------------------------

    fn key(&self, a: usize, u: usize) -> (String, String) {
        (self.accounts[a].number.clone(), self.units[u].name.clone())
    }

    fn bal(&self, a: usize, u: usize) -> (u64, u64) {
        self.balances.get(&self.key(a, u)).copied().unwrap_or((0, 0))
    }

    fn free(&self, a: usize, u: usize) -> u64 {
        self.bal(a, u).0
    }

    fn held_total(&self, a: usize) -> u64 {
        let number = &self.accounts[a].number;
        self.balances.iter().filter(|((n, _), _)| n == number).map(|(_, (f, e))| f + e).sum()
    }

    fn is_admin(&self, actor: &str) -> bool {
        self.admins.iter().any(|a| a == actor)
    }

    fn is_authority(&self, actor: &str, m: usize) -> bool {
        self.markets[m].authorities.iter().any(|a| a == actor)
    }

    fn is_rep(&self, actor: &str, a: usize) -> bool {
        self.accounts[a].reps.iter().any(|p| p == actor)
    }

    fn authority(&self, actor: &str, m: usize) -> R<()> {
        if self.is_authority(actor, m) {
            Ok(())
        } else {
            Err(Forbidden)
        }
    }

    fn account_admin(&self, actor: &str, a: usize) -> R<()> {
        if self.is_admin(actor) || self.is_authority(actor, self.accounts[a].market) {
            Ok(())
        } else {
            Err(Forbidden)
        }
    }

    fn representative(&self, actor: &str, a: usize) -> R<()> {
        if self.is_rep(actor, a) {
            Ok(())
        } else {
            Err(Forbidden)
        }
    }

    fn market_named(&self, code: &str) -> R<usize> {
        self.markets.iter().position(|m| m.code == code).ok_or(NotFound)
    }

    fn account_named(&self, number: &str) -> R<usize> {
        self.accounts.iter().position(|a| a.number == number).ok_or(NotFound)
    }

    fn code_owner(&self, unit: &UnitRef) -> R<(usize, bool)> {
        let owner = self.markets.iter().enumerate().find_map(|(i, m)| {
            if m.allowance == unit.code {
                Some((i, true))
            } else if m.offsets.contains(&unit.code) {
                Some((i, false))
            } else {
                None
            }
        });
        let (m, allowance) = owner.ok_or(NotFound)?;
        if allowance == unit.project.is_some() {
            return Err(Invalid);
        }
        Ok((m, allowance))
    }

    fn unit_named(&self, unit: &UnitRef) -> R<usize> {
        self.code_owner(unit)?;
        let name = unit.to_string();
        self.units.iter().position(|u| u.name == name).ok_or(NotFound)
    }

    fn can_send(&self, a: usize) -> R<()> {
        if self.accounts[a].status == AccountStatus::Open {
            Ok(())
        } else {
            Err(Refused)
        }
    }

    fn can_receive(&self, a: usize) -> R<()> {
        if self.accounts[a].status == AccountStatus::Closed {
            Err(Refused)
        } else {
            Ok(())
        }
    }

    fn market_accepts(&self, m: usize, issuer: usize) -> bool {
        m == issuer || self.markets[m].recognised.contains(&issuer)
    }

    fn accepts(&self, a: usize, u: usize) -> R<()> {
        if self.market_accepts(self.accounts[a].market, self.units[u].issuer) {
            Ok(())
        } else {
            Err(Refused)
        }
    }

    /// The first `q` free serials (what a first-in-first-out take moves).
    fn take(&self, a: usize, u: usize, q: u64) -> R<Vec<u64>> {
        if self.free(a, u) < q {
            return Err(Refused);
        }
        Ok(self.free_serials[&self.key(a, u)].iter().take(q as usize).copied().collect())
    }

    fn holds_free(&self, a: usize, u: usize, serials: &[u64]) -> bool {
        let free: HashSet<u64> = self.free_serials.get(&self.key(a, u)).map(|d| d.iter().copied().collect()).unwrap_or_default();
        serials.iter().all(|s| free.contains(s))
    }

    fn next_tx(&self) -> Option<TxId> {
        Some(TxId(self.txs.len() as u64 + 1))
    }

    // ---- mutations -----------------------------------------------------------------

    fn add_free(&mut self, a: usize, u: usize, serials: &[u64]) {
        let k = self.key(a, u);
        self.free_serials.entry(k.clone()).or_default().extend(serials.iter().copied());
        self.balances.entry(k).or_insert((0, 0)).0 += serials.len() as u64;
    }

    fn remove_free(&mut self, a: usize, u: usize, serials: &[u64]) {
        let k = self.key(a, u);
        let set: HashSet<u64> = serials.iter().copied().collect();
        let dq = self.free_serials.get_mut(&k).expect("model: removing from an empty holding");
        let before = dq.len();
        dq.retain(|s| !set.contains(s));
        assert_eq!(before - dq.len(), serials.len(), "model: removed serials that are not free");
        self.balances.get_mut(&k).unwrap().0 -= serials.len() as u64;
    }

    fn encumber(&mut self, a: usize, u: usize, serials: &[u64]) {
        self.remove_free(a, u, serials);
        self.balances.get_mut(&self.key(a, u)).unwrap().1 += serials.len() as u64;
    }

    fn release(&mut self, a: usize, u: usize, serials: &[u64]) {
        let k = self.key(a, u);
        self.balances.get_mut(&k).unwrap().1 -= serials.len() as u64;
        self.add_free(a, u, serials);
    }

    fn push_tx(&mut self, kind: MTxKind, from: Option<usize>, to: usize, unit: usize, serials: Vec<u64>) {
        self.txs.push(MTx { kind, from, to, unit, serials, reversed: false });
    }

    fn move_free(&mut self, kind: MTxKind, from: usize, to: usize, unit: usize, serials: Vec<u64>) {
        self.remove_free(from, unit, &serials);
        self.add_free(to, unit, &serials);
        self.push_tx(kind, Some(from), to, unit, serials);
    }

    // ---- prediction ------------------------------------------------------------------

    /// Predicts the outcome of an envelope; on `Accept` the model has applied the command.
    fn predict(&mut self, env: &Envelope) -> Prediction {
        if !ident_ok(&env.id) || !ident_ok(&env.actor) {
            return Prediction::Reject(Invalid);
        }
        if let Some((actor, command, receipt)) = self.commands.get(&env.id) {
            if *actor == env.actor && *command == env.command {
                return Prediction::Duplicate(*receipt);
            }
            return Prediction::Reject(Conflict);
        }
        match self.run(&env.actor, &env.command) {
            Err(kind) => Prediction::Reject(kind),
            Ok(mut receipt) => {
                self.seq += 1;
                receipt.seq = self.seq;
                self.commands.insert(env.id.clone(), (env.actor.clone(), env.command.clone(), receipt));
                Prediction::Accept(receipt)
            }
        }
    }

    /// Checks a command against the rules and, if it passes, applies it. Every check happens
    /// before any change, so an `Err` leaves the model untouched.
    fn run(&mut self, actor: &str, command: &Command) -> R<Receipt> {
        if self.admins.is_empty() && !matches!(command, Command::InitRegistry { .. }) {
            return Err(Refused);
        }
        let mut receipt = Receipt::default();
        match command {
            Command::InitRegistry { admins } => {
                if !self.admins.is_empty() {
                    return Err(Refused);
                }
                if admins.is_empty() {
                    return Err(Invalid);
                }
                admins.iter().try_for_each(|a| ident(a))?;
                self.admins = admins.clone();
            }
            Command::AddMarket(spec) => {
                if !self.is_admin(actor) {
                    return Err(Forbidden);
                }
                let code_ok = (2..=8).contains(&spec.code.len()) && spec.code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                if !code_ok {
                    return Err(Invalid);
                }
                if self.market_named(&spec.code).is_ok() {
                    return Err(Refused);
                }
                if spec.name.trim().is_empty() || spec.authorities.is_empty() {
                    return Err(Invalid);
                }
                spec.authorities.iter().try_for_each(|a| ident(a))?;
                let mut codes = vec![spec.allowance_code.clone()];
                codes.extend(spec.offset_standards.iter().cloned());
                for (i, code) in codes.iter().enumerate() {
                    if !((2..=12).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric())) {
                        return Err(Invalid);
                    }
                    let used = self.markets.iter().any(|m| m.allowance == *code || m.offsets.contains(code));
                    if used || codes[..i].contains(code) {
                        return Err(Refused);
                    }
                }
                let m = self.markets.len();
                let base = self.accounts.len();
                for (kind, suffix) in [
                    (AccountKind::Issuance, "ISSUANCE"),
                    (AccountKind::Reserve, "RESERVE"),
                    (AccountKind::Surrender, "SURRENDER"),
                    (AccountKind::Cancellation, "CANCELLATION"),
                ] {
                    self.accounts.push(MAccount {
                        number: format!("{}-{suffix}", spec.code),
                        market: m,
                        kind,
                        status: AccountStatus::Open,
                        reps: spec.authorities.clone(),
                    });
                }
                self.markets.push(MMarket {
                    code: spec.code.clone(),
                    name: spec.name.clone(),
                    allowance: spec.allowance_code.clone(),
                    offsets: spec.offset_standards.clone(),
                    authorities: spec.authorities.clone(),
                    individuals: spec.individuals_may_trade,
                    recognised: BTreeSet::new(),
                    next_serial: 1,
                    caps: BTreeMap::new(),
                    allowances_issued: BTreeMap::new(),
                    opened: 0,
                    issuance: base,
                    reserve: base + 1,
                    surrender: base + 2,
                    cancellation: base + 3,
                });
                receipt.market = Some(MarketIdx(m as u16));
                receipt.account = Some(AccountIdx(base as u32));
            }
            Command::SetCap { market, vintage, cap } => {
                let m = self.market_named(market)?;
                self.authority(actor, m)?;
                let issued = self.markets[m].allowances_issued.get(vintage).copied().unwrap_or(0);
                if cap.0 < issued {
                    return Err(Refused);
                }
                self.markets[m].caps.insert(*vintage, cap.0);
            }
            Command::RecogniseUnits { market, issuer } => {
                let m = self.market_named(market)?;
                let i = self.market_named(issuer)?;
                self.authority(actor, m)?;
                if m == i || self.markets[m].recognised.contains(&i) {
                    return Err(Refused);
                }
                self.markets[m].recognised.insert(i);
            }
            Command::OpenAccount { market, kind, holder, holder_type, representatives } => {
                let m = self.market_named(market)?;
                if !self.is_admin(actor) && !self.is_authority(actor, m) {
                    return Err(Forbidden);
                }
                match (kind, holder_type) {
                    (AccountKind::Operator, HolderType::Entity) => {}
                    (AccountKind::Trading, HolderType::Entity | HolderType::Institution) => {}
                    (AccountKind::Trading, HolderType::Individual) if self.markets[m].individuals => {}
                    (AccountKind::Trading, HolderType::Individual) => return Err(Refused),
                    _ => return Err(Invalid),
                }
                if holder.trim().is_empty() || holder.len() > 200 {
                    return Err(Invalid);
                }
                if representatives.is_empty() || representatives.len() > 16 {
                    return Err(Invalid);
                }
                for (i, p) in representatives.iter().enumerate() {
                    ident(p)?;
                    if representatives[..i].contains(p) {
                        return Err(Invalid);
                    }
                }
                let market = &mut self.markets[m];
                let number = format!("{}-{}", market.code, 100_001 + market.opened);
                market.opened += 1;
                receipt.account = Some(AccountIdx(self.accounts.len() as u32));
                self.accounts.push(MAccount { number, market: m, kind: *kind, status: AccountStatus::Open, reps: representatives.clone() });
            }
            Command::SetAccountStatus { account, status } => {
                let a = self.account_named(account)?;
                self.account_admin(actor, a)?;
                let acc = &self.accounts[a];
                if !is_holder(acc.kind) || acc.status == *status || acc.status == AccountStatus::Closed {
                    return Err(Refused);
                }
                if *status == AccountStatus::Closed && self.held_total(a) > 0 {
                    return Err(Refused);
                }
                self.accounts[a].status = *status;
            }
            Command::AddRepresentative { account, person } => {
                let a = self.account_named(account)?;
                self.account_admin(actor, a)?;
                ident(person)?;
                if self.is_rep(person, a) || self.accounts[a].reps.len() >= 16 {
                    return Err(Refused);
                }
                self.accounts[a].reps.push(person.clone());
            }
            Command::RemoveRepresentative { account, person } => {
                let a = self.account_named(account)?;
                self.account_admin(actor, a)?;
                if !self.is_rep(person, a) {
                    return Err(NotFound);
                }
                if self.accounts[a].reps.len() == 1 {
                    return Err(Refused);
                }
                self.accounts[a].reps.retain(|p| p != person);
            }
            Command::Issue { unit, quantity: q, to } => {
                let q = quantity(*q)?;
                let (m, allowance) = self.code_owner(unit)?;
                self.authority(actor, m)?;
                let market = &self.markets[m];
                let account = match to {
                    None => market.issuance,
                    Some(number) => {
                        let a = self.account_named(number)?;
                        if a != market.issuance && a != market.reserve {
                            return Err(Refused);
                        }
                        a
                    }
                };
                if allowance {
                    let issued = market.allowances_issued.get(&unit.vintage).copied().unwrap_or(0);
                    if market.caps.get(&unit.vintage).is_some_and(|cap| issued + q > *cap) {
                        return Err(Refused);
                    }
                } else {
                    ident(unit.project.as_deref().unwrap_or_default())?;
                }
                let name = unit.to_string();
                let u = match self.units.iter().position(|x| x.name == name) {
                    Some(u) => u,
                    None => {
                        self.units.push(MUnit { name, unit: unit.clone(), issuer: m, allowance, issued: 0 });
                        self.units.len() - 1
                    }
                };
                let market = &mut self.markets[m];
                let serials: Vec<u64> = (market.next_serial..market.next_serial + q).collect();
                market.next_serial += q;
                if allowance {
                    *market.allowances_issued.entry(unit.vintage).or_insert(0) += q;
                }
                self.units[u].issued += q;
                receipt.tx = self.next_tx();
                self.add_free(account, u, &serials);
                self.push_tx(MTxKind::Issuance, None, account, u, serials);
            }
            Command::Allocate { from, to, unit, quantity: q } => {
                let f = self.account_named(from)?;
                let t = self.account_named(to)?;
                let q = quantity(*q)?;
                self.authority(actor, self.accounts[f].market)?;
                if !matches!(self.accounts[f].kind, AccountKind::Issuance | AccountKind::Reserve) {
                    return Err(Refused);
                }
                if !matches!(self.accounts[t].kind, AccountKind::Operator | AccountKind::Trading | AccountKind::Reserve) || t == f {
                    return Err(Refused);
                }
                self.can_receive(t)?;
                let u = self.unit_named(unit)?;
                self.accepts(t, u)?;
                let serials = self.take(f, u, q)?;
                receipt.tx = self.next_tx();
                self.move_free(MTxKind::Allocation, f, t, u, serials);
            }
            Command::Transfer { from, to, unit, quantity: q } => {
                let (f, t, u, q) = self.check_move(actor, from, to, unit, *q)?;
                let serials = self.take(f, u, q)?;
                receipt.tx = self.next_tx();
                self.move_free(MTxKind::Transfer, f, t, u, serials);
            }
            Command::Surrender { account, unit, quantity: q, compliance_year } => {
                let a = self.account_named(account)?;
                let q = quantity(*q)?;
                self.representative(actor, a)?;
                self.can_send(a)?;
                if self.accounts[a].kind != AccountKind::Operator {
                    return Err(Refused);
                }
                if !(1990..=2200).contains(compliance_year) {
                    return Err(Invalid);
                }
                let u = self.unit_named(unit)?;
                self.accepts(a, u)?;
                let serials = self.take(a, u, q)?;
                let to = self.markets[self.accounts[a].market].surrender;
                *self.surrendered.entry((account.clone(), *compliance_year)).or_insert(0) += q;
                receipt.tx = self.next_tx();
                self.move_free(MTxKind::Surrender(*compliance_year), a, to, u, serials);
            }
            Command::Cancel { account, unit, quantity: q } => {
                let a = self.account_named(account)?;
                let q = quantity(*q)?;
                self.representative(actor, a)?;
                self.can_send(a)?;
                if !is_holder(self.accounts[a].kind) {
                    return Err(Refused);
                }
                let u = self.unit_named(unit)?;
                let serials = self.take(a, u, q)?;
                let to = self.markets[self.accounts[a].market].cancellation;
                receipt.tx = self.next_tx();
                self.move_free(MTxKind::Cancellation, a, to, u, serials);
            }
            // Linking is not generated; its rules are tested in tests/operations.rs.
            Command::LinkMarkets { .. } => return Err(Forbidden),
            Command::Withdraw { account, unit, quantity: q } => {
                let a = self.account_named(account)?;
                let q = quantity(*q)?;
                self.authority(actor, self.accounts[a].market)?;
                if !is_holder(self.accounts[a].kind) {
                    return Err(Refused);
                }
                let u = self.unit_named(unit)?;
                let serials = self.take(a, u, q)?;
                let to = self.markets[self.accounts[a].market].cancellation;
                receipt.tx = self.next_tx();
                self.move_free(MTxKind::Withdrawal, a, to, u, serials);
            }
            Command::CreatePending { pending, from, to, unit, quantity: q, purpose } => {
                ident(pending)?;
                if self.pendings.contains_key(pending) {
                    return Err(Refused);
                }
                let authority_source =
                    self.accounts.iter().any(|a| a.number == *from && matches!(a.kind, AccountKind::Issuance | AccountKind::Reserve));
                let (f, t, u, q) = if authority_source && *purpose == PendingPurpose::Escrow {
                    self.check_escrow(actor, from, to, unit, *q)?
                } else {
                    self.check_move(actor, from, to, unit, *q)?
                };
                let serials = self.take(f, u, q)?;
                self.encumber(f, u, &serials);
                self.pendings.insert(pending.clone(), MLock { from: f, to: t, unit: u, serials });
            }
            Command::PostPending { pending } => {
                let p = self.pendings.get(pending).ok_or(NotFound)?;
                if !self.is_rep(actor, p.from) && !self.is_authority(actor, self.accounts[p.from].market) {
                    return Err(Forbidden);
                }
                self.can_receive(p.to)?;
                let p = self.pendings.remove(pending).unwrap();
                self.balances.get_mut(&self.key(p.from, p.unit)).unwrap().1 -= p.serials.len() as u64;
                self.add_free(p.to, p.unit, &p.serials);
                receipt.tx = self.next_tx();
                self.push_tx(MTxKind::PendingPost, Some(p.from), p.to, p.unit, p.serials);
            }
            Command::DeliverPending { pending, quantity: q, to } => {
                let q = quantity(*q)?;
                let p = self.pendings.get(pending).ok_or(NotFound)?;
                if !self.is_rep(actor, p.to) && !self.is_authority(actor, self.accounts[p.from].market) {
                    return Err(Forbidden);
                }
                if q > p.serials.len() as u64 {
                    return Err(Refused);
                }
                let unit = p.unit;
                let t = self.account_named(to)?;
                self.can_receive(t)?;
                self.accepts(t, unit)?;
                let p = self.pendings.get_mut(pending).unwrap();
                let serials: Vec<u64> = p.serials.drain(..q as usize).collect();
                let from = p.from;
                if p.serials.is_empty() {
                    self.pendings.remove(pending);
                }
                self.balances.get_mut(&self.key(from, unit)).unwrap().1 -= q;
                self.add_free(t, unit, &serials);
                receipt.tx = self.next_tx();
                self.push_tx(MTxKind::PendingPost, Some(from), t, unit, serials);
            }
            Command::VoidPending { pending } => {
                let p = self.pendings.get(pending).ok_or(NotFound)?;
                let allowed =
                    self.is_rep(actor, p.from) || self.is_rep(actor, p.to) || self.is_authority(actor, self.accounts[p.from].market);
                if !allowed {
                    return Err(Forbidden);
                }
                let p = self.pendings.remove(pending).unwrap();
                self.release(p.from, p.unit, &p.serials);
            }
            Command::Freeze { freeze, account, unit, quantity: q, order } => {
                ident(freeze)?;
                ident(order)?;
                if self.freezes.contains_key(freeze) {
                    return Err(Refused);
                }
                let a = self.account_named(account)?;
                let q = quantity(*q)?;
                self.authority(actor, self.accounts[a].market)?;
                let u = self.unit_named(unit)?;
                let serials = self.take(a, u, q)?;
                self.encumber(a, u, &serials);
                self.freezes.insert(freeze.clone(), MLock { from: a, to: a, unit: u, serials });
            }
            Command::Unfreeze { freeze } => {
                let f = self.freezes.get(freeze).ok_or(NotFound)?;
                self.authority(actor, self.accounts[f.from].market)?;
                let f = self.freezes.remove(freeze).unwrap();
                self.release(f.from, f.unit, &f.serials);
            }
            Command::Reverse { tx, reason } => {
                if reason.trim().is_empty() {
                    return Err(Invalid);
                }
                if tx.0 == 0 || tx.0 > self.txs.len() as u64 {
                    return Err(NotFound);
                }
                let i = (tx.0 - 1) as usize;
                let t = self.txs[i].clone();
                self.authority(actor, self.accounts[t.to].market)?;
                if t.reversed || !self.holds_free(t.to, t.unit, &t.serials) {
                    return Err(Refused);
                }
                receipt.tx = self.next_tx();
                match t.kind {
                    MTxKind::Reversal | MTxKind::IssuanceReversal => return Err(Refused),
                    MTxKind::Issuance => {
                        let n = t.serials.len() as u64;
                        self.remove_free(t.to, t.unit, &t.serials);
                        let unit = &mut self.units[t.unit];
                        unit.issued -= n;
                        if unit.allowance {
                            let (issuer, vintage) = (unit.issuer, unit.unit.vintage);
                            *self.markets[issuer].allowances_issued.get_mut(&vintage).unwrap() -= n;
                        }
                        self.txs[i].reversed = true;
                        self.push_tx(MTxKind::IssuanceReversal, Some(t.to), t.to, t.unit, t.serials);
                    }
                    kind => {
                        let from = t.from.expect("only issuances have no source");
                        self.can_receive(from)?;
                        if let MTxKind::Surrender(year) = kind {
                            let number = self.accounts[from].number.clone();
                            *self.surrendered.get_mut(&(number, year)).unwrap() -= t.serials.len() as u64;
                        }
                        self.txs[i].reversed = true;
                        self.move_free(MTxKind::Reversal, t.to, from, t.unit, t.serials);
                    }
                }
            }
        }
        Ok(receipt)
    }

    /// An authority account's units set aside for the exchange's clearing account (an auction).
    fn check_escrow(&self, actor: &str, from: &str, to: &str, unit: &UnitRef, q: Tonnes) -> R<(usize, usize, usize, u64)> {
        let f = self.account_named(from)?;
        let t = self.account_named(to)?;
        let q = quantity(q)?;
        let market = self.accounts[f].market;
        self.authority(actor, market)?;
        self.can_send(f)?;
        if !is_holder(self.accounts[t].kind) || self.accounts[t].market != market {
            return Err(Refused);
        }
        self.can_receive(t)?;
        let u = self.unit_named(unit)?;
        self.accepts(t, u)?;
        Ok((f, t, u, q))
    }

    fn check_move(&self, actor: &str, from: &str, to: &str, unit: &UnitRef, q: Tonnes) -> R<(usize, usize, usize, u64)> {
        let f = self.account_named(from)?;
        let t = self.account_named(to)?;
        let q = quantity(q)?;
        self.representative(actor, f)?;
        self.can_send(f)?;
        if f == t {
            return Err(Invalid);
        }
        if !is_holder(self.accounts[f].kind) || !is_holder(self.accounts[t].kind) {
            return Err(Refused);
        }
        self.can_receive(t)?;
        let u = self.unit_named(unit)?;
        self.accepts(t, u)?;
        Ok((f, t, u, q))
    }
}

// =====================================================================================
// Generated steps
// =====================================================================================

#[derive(Clone, Debug)]
enum Actor {
    /// Someone entitled to the command, when there is one.
    Right(usize),
    /// Anyone at all (often not entitled).
    Anyone(usize),
}

#[derive(Clone, Debug)]
enum Mkt {
    Known(usize),
    Unknown,
}

/// The source account (and, with `UnitSel::FromSrc`, the unit) of a command.
#[derive(Clone, Debug)]
enum Src {
    /// One of the (account, unit) pairs with free units, among the open accounts of the kinds
    /// the command expects.
    Held(usize),
    /// The same, but blocked accounts too.
    HeldAny(usize),
    /// Any account.
    Any(usize),
    Unknown,
}

#[derive(Clone, Debug)]
enum Dst {
    /// A holder account whose market accepts the unit.
    Accepting(usize),
    /// Any holder account.
    Holder(usize),
    Any(usize),
    Same,
    Unknown,
}

#[derive(Clone, Debug)]
enum UnitSel {
    FromSrc,
    Any(usize),
    /// Unknown code, wrong shape, or never issued.
    Bad(usize),
}

#[derive(Clone, Debug)]
enum Qty {
    /// Percent of the free quantity, at least 1.
    Part(u64),
    Exact(u64),
    All,
    Over(u64),
    Zero,
    Huge,
    /// For issuance: the room left under the cap, minus 1, exactly, or plus 1 (`0..=2`).
    Headroom(u64),
}

#[derive(Clone, Debug)]
enum Acc {
    Holder(usize),
    Any(usize),
    Unknown,
}

#[derive(Clone, Debug)]
enum Named {
    /// The first id of the pool not in use (or the last one).
    Free,
    /// Any id of the pool, perhaps in use.
    Pool(usize),
    Bad,
}

#[derive(Clone, Debug)]
enum Existing {
    Live(usize),
    Pool(usize),
}

#[derive(Clone, Debug)]
enum TxSel {
    Live(usize),
    Last,
    Zero,
    Beyond,
}

#[derive(Clone, Debug)]
enum IssueClass {
    Allowance,
    Offset(usize),
    /// Offset with a project that is not an identifier (Invalid).
    BadProject,
    /// Allowance code with a project, or offset code without (Invalid).
    WrongShape,
    UnknownCode,
}

#[derive(Clone, Debug)]
enum IssueTo {
    Default,
    Issuance,
    Reserve,
    OtherMarket,
    Holder(usize),
    Unknown,
}

#[derive(Clone, Debug)]
enum StatusSel {
    /// Open -> blocked, blocked -> open.
    Toggle,
    /// Close one of the empty holder accounts (any holder account when none is empty).
    CloseEmpty(usize),
    /// Any status (often the current one, or a closed account's).
    Any(usize),
}

#[derive(Clone, Debug)]
enum CapRel {
    AtIssued,
    Above(u64),
    Below,
}

#[derive(Clone, Debug)]
enum Op {
    Issue {
        market: Mkt,
        class: IssueClass,
        vintage: usize,
        qty: Qty,
        to: IssueTo,
        actor: Actor,
    },
    SetCap {
        market: Mkt,
        vintage: usize,
        rel: CapRel,
        actor: Actor,
    },
    Allocate {
        src: Src,
        to: Dst,
        unit: UnitSel,
        qty: Qty,
        actor: Actor,
    },
    Transfer {
        src: Src,
        to: Dst,
        unit: UnitSel,
        qty: Qty,
        actor: Actor,
    },
    Surrender {
        src: Src,
        unit: UnitSel,
        qty: Qty,
        year: usize,
        actor: Actor,
    },
    Cancel {
        src: Src,
        unit: UnitSel,
        qty: Qty,
        actor: Actor,
    },
    Withdraw {
        src: Src,
        unit: UnitSel,
        qty: Qty,
        actor: Actor,
    },
    CreatePending {
        id: Named,
        src: Src,
        to: Dst,
        unit: UnitSel,
        qty: Qty,
        purpose: usize,
        actor: Actor,
    },
    PostPending {
        id: Existing,
        actor: Actor,
    },
    VoidPending {
        id: Existing,
        actor: Actor,
    },
    DeliverPending {
        id: Existing,
        to: Dst,
        qty: Qty,
        actor: Actor,
    },
    Freeze {
        id: Named,
        src: Src,
        unit: UnitSel,
        qty: Qty,
        bad_order: bool,
        actor: Actor,
    },
    Unfreeze {
        id: Existing,
        actor: Actor,
    },
    SetStatus {
        account: Acc,
        status: StatusSel,
        actor: Actor,
    },
    AddRep {
        account: Acc,
        person: usize,
        actor: Actor,
    },
    RemoveRep {
        account: Acc,
        person: usize,
        any_person: bool,
        actor: Actor,
    },
    Reverse {
        tx: TxSel,
        no_reason: bool,
        actor: Actor,
    },
    OpenAccount {
        market: Mkt,
        kind: usize,
        holder_type: Option<usize>,
        bad_holder: bool,
        reps: Vec<usize>,
        actor: Actor,
    },
    Recognise {
        market: Mkt,
        issuer: Mkt,
        actor: Actor,
    },
    AddMarket {
        which: usize,
        actor: Actor,
    },
    InitAgain,
    /// Sends an earlier envelope again, unchanged.
    Retry(usize),
    /// An envelope with a malformed id or actor.
    BadEnvelope(usize),
    /// Swaps the live registry for one rebuilt from a snapshot (false) or the journal (true).
    Restore(bool),
}

#[derive(Clone, Debug)]
struct Step {
    op: Op,
    /// Send under an earlier command's id instead of a fresh one.
    reuse_id: Option<usize>,
    /// Which misspelling an unknown account or market name is (see `unknown_account`).
    unknown: usize,
}

#[derive(Clone, Debug)]
struct Setup {
    markets: usize,
    /// Per market: (operator?, representative indices).
    accounts: Vec<Vec<(bool, Vec<usize>)>>,
    recognitions: Vec<(usize, usize)>,
    /// Opening issuance per market (allowances, offsets) and allocations to holder accounts.
    issue: (u64, u64),
    allocations: Vec<u64>,
}

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![19 => any::<usize>().prop_map(Actor::Right), 1 => any::<usize>().prop_map(Actor::Anyone)]
}

fn mkt() -> impl Strategy<Value = Mkt> {
    prop_oneof![15 => any::<usize>().prop_map(Mkt::Known), 1 => Just(Mkt::Unknown)]
}

fn src() -> impl Strategy<Value = Src> {
    prop_oneof![26 => any::<usize>().prop_map(Src::Held), 4 => any::<usize>().prop_map(Src::HeldAny), 2 => any::<usize>().prop_map(Src::Any), 1 => Just(Src::Unknown)]
}

fn dst() -> impl Strategy<Value = Dst> {
    prop_oneof![
        30 => any::<usize>().prop_map(Dst::Accepting),
        3 => any::<usize>().prop_map(Dst::Holder),
        2 => any::<usize>().prop_map(Dst::Any),
        1 => Just(Dst::Same),
        1 => Just(Dst::Unknown),
    ]
}

fn unit_sel() -> impl Strategy<Value = UnitSel> {
    prop_oneof![30 => Just(UnitSel::FromSrc), 2 => any::<usize>().prop_map(UnitSel::Any), 1 => (0usize..6).prop_map(UnitSel::Bad)]
}

fn qty() -> impl Strategy<Value = Qty> {
    prop_oneof![
        28 => (1u64..=100).prop_map(Qty::Part),
        6 => (1u64..=40).prop_map(Qty::Exact),
        6 => Just(Qty::All),
        2 => (1u64..=20).prop_map(Qty::Over),
        1 => Just(Qty::Zero),
        1 => Just(Qty::Huge),
    ]
}

fn acc() -> impl Strategy<Value = Acc> {
    prop_oneof![24 => any::<usize>().prop_map(Acc::Holder), 3 => any::<usize>().prop_map(Acc::Any), 1 => Just(Acc::Unknown)]
}

fn named(pool: usize) -> impl Strategy<Value = Named> {
    prop_oneof![30 => Just(Named::Free), 8 => (0..pool).prop_map(Named::Pool), 1 => Just(Named::Bad)]
}

fn existing(pool: usize) -> impl Strategy<Value = Existing> {
    prop_oneof![12 => any::<usize>().prop_map(Existing::Live), 1 => (0..pool + 1).prop_map(Existing::Pool)]
}

fn op() -> impl Strategy<Value = Op> {
    let issue_class = prop_oneof![
        10 => Just(IssueClass::Allowance),
        8 => (0usize..PROJECTS.len()).prop_map(IssueClass::Offset),
        1 => Just(IssueClass::BadProject),
        1 => Just(IssueClass::WrongShape),
        1 => Just(IssueClass::UnknownCode),
    ];
    let issue_qty = prop_oneof![
        20 => (1u64..=300).prop_map(Qty::Exact),
        4 => (0u64..=2).prop_map(Qty::Headroom),
        1 => Just(Qty::Zero),
        1 => Just(Qty::Huge),
    ];
    let issue_to = prop_oneof![
        12 => Just(IssueTo::Default),
        2 => Just(IssueTo::Issuance),
        5 => Just(IssueTo::Reserve),
        1 => Just(IssueTo::OtherMarket),
        1 => any::<usize>().prop_map(IssueTo::Holder),
        1 => Just(IssueTo::Unknown),
    ];
    let cap_rel = prop_oneof![2 => Just(CapRel::AtIssued), 5 => (1u64..=400).prop_map(CapRel::Above), 1 => Just(CapRel::Below)];
    let tx_sel =
        prop_oneof![10 => any::<usize>().prop_map(TxSel::Live), 6 => Just(TxSel::Last), 1 => Just(TxSel::Zero), 1 => Just(TxSel::Beyond)];
    prop_oneof![
        14 => (mkt(), issue_class, 0usize..VINTAGES.len(), issue_qty, issue_to, actor())
            .prop_map(|(market, class, vintage, qty, to, actor)| Op::Issue { market, class, vintage, qty, to, actor }),
        4 => (mkt(), 0usize..VINTAGES.len(), cap_rel, actor()).prop_map(|(market, vintage, rel, actor)| Op::SetCap { market, vintage, rel, actor }),
        14 => (src(), dst(), unit_sel(), qty(), actor()).prop_map(|(src, to, unit, qty, actor)| Op::Allocate { src, to, unit, qty, actor }),
        20 => (src(), dst(), unit_sel(), qty(), actor()).prop_map(|(src, to, unit, qty, actor)| Op::Transfer { src, to, unit, qty, actor }),
        8 => (src(), unit_sel(), qty(), prop_oneof![19 => 0usize..YEARS.len() - 1, 1 => Just(YEARS.len() - 1)], actor())
            .prop_map(|(src, unit, qty, year, actor)| Op::Surrender { src, unit, qty, year, actor }),
        4 => (src(), unit_sel(), qty(), actor()).prop_map(|(src, unit, qty, actor)| Op::Cancel { src, unit, qty, actor }),
        2 => (src(), unit_sel(), qty(), actor()).prop_map(|(src, unit, qty, actor)| Op::Withdraw { src, unit, qty, actor }),
        8 => (named(PENDING_POOL), src(), dst(), unit_sel(), qty(), 0usize..4, actor())
            .prop_map(|(id, src, to, unit, qty, purpose, actor)| Op::CreatePending { id, src, to, unit, qty, purpose, actor }),
        4 => (existing(PENDING_POOL), actor()).prop_map(|(id, actor)| Op::PostPending { id, actor }),
        2 => (existing(PENDING_POOL), actor()).prop_map(|(id, actor)| Op::VoidPending { id, actor }),
        4 => (existing(PENDING_POOL), dst(), qty(), actor()).prop_map(|(id, to, qty, actor)| Op::DeliverPending { id, to, qty, actor }),
        4 => (named(FREEZE_POOL), src(), unit_sel(), qty(), prop::bool::weighted(0.05), actor())
            .prop_map(|(id, src, unit, qty, bad_order, actor)| Op::Freeze { id, src, unit, qty, bad_order, actor }),
        2 => (existing(FREEZE_POOL), actor()).prop_map(|(id, actor)| Op::Unfreeze { id, actor }),
        5 => (acc(), prop_oneof![6 => Just(StatusSel::Toggle), 3 => any::<usize>().prop_map(StatusSel::CloseEmpty), 1 => (0usize..3).prop_map(StatusSel::Any)], actor())
            .prop_map(|(account, status, actor)| Op::SetStatus { account, status, actor }),
        3 => (acc(), 0usize..PERSONS.len() + 1, actor()).prop_map(|(account, person, actor)| Op::AddRep { account, person, actor }),
        2 => (acc(), any::<usize>(), prop::bool::weighted(0.2), actor())
            .prop_map(|(account, person, any_person, actor)| Op::RemoveRep { account, person, any_person, actor }),
        7 => (tx_sel, prop::bool::weighted(0.05), actor()).prop_map(|(tx, no_reason, actor)| Op::Reverse { tx, no_reason, actor }),
        3 => (mkt(), 0usize..8, prop::option::weighted(0.3, 0usize..4), prop::bool::weighted(0.05), vec(0usize..PERSONS.len() + 1, 0..4), actor())
            .prop_map(|(market, kind, holder_type, bad_holder, reps, actor)| Op::OpenAccount { market, kind, holder_type, bad_holder, reps, actor }),
        2 => (mkt(), mkt(), actor()).prop_map(|(market, issuer, actor)| Op::Recognise { market, issuer, actor }),
        1 => (0usize..6, actor()).prop_map(|(which, actor)| Op::AddMarket { which, actor }),
        1 => Just(Op::InitAgain),
        4 => any::<usize>().prop_map(Op::Retry),
        1 => (0usize..4).prop_map(Op::BadEnvelope),
        1 => any::<bool>().prop_map(Op::Restore),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (op(), prop::option::weighted(0.04, any::<usize>()), any::<usize>()).prop_map(|(op, reuse_id, unknown)| Step { op, reuse_id, unknown })
}

fn setup() -> impl Strategy<Value = Setup> {
    let account = (any::<bool>(), vec(0usize..PERSONS.len() - 1, 1..=2));
    (2usize..=3, vec(vec(account, 2..=4), 3), vec((0usize..3, 0usize..3), 0..=3), (300u64..=1500, 50u64..=400), vec(1u64..=150, 12))
        .prop_map(|(markets, accounts, recognitions, issue, allocations)| Setup { markets, accounts, recognitions, issue, allocations })
}

// =====================================================================================
// The harness: builds envelopes from steps, runs them on registry and model, compares
// =====================================================================================

fn kind_index(k: RejectKind) -> usize {
    match k {
        Invalid => 0,
        NotFound => 1,
        Forbidden => 2,
        Refused => 3,
        Conflict => 4,
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err(format!($($arg)*));
        }
    };
}

#[derive(Default)]
struct Stats {
    accepted: BTreeMap<&'static str, u64>,
    duplicates: u64,
    /// By kind: Invalid, NotFound, Forbidden, Refused, Conflict.
    rejected: [u64; 5],
}

struct Harness {
    reg: Registry,
    model: Model,
    records: Vec<Record>,
    sent: Vec<Envelope>,
    next_id: u64,
    stats: Stats,
    /// The misspelling that unknown names take in the step being built.
    unknown: usize,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            reg: Registry::new(),
            model: Model::default(),
            records: Vec::new(),
            sent: Vec::new(),
            next_id: 0,
            stats: Stats::default(),
            unknown: 0,
        }
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("c{}", self.next_id)
    }

    /// Runs one envelope on both sides and compares everything.
    fn exec(&mut self, env: Envelope) -> Result<(), String> {
        let predicted = self.model.predict(&env);
        let before = match predicted {
            Prediction::Accept(_) => None,
            _ => Some(self.reg.state_hash()),
        };
        let got = self.reg.execute(&env);
        match (&predicted, got) {
            (Prediction::Accept(receipt), Ok(Outcome::Accepted { seq, fingerprint: fp, events, receipt: got })) => {
                ensure!(*receipt == got, "receipt {got:?}, model predicted {receipt:?}");
                ensure!(seq == receipt.seq && seq == self.reg.seq(), "seq {seq}, registry seq {}", self.reg.seq());
                ensure!(fp == fingerprint(&env), "fingerprint differs from journal::fingerprint");
                ensure!(self.reg.command_receipt(&env.id) == Some(got), "command_receipt does not return the receipt");
                *self.stats.accepted.entry(env.command.name()).or_insert(0) += 1;
                self.records.push(Record {
                    format: ets_registry::journal::JOURNAL_FORMAT,
                    seq,
                    at: Timestamp(1_700_000_000_000 + seq as i64),
                    command_id: env.id.clone(),
                    actor: env.actor.clone(),
                    fingerprint: fp,
                    events,
                });
            }
            (Prediction::Duplicate(receipt), Ok(Outcome::Duplicate(got))) => {
                ensure!(*receipt == got, "duplicate receipt {got:?}, first receipt was {receipt:?}");
                self.stats.duplicates += 1;
            }
            (Prediction::Reject(kind), Err(rejection)) => {
                ensure!(*kind == rejection.kind, "rejected as {:?} ({}), model predicted {kind:?}", rejection.kind, rejection.message);
                ensure!(!rejection.message.is_empty(), "empty rejection message");
                self.stats.rejected[kind_index(*kind)] += 1;
            }
            (p, got) => return Err(format!("registry gave {got:?}, model predicted {p:?}")),
        }
        if let Some(before) = before {
            ensure!(before == self.reg.state_hash(), "a rejected or duplicate command changed the state");
        }
        self.sent.push(env);
        self.compare()
    }

    /// Everything observable about the registry against the model.
    fn compare(&self) -> Result<(), String> {
        let (r, m) = (&self.reg, &self.model);
        r.check_invariants().map_err(|e| format!("check_invariants: {e}"))?;
        ensure!(r.seq() == m.seq, "seq {} vs model {}", r.seq(), m.seq);

        ensure!(r.markets().len() == m.markets.len(), "{} markets vs model {}", r.markets().len(), m.markets.len());
        for (i, mm) in m.markets.iter().enumerate() {
            let rm = r.market(MarketIdx(i as u16));
            ensure!(rm.spec.code == mm.code && rm.spec.name == mm.name, "market {i} is {} vs model {}", rm.spec.code, mm.code);
            ensure!(rm.next_serial == mm.next_serial, "{}: next serial {} vs model {}", mm.code, rm.next_serial, mm.next_serial);
            let caps: BTreeMap<u16, u64> = rm.caps.iter().copied().collect();
            ensure!(caps == mm.caps, "{}: caps {caps:?} vs model {:?}", mm.code, mm.caps);
            for v in VINTAGES.iter().chain(mm.allowances_issued.keys()) {
                let want = mm.allowances_issued.get(v).copied().unwrap_or(0);
                ensure!(rm.issued(*v) == want, "{}: allowances issued for {v}: {} vs model {want}", mm.code, rm.issued(*v));
                ensure!(rm.cap(*v) == mm.caps.get(v).copied(), "{}: cap for {v}", mm.code);
            }
            let recognised: BTreeSet<usize> = rm.recognised.iter().map(|x| x.0 as usize).collect();
            ensure!(recognised == mm.recognised, "{}: recognises {recognised:?} vs model {:?}", mm.code, mm.recognised);
            let own = [rm.issuance, rm.reserve, rm.surrender, rm.cancellation].map(|a| a.0 as usize);
            ensure!(own == [mm.issuance, mm.reserve, mm.surrender, mm.cancellation], "{}: own accounts {own:?}", mm.code);
            ensure!(
                rm.holder_accounts.len() as u32 == mm.opened,
                "{}: accounts opened {} vs model {}",
                mm.code,
                rm.holder_accounts.len(),
                mm.opened
            );
            ensure!(r.find_market(&mm.code) == Some(MarketIdx(i as u16)), "find_market({})", mm.code);
        }

        ensure!(r.accounts().len() == m.accounts.len(), "{} accounts vs model {}", r.accounts().len(), m.accounts.len());
        for (i, ma) in m.accounts.iter().enumerate() {
            let idx = AccountIdx(i as u32);
            let ra = r.account(idx);
            ensure!(r.find_account(&ma.number) == Some(idx), "find_account({})", ma.number);
            ensure!(
                ra.number == ma.number && ra.market.0 as usize == ma.market && ra.kind == ma.kind,
                "account {i}: {} {:?} vs model {} {:?}",
                ra.number,
                ra.kind,
                ma.number,
                ma.kind
            );
            ensure!(ra.status == ma.status, "{}: status {:?} vs model {:?}", ma.number, ra.status, ma.status);
            ensure!(ra.representatives == ma.reps, "{}: representatives {:?} vs model {:?}", ma.number, ra.representatives, ma.reps);
            ensure!(ra.units_held == m.held_total(i), "{}: units held {} vs model {}", ma.number, ra.units_held, m.held_total(i));
            // Every non-empty holding the registry reports is in the model, and agrees.
            let holdings = r.holdings_of(idx);
            let model_nonempty = m.balances.iter().filter(|((n, _), (f, e))| *n == ma.number && f + e > 0).count();
            ensure!(holdings.len() == model_nonempty, "{}: {} holdings vs model {model_nonempty}", ma.number, holdings.len());
            for (u, h) in holdings {
                let name = r.unit_name(u);
                let key = (ma.number.clone(), name.clone());
                let want = m.balances.get(&key).copied().unwrap_or((0, 0));
                ensure!(
                    (h.free_total(), h.encumbered_total) == want,
                    "{} {name}: (free, encumbered) = ({}, {}) vs model {want:?}",
                    ma.number,
                    h.free_total(),
                    h.encumbered_total
                );
                let serials: Vec<u64> = h.free_blocks().flat_map(|b| b.start..b.end).collect();
                let want: Vec<u64> = m.free_serials.get(&key).map(|d| d.iter().copied().collect()).unwrap_or_default();
                ensure!(serials == want, "{} {name}: free serials (oldest first) differ from the model", ma.number);
            }
        }
        for ((number, name), (f, e)) in &m.balances {
            let a = r.find_account(number).ok_or_else(|| format!("model account {number} missing"))?;
            let u = m.units.iter().position(|x| x.name == *name).unwrap();
            let got = r.holding(a, UnitTypeIdx(u as u32)).map_or((0, 0), |h| (h.free_total(), h.encumbered_total));
            ensure!(got == (*f, *e), "{number} {name}: holding {got:?} vs model {:?}", (f, e));
        }

        ensure!(r.units().len() == m.units.len(), "{} unit types vs model {}", r.units().len(), m.units.len());
        for (i, mu) in m.units.iter().enumerate() {
            let idx = UnitTypeIdx(i as u32);
            ensure!(r.unit_named(&mu.unit) == Ok(idx), "unit_named({})", mu.name);
            ensure!(r.unit_name(idx) == mu.name, "unit {i} named {} vs model {}", r.unit_name(idx), mu.name);
            let ru = r.unit(idx);
            ensure!(ru.issued == mu.issued, "{}: issued {} vs model {}", mu.name, ru.issued, mu.issued);
            let (mut circulating, mut surrendered, mut cancelled) = (0, 0, 0);
            for ((number, name), (f, e)) in &m.balances {
                if *name != mu.name {
                    continue;
                }
                match m.accounts[m.account_named(number).unwrap()].kind {
                    AccountKind::Surrender => surrendered += f + e,
                    AccountKind::Cancellation => cancelled += f + e,
                    _ => circulating += f + e,
                }
            }
            ensure!(
                (ru.circulating, ru.surrendered, ru.cancelled) == (circulating, surrendered, cancelled),
                "{}: (circulating, surrendered, cancelled) = ({}, {}, {}) vs model ({circulating}, {surrendered}, {cancelled})",
                mu.name,
                ru.circulating,
                ru.surrendered,
                ru.cancelled
            );
        }

        for (i, ma) in m.accounts.iter().enumerate() {
            for year in YEARS {
                let want = m.surrendered.get(&(ma.number.clone(), year)).copied().unwrap_or(0);
                let got = r.surrendered(AccountIdx(i as u32), year);
                ensure!(got == want, "{} surrendered for {year}: {got} vs model {want}", ma.number);
            }
        }

        for (id, pool, model) in [("p", PENDING_POOL, &m.pendings), ("f", FREEZE_POOL, &m.freezes)] {
            for n in 0..pool {
                let name = format!("{id}{n}");
                let got = if id == "p" {
                    r.pending(&name).map(|p| (p.from, p.to, p.unit, p.blocks.clone()))
                } else {
                    r.freeze(&name).map(|f| (f.account, f.account, f.unit, f.blocks.clone()))
                };
                let want = model
                    .get(&name)
                    .map(|l| (AccountIdx(l.from as u32), AccountIdx(l.to as u32), UnitTypeIdx(l.unit as u32), l.serials.clone()));
                match (got, want) {
                    (None, None) => {}
                    (Some((f, t, u, blocks)), Some((wf, wt, wu, serials))) => {
                        let got_serials: Vec<u64> = blocks.iter().flat_map(|b| b.start..b.end).collect();
                        ensure!((f, t, u) == (wf, wt, wu) && got_serials == serials, "{name} differs from the model");
                    }
                    (got, want) => return Err(format!("{name}: registry has {got:?}, model {want:?}")),
                }
            }
        }

        let txs = r.transactions();
        ensure!(txs.len() == m.txs.len(), "{} transactions vs model {}", txs.len(), m.txs.len());
        for (i, (rt, mt)) in txs.iter().zip(&m.txs).enumerate() {
            let kind_ok = match (rt.kind, mt.kind) {
                (TxKind::Issuance, MTxKind::Issuance)
                | (TxKind::Allocation, MTxKind::Allocation)
                | (TxKind::Transfer, MTxKind::Transfer)
                | (TxKind::Cancellation, MTxKind::Cancellation)
                | (TxKind::PendingPost, MTxKind::PendingPost)
                | (TxKind::Reversal { .. }, MTxKind::Reversal)
                | (TxKind::IssuanceReversal { .. }, MTxKind::IssuanceReversal)
                | (TxKind::Withdrawal, MTxKind::Withdrawal) => true,
                (TxKind::Surrender { compliance_year }, MTxKind::Surrender(y)) => compliance_year == y,
                _ => false,
            };
            ensure!(kind_ok, "T{}: kind {:?} vs model {:?}", i + 1, rt.kind, mt.kind);
            ensure!(
                rt.from.map(|a| a.0 as usize) == mt.from && rt.to.0 as usize == mt.to && rt.unit.0 as usize == mt.unit,
                "T{}: accounts or unit differ from the model",
                i + 1
            );
            let serials: Vec<u64> = rt.blocks.iter().flat_map(|b| b.start..b.end).collect();
            ensure!(serials == mt.serials, "T{}: serials differ from the model", i + 1);
            ensure!(rt.reversed_by.is_some() == mt.reversed, "T{}: reversed {:?} vs model {}", i + 1, rt.reversed_by, mt.reversed);
        }
        Ok(())
    }

    // ---- building envelopes -------------------------------------------------------------

    fn envelope(&mut self, actor: &str, command: Command) -> Envelope {
        Envelope { id: self.fresh_id(), actor: actor.to_string(), command }
    }

    fn pick_actor(&self, actor: &Actor, right: Vec<String>) -> String {
        match actor {
            Actor::Right(i) if !right.is_empty() => right[i % right.len()].clone(),
            Actor::Right(i) | Actor::Anyone(i) => {
                let all = all_actors();
                all[i % all.len()].to_string()
            }
        }
    }

    fn authorities(&self, m: usize) -> Vec<String> {
        self.model.markets[m].authorities.clone()
    }

    fn account_admins(&self, m: Option<usize>) -> Vec<String> {
        let mut v = self.model.admins.clone();
        if let Some(m) = m {
            v.extend(self.authorities(m));
        }
        v
    }

    fn market(&self, sel: &Mkt) -> (String, Option<usize>) {
        match sel {
            Mkt::Known(i) => {
                let i = i % self.model.markets.len();
                (self.model.markets[i].code.clone(), Some(i))
            }
            Mkt::Unknown => (self.unknown_market(), None),
        }
    }

    fn number(&self, a: Option<usize>) -> String {
        a.map_or_else(|| self.unknown_account(), |a| self.model.accounts[a].number.clone())
    }

    /// A name that is not a market's code: unheard of, or a real code misspelt (padded with a
    /// NUL byte, lower case, trailing space). The model matches names exactly.
    fn unknown_market(&self) -> String {
        let k = self.unknown;
        let code = &self.model.markets[(k / 4) % self.model.markets.len()].code;
        match k % 4 {
            0 => UNKNOWN_MARKET.to_string(),
            1 => format!("{code}\0"),
            2 => code.to_lowercase(),
            _ => format!("{code} "),
        }
    }

    /// A name that is not an account number: unheard of, not yet opened, or a real number
    /// misspelt (leading zero, NUL-padded or lower-case market code, trailing space).
    fn unknown_account(&self) -> String {
        let k = self.unknown;
        let number = &self.model.accounts[(k / 6) % self.model.accounts.len()].number;
        let (code, rest) = number.rsplit_once('-').unwrap();
        match k % 6 {
            0 => UNKNOWN_ACCOUNT.to_string(),
            1 => format!("{code}-0{rest}"),
            2 => format!("{code}\0-{rest}"),
            3 => format!("{}-{rest}", code.to_lowercase()),
            4 => format!("{number} "),
            _ => format!("{code}-{}", 100_001 + 999),
        }
    }

    fn holder_accounts(&self) -> Vec<usize> {
        (0..self.model.accounts.len()).filter(|a| is_holder(self.model.accounts[*a].kind)).collect()
    }

    fn any_unit(&self, i: usize) -> UnitRef {
        if self.model.units.is_empty() {
            UnitRef::allowance("CEA", 2023)
        } else {
            self.model.units[i % self.model.units.len()].unit.clone()
        }
    }

    /// Resolves the source account and unit; `filter` says which account kinds `Held` draws from.
    fn source(&self, src: &Src, unit: &UnitSel, filter: fn(AccountKind) -> bool) -> (Option<usize>, UnitRef) {
        let m = &self.model;
        let (account, own_unit) = match src {
            Src::Held(i) | Src::HeldAny(i) => {
                let open_only = matches!(src, Src::Held(_));
                let mut pairs: Vec<(usize, usize)> = Vec::new();
                for (a, acc) in m.accounts.iter().enumerate() {
                    if filter(acc.kind) && (!open_only || acc.status == AccountStatus::Open) {
                        for u in 0..m.units.len() {
                            if m.free(a, u) > 0 {
                                pairs.push((a, u));
                            }
                        }
                    }
                }
                if pairs.is_empty() {
                    let candidates: Vec<usize> = (0..m.accounts.len()).filter(|a| filter(m.accounts[*a].kind)).collect();
                    let a = if candidates.is_empty() { i % m.accounts.len() } else { candidates[i % candidates.len()] };
                    (Some(a), self.any_unit(*i))
                } else {
                    let (a, u) = pairs[i % pairs.len()];
                    (Some(a), m.units[u].unit.clone())
                }
            }
            Src::Any(i) => (Some(i % m.accounts.len()), self.any_unit(i / 7)),
            Src::Unknown => (None, self.any_unit(0)),
        };
        let unit = match unit {
            UnitSel::FromSrc => own_unit,
            UnitSel::Any(i) => self.any_unit(*i),
            UnitSel::Bad(k) => match k % 6 {
                0 => UnitRef::allowance("ZZZ", 2024),
                1 => UnitRef::offset("CEA", "P1", 2024),
                2 => UnitRef::allowance("CCER", 2024),
                3 => UnitRef::allowance("CEA\0", 2024),
                4 => UnitRef::allowance("cea", 2024),
                _ => UnitRef::allowance("CEA", 2031),
            },
        };
        (account, unit)
    }

    fn free_of(&self, account: Option<usize>, unit: &UnitRef) -> u64 {
        match (account, self.model.unit_named(unit)) {
            (Some(a), Ok(u)) => self.model.free(a, u),
            _ => 0,
        }
    }

    fn quantity(&self, q: &Qty, free: u64) -> Tonnes {
        Tonnes(match q {
            Qty::Part(p) => (free * p / 100).max(1),
            Qty::Exact(n) => *n,
            Qty::All => free,
            Qty::Over(n) => free + n,
            Qty::Zero => 0,
            Qty::Huge => Tonnes::MAX_PARSED.0 + 1,
            Qty::Headroom(k) => (free + k).saturating_sub(1),
        })
    }

    fn destination(&self, dst: &Dst, from: Option<usize>, unit: &UnitRef) -> Option<usize> {
        let m = &self.model;
        let holders = self.holder_accounts();
        let pick = |list: &[usize], i: usize| if list.is_empty() { None } else { Some(list[i % list.len()]) };
        match dst {
            Dst::Accepting(i) => {
                let issuer = m.code_owner(unit).ok().map(|(mk, _)| mk);
                let accepting: Vec<usize> = holders
                    .iter()
                    .copied()
                    .filter(|a| Some(*a) != from && m.accounts[*a].status != AccountStatus::Closed)
                    .filter(|a| issuer.is_none_or(|iss| m.market_accepts(m.accounts[*a].market, iss)))
                    .collect();
                pick(&accepting, *i).or_else(|| pick(&holders, *i))
            }
            Dst::Holder(i) => pick(&holders, *i),
            Dst::Any(i) => Some(i % m.accounts.len()),
            Dst::Same => from,
            Dst::Unknown => None,
        }
    }

    fn account_sel(&self, sel: &Acc) -> Option<usize> {
        match sel {
            Acc::Holder(i) => {
                let h = self.holder_accounts();
                if h.is_empty() {
                    None
                } else {
                    Some(h[i % h.len()])
                }
            }
            Acc::Any(i) => Some(i % self.model.accounts.len()),
            Acc::Unknown => None,
        }
    }

    fn free_name(&self, prefix: &str, pool: usize, live: &BTreeMap<String, MLock>) -> String {
        (0..pool).map(|n| format!("{prefix}{n}")).find(|id| !live.contains_key(id)).unwrap_or(format!("{prefix}{}", pool - 1))
    }

    fn live_or_pool(&self, sel: &Existing, live: Vec<String>, prefix: &str) -> String {
        match sel {
            Existing::Live(i) if !live.is_empty() => live[i % live.len()].clone(),
            Existing::Live(i) | Existing::Pool(i) => format!("{prefix}{}", i % 8),
        }
    }

    /// The envelope for a step, or None when the step has nothing to act on.
    fn build(&mut self, op: &Op) -> Option<Envelope> {
        let m = &self.model;
        let reps_of = |a: Option<usize>| a.map(|a| m.accounts[a].reps.clone()).unwrap_or_default();
        let auth_of_account = |a: Option<usize>| a.map(|a| m.markets[m.accounts[a].market].authorities.clone()).unwrap_or_default();
        let (actor, command) = match op {
            Op::Issue { market, class, vintage, qty, to, actor } => {
                let (code, mi) = self.market(market);
                let mi = mi.unwrap_or(0);
                let mk = &m.markets[mi];
                let vintage = VINTAGES[*vintage];
                let unit = match class {
                    IssueClass::Offset(p) if !mk.offsets.is_empty() => {
                        UnitRef::offset(&mk.offsets[p % mk.offsets.len()], PROJECTS[*p], vintage)
                    }
                    IssueClass::BadProject if !mk.offsets.is_empty() => UnitRef::offset(&mk.offsets[0], "bad project", vintage),
                    IssueClass::WrongShape if !mk.offsets.is_empty() => UnitRef::allowance(&mk.offsets[0], vintage),
                    IssueClass::WrongShape => UnitRef::offset(&mk.allowance, "P1", vintage),
                    IssueClass::UnknownCode if self.unknown.is_multiple_of(2) => UnitRef::allowance(&format!("{code}X"), vintage),
                    IssueClass::UnknownCode => UnitRef::allowance(&format!("{}\0", mk.allowance), vintage),
                    _ => UnitRef::allowance(&mk.allowance, vintage),
                };
                let to = match to {
                    IssueTo::Default => None,
                    IssueTo::Issuance => Some(m.accounts[mk.issuance].number.clone()),
                    IssueTo::Reserve => Some(m.accounts[mk.reserve].number.clone()),
                    IssueTo::OtherMarket => {
                        let other = &m.markets[(mi + 1) % m.markets.len()];
                        Some(m.accounts[other.reserve].number.clone())
                    }
                    IssueTo::Holder(i) => Some(self.number(self.account_sel(&Acc::Holder(*i)))),
                    IssueTo::Unknown => Some(self.unknown_account()),
                };
                // Headroom under the cap (for allowances with a cap; otherwise an ordinary amount).
                let headroom = match mk.caps.get(&unit.vintage) {
                    Some(cap) if unit.project.is_none() => cap - mk.allowances_issued.get(&unit.vintage).copied().unwrap_or(0),
                    _ => 100,
                };
                let quantity = self.quantity(qty, headroom);
                (self.pick_actor(actor, self.authorities(mi)), Command::Issue { unit, quantity, to })
            }
            Op::SetCap { market, vintage, rel, actor } => {
                let (code, mi) = self.market(market);
                let vintage = VINTAGES[*vintage];
                let issued = mi.and_then(|i| m.markets[i].allowances_issued.get(&vintage).copied()).unwrap_or(0);
                let cap = match rel {
                    CapRel::AtIssued => issued,
                    CapRel::Above(n) => issued + n,
                    CapRel::Below => issued.saturating_sub(1),
                };
                let right = mi.map(|i| self.authorities(i)).unwrap_or_default();
                (self.pick_actor(actor, right), Command::SetCap { market: code, vintage, cap: Tonnes(cap) })
            }
            Op::Allocate { src, to, unit, qty, actor } => {
                let (from, unit) = self.source(src, unit, |k| matches!(k, AccountKind::Issuance | AccountKind::Reserve));
                let quantity = self.quantity(qty, self.free_of(from, &unit));
                let to = self.destination(to, from, &unit);
                let right = auth_of_account(from);
                (self.pick_actor(actor, right), Command::Allocate { from: self.number(from), to: self.number(to), unit, quantity })
            }
            Op::Transfer { src, to, unit, qty, actor } => {
                let (from, unit) = self.source(src, unit, is_holder);
                let quantity = self.quantity(qty, self.free_of(from, &unit));
                let to = self.destination(to, from, &unit);
                (self.pick_actor(actor, reps_of(from)), Command::Transfer { from: self.number(from), to: self.number(to), unit, quantity })
            }
            Op::Surrender { src, unit, qty, year, actor } => {
                let (from, unit) = self.source(src, unit, |k| k == AccountKind::Operator);
                let quantity = self.quantity(qty, self.free_of(from, &unit));
                let command = Command::Surrender { account: self.number(from), unit, quantity, compliance_year: YEARS[*year] };
                (self.pick_actor(actor, reps_of(from)), command)
            }
            Op::Cancel { src, unit, qty, actor } => {
                let (from, unit) = self.source(src, unit, is_holder);
                let quantity = self.quantity(qty, self.free_of(from, &unit));
                (self.pick_actor(actor, reps_of(from)), Command::Cancel { account: self.number(from), unit, quantity })
            }
            Op::Withdraw { src, unit, qty, actor } => {
                let (from, unit) = self.source(src, unit, is_holder);
                let quantity = self.quantity(qty, self.free_of(from, &unit));
                (self.pick_actor(actor, auth_of_account(from)), Command::Withdraw { account: self.number(from), unit, quantity })
            }
            Op::CreatePending { id, src, to, unit, qty, purpose, actor } => {
                let (from, unit) = self.source(src, unit, is_holder);
                let quantity = self.quantity(qty, self.free_of(from, &unit));
                let to = self.destination(to, from, &unit);
                let pending = match id {
                    Named::Free => self.free_name("p", PENDING_POOL, &m.pendings),
                    Named::Pool(n) => format!("p{n}"),
                    Named::Bad => "bad pending".to_string(),
                };
                let purpose =
                    [PendingPurpose::Settlement, PendingPurpose::Pledge, PendingPurpose::Approval, PendingPurpose::Escrow][*purpose];
                let command = Command::CreatePending { pending, from: self.number(from), to: self.number(to), unit, quantity, purpose };
                (self.pick_actor(actor, reps_of(from)), command)
            }
            Op::DeliverPending { id, to, qty, actor } => {
                let pending = self.live_or_pool(id, m.pendings.keys().cloned().collect(), "p");
                let (mut right, mut held, mut from, mut unit) = (Vec::new(), 0, None, None);
                if let Some(p) = m.pendings.get(&pending) {
                    right = reps_of(Some(p.to));
                    right.extend(auth_of_account(Some(p.from)));
                    held = p.serials.len() as u64;
                    from = Some(p.from);
                    unit = Some(m.units[p.unit].unit.clone());
                }
                let quantity = self.quantity(qty, held);
                let unit = unit.unwrap_or_else(|| UnitRef::allowance("CEA", 2024));
                let to = self.destination(to, from, &unit);
                let command = Command::DeliverPending { pending, quantity, to: self.number(to) };
                (self.pick_actor(actor, right), command)
            }
            Op::PostPending { id, actor } | Op::VoidPending { id, actor } => {
                let pending = self.live_or_pool(id, m.pendings.keys().cloned().collect(), "p");
                let mut right = Vec::new();
                if let Some(p) = m.pendings.get(&pending) {
                    right = reps_of(Some(p.from));
                    if matches!(op, Op::VoidPending { .. }) {
                        right.extend(reps_of(Some(p.to)));
                    }
                    right.extend(auth_of_account(Some(p.from)));
                }
                let command = match op {
                    Op::PostPending { .. } => Command::PostPending { pending },
                    _ => Command::VoidPending { pending },
                };
                (self.pick_actor(actor, right), command)
            }
            Op::Freeze { id, src, unit, qty, bad_order, actor } => {
                let (account, unit) = self.source(src, unit, |_| true);
                let quantity = self.quantity(qty, self.free_of(account, &unit));
                let freeze = match id {
                    Named::Free => self.free_name("f", FREEZE_POOL, &m.freezes),
                    Named::Pool(n) => format!("f{n}"),
                    Named::Bad => String::new(),
                };
                let order = if *bad_order { "court order 7".to_string() } else { "ORDER-7".to_string() };
                let command = Command::Freeze { freeze, account: self.number(account), unit, quantity, order };
                (self.pick_actor(actor, auth_of_account(account)), command)
            }
            Op::Unfreeze { id, actor } => {
                let freeze = self.live_or_pool(id, m.freezes.keys().cloned().collect(), "f");
                let right = m.freezes.get(&freeze).map(|f| auth_of_account(Some(f.from))).unwrap_or_default();
                (self.pick_actor(actor, right), Command::Unfreeze { freeze })
            }
            Op::SetStatus { account, status, actor } => {
                let mut a = self.account_sel(account);
                let status = match status {
                    StatusSel::Toggle if a.is_some_and(|a| m.accounts[a].status == AccountStatus::Open) => AccountStatus::Blocked,
                    StatusSel::Toggle => AccountStatus::Open,
                    StatusSel::CloseEmpty(i) => {
                        let empty: Vec<usize> = self
                            .holder_accounts()
                            .into_iter()
                            .filter(|a| m.accounts[*a].status != AccountStatus::Closed && m.held_total(*a) == 0)
                            .collect();
                        if !empty.is_empty() {
                            a = Some(empty[i % empty.len()]);
                        }
                        AccountStatus::Closed
                    }
                    StatusSel::Any(k) => [AccountStatus::Open, AccountStatus::Blocked, AccountStatus::Closed][*k],
                };
                let right = self.account_admins(a.map(|a| m.accounts[a].market));
                (self.pick_actor(actor, right), Command::SetAccountStatus { account: self.number(a), status })
            }
            Op::AddRep { account, person, actor } => {
                let a = self.account_sel(account);
                let person = PERSONS.get(*person).map_or("no body".to_string(), |p| p.to_string());
                let right = self.account_admins(a.map(|a| m.accounts[a].market));
                (self.pick_actor(actor, right), Command::AddRepresentative { account: self.number(a), person })
            }
            Op::RemoveRep { account, person, any_person, actor } => {
                let a = self.account_sel(account);
                let reps = reps_of(a);
                let person = if *any_person || reps.is_empty() {
                    PERSONS[person % PERSONS.len()].to_string()
                } else {
                    reps[person % reps.len()].clone()
                };
                let right = self.account_admins(a.map(|a| m.accounts[a].market));
                (self.pick_actor(actor, right), Command::RemoveRepresentative { account: self.number(a), person })
            }
            Op::Reverse { tx, no_reason, actor } => {
                let n = m.txs.len() as u64;
                let tx = match tx {
                    TxSel::Live(i) if n > 0 => (*i as u64 % n) + 1,
                    TxSel::Live(_) | TxSel::Last => n,
                    TxSel::Zero => 0,
                    TxSel::Beyond => n + 1,
                };
                let right = if tx >= 1 && tx <= n { auth_of_account(Some(m.txs[tx as usize - 1].to)) } else { Vec::new() };
                let reason = if *no_reason { " ".to_string() } else { "booking error".to_string() };
                (self.pick_actor(actor, right), Command::Reverse { tx: TxId(tx), reason })
            }
            Op::OpenAccount { market, kind, holder_type, bad_holder, reps, actor } => {
                let (code, mi) = self.market(market);
                let kind = [
                    AccountKind::Operator,
                    AccountKind::Trading,
                    AccountKind::Operator,
                    AccountKind::Trading,
                    AccountKind::Issuance,
                    AccountKind::Reserve,
                    AccountKind::Surrender,
                    AccountKind::Cancellation,
                ][*kind];
                let holder_type = match holder_type {
                    Some(h) => [HolderType::Authority, HolderType::Entity, HolderType::Institution, HolderType::Individual][*h],
                    None if kind == AccountKind::Trading => HolderType::Institution,
                    None => HolderType::Entity,
                };
                let holder = if *bad_holder { " ".to_string() } else { "Holder Co".to_string() };
                let mut representatives: Vec<String> =
                    reps.iter().map(|i| PERSONS.get(*i).map_or("no body".to_string(), |p| p.to_string())).collect();
                if representatives.is_empty() && !*bad_holder {
                    representatives.push("alice".into());
                }
                let right = self.account_admins(mi);
                (
                    self.pick_actor(actor, right),
                    Command::OpenAccount { market: code, kind, holder: holder.clone(), holder_type, representatives },
                )
            }
            Op::Recognise { market, issuer, actor } => {
                let (code, mi) = self.market(market);
                let (issuer, _) = self.market(issuer);
                let right = mi.map(|i| self.authorities(i)).unwrap_or_default();
                (self.pick_actor(actor, right), Command::RecogniseUnits { market: code, issuer })
            }
            Op::AddMarket { which, actor } => {
                let mut spec = spec_of(&MARKET_DEFS[3]);
                match which {
                    0 => {}
                    1 => (spec.code, spec.allowance_code) = ("TJ".into(), "CEA".into()),
                    2 => spec.code = "tj".into(),
                    3 => (spec.code, spec.authorities) = ("TJ".into(), vec![]),
                    4 => spec.code = "CN".into(),
                    _ => (spec.code, spec.allowance_code, spec.offset_standards) = ("TJ".into(), "TJEA".into(), vec!["TJEA".into()]),
                }
                (self.pick_actor(actor, vec![ADMIN.to_string()]), Command::AddMarket(spec))
            }
            Op::InitAgain => (ADMIN.to_string(), Command::InitRegistry { admins: vec!["admin2".into()] }),
            Op::Retry(i) => {
                if self.sent.is_empty() {
                    return None;
                }
                return Some(self.sent[i % self.sent.len()].clone());
            }
            Op::BadEnvelope(k) => {
                let mut env = self.envelope(ADMIN, Command::InitRegistry { admins: vec![ADMIN.into()] });
                match k {
                    0 => env.id = String::new(),
                    1 => env.id = "has space".into(),
                    2 => env.actor = String::new(),
                    _ => env.id = "x".repeat(IDENTIFIER_LENGTH_MAX + 1),
                }
                return Some(env);
            }
            Op::Restore(_) => return None,
        };
        Some(self.envelope(&actor, command))
    }

    // ---- the phases of a case ---------------------------------------------------------------

    fn setup(&mut self, s: &Setup) -> Result<(), String> {
        let init = self.envelope(ADMIN, Command::InitRegistry { admins: vec![ADMIN.into()] });
        self.exec(init)?;
        for d in &MARKET_DEFS[..s.markets] {
            let env = self.envelope(ADMIN, Command::AddMarket(spec_of(d)));
            self.exec(env)?;
        }
        for (mi, d) in MARKET_DEFS[..s.markets].iter().enumerate() {
            for (j, (operator, reps)) in s.accounts[mi].iter().enumerate() {
                let (kind, holder_type) = match (operator, d.individuals && j % 2 == 1) {
                    (true, _) => (AccountKind::Operator, HolderType::Entity),
                    (false, true) => (AccountKind::Trading, HolderType::Individual),
                    (false, false) => (AccountKind::Trading, HolderType::Institution),
                };
                let mut representatives: Vec<String> = Vec::new();
                for r in reps {
                    if !representatives.iter().any(|p| p == PERSONS[*r]) {
                        representatives.push(PERSONS[*r].into());
                    }
                }
                let command = Command::OpenAccount {
                    market: d.code.into(),
                    kind,
                    holder: format!("{} holder {j}", d.code),
                    holder_type,
                    representatives,
                };
                let env = self.envelope(d.authority, command);
                self.exec(env)?;
            }
        }
        for (market, issuer) in &s.recognitions {
            let (market, issuer) = (market % s.markets, issuer % s.markets);
            let command = Command::RecogniseUnits { market: MARKET_DEFS[market].code.into(), issuer: MARKET_DEFS[issuer].code.into() };
            let env = self.envelope(MARKET_DEFS[market].authority, command);
            self.exec(env)?;
        }
        // Opening balances, so that the random steps have something to move from the start.
        let holders = self.holder_accounts();
        for (mi, d) in MARKET_DEFS[..s.markets].iter().enumerate() {
            let allowance = UnitRef::allowance(d.allowance, VINTAGES[1]);
            let env = self.envelope(d.authority, Command::Issue { unit: allowance.clone(), quantity: Tonnes(s.issue.0), to: None });
            self.exec(env)?;
            if let Some(standard) = d.offsets.first() {
                let unit = UnitRef::offset(standard, PROJECTS[0], VINTAGES[1]);
                let env = self
                    .envelope(d.authority, Command::Issue { unit, quantity: Tonnes(s.issue.1), to: Some(format!("{}-RESERVE", d.code)) });
                self.exec(env)?;
            }
            let own: Vec<usize> = holders.iter().copied().filter(|a| self.model.accounts[*a].market == mi).collect();
            for (j, a) in own.iter().enumerate() {
                let command = Command::Allocate {
                    from: format!("{}-ISSUANCE", d.code),
                    to: self.model.accounts[*a].number.clone(),
                    unit: allowance.clone(),
                    quantity: Tonnes(s.allocations[j % s.allocations.len()]),
                };
                let env = self.envelope(d.authority, command);
                self.exec(env)?;
            }
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        if let Op::Restore(from_journal) = step.op {
            return self.restore(from_journal);
        }
        self.unknown = step.unknown;
        let Some(mut env) = self.build(&step.op) else { return Ok(()) };
        if let (Some(i), false) = (step.reuse_id, self.sent.is_empty()) {
            if !matches!(step.op, Op::Retry(_) | Op::BadEnvelope(_)) {
                env.id = self.sent[i % self.sent.len()].id.clone();
            }
        }
        let text = format!("{env:?}");
        self.exec(env).map_err(|e| format!("{e}\n  while executing {text}"))
    }

    fn replay(&self) -> Result<Registry, String> {
        let mut replayed = Registry::new();
        for record in &self.records {
            let decoded = Record::decode(&record.encode())?;
            ensure!(decoded == *record, "record {} does not survive encode/decode", record.seq);
            replayed.apply_record(decoded.seq, &decoded.command_id, decoded.fingerprint, &decoded.events)?;
        }
        Ok(replayed)
    }

    fn restore(&mut self, from_journal: bool) -> Result<(), String> {
        let live = self.reg.state_hash();
        let rebuilt = if from_journal { self.replay()? } else { Snapshot::decode(&self.reg.snapshot().encode())?.into_registry() };
        ensure!(rebuilt.state_hash() == live, "registry rebuilt from {} differs", if from_journal { "the journal" } else { "a snapshot" });
        self.reg = rebuilt;
        self.compare()
    }

    fn finish(&mut self, flip: (usize, usize, u8)) -> Result<(), String> {
        let live = self.reg.state_hash();

        let replayed = self.replay()?;
        ensure!(replayed.state_hash() == live, "replayed state hash differs from the live one");
        replayed.check_invariants().map_err(|e| format!("replayed registry: {e}"))?;
        ensure!(replayed.seq() == self.reg.seq(), "replayed seq");
        ensure!(self.records.last().map_or(0, |r| r.seq) == self.reg.seq(), "last record is not the registry's seq");

        let snapshot = self.reg.snapshot();
        let decoded = Snapshot::decode(&snapshot.encode())?;
        ensure!(decoded == snapshot, "snapshot does not survive encode/decode");
        let restored = decoded.into_registry();
        ensure!(restored.state_hash() == live, "snapshot round trip changes the state hash");
        restored.check_invariants().map_err(|e| format!("restored registry: {e}"))?;

        // Seal the records into a chain and verify it.
        let mut prev = GENESIS_HASH;
        let mut sealed = Vec::with_capacity(self.records.len());
        for record in &self.records {
            let s = record.seal(prev);
            ensure!(s.prev_hash == prev && s.seq == record.seq && s.command_id == record.command_id, "sealed record {} fields", record.seq);
            prev = s.hash;
            sealed.push(s);
        }
        let mut verifier = ChainVerifier::default();
        for s in &sealed {
            verifier.check(s.seq, &s.body, &s.prev_hash, &s.hash).map_err(|e| format!("intact chain rejected: {e}"))?;
        }
        ensure!(verifier.head() == (self.reg.seq(), prev), "verifier head");

        // Flip one byte of one body: the verifier names exactly that record.
        let (which, byte, mask) = flip;
        let target = which % sealed.len();
        let mut tampered = sealed.clone();
        let body = &mut tampered[target].body;
        let at = byte % body.len();
        body[at] ^= mask;
        let mut verifier = ChainVerifier::default();
        for (i, s) in tampered.iter().enumerate() {
            let result = verifier.check(s.seq, &s.body, &s.prev_hash, &s.hash);
            if i < target {
                result.map_err(|e| format!("record before the tampered one rejected: {e}"))?;
            } else {
                let seq = tampered[target].seq;
                let err = result.err().ok_or_else(|| format!("flipping byte {at} of record {seq} went unnoticed"))?;
                ensure!(err.starts_with(&format!("record {seq} ")), "tampering with record {seq} reported as: {err}");
                break;
            }
        }
        Ok(())
    }
}

fn config() -> ProptestConfig {
    // ProptestConfig::default() already reads PROPTEST_CASES; an explicit `cases` would override
    // it, so read the variable here and fall back to the modest default.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    // Integration tests have no lib.rs beside them, so the default `SourceParallel` persistence
    // finds no place for regressions; name the file explicitly.
    let persistence = FileFailurePersistence::Direct(concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/state_machine.txt"));
    ProptestConfig { cases, max_shrink_iters: 4096, failure_persistence: Some(Box::new(persistence)), ..ProptestConfig::default() }
}

fn run_case(setup: &Setup, steps: &[Step], flip: (usize, usize, u8)) -> Result<(), TestCaseError> {
    run_case_with(setup, steps, flip, |_| {})
}

fn run_case_with(setup: &Setup, steps: &[Step], flip: (usize, usize, u8), mut after: impl FnMut(&Harness)) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    h.setup(setup).map_err(|e| TestCaseError::fail(format!("setup: {e}")))?;
    for (i, step) in steps.iter().enumerate() {
        h.step(step).map_err(|e| TestCaseError::fail(format!("step {i} ({:?}): {e}", step.op)))?;
    }
    h.finish(flip).map_err(|e| TestCaseError::fail(format!("at the end: {e}")))?;
    after(&h);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn registry_agrees_with_the_model(
        setup in setup(),
        steps in vec(step(), 1..MAX_STEPS),
        flip in (any::<usize>(), any::<usize>(), 1u8..=255),
    ) {
        run_case(&setup, &steps, flip)?;
    }
}

/// Prints what the cases exercised (visible with --nocapture) and fails if the generator has
/// drifted so that some command is never accepted or some rejection kind never happens, which
/// would quietly make the main test toothless.
#[test]
fn generator_reaches_every_outcome() {
    const CASES: usize = 24;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { failure_persistence: None, ..config() });
    let strategy = (setup(), vec(step(), MAX_STEPS / 2..MAX_STEPS), (any::<usize>(), any::<usize>(), 1u8..=255));
    let mut total = Stats::default();
    for _ in 0..CASES {
        let (setup, steps, flip) = strategy.new_tree(&mut runner).unwrap().current();
        if let Err(e) = run_case_with(&setup, &steps, flip, |h| {
            for (name, n) in &h.stats.accepted {
                *total.accepted.entry(name).or_insert(0) += n;
            }
            total.duplicates += h.stats.duplicates;
            for (t, n) in total.rejected.iter_mut().zip(h.stats.rejected) {
                *t += n;
            }
        }) {
            panic!("{e}");
        }
    }
    eprintln!(
        "{CASES} cases: accepted {:?}; duplicates {}; rejected [Invalid, NotFound, Forbidden, Refused, Conflict] = {:?}",
        total.accepted, total.duplicates, total.rejected
    );
    for name in [
        "init-registry",
        "add-market",
        "set-cap",
        "recognise-units",
        "open-account",
        "set-account-status",
        "add-representative",
        "remove-representative",
        "issue",
        "allocate",
        "transfer",
        "surrender",
        "cancel",
        "create-pending",
        "post-pending",
        "void-pending",
        "freeze",
        "unfreeze",
        "reverse",
    ] {
        assert!(total.accepted.get(name).copied().unwrap_or(0) > 0, "no {name} was ever accepted: {:?}", total.accepted);
    }
    assert!(total.duplicates > 0, "no exact retry was ever seen");
    for (kind, n) in ["Invalid", "NotFound", "Forbidden", "Refused", "Conflict"].iter().zip(total.rejected) {
        assert!(n > 0, "no {kind} rejection was ever seen");
    }
}
