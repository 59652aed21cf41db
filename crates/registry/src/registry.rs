//! The registry state machine. `execute` decides (validates a command against the state and
//! produces events) and then applies those events; `apply_record` applies recorded events during
//! replay. Both paths share `apply`, so live state and replayed state cannot differ.

use crate::command::{Command, Envelope, RejectKind, Rejection, UnitRef};
use crate::event::Event;
use crate::holding::Holding;
use crate::index::{Applied, CommandIndex};
use crate::journal::{command_key, fingerprint};
use crate::model::*;
use ahash::AHashMap;
use ets_core::{check_identifier, Tonnes};
use serde::{Deserialize, Serialize};

type Result<T> = std::result::Result<T, Rejection>;

/// Largest number of representatives an account may have; a limit on everything.
pub const REPRESENTATIVES_MAX: usize = 16;
/// Largest number of markets in one registry (the national market, the pilots, and room to grow).
pub const MARKETS_MAX: usize = 256;
/// Vintages and compliance years the registry accepts (the same range `UnitRef::parse` takes).
pub const VINTAGE_FIRST: u16 = 1990;
pub const VINTAGE_LAST: u16 = 2200;
/// Number of the first operator or trading account of each market (`CN-100001`).
pub const ACCOUNT_NUMBER_FIRST: u64 = 100_001;
/// Longest account holder name, in bytes.
pub const HOLDER_NAME_LENGTH_MAX: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketState {
    pub spec: MarketSpec,
    pub issuance: AccountIdx,
    pub reserve: AccountIdx,
    pub surrender: AccountIdx,
    pub cancellation: AccountIdx,
    /// Next serial number this market will issue (serials are unique per issuing market).
    pub next_serial: u64,
    /// Caps per allowance vintage, where set.
    pub caps: Vec<(u16, u64)>,
    /// Allowances issued per vintage (net of reversed issuances).
    pub allowances_issued: Vec<(u16, u64)>,
    /// Other markets whose units this market accepts.
    pub recognised: Vec<MarketIdx>,
    /// Links to markets with a higher index (each link is kept once, by its lower market).
    pub links: Vec<MarketLink>,
    /// Operator and trading accounts in opening order: account number `CODE-(100001 + i)` is
    /// entry i, so numbers resolve without a string index.
    pub holder_accounts: Vec<AccountIdx>,
}

/// A link between two markets, held by the one with the lower index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketLink {
    pub with: MarketIdx,
    /// Most tonnes that may cross the link in transfers between holders, both ways together.
    pub quota: Option<u64>,
    pub used: u64,
}

impl MarketState {
    pub fn cap(&self, vintage: u16) -> Option<u64> {
        self.caps.iter().find(|(v, _)| *v == vintage).map(|(_, c)| *c)
    }

    pub fn issued(&self, vintage: u16) -> u64 {
        self.allowances_issued.iter().find(|(v, _)| *v == vintage).map_or(0, |(_, n)| *n)
    }

    pub fn accepts_units_of(&self, own: MarketIdx, issuer: MarketIdx) -> bool {
        issuer == own || self.recognised.contains(&issuer)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub number: String,
    pub market: MarketIdx,
    pub kind: AccountKind,
    pub holder: String,
    pub holder_type: HolderType,
    pub status: AccountStatus,
    pub representatives: Vec<String>,
    /// All units held, free or encumbered, of every unit type (for closing and quick checks).
    pub units_held: u64,
}

/// Where a unit type's units are, in total. Conservation: issued = circulating + surrendered + cancelled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitTypeState {
    pub spec: UnitSpec,
    pub issued: u64,
    pub circulating: u64,
    pub surrendered: u64,
    pub cancelled: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub purpose: PendingPurpose,
    pub from: AccountIdx,
    pub to: AccountIdx,
    pub unit: UnitTypeIdx,
    pub blocks: Vec<Block>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub account: AccountIdx,
    pub unit: UnitTypeIdx,
    pub blocks: Vec<Block>,
    pub order: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    pub kind: TxKind,
    /// None for an issuance.
    pub from: Option<AccountIdx>,
    pub to: AccountIdx,
    pub unit: UnitTypeIdx,
    pub blocks: TxBlocks,
    pub reversed_by: Option<TxId>,
}

/// What an accepted command produced, returned again for a repeated id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Journal sequence number of the record that holds this command's events.
    pub seq: u64,
    pub tx: Option<TxId>,
    pub account: Option<AccountIdx>,
    pub market: Option<MarketIdx>,
}

impl Receipt {
    fn from_events(seq: u64, events: &[Event]) -> Receipt {
        let mut receipt = Receipt { seq, ..Receipt::default() };
        for event in events {
            match event {
                Event::Issued { tx, .. }
                | Event::Moved { tx, .. }
                | Event::Retired { tx, .. }
                | Event::PendingPosted { tx, .. }
                | Event::PendingDelivered { tx, .. } => receipt.tx = receipt.tx.or(Some(*tx)),
                Event::AccountOpened { account, .. } => receipt.account = receipt.account.or(Some(*account)),
                Event::MarketAdded { market, .. } => receipt.market = Some(*market),
                _ => {}
            }
        }
        receipt
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command was new and valid; its events are applied and must be journaled under `seq`.
    Accepted { seq: u64, fingerprint: u64, events: Vec<Event>, receipt: Receipt },
    /// The id was seen before with the same content: nothing changed.
    Duplicate(Receipt),
}

#[derive(Clone, Debug, Default)]
pub struct Registry {
    admins: Vec<String>,
    markets: Vec<MarketState>,
    accounts: Vec<Account>,
    units: Vec<UnitTypeState>,
    /// Per account (by index), its holdings by unit type: an account holds few unit types, so a
    /// short scan beats hashing on the hot path.
    holdings: Vec<Vec<(UnitTypeIdx, Holding)>>,
    pendings: AHashMap<Box<str>, Pending>,
    freezes: AHashMap<Box<str>, Freeze>,
    txs: Vec<TxRecord>,
    surrendered: AHashMap<(AccountIdx, u16), u64>,
    /// Accepted commands by `command_key(id)`: the idempotency index.
    commands: CommandIndex,
    seq: u64,
    // Indexes, derivable from the fields above.
    /// Market codes packed into integers, by market index: lookups without string hashing.
    market_keys: Vec<u128>,
    /// Product codes (allowance codes and offset standards), packed: (code, issuer, is allowance).
    unit_codes: Vec<(u128, MarketIdx, bool)>,
    unit_by_spec: AHashMap<UnitSpec, UnitTypeIdx>,
    /// Allowance unit types by (issuer, vintage): the hot path of every transfer.
    allowance_units: AHashMap<(MarketIdx, u16), UnitTypeIdx>,
}

fn reject<T>(kind: RejectKind, message: impl Into<String>) -> Result<T> {
    Err(Rejection::new(kind, message))
}

fn invalid(e: String) -> Rejection {
    Rejection::new(RejectKind::Invalid, e)
}

fn check_quantity(quantity: Tonnes) -> Result<u64> {
    if quantity.0 == 0 {
        return reject(RejectKind::Invalid, "quantity is zero; give at least 1 tonne");
    }
    if quantity > Tonnes::MAX_PARSED {
        return reject(RejectKind::Invalid, format!("quantity {} is larger than the limit {}", quantity, Tonnes::MAX_PARSED));
    }
    Ok(quantity.0)
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Sizes the idempotency index for `commands` more accepted commands. Growing a large index
    /// rehashes every entry; a ledger that knows its volume reserves once at start-up, as
    /// TigerBeetle allocates statically. Only the index's control bytes are touched now.
    pub fn reserve_commands(&mut self, commands: usize) {
        self.commands.reserve(commands);
    }

    /// Number of journal records applied; the next record is `seq() + 1`.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn markets(&self) -> &[MarketState] {
        &self.markets
    }

    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub fn units(&self) -> &[UnitTypeState] {
        &self.units
    }

    pub fn transactions(&self) -> &[TxRecord] {
        &self.txs
    }

    pub fn account(&self, idx: AccountIdx) -> &Account {
        &self.accounts[idx.0 as usize]
    }

    pub fn market(&self, idx: MarketIdx) -> &MarketState {
        &self.markets[idx.0 as usize]
    }

    pub fn unit(&self, idx: UnitTypeIdx) -> &UnitTypeState {
        &self.units[idx.0 as usize]
    }

