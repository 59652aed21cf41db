//! The registry's nouns: markets, accounts, unit types and serial blocks.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Index of a market in the registry, in the order markets were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MarketIdx(pub u16);

/// Index of an account in the registry, in the order accounts were opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountIdx(pub u32);

/// Index of a unit type, in the order unit types were first issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnitTypeIdx(pub u32);

/// A registry transaction number (issuance, allocation, transfer, surrender, ...), from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxId(pub u64);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MarketLevel {
    National,
    Pilot,
}

/// What a market is, as given when it is added. Its rules (caps, recognition of other markets'
/// units) are changed by later commands, and by rulebooks in later work.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarketSpec {
    /// Short upper-case code, e.g. `CN` (national), `BJ`, `SH`, `GD`.
    pub code: String,
    pub name: String,
    pub level: MarketLevel,
    /// Product code of the market's allowances, e.g. `CEA` for the national market.
    pub allowance_code: String,
    /// Offset standards this market issues, e.g. `CCER` (national), `PHCER` (Guangdong).
    pub offset_standards: Vec<String>,
    /// Whether individuals may open trading accounts in this market.
    pub individuals_may_trade: bool,
    /// The persons who act as the market authority (issuance, allocation, freezes, corrections).
    pub authorities: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AccountKind {
    /// The authority's account into which units are issued.
    Issuance,
    /// The authority's reserve (new entrants, price stability, auctions).
    Reserve,
    /// A covered entity's holding account; the only kind that surrenders.
    Operator,
    /// A trading account of an institution or, where the market allows, an individual.
    Trading,
    /// Where surrendered units rest, per market.
    Surrender,
    /// Where voluntarily cancelled units rest, per market.
    Cancellation,
}

impl AccountKind {
    pub const ALL: [AccountKind; 6] = [
        AccountKind::Issuance,
        AccountKind::Reserve,
        AccountKind::Operator,
        AccountKind::Trading,
        AccountKind::Surrender,
        AccountKind::Cancellation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AccountKind::Issuance => "issuance",
            AccountKind::Reserve => "reserve",
            AccountKind::Operator => "operator",
            AccountKind::Trading => "trading",
            AccountKind::Surrender => "surrender",
            AccountKind::Cancellation => "cancellation",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.name() == text)
    }

    /// Accounts that hold units in circulation (as opposed to surrendered or cancelled ones).
    pub fn is_circulating(self) -> bool {
        !matches!(self, AccountKind::Surrender | AccountKind::Cancellation)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HolderType {
    Authority,
    /// A covered entity (key emitting unit).
    Entity,
    Institution,
    Individual,
}

impl HolderType {
    pub fn name(self) -> &'static str {
        match self {
            HolderType::Authority => "authority",
            HolderType::Entity => "entity",
            HolderType::Institution => "institution",
            HolderType::Individual => "individual",
        }
    }

    pub fn parse(text: &str) -> Option<HolderType> {
        [HolderType::Authority, HolderType::Entity, HolderType::Institution, HolderType::Individual].into_iter().find(|h| h.name() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountStatus {
    Open,
    /// May receive units but not send them (e.g. pending an investigation).
    Blocked,
    /// Neither sends nor receives; only an empty account may be closed.
    Closed,
}

impl AccountStatus {
    pub fn name(self) -> &'static str {
        match self {
            AccountStatus::Open => "open",
            AccountStatus::Blocked => "blocked",
            AccountStatus::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<AccountStatus> {
        [AccountStatus::Open, AccountStatus::Blocked, AccountStatus::Closed].into_iter().find(|s| s.name() == text)
    }
}

/// What kind of unit, independent of who issued it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UnitClass {
    Allowance,
    Offset { standard: String, project: String },
}

/// A fungible unit type: one issuing market, one class, one vintage. Serial numbers are unique
/// within the issuing market across all its unit types.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnitSpec {
    pub issuer: MarketIdx,
    pub class: UnitClass,
    pub vintage: u16,
}

/// A run of serial numbers `[start, end)`: `end - start` tonnes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Block {
    pub start: u64,
    pub end: u64,
}

impl Block {
    pub fn len(self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    pub fn contains(self, other: Block) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end - 1)
    }
}

/// The serial blocks of one transaction: usually one, kept inline; more go to the heap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxBlocks {
    One(Block),
    Many(Box<[Block]>),
}

impl TxBlocks {
    pub fn from_slice(blocks: &[Block]) -> TxBlocks {
        match blocks {
            [one] => TxBlocks::One(*one),
            many => TxBlocks::Many(many.into()),
        }
    }
}

impl std::ops::Deref for TxBlocks {
    type Target = [Block];

    fn deref(&self) -> &[Block] {
        match self {
            TxBlocks::One(block) => std::slice::from_ref(block),
            TxBlocks::Many(blocks) => blocks,
        }
    }
}

pub fn blocks_total(blocks: &[Block]) -> u64 {
    blocks.iter().map(|b| b.len()).sum()
}

/// Why units are held aside in a pending transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PendingPurpose {
    /// Exchange settlement: reserved at order entry, posted on trade.
    Settlement,
    /// Collateral for a loan: locked, still owned, released or enforced later.
    Pledge,
    /// A transfer waiting for approval (four-eyes, transfer delay).
    Approval,
    /// Any other escrow.
    Escrow,
}

impl PendingPurpose {
    pub fn name(self) -> &'static str {
        match self {
            PendingPurpose::Settlement => "settlement",
            PendingPurpose::Pledge => "pledge",
            PendingPurpose::Approval => "approval",
            PendingPurpose::Escrow => "escrow",
        }
    }

    pub fn parse(text: &str) -> Option<PendingPurpose> {
        [PendingPurpose::Settlement, PendingPurpose::Pledge, PendingPurpose::Approval, PendingPurpose::Escrow]
            .into_iter()
            .find(|p| p.name() == text)
    }
}

/// The kind of a registry transaction, as recorded in the transaction log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxKind {
    Issuance,
    Allocation,
    Transfer,
    Surrender {
        compliance_year: u16,
    },
    Cancellation,
    /// A pending transfer that was posted.
    PendingPost,
    /// A reversing record that undoes the named transaction.
    Reversal {
        of: TxId,
    },
    /// The reversing record of an issuance: the units leave existence.
    IssuanceReversal {
        of: TxId,
    },
    /// Units taken out of circulation by the market authority (`Command::Withdraw`).
    Withdrawal,
}

impl TxKind {
    pub fn name(self) -> &'static str {
        match self {
            TxKind::Issuance => "issuance",
            TxKind::Allocation => "allocation",
            TxKind::Transfer => "transfer",
            TxKind::Surrender { .. } => "surrender",
            TxKind::Cancellation => "cancellation",
            TxKind::PendingPost => "pending-post",
            TxKind::Reversal { .. } => "reversal",
            TxKind::IssuanceReversal { .. } => "issuance-reversal",
            TxKind::Withdrawal => "withdrawal",
        }
    }
}