    pub fn find_account(&self, number: &str) -> Option<AccountIdx> {
        // `CODE-100001` (holder accounts, by opening order) or `CODE-ISSUANCE` and the like.
        // Parsed by hand: this runs twice for every transfer.
        let bytes = number.as_bytes();
        let mut end = bytes.len();
        let mut n: u64 = 0;
        let mut scale: u64 = 1;
        while end > 0 && bytes[end - 1].is_ascii_digit() && scale <= 1_000_000_000 {
            n += u64::from(bytes[end - 1] - b'0') * scale;
            scale *= 10;
            end -= 1;
        }
        let digits = bytes.len() - end;
        if digits == 0 {
            let dash = bytes.iter().rposition(|&b| b == b'-')?;
            let market = self.market(self.find_market(&number[..dash])?);
            return self.special_account(market, &number[dash + 1..]);
        }
        // Only the canonical spelling names an account: no leading zero, a dash before the digits.
        if bytes[end] == b'0' || end < 2 || bytes[end - 1] != b'-' {
            return None;
        }
        let market = self.market(self.find_market(&number[..end - 1])?);
        let i = n.checked_sub(ACCOUNT_NUMBER_FIRST)?;
        market.holder_accounts.get(usize::try_from(i).ok()?).copied()
    }

    fn special_account(&self, market: &MarketState, suffix: &str) -> Option<AccountIdx> {
        match suffix {
            "ISSUANCE" => Some(market.issuance),
            "RESERVE" => Some(market.reserve),
            "SURRENDER" => Some(market.surrender),
            "CANCELLATION" => Some(market.cancellation),
            _ => None,
        }
    }

    pub fn find_market(&self, code: &str) -> Option<MarketIdx> {
        let key = pack_code(code)?;
        self.market_keys.iter().position(|k| *k == key).map(|i| MarketIdx(i as u16))
    }

    pub fn holding(&self, account: AccountIdx, unit: UnitTypeIdx) -> Option<&Holding> {
        self.holdings.get(account.0 as usize)?.iter().find(|(u, _)| *u == unit).map(|(_, h)| h)
    }

    fn holding_mut(&mut self, account: AccountIdx, unit: UnitTypeIdx) -> Option<&mut Holding> {
        self.holdings.get_mut(account.0 as usize)?.iter_mut().find(|(u, _)| *u == unit).map(|(_, h)| h)
    }

    fn holding_entry(&mut self, account: AccountIdx, unit: UnitTypeIdx) -> &mut Holding {
        let list = &mut self.holdings[account.0 as usize];
        let i = match list.iter().position(|(u, _)| *u == unit) {
            Some(i) => i,
            None => {
                list.push((unit, Holding::default()));
                list.len() - 1
            }
        };
        &mut list[i].1
    }

    /// Every holding of an account, ordered by unit type.
    pub fn holdings_of(&self, account: AccountIdx) -> Vec<(UnitTypeIdx, &Holding)> {
        let mut out: Vec<_> = self.holdings[account.0 as usize].iter().filter(|(_, h)| !h.is_empty()).map(|(u, h)| (*u, h)).collect();
        out.sort_by_key(|(u, _)| *u);
        out
    }

    pub fn surrendered(&self, account: AccountIdx, compliance_year: u16) -> u64 {
        self.surrendered.get(&(account, compliance_year)).copied().unwrap_or(0)
    }

    pub fn pending(&self, id: &str) -> Option<&Pending> {
        self.pendings.get(id)
    }

    /// Every open pending transfer with its id, in no particular order.
    pub fn pendings(&self) -> impl Iterator<Item = (&str, &Pending)> {
        self.pendings.iter().map(|(id, p)| (&**id, p))
    }

    pub fn freeze(&self, id: &str) -> Option<&Freeze> {
        self.freezes.get(id)
    }

    pub fn free_block_count(&self) -> usize {
        self.holdings.iter().flatten().map(|(_, h)| h.free_block_count()).sum()
    }

    /// How people write a unit type: `CEA:2024`, `CCER:P001:2024`.
    pub fn unit_name(&self, idx: UnitTypeIdx) -> String {
        let spec = &self.unit(idx).spec;
        let market = &self.market(spec.issuer).spec;
        match &spec.class {
            UnitClass::Allowance => format!("{}:{}", market.allowance_code, spec.vintage),
            UnitClass::Offset { standard, project } => format!("{standard}:{project}:{}", spec.vintage),
        }
    }

    /// The reference commands use for a unit type.
    pub fn unit_ref(&self, idx: UnitTypeIdx) -> crate::UnitRef {
        crate::UnitRef::parse(&self.unit_name(idx)).expect("a registered unit type has a valid name")
    }

    pub fn command_receipt(&self, id: &str) -> Option<Receipt> {
        self.commands.get(command_key(id)).map(|a| a.receipt)
    }

    // ---------------------------------------------------------------- execute

    pub fn execute(&mut self, envelope: &Envelope) -> Result<Outcome> {
        self.execute_keyed(envelope, command_key(&envelope.id))
    }

    /// Executes commands in order, exactly as `execute` one by one would, but first hashes all
    /// their ids so that each command's idempotency slot can be fetched from memory while the
    /// commands before it run.
    pub fn execute_batch(&mut self, envelopes: &[Envelope]) -> Vec<Result<Outcome>> {
        const AHEAD: usize = 8;
        let keys: Vec<u128> = envelopes.iter().map(|e| command_key(&e.id)).collect();
        for key in keys.iter().take(AHEAD) {
            self.commands.prefetch(*key);
        }
        let mut out = Vec::with_capacity(envelopes.len());
        for (i, (envelope, key)) in envelopes.iter().zip(&keys).enumerate() {
            if let Some(ahead) = keys.get(i + AHEAD) {
                self.commands.prefetch(*ahead);
            }
            out.push(self.execute_keyed(envelope, *key));
        }
        out
    }

    /// Whether `envelopes`, executed in order now, would all be accepted (or be repeats),
    /// changing nothing: the index and the refusal of the first that would not. One command is
    /// checked in place (the decision `execute` makes before it applies anything); a sequence,
    /// whose later commands may depend on the earlier ones' effects, runs on a copy, whose cost
    /// grows with the registry's history (see BENCHMARKS.md, "trial copy").
    pub fn trial(&self, envelopes: &[Envelope]) -> std::result::Result<(), (usize, Rejection)> {
        match envelopes {
            [] => Ok(()),
            [envelope] => match self.known(envelope, command_key(&envelope.id)) {
                Err(r) => Err((0, r)),
                Ok(Some(_)) => Ok(()),
                Ok(None) => self.decide(&envelope.actor, &envelope.command).map(|_| ()).map_err(|r| (0, r)),
            },
            _ => {
                let mut copy = self.clone();
                match copy.execute_batch(envelopes).into_iter().enumerate().find_map(|(i, r)| r.err().map(|r| (i, r))) {
                    Some(refused) => Err(refused),
                    None => Ok(()),
                }
            }
        }
    }

    /// The identifier checks, then the receipt of an earlier run of this very command (a
    /// repeat), or the refusal of an id used for another command; `None` for a new command.
    fn known(&self, envelope: &Envelope, key: u128) -> Result<Option<Receipt>> {
        check_identifier("command id", &envelope.id).map_err(invalid)?;
        check_identifier("actor", &envelope.actor).map_err(invalid)?;
        let Some(applied) = self.commands.get(key) else { return Ok(None) };
        if applied.fingerprint == fingerprint(envelope) {
            return Ok(Some(applied.receipt));
        }
        reject(
            RejectKind::Conflict,
            format!(
                "command id '{}' was already used (journal record {}) for a different command; choose a new id",
                envelope.id, applied.receipt.seq
            ),
        )
    }

    fn execute_keyed(&mut self, envelope: &Envelope, key: u128) -> Result<Outcome> {
        if let Some(receipt) = self.known(envelope, key)? {
            return Ok(Outcome::Duplicate(receipt));
        }
        let fingerprint = fingerprint(envelope);
        let events = self.decide(&envelope.actor, &envelope.command)?;
        let seq = self.seq + 1;
        for event in &events {
            self.apply(event);
        }
        let receipt = Receipt::from_events(seq, &events);
        self.commands.insert(key, Applied { fingerprint, receipt });
        self.seq = seq;
        Ok(Outcome::Accepted { seq, fingerprint, events, receipt })
    }

    /// Replays one journal record. Fails (changing nothing) when the record does not follow on.
    pub fn apply_record(&mut self, seq: u64, command_id: &str, fingerprint: u64, events: &[Event]) -> std::result::Result<(), String> {
        if seq != self.seq + 1 {
            return Err(format!("journal record {seq} does not follow record {}", self.seq));
        }
        let key = command_key(command_id);
        if self.commands.get(key).is_some() {
            return Err(format!("journal record {seq} repeats command id '{command_id}'"));
        }
        for event in events {
            self.apply(event);
        }
        let receipt = Receipt::from_events(seq, events);
        self.commands.insert(key, Applied { fingerprint, receipt });
        self.seq = seq;
        Ok(())
    }

    fn decide(&self, actor: &str, command: &Command) -> Result<Vec<Event>> {
        if self.admins.is_empty() && !matches!(command, Command::InitRegistry { .. }) {
            return reject(RejectKind::Refused, "the registry is not initialised; run init first");
        }
        match command {
            Command::InitRegistry { admins } => self.decide_init(admins),
            Command::AddMarket(spec) => self.decide_add_market(actor, spec),
            Command::SetCap { market, vintage, cap } => {
                let m = self.market_named(market)?;
                self.require_authority(actor, m, "set a cap")?;
                let issued = self.market(m).issued(*vintage);
                if cap.0 < issued {
                    return reject(
                        RejectKind::Refused,
                        format!("cap {} for {market} vintage {vintage} is below the {issued} t already issued", cap),
                    );
                }
                Ok(vec![Event::CapSet { market: m, vintage: *vintage, cap: cap.0 }])
            }
            Command::RecogniseUnits { market, issuer } => {
                let m = self.market_named(market)?;
                let i = self.market_named(issuer)?;
                self.require_authority(actor, m, "recognise another market's units")?;
                if m == i || self.market(m).recognised.contains(&i) {
                    return reject(RejectKind::Refused, format!("market {market} already accepts units issued by {issuer}"));
                }
                Ok(vec![Event::UnitsRecognised { market: m, issuer: i }])
            }
            Command::OpenAccount { market, kind, holder, holder_type, representatives } => {
                self.decide_open_account(actor, market, *kind, holder, *holder_type, representatives)
            }
            Command::SetAccountStatus { account, status } => self.decide_set_status(actor, account, *status),
            Command::AddRepresentative { account, person } => {
                let a = self.account_named(account)?;
                self.require_account_admin(actor, a)?;
                check_identifier("representative", person).map_err(invalid)?;
                let acc = self.account(a);
                if acc.representatives.iter().any(|p| p == person) {
                    return reject(RejectKind::Refused, format!("{person} already represents account {account}"));
                }
                if acc.representatives.len() >= REPRESENTATIVES_MAX {
                    return reject(
                        RejectKind::Refused,
                        format!("account {account} already has the most representatives allowed ({REPRESENTATIVES_MAX})"),
                    );
                }
                Ok(vec![Event::RepresentativeAdded { account: a, person: person.clone() }])
            }
            Command::RemoveRepresentative { account, person } => {
                let a = self.account_named(account)?;
                self.require_account_admin(actor, a)?;
                let acc = self.account(a);
                if !acc.representatives.iter().any(|p| p == person) {
                    return reject(RejectKind::NotFound, format!("{person} does not represent account {account}"));
                }
                if acc.representatives.len() == 1 {
                    return reject(
                        RejectKind::Refused,
                        format!("{person} is the last representative of account {account}; add another first"),
                    );
                }
                Ok(vec![Event::RepresentativeRemoved { account: a, person: person.clone() }])
            }
            Command::Issue { unit, quantity, to } => self.decide_issue(actor, unit, *quantity, to.as_deref()),
            Command::Allocate { from, to, unit, quantity } => self.decide_allocate(actor, from, to, unit, *quantity),
            Command::Transfer { from, to, unit, quantity } => {
                let (f, t, u, q) = self.check_move(actor, from, to, unit, *quantity)?;
                self.check_link_quota(f, t, q)?;
                let blocks = self.take(f, u, q)?;
                Ok(vec![Event::Moved { tx: self.next_tx(), kind: TxKind::Transfer, from: f, to: t, unit: u, blocks }])
            }
            Command::Surrender { account, unit, quantity, compliance_year } => {
                self.decide_surrender(actor, account, unit, *quantity, *compliance_year)
            }
            Command::Cancel { account, unit, quantity } => {
                let a = self.account_named(account)?;
                let q = check_quantity(*quantity)?;
                self.require_representative(actor, a)?;
                self.require_can_send(a)?;
                let acc = self.account(a);
                if !matches!(acc.kind, AccountKind::Operator | AccountKind::Trading) {
                    return reject(
                        RejectKind::Refused,
                        format!("account {account} is a {} account; only operator and trading accounts cancel units", acc.kind.name()),
                    );
                }
                let u = self.unit_named(unit)?;
                let blocks = self.take(a, u, q)?;
                let to = self.market(acc.market).cancellation;
                Ok(vec![Event::Moved { tx: self.next_tx(), kind: TxKind::Cancellation, from: a, to, unit: u, blocks }])
            }
            Command::LinkMarkets { a, b, quota } => {
                let (ma, mb) = (self.market_named(a)?, self.market_named(b)?);
                if !self.is_admin(actor) {
                    return reject(RejectKind::Forbidden, format!("{actor} may not link markets: only a registry administrator may"));
                }
                if ma == mb {
                    return reject(RejectKind::Invalid, format!("market {a} cannot be linked to itself"));
                }
                if let Some(q) = quota {
                    check_quantity(*q)?;
                }
                let (lo, hi) = if ma < mb { (ma, mb) } else { (mb, ma) };
                if self.link(lo, hi).is_some() {
                    return reject(RejectKind::Refused, format!("markets {a} and {b} are already linked"));
                }
                Ok(vec![Event::MarketsLinked { a: lo, b: hi, quota: quota.map(|q| q.0) }])
            }
            Command::Withdraw { account, unit, quantity } => {
                let a = self.account_named(account)?;
                let q = check_quantity(*quantity)?;
                let acc = self.account(a);
                self.require_authority(actor, acc.market, "withdraw units from its accounts")?;
                if !matches!(acc.kind, AccountKind::Operator | AccountKind::Trading) {
                    return reject(
                        RejectKind::Refused,
                        format!(
                            "account {account} is a {} account; units are withdrawn only from operator and trading accounts",
                            acc.kind.name()
                        ),
                    );
                }
                let u = self.unit_named(unit)?;
                let blocks = self.take(a, u, q)?;
                let to = self.market(acc.market).cancellation;
                Ok(vec![Event::Moved { tx: self.next_tx(), kind: TxKind::Withdrawal, from: a, to, unit: u, blocks }])
            }
            Command::CreatePending { pending, from, to, unit, quantity, purpose } => {
                check_identifier("pending transfer id", pending).map_err(invalid)?;
                if self.pendings.contains_key(pending.as_str()) {
                    return reject(RejectKind::Refused, format!("pending transfer '{pending}' already exists"));
                }
                let authority_source =
                    self.find_account(from).is_some_and(|f| matches!(self.account(f).kind, AccountKind::Issuance | AccountKind::Reserve));
                let (f, t, u, q) = if authority_source && *purpose == PendingPurpose::Escrow {
                    self.check_escrow(actor, from, to, unit, *quantity)?
                } else {
                    self.check_move(actor, from, to, unit, *quantity)?
                };
                let blocks = self.take(f, u, q)?;
                Ok(vec![Event::PendingCreated { pending: pending.clone(), purpose: *purpose, from: f, to: t, unit: u, blocks }])
            }
            Command::PostPending { pending } => {
                let p = self.pending_named(pending)?;
                if !self.is_representative(actor, p.from) && !self.is_authority(actor, self.account(p.from).market) {
                    return reject(
                        RejectKind::Forbidden,
                        format!(
                            "{actor} may not post pending transfer '{pending}': only a representative of {} or the market authority may",
                            self.account(p.from).number
                        ),
                    );
                }
                self.require_can_receive(p.to)?;
                self.check_link_quota(p.from, p.to, p.blocks.iter().map(|b| b.len()).sum())?;
                Ok(vec![Event::PendingPosted { pending: pending.clone(), tx: self.next_tx(), from: p.from, to: p.to, unit: p.unit }])
            }
            Command::VoidPending { pending } => {
                let p = self.pending_named(pending)?;
                let allowed = self.is_representative(actor, p.from)
                    || self.is_representative(actor, p.to)
                    || self.is_authority(actor, self.account(p.from).market);
                if !allowed {
                    return reject(RejectKind::Forbidden, format!("{actor} may not void pending transfer '{pending}'"));
                }
                Ok(vec![Event::PendingVoided { pending: pending.clone(), from: p.from, unit: p.unit }])
            }
            Command::DeliverPending { pending, quantity, to } => {
                let q = check_quantity(*quantity)?;
                let p = self.pending_named(pending)?;
                if !self.is_representative(actor, p.to) && !self.is_authority(actor, self.account(p.from).market) {
                    return reject(
                        RejectKind::Forbidden,
                        format!(
                            "{actor} may not deliver from pending transfer '{pending}': only a representative of {} or the market authority may",
                            self.account(p.to).number
                        ),
                    );
                }
                let held = blocks_total(&p.blocks);
                if q > held {
                    return reject(
                        RejectKind::Refused,
                        format!("pending transfer '{pending}' holds {} t; {} t cannot be delivered from it", Tonnes(held), Tonnes(q)),
                    );
                }
                let (from, unit) = (p.from, p.unit);
                let t = self.account_named(to)?;
                self.require_can_receive(t)?;
                self.require_accepts(t, unit)?;
                self.check_link_quota(from, t, q)?;
                let blocks = first_serials(&self.pending_named(pending)?.blocks, q);
                Ok(vec![Event::PendingDelivered { pending: pending.clone(), tx: self.next_tx(), from, to: t, unit, blocks }])
            }
            Command::Freeze { freeze, account, unit, quantity, order } => {
                check_identifier("freeze id", freeze).map_err(invalid)?;
                check_identifier("order reference", order).map_err(invalid)?;
                if self.freezes.contains_key(freeze.as_str()) {
                    return reject(RejectKind::Refused, format!("freeze '{freeze}' already exists"));
                }
                let a = self.account_named(account)?;
                let q = check_quantity(*quantity)?;
                self.require_authority(actor, self.account(a).market, "freeze units")?;
                let u = self.unit_named(unit)?;
                let blocks = self.take(a, u, q)?;
                Ok(vec![Event::Frozen { freeze: freeze.clone(), account: a, unit: u, blocks, order: order.clone() }])
            }
            Command::Unfreeze { freeze } => {
                let f = self
                    .freezes
                    .get(freeze.as_str())
                    .ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no freeze '{freeze}'")))?;
                self.require_authority(actor, self.account(f.account).market, "unfreeze units")?;
                Ok(vec![Event::Unfrozen { freeze: freeze.clone(), account: f.account, unit: f.unit }])
            }
            Command::Reverse { tx, reason } => self.decide_reverse(actor, *tx, reason),
        }
    }

    fn decide_init(&self, admins: &[String]) -> Result<Vec<Event>> {
        if !self.admins.is_empty() {
            return reject(RejectKind::Refused, "the registry is already initialised");
        }
        if admins.is_empty() {
            return reject(RejectKind::Invalid, "name at least one registry administrator");
        }
        for admin in admins {
            check_identifier("administrator", admin).map_err(invalid)?;
        }
        Ok(vec![Event::RegistryInitialised { admins: admins.to_vec() }])
    }

    fn decide_add_market(&self, actor: &str, spec: &MarketSpec) -> Result<Vec<Event>> {
        if !self.is_admin(actor) {
            return reject(RejectKind::Forbidden, format!("{actor} is not a registry administrator; only administrators add markets"));
        }
        let code_ok = (2..=8).contains(&spec.code.len()) && spec.code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !code_ok {
            return reject(
                RejectKind::Invalid,
                format!("market code '{}' must be 2 to 8 upper-case letters or digits, e.g. CN or BJ", spec.code),
            );
        }
        if self.find_market(&spec.code).is_some() {
            return reject(RejectKind::Refused, format!("market {} already exists", spec.code));
        }
        if self.markets.len() >= MARKETS_MAX {
            return reject(RejectKind::Refused, format!("the registry already has the most markets allowed ({MARKETS_MAX})"));
        }
        if spec.name.trim().is_empty() {
            return reject(RejectKind::Invalid, "market name is empty");
        }
        if spec.authorities.is_empty() {
            return reject(RejectKind::Invalid, format!("market {} needs at least one authority", spec.code));
        }
        for person in &spec.authorities {
            check_identifier("authority", person).map_err(invalid)?;
        }
        let mut codes = vec![&spec.allowance_code];
        codes.extend(spec.offset_standards.iter());
        for (i, code) in codes.iter().enumerate() {
            let ok = (2..=12).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric());
            if !ok {
                return reject(RejectKind::Invalid, format!("product code '{code}' must be 2 to 12 letters or digits"));
            }
            if self.code_owner_of(code).is_some() || codes[..i].contains(code) {
                return reject(
                    RejectKind::Refused,
                    format!("product code {code} is already used; product codes are unique across markets"),
                );
            }
        }
        let market = MarketIdx(self.markets.len() as u16);
        let mut events = vec![Event::MarketAdded { market, spec: spec.clone() }];
        let base = self.accounts.len() as u32;
        for (i, (kind, suffix)) in [
            (AccountKind::Issuance, "ISSUANCE"),
            (AccountKind::Reserve, "RESERVE"),
            (AccountKind::Surrender, "SURRENDER"),
            (AccountKind::Cancellation, "CANCELLATION"),
        ]
        .into_iter()
        .enumerate()
        {
            events.push(Event::AccountOpened {
                account: AccountIdx(base + i as u32),
                number: format!("{}-{suffix}", spec.code),
                market,
                kind,
                holder: spec.name.clone(),
                holder_type: HolderType::Authority,
                representatives: spec.authorities.clone(),
            });
        }
        Ok(events)
    }

    fn decide_open_account(
        &self,
        actor: &str,
        market: &str,
        kind: AccountKind,
        holder: &str,
        holder_type: HolderType,
        representatives: &[String],
    ) -> Result<Vec<Event>> {
        let m = self.market_named(market)?;
        if !self.is_admin(actor) && !self.is_authority(actor, m) {
            return reject(
                RejectKind::Forbidden,
                format!("{actor} may not open accounts in {market}: only administrators and the market authority may"),
            );
        }
        match (kind, holder_type) {
            (AccountKind::Operator, HolderType::Entity) => {}
            (AccountKind::Operator, other) => {
                return reject(
                    RejectKind::Invalid,
                    format!("an operator holding account belongs to a covered entity, not to an {}", other.name()),
                )
            }
            (AccountKind::Trading, HolderType::Entity | HolderType::Institution) => {}
            (AccountKind::Trading, HolderType::Individual) => {
                if !self.market(m).spec.individuals_may_trade {
                    return reject(RejectKind::Refused, format!("market {market} does not admit individuals to trading"));
                }
            }
            (AccountKind::Trading, HolderType::Authority) => {
                return reject(RejectKind::Invalid, "trading accounts belong to entities, institutions or individuals")
            }
            (other, _) => {
                return reject(
                    RejectKind::Invalid,
                    format!("{} accounts are opened with their market; open operator or trading accounts", other.name()),
                )
            }
        }
        if holder.trim().is_empty() || holder.len() > HOLDER_NAME_LENGTH_MAX {
            return reject(RejectKind::Invalid, format!("holder name must be 1 to {HOLDER_NAME_LENGTH_MAX} bytes"));
        }
        self.check_representatives(representatives)?;
        let state = self.market(m);
        Ok(vec![Event::AccountOpened {
            account: AccountIdx(self.accounts.len() as u32),
            number: format!("{}-{}", state.spec.code, ACCOUNT_NUMBER_FIRST + state.holder_accounts.len() as u64),
            market: m,
            kind,
            holder: holder.to_string(),
            holder_type,
            representatives: representatives.to_vec(),
        }])
    }

    fn check_representatives(&self, representatives: &[String]) -> Result<()> {
        if representatives.is_empty() {
            return reject(RejectKind::Invalid, "an account needs at least one representative");
        }
        if representatives.len() > REPRESENTATIVES_MAX {
            return reject(RejectKind::Invalid, format!("at most {REPRESENTATIVES_MAX} representatives per account"));
        }
        for (i, person) in representatives.iter().enumerate() {
            check_identifier("representative", person).map_err(invalid)?;
            if representatives[..i].contains(person) {
                return reject(RejectKind::Invalid, format!("representative {person} is named twice"));
            }
        }
        Ok(())
    }

    fn decide_set_status(&self, actor: &str, account: &str, status: AccountStatus) -> Result<Vec<Event>> {
        let a = self.account_named(account)?;
        self.require_account_admin(actor, a)?;
        let acc = self.account(a);
        if !matches!(acc.kind, AccountKind::Operator | AccountKind::Trading) {
            return reject(RejectKind::Refused, format!("{account} is the market's {} account; its status cannot change", acc.kind.name()));
        }
        if acc.status == status {
            return reject(RejectKind::Refused, format!("account {account} is already {}", status.name()));
        }
        if acc.status == AccountStatus::Closed {
            return reject(RejectKind::Refused, format!("account {account} is closed; closed accounts are never reopened"));
        }
        if status == AccountStatus::Closed && acc.units_held > 0 {
            return reject(
                RejectKind::Refused,
                format!("account {account} still holds {} units; move them out before closing it", Tonnes(acc.units_held)),
            );
        }
        Ok(vec![Event::AccountStatusSet { account: a, status }])
    }

    fn decide_issue(&self, actor: &str, unit: &UnitRef, quantity: Tonnes, to: Option<&str>) -> Result<Vec<Event>> {
        let q = check_quantity(quantity)?;
        if !(VINTAGE_FIRST..=VINTAGE_LAST).contains(&unit.vintage) {
            return reject(
                RejectKind::Invalid,
                format!("vintage {} of {unit} is not a year from {VINTAGE_FIRST} to {VINTAGE_LAST}", unit.vintage),
            );
        }
        let (m, is_allowance) = self.code_owner(unit)?;
        self.require_authority(actor, m, "issue units")?;
        let market = self.market(m);
        let account = match to {
            None => market.issuance,
            Some(number) => {
                let a = self.account_named(number)?;
                if a != market.issuance && a != market.reserve {
                    return reject(
                        RejectKind::Refused,
                        format!("units are issued into {}-ISSUANCE or {}-RESERVE, not {number}", market.spec.code, market.spec.code),
                    );
                }
                a
            }
        };
        if is_allowance {
            if let Some(cap) = market.cap(unit.vintage) {
                let issued = market.issued(unit.vintage);
                if issued + q > cap {
                    return reject(
                        RejectKind::Refused,
                        format!(
                            "issuing {} {unit} would exceed the {} cap of {} t for vintage {} ({} t already issued)",
                            Tonnes(q),
                            market.spec.code,
                            Tonnes(cap),
                            unit.vintage,
                            Tonnes(issued)
                        ),
                    );
                }
            }
        } else {
            let project = unit.project.as_deref().unwrap_or_default();
            check_identifier("project", project).map_err(invalid)?;
        }
        let spec = UnitSpec { issuer: m, class: self.unit_class(unit, is_allowance), vintage: unit.vintage };
        // Every holding of a unit type stays within the bound that storage and sums rely on.
        let issued_so_far = self.unit_by_spec.get(&spec).map_or(0, |u| self.unit(*u).issued);
        if issued_so_far + q > Tonnes::MAX_PARSED.0 {
            return reject(
                RejectKind::Refused,
                format!(
                    "issuing {} {unit} would take it beyond {} t, the most of one unit type the registry holds",
                    Tonnes(q),
                    Tonnes::MAX_PARSED
                ),
            );
        }
        let start = market.next_serial;
        let end = start.checked_add(q).ok_or_else(|| Rejection::new(RejectKind::Refused, "serial numbers exhausted"))?;
        let mut events = Vec::with_capacity(2);
        let u = match self.unit_by_spec.get(&spec) {
            Some(u) => *u,
            None => {
                let u = UnitTypeIdx(self.units.len() as u32);
                events.push(Event::UnitTypeRegistered { unit: u, spec });
                u
            }
        };
        events.push(Event::Issued { tx: self.next_tx(), unit: u, account, block: Block { start, end } });
        Ok(events)
    }

    fn decide_allocate(&self, actor: &str, from: &str, to: &str, unit: &UnitRef, quantity: Tonnes) -> Result<Vec<Event>> {
        let f = self.account_named(from)?;
        let t = self.account_named(to)?;
        let q = check_quantity(quantity)?;
        let source = self.account(f);
        self.require_authority(actor, source.market, "allocate")?;
        if !matches!(source.kind, AccountKind::Issuance | AccountKind::Reserve) {
            return reject(
                RejectKind::Refused,
                format!("allocation comes from the market's issuance or reserve account, not from {from}; use transfer"),
            );
        }
        let dest = self.account(t);
        if !matches!(dest.kind, AccountKind::Operator | AccountKind::Trading | AccountKind::Reserve) || t == f {
            return reject(RejectKind::Refused, format!("cannot allocate to {to}, a {} account", dest.kind.name()));
        }
        self.require_can_receive(t)?;
        let u = self.unit_named(unit)?;
        self.require_accepts(t, u)?;
        let blocks = self.take(f, u, q)?;
        Ok(vec![Event::Moved { tx: self.next_tx(), kind: TxKind::Allocation, from: f, to: t, unit: u, blocks }])
    }

    fn decide_surrender(&self, actor: &str, account: &str, unit: &UnitRef, quantity: Tonnes, year: u16) -> Result<Vec<Event>> {
        let a = self.account_named(account)?;
        let q = check_quantity(quantity)?;
        self.require_representative(actor, a)?;
        self.require_can_send(a)?;
        let acc = self.account(a);
        if acc.kind != AccountKind::Operator {
            return reject(
                RejectKind::Refused,
                format!("account {account} is a {} account; only operator holding accounts surrender", acc.kind.name()),
            );
        }
        if !(VINTAGE_FIRST..=VINTAGE_LAST).contains(&year) {
            return reject(RejectKind::Invalid, format!("compliance year {year} is not a plausible year"));
        }
        let u = self.unit_named(unit)?;
        let issuer = self.unit(u).spec.issuer;
        if !self.market(acc.market).accepts_units_of(acc.market, issuer) {
            return reject(
                RejectKind::Refused,
                format!(
                    "{unit} was issued by market {}; market {} does not accept it for surrender",
                    self.market(issuer).spec.code,
                    self.market(acc.market).spec.code
                ),
            );
        }
        let blocks = self.take(a, u, q)?;
        let to = self.market(acc.market).surrender;
        Ok(vec![Event::Moved { tx: self.next_tx(), kind: TxKind::Surrender { compliance_year: year }, from: a, to, unit: u, blocks }])
    }

    fn decide_reverse(&self, actor: &str, tx: TxId, reason: &str) -> Result<Vec<Event>> {
        if reason.trim().is_empty() {
            return reject(RejectKind::Invalid, "a correction needs a reason");
        }
        let record =
            tx.0.checked_sub(1)
                .and_then(|i| self.txs.get(i as usize))
                .ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no transaction {tx}")))?;
        self.require_authority(actor, self.account(record.to).market, "correct transactions")?;
        if let Some(by) = record.reversed_by {
            return reject(RejectKind::Refused, format!("transaction {tx} was already reversed by {by}"));
        }
        let holds = self.holding(record.to, record.unit).is_some_and(|h| h.holds_free(&record.blocks));
        if !holds {
            return reject(
                RejectKind::Refused,
                format!(
                    "transaction {tx} cannot be reversed: account {} no longer holds all of its units freely",
                    self.account(record.to).number
                ),
            );
        }
        let next = self.next_tx();
        match (record.kind, record.from) {
            (TxKind::Reversal { .. } | TxKind::IssuanceReversal { .. }, _) => {
                reject(RejectKind::Refused, format!("transaction {tx} is itself a correction; record a new transaction instead"))
            }
            (TxKind::Issuance, _) => {
                Ok(vec![Event::Retired { tx: next, of: tx, unit: record.unit, account: record.to, blocks: record.blocks.to_vec() }])
            }
            (_, Some(from)) => {
                self.require_can_receive(from)?;
                Ok(vec![Event::Moved {
                    tx: next,
                    kind: TxKind::Reversal { of: tx },
                    from: record.to,
                    to: from,
                    unit: record.unit,
                    blocks: record.blocks.to_vec(),
                }])
            }
            (_, None) => unreachable!("only issuances have no source account"),
        }
    }

    /// Checks shared by transfers and pending transfers between holder accounts.
    fn check_move(
        &self,
        actor: &str,
        from: &str,
        to: &str,
        unit: &UnitRef,
        quantity: Tonnes,
    ) -> Result<(AccountIdx, AccountIdx, UnitTypeIdx, u64)> {
        let f = self.account_named(from)?;
        let t = self.account_named(to)?;
        let q = check_quantity(quantity)?;
        self.require_representative(actor, f)?;
        self.require_can_send(f)?;
        if f == t {
            return reject(RejectKind::Invalid, format!("source and destination are both {from}"));
        }
        let source = self.account(f);
        if !matches!(source.kind, AccountKind::Operator | AccountKind::Trading) {
            return reject(
                RejectKind::Refused,
                format!("{from} is a {} account; it moves units by allocation or correction, not transfer", source.kind.name()),
            );
        }
        let dest = self.account(t);
        if !matches!(dest.kind, AccountKind::Operator | AccountKind::Trading) {
            return reject(
                RejectKind::Refused,
                format!(
                    "{to} is a {} account; units reach it by {}",
                    dest.kind.name(),
                    match dest.kind {
                        AccountKind::Surrender => "surrender",
                        AccountKind::Cancellation => "cancellation",
                        _ => "issuance or correction",
                    }
                ),
            );
        }
        self.require_can_receive(t)?;
        let u = self.unit_named(unit)?;
        self.require_accepts(t, u)?;
        Ok((f, t, u, q))
    }

    /// The market authority sets units of its issuance or reserve account aside for sale through
    /// the exchange (a primary auction): only to a holding account of the same market (the
    /// exchange's clearing account), whose representative then delivers what is sold and voids
    /// the rest. The units stay the authority's until delivered; nothing else can move them.
    fn check_escrow(
        &self,
        actor: &str,
        from: &str,
        to: &str,
        unit: &UnitRef,
        quantity: Tonnes,
    ) -> Result<(AccountIdx, AccountIdx, UnitTypeIdx, u64)> {
        let f = self.account_named(from)?;
        let t = self.account_named(to)?;
        let q = check_quantity(quantity)?;
        let market = self.account(f).market;
        self.require_authority(actor, market, "set aside units of its own accounts")?;
        self.require_can_send(f)?;
        let dest = self.account(t);
        if !matches!(dest.kind, AccountKind::Operator | AccountKind::Trading) || dest.market != market {
            return reject(
                RejectKind::Refused,
                format!(
                    "units of {from} can be set aside only for a holding account of its market (the exchange's clearing account), not {to}"
                ),
            );
        }
        self.require_can_receive(t)?;
        let u = self.unit_named(unit)?;
        self.require_accepts(t, u)?;
        Ok((f, t, u, q))
    }

    fn take(&self, account: AccountIdx, unit: UnitTypeIdx, quantity: u64) -> Result<Vec<Block>> {
        let holding = self.holding(account, unit);
        let free = holding.map_or(0, Holding::free_total);
        if free < quantity {
            let encumbered = holding.map_or(0, |h| h.encumbered_total);
            let aside = if encumbered > 0 { format!(" ({} more pending or frozen)", Tonnes(encumbered)) } else { String::new() };
            return reject(
                RejectKind::Refused,
                format!(
                    "insufficient holdings: account {} holds {} t of {} free{aside}; {} t requested",
                    self.account(account).number,
                    Tonnes(free),
                    self.unit_name(unit),
                    Tonnes(quantity)
                ),
            );
        }
        Ok(holding.expect("free >= quantity > 0").plan_take(quantity))
    }

    fn next_tx(&self) -> TxId {
        TxId(self.txs.len() as u64 + 1)
    }

    // ---------------------------------------------------------------- lookups and permissions

    fn market_named(&self, code: &str) -> Result<MarketIdx> {
        self.find_market(code).ok_or_else(|| {
            let known: Vec<&str> = self.markets.iter().map(|m| m.spec.code.as_str()).collect();
            Rejection::new(
                RejectKind::NotFound,
                format!("unknown market '{code}' (markets: {})", if known.is_empty() { "none yet".into() } else { known.join(", ") }),
            )
        })
    }

    fn account_named(&self, number: &str) -> Result<AccountIdx> {
        self.find_account(number).ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("unknown account '{number}'")))
    }

    fn pending_named(&self, id: &str) -> Result<&Pending> {
        self.pendings.get(id).ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no pending transfer '{id}'")))
    }

    /// The issuing market of a unit reference, and whether it names an allowance.
    fn code_owner(&self, unit: &UnitRef) -> Result<(MarketIdx, bool)> {
        let Some((market, is_allowance)) = self.code_owner_of(&unit.code) else {
            return reject(RejectKind::NotFound, format!("unknown product code '{}' in unit {unit}", unit.code));
        };
        match (is_allowance, unit.project.is_some()) {
            (true, true) => {
                reject(RejectKind::Invalid, format!("{} is an allowance code; write {}:{}", unit.code, unit.code, unit.vintage))
            }
            (false, false) => {
                reject(RejectKind::Invalid, format!("{} is an offset standard; write {}:PROJECT:{}", unit.code, unit.code, unit.vintage))
            }
            _ => Ok((market, is_allowance)),
        }
    }

    fn unit_class(&self, unit: &UnitRef, is_allowance: bool) -> UnitClass {
        if is_allowance {
            UnitClass::Allowance
        } else {
            UnitClass::Offset { standard: unit.code.clone(), project: unit.project.clone().unwrap_or_default() }
        }
    }

    /// Resolves a unit reference to an existing unit type.
    pub fn unit_named(&self, unit: &UnitRef) -> Result<UnitTypeIdx> {
        let (issuer, is_allowance) = self.code_owner(unit)?;
        let found = if is_allowance {
            self.allowance_units.get(&(issuer, unit.vintage)).copied()
        } else {
            let spec = UnitSpec { issuer, class: self.unit_class(unit, is_allowance), vintage: unit.vintage };
            self.unit_by_spec.get(&spec).copied()
        };
        found.ok_or_else(|| Rejection::new(RejectKind::NotFound, format!("no {unit} units have been issued")))
    }

    fn code_owner_of(&self, code: &str) -> Option<(MarketIdx, bool)> {
        let key = pack_code(code)?;
        self.unit_codes.iter().find(|(k, _, _)| *k == key).map(|(_, m, a)| (*m, *a))
    }

    fn index_market(&mut self, market: MarketIdx, spec: &MarketSpec) {
        assert_eq!(market.0 as usize, self.market_keys.len(), "markets are indexed in order");
        self.market_keys.push(pack_code(&spec.code).expect("market codes are validated to pack"));
        self.unit_codes.push((pack_code(&spec.allowance_code).expect("product codes pack"), market, true));
        for standard in &spec.offset_standards {
            self.unit_codes.push((pack_code(standard).expect("product codes pack"), market, false));
        }
    }

    fn index_unit(&mut self, unit: UnitTypeIdx, spec: &UnitSpec) {
        self.unit_by_spec.insert(spec.clone(), unit);
        if spec.class == UnitClass::Allowance {
            self.allowance_units.insert((spec.issuer, spec.vintage), unit);
        }
    }

    /// The link between two markets (`lo` < `hi`), if any.
    fn link(&self, lo: MarketIdx, hi: MarketIdx) -> Option<&MarketLink> {
        self.market(lo).links.iter().find(|l| l.with == hi)
    }

    /// The link a transfer between two holder accounts crosses, if their markets are linked.
    fn crossed_link(&self, from: AccountIdx, to: AccountIdx) -> Option<(MarketIdx, MarketIdx)> {
        let (a, b) = (self.account(from).market, self.account(to).market);
        if a == b {
            return None;
        }
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        self.link(lo, hi).map(|_| (lo, hi))
    }

    fn check_link_quota(&self, from: AccountIdx, to: AccountIdx, q: u64) -> Result<()> {
        let Some((lo, hi)) = self.crossed_link(from, to) else { return Ok(()) };
        let link = self.link(lo, hi).expect("crossed link exists");
        if let Some(quota) = link.quota {
            if link.used + q > quota {
                return reject(
                    RejectKind::Refused,
                    format!(
                        "the link between {} and {} allows {} t of transfers; {} t used, {q} t requested",
                        self.market(lo).spec.code,
                        self.market(hi).spec.code,
                        Tonnes(quota),
                        Tonnes(link.used)
                    ),
                );
            }
        }
        Ok(())
    }

    fn count_link_use(&mut self, from: AccountIdx, to: AccountIdx, q: u64) {
        if let Some((lo, hi)) = self.crossed_link(from, to) {
            let link = self.markets[lo.0 as usize].links.iter_mut().find(|l| l.with == hi).expect("crossed link exists");
            link.used += q;
        }
    }

    fn is_admin(&self, actor: &str) -> bool {
        self.admins.iter().any(|a| a == actor)
    }

    fn is_authority(&self, actor: &str, market: MarketIdx) -> bool {
        self.market(market).spec.authorities.iter().any(|a| a == actor)
    }

    fn is_representative(&self, actor: &str, account: AccountIdx) -> bool {
        self.account(account).representatives.iter().any(|p| p == actor)
    }

    fn require_authority(&self, actor: &str, market: MarketIdx, what: &str) -> Result<()> {
        if self.is_authority(actor, market) {
            return Ok(());
        }
        reject(
            RejectKind::Forbidden,
            format!("{actor} is not an authority of market {}; only it may {what}", self.market(market).spec.code),
        )
    }

    fn require_account_admin(&self, actor: &str, account: AccountIdx) -> Result<()> {
        if self.is_admin(actor) || self.is_authority(actor, self.account(account).market) {
            return Ok(());
        }
        reject(
            RejectKind::Forbidden,
            format!("{actor} may not manage account {}: only administrators and the market authority may", self.account(account).number),
        )
    }

    fn require_representative(&self, actor: &str, account: AccountIdx) -> Result<()> {
        if self.is_representative(actor, account) {
            return Ok(());
        }
        reject(RejectKind::Forbidden, format!("{actor} is not a representative of account {}", self.account(account).number))
    }

    fn require_can_send(&self, account: AccountIdx) -> Result<()> {
        let acc = self.account(account);
        match acc.status {
            AccountStatus::Open => Ok(()),
            AccountStatus::Blocked => reject(RejectKind::Refused, format!("account {} is blocked: it may not send units", acc.number)),
            AccountStatus::Closed => reject(RejectKind::Refused, format!("account {} is closed", acc.number)),
        }
    }

    fn require_can_receive(&self, account: AccountIdx) -> Result<()> {
        let acc = self.account(account);
        if acc.status == AccountStatus::Closed {
            return reject(RejectKind::Refused, format!("account {} is closed: it may not receive units", acc.number));
        }
        Ok(())
    }

    fn require_accepts(&self, account: AccountIdx, unit: UnitTypeIdx) -> Result<()> {
        let market = self.account(account).market;
        let issuer = self.unit(unit).spec.issuer;
        if self.market(market).accepts_units_of(market, issuer) {
            return Ok(());
        }
        reject(
            RejectKind::Refused,
            format!(
                "wrong market: {} was issued by {} and account {} is in market {}, which does not accept {} units",
                self.unit_name(unit),
                self.market(issuer).spec.code,
                self.account(account).number,
                self.market(market).spec.code,
                self.market(issuer).spec.code
            ),
        )
    }

    // ---------------------------------------------------------------- apply

    fn apply(&mut self, event: &Event) {
        match event {
            Event::RegistryInitialised { admins } => self.admins = admins.clone(),
            Event::MarketAdded { market, spec } => {
                assert_eq!(market.0 as usize, self.markets.len(), "market index out of order");
                self.index_market(*market, spec);
                let base = AccountIdx(self.accounts.len() as u32);
                self.markets.push(MarketState {
                    spec: spec.clone(),
                    issuance: base,
                    reserve: AccountIdx(base.0 + 1),
                    surrender: AccountIdx(base.0 + 2),
                    cancellation: AccountIdx(base.0 + 3),
                    next_serial: 1,
                    caps: Vec::new(),
                    allowances_issued: Vec::new(),
                    recognised: Vec::new(),
                    links: Vec::new(),
                    holder_accounts: Vec::new(),
                });
            }
            Event::CapSet { market, vintage, cap } => {
                let caps = &mut self.markets[market.0 as usize].caps;
                caps.retain(|(v, _)| v != vintage);
                caps.push((*vintage, *cap));
                caps.sort_unstable();
            }
            Event::MarketsLinked { a, b, quota } => {
                self.markets[a.0 as usize].links.push(MarketLink { with: *b, quota: *quota, used: 0 });
                for (m, other) in [(*a, *b), (*b, *a)] {
                    let recognised = &mut self.markets[m.0 as usize].recognised;
                    if !recognised.contains(&other) {
                        recognised.push(other);
                        recognised.sort_unstable();
                    }
                }
            }
            Event::UnitsRecognised { market, issuer } => {
                let recognised = &mut self.markets[market.0 as usize].recognised;
                recognised.push(*issuer);
                recognised.sort_unstable();
            }
            Event::AccountOpened { account, number, market, kind, holder, holder_type, representatives } => {
                assert_eq!(account.0 as usize, self.accounts.len(), "account index out of order");
                if matches!(kind, AccountKind::Operator | AccountKind::Trading) {
                    let state = &mut self.markets[market.0 as usize];
                    let expected = format!("{}-{}", state.spec.code, ACCOUNT_NUMBER_FIRST + state.holder_accounts.len() as u64);
                    assert_eq!(*number, expected, "account numbers follow the market's opening order");
                    state.holder_accounts.push(*account);
                }
                self.holdings.push(Vec::new());
                self.accounts.push(Account {
                    number: number.clone(),
                    market: *market,
                    kind: *kind,
                    holder: holder.clone(),
                    holder_type: *holder_type,
                    status: AccountStatus::Open,
                    representatives: representatives.clone(),
                    units_held: 0,
                });
            }
            Event::AccountStatusSet { account, status } => self.accounts[account.0 as usize].status = *status,
            Event::RepresentativeAdded { account, person } => self.accounts[account.0 as usize].representatives.push(person.clone()),
            Event::RepresentativeRemoved { account, person } => self.accounts[account.0 as usize].representatives.retain(|p| p != person),
            Event::UnitTypeRegistered { unit, spec } => {
                assert_eq!(unit.0 as usize, self.units.len(), "unit type index out of order");
                self.index_unit(*unit, spec);
                self.units.push(UnitTypeState { spec: spec.clone(), issued: 0, circulating: 0, surrendered: 0, cancelled: 0 });
            }
            Event::Issued { tx, unit, account, block } => {
                let n = block.len();
                let spec = self.units[unit.0 as usize].spec.clone();
                let market = &mut self.markets[spec.issuer.0 as usize];
                assert_eq!(block.start, market.next_serial, "issuance must continue the market's serials");
                market.next_serial = block.end;
                if spec.class == UnitClass::Allowance {
                    add_vintage(&mut market.allowances_issued, spec.vintage, n as i64);
                }
                self.units[unit.0 as usize].issued += n;
                self.credit(*account, *unit, &[*block]);
                self.push_tx(
                    *tx,
                    TxRecord {
                        kind: TxKind::Issuance,
                        from: None,
                        to: *account,
                        unit: *unit,
                        blocks: TxBlocks::One(*block),
                        reversed_by: None,
                    },
                );
                self.assert_conserved(*unit);
            }
            Event::Moved { tx, kind, from, to, unit, blocks } => {
                self.debit(*from, *unit, blocks);
                self.credit(*to, *unit, blocks);
                if *kind == TxKind::Transfer {
                    self.count_link_use(*from, *to, blocks_total(blocks));
                }
                match kind {
                    TxKind::Surrender { compliance_year } => {
                        *self.surrendered.entry((*from, *compliance_year)).or_insert(0) += blocks_total(blocks);
                    }
                    TxKind::Reversal { of } => {
                        let original = &mut self.txs[(of.0 - 1) as usize];
                        assert!(original.reversed_by.is_none(), "transaction reversed twice");
                        original.reversed_by = Some(*tx);
                        if let TxKind::Surrender { compliance_year } = original.kind {
                            let surrendered = self.surrendered.get_mut(&(*to, compliance_year)).expect("reversed surrender was counted");
                            *surrendered -= blocks_total(blocks);
                        }
                    }
                    _ => {}
                }
                self.push_tx(
                    *tx,
                    TxRecord {
                        kind: *kind,
                        from: Some(*from),
                        to: *to,
                        unit: *unit,
                        blocks: TxBlocks::from_slice(blocks),
                        reversed_by: None,
                    },
                );
                self.assert_conserved(*unit);
            }
            Event::Retired { tx, of, unit, account, blocks } => {
                self.debit(*account, *unit, blocks);
                let n = blocks_total(blocks);
                let state = &mut self.units[unit.0 as usize];
                state.issued -= n;
                if state.spec.class == UnitClass::Allowance {
                    let (issuer, vintage) = (state.spec.issuer, state.spec.vintage);
                    add_vintage(&mut self.markets[issuer.0 as usize].allowances_issued, vintage, -(n as i64));
                }
                let original = &mut self.txs[(of.0 - 1) as usize];
                assert!(original.reversed_by.is_none(), "issuance reversed twice");
                original.reversed_by = Some(*tx);
                self.push_tx(
                    *tx,
                    TxRecord {
                        kind: TxKind::IssuanceReversal { of: *of },
                        from: Some(*account),
                        to: *account,
                        unit: *unit,
                        blocks: TxBlocks::from_slice(blocks),
                        reversed_by: None,
                    },
                );
                self.assert_conserved(*unit);
            }
            Event::PendingCreated { pending, purpose, from, to, unit, blocks } => {
                self.encumber(*from, *unit, blocks);
                self.pendings.insert(
                    pending.as_str().into(),
                    Pending { purpose: *purpose, from: *from, to: *to, unit: *unit, blocks: blocks.clone() },
                );
            }
            Event::PendingPosted { pending, tx, from, to, unit } => {
                let p = self.pendings.remove(pending.as_str()).expect("posted pending exists");
                assert_eq!((p.from, p.to, p.unit), (*from, *to, *unit), "posted pending differs from its record");
                self.count_link_use(p.from, p.to, blocks_total(&p.blocks));
                self.release(p.from, p.unit, &p.blocks);
                self.debit(p.from, p.unit, &p.blocks);
                self.credit(p.to, p.unit, &p.blocks);
                self.push_tx(
                    *tx,
                    TxRecord {
                        kind: TxKind::PendingPost,
                        from: Some(p.from),
                        to: p.to,
                        unit: p.unit,
                        blocks: TxBlocks::from_slice(&p.blocks),
                        reversed_by: None,
                    },
                );
                self.assert_conserved(p.unit);
            }
            Event::PendingDelivered { pending, tx, from, to, unit, blocks } => {
                let p = self.pendings.get_mut(pending.as_str()).expect("delivered pending exists");
                assert_eq!((p.from, p.unit), (*from, *unit), "delivered pending differs from its record");
                assert_eq!(&first_serials(&p.blocks, blocks_total(blocks)), blocks, "delivery is not the pending's first serials");
                p.blocks = after_serials(&p.blocks, blocks_total(blocks));
                if p.blocks.is_empty() {
                    self.pendings.remove(pending.as_str());
                }
                self.count_link_use(*from, *to, blocks_total(blocks));
                self.release(*from, *unit, blocks);
                self.debit(*from, *unit, blocks);
                self.credit(*to, *unit, blocks);
                self.push_tx(
                    *tx,
                    TxRecord {
                        kind: TxKind::PendingPost,
                        from: Some(*from),
                        to: *to,
                        unit: *unit,
                        blocks: TxBlocks::from_slice(blocks),
                        reversed_by: None,
                    },
                );
                self.assert_conserved(*unit);
            }
            Event::PendingVoided { pending, from, unit } => {
                let p = self.pendings.remove(pending.as_str()).expect("voided pending exists");
                assert_eq!((p.from, p.unit), (*from, *unit), "voided pending differs from its record");
                self.release(p.from, p.unit, &p.blocks);
            }
            Event::Frozen { freeze, account, unit, blocks, order } => {
                self.encumber(*account, *unit, blocks);
                self.freezes.insert(
                    freeze.as_str().into(),
                    Freeze { account: *account, unit: *unit, blocks: blocks.clone(), order: order.clone() },
                );
            }
            Event::Unfrozen { freeze, account, unit } => {
                let f = self.freezes.remove(freeze.as_str()).expect("unfrozen freeze exists");
                assert_eq!((f.account, f.unit), (*account, *unit), "lifted freeze differs from its record");
                self.release(f.account, f.unit, &f.blocks);
            }
        }
    }

    fn push_tx(&mut self, tx: TxId, record: TxRecord) {
        assert_eq!(tx.0, self.txs.len() as u64 + 1, "transaction ids are consecutive");
        self.txs.push(record);
    }

    /// Which conservation bucket an account's units count in, per unit type.
    fn bucket(&mut self, account: AccountIdx, unit: UnitTypeIdx) -> &mut u64 {
        let state = &mut self.units[unit.0 as usize];
        match self.accounts[account.0 as usize].kind {
            AccountKind::Surrender => &mut state.surrendered,
            AccountKind::Cancellation => &mut state.cancelled,
            _ => &mut state.circulating,
        }
    }

    fn credit(&mut self, account: AccountIdx, unit: UnitTypeIdx, blocks: &[Block]) {
        let n = blocks_total(blocks);
        self.holding_entry(account, unit).receive(blocks);
        self.accounts[account.0 as usize].units_held += n;
        *self.bucket(account, unit) += n;
    }

    /// Removes free blocks; a holding can never go negative because only serials it holds leave it.
    fn debit(&mut self, account: AccountIdx, unit: UnitTypeIdx, blocks: &[Block]) {
        let n = blocks_total(blocks);
        let holding = self.holding_mut(account, unit).expect("debited holding exists");
        assert!(holding.remove(blocks), "debit of serials not freely held");
        let acc = &mut self.accounts[account.0 as usize];
        acc.units_held = acc.units_held.checked_sub(n).expect("account total below zero");
        let bucket = self.bucket(account, unit);
        *bucket = bucket.checked_sub(n).expect("conservation bucket below zero");
    }

    /// Moves free blocks aside (pending or frozen): still held, no longer movable.
    fn encumber(&mut self, account: AccountIdx, unit: UnitTypeIdx, blocks: &[Block]) {
        let holding = self.holding_mut(account, unit).expect("encumbered holding exists");
        assert!(holding.remove(blocks), "encumbering serials not freely held");
        holding.encumbered_total += blocks_total(blocks);
    }

    fn release(&mut self, account: AccountIdx, unit: UnitTypeIdx, blocks: &[Block]) {
        let holding = self.holding_mut(account, unit).expect("released holding exists");
        holding.encumbered_total = holding.encumbered_total.checked_sub(blocks_total(blocks)).expect("release beyond encumbered");
        holding.receive(blocks);
    }

    fn assert_conserved(&self, unit: UnitTypeIdx) {
        let s = &self.units[unit.0 as usize];
        assert_eq!(s.issued, s.circulating + s.surrendered + s.cancelled, "units not conserved for unit type {}", unit.0);
    }

    // ---------------------------------------------------------------- snapshot, state hash, full check

    pub fn snapshot(&self) -> crate::snapshot::Snapshot {
        crate::snapshot::Snapshot::of(self)
    }

    pub(crate) fn parts(&self) -> RegistryParts<'_> {
        RegistryParts {
            admins: &self.admins,
            markets: &self.markets,
            accounts: &self.accounts,
            units: &self.units,
            holdings: self
                .holdings
                .iter()
                .enumerate()
                .flat_map(|(a, list)| list.iter().map(move |(u, h)| ((AccountIdx(a as u32), *u), h)))
                .collect(),
            pendings: &self.pendings,
            freezes: &self.freezes,
            txs: &self.txs,
            surrendered: &self.surrendered,
            commands: self.commands.iter().map(|(k, v)| (k, v.fingerprint, v.receipt)).collect(),
            seq: self.seq,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        admins: Vec<String>,
        markets: Vec<MarketState>,
        accounts: Vec<Account>,
        units: Vec<UnitTypeState>,
        holdings: Vec<((AccountIdx, UnitTypeIdx), Holding)>,
        pendings: Vec<(String, Pending)>,
        freezes: Vec<(String, Freeze)>,
        txs: Vec<TxRecord>,
        surrendered: Vec<((AccountIdx, u16), u64)>,
        commands: Vec<(u128, u64, Receipt)>,
        seq: u64,
    ) -> Registry {
        let mut r = Registry {
            admins,
            pendings: pendings.into_iter().map(|(k, v)| (k.into_boxed_str(), v)).collect(),
            freezes: freezes.into_iter().map(|(k, v)| (k.into_boxed_str(), v)).collect(),
            txs,
            surrendered: surrendered.into_iter().collect(),
            seq,
            ..Registry::default()
        };
        for (i, m) in markets.iter().enumerate() {
            let idx = MarketIdx(i as u16);
            r.index_market(idx, &m.spec);
        }
        r.commands.reserve(commands.len());
        for (key, fingerprint, receipt) in commands {
            r.commands.insert(key, Applied { fingerprint, receipt });
        }
        r.holdings = vec![Vec::new(); accounts.len()];
        for ((account, unit), holding) in holdings {
            r.holdings[account.0 as usize].push((unit, holding));
        }
        for (i, u) in units.iter().enumerate() {
            r.index_unit(UnitTypeIdx(i as u32), &u.spec);
        }
        r.markets = markets;
        r.accounts = accounts;
        r.units = units;
        r
    }

    /// Recomputes every invariant from scratch. O(state); the ledger runs it after recovery and
    /// tests run it after every step. Returns the first violation found.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        crate::invariants::check(self.parts())
    }
}

pub(crate) struct RegistryParts<'a> {
    pub admins: &'a [String],
    pub markets: &'a [MarketState],
    pub accounts: &'a [Account],
    pub units: &'a [UnitTypeState],
    pub holdings: Vec<((AccountIdx, UnitTypeIdx), &'a Holding)>,
    pub pendings: &'a AHashMap<Box<str>, Pending>,
    pub freezes: &'a AHashMap<Box<str>, Freeze>,
    pub txs: &'a [TxRecord],
    pub surrendered: &'a AHashMap<(AccountIdx, u16), u64>,
    pub commands: Vec<(u128, u64, Receipt)>,
    pub seq: u64,
}

fn add_vintage(list: &mut Vec<(u16, u64)>, vintage: u16, delta: i64) {
    match list.iter_mut().find(|(v, _)| *v == vintage) {
        Some((_, n)) => *n = n.checked_add_signed(delta).expect("vintage total below zero"),
        None => {
            list.push((vintage, u64::try_from(delta).expect("vintage total below zero")));
            list.sort_unstable();
        }
    }
}

/// Packs a code of at most 16 bytes into an integer; codes are ASCII letters and digits (validated
/// when a market is added), so zero padding cannot make two codes equal.
fn pack_code(code: &str) -> Option<u128> {
    // A NUL byte would pack like the padding ("CN\0" like "CN"); stored codes never have one.
    if code.is_empty() || code.len() > 16 {
        return None;
    }
    // Two 64-bit halves: byte shifts on u128 cost several instructions each.
    let (mut low, mut high) = (0u64, 0u64);
    for (i, b) in code.bytes().enumerate() {
        if b == 0 {
            return None;
        }
        if i < 8 {
            low |= u64::from(b) << (8 * i);
        } else {
            high |= u64::from(b) << (8 * (i - 8));
        }
    }
    Some(u128::from(high) << 64 | u128::from(low))
}

/// The first `quantity` serials of `blocks`, in order.
fn first_serials(blocks: &[Block], quantity: u64) -> Vec<Block> {
    let mut out = Vec::with_capacity(2);
    let mut rest = quantity;
    for block in blocks {
        if rest == 0 {
            break;
        }
        let n = block.len().min(rest);
        out.push(Block { start: block.start, end: block.start + n });
        rest -= n;
    }
    assert_eq!(rest, 0, "fewer serials than requested");
    out
}

/// What is left of `blocks` after the first `quantity` serials.
fn after_serials(blocks: &[Block], quantity: u64) -> Vec<Block> {
    let mut out = Vec::with_capacity(blocks.len());
    let mut skip = quantity;
    for block in blocks {
        let n = block.len().min(skip);
        skip -= n;
        if n < block.len() {
            out.push(Block { start: block.start + n, end: block.end });
        }
    }
    out
}
