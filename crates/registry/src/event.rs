//! What happened: the facts the journal records. State is a fold of these.

use crate::model::{
    AccountIdx, AccountKind, AccountStatus, Block, HolderType, MarketIdx, MarketSpec, PendingPurpose, TxId, TxKind, UnitSpec, UnitTypeIdx,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    RegistryInitialised {
        admins: Vec<String>,
    },
    MarketAdded {
        market: MarketIdx,
        spec: MarketSpec,
    },
    CapSet {
        market: MarketIdx,
        vintage: u16,
        cap: u64,
    },
    UnitsRecognised {
        market: MarketIdx,
        issuer: MarketIdx,
    },
    AccountOpened {
        account: AccountIdx,
        number: String,
        market: MarketIdx,
        kind: AccountKind,
        holder: String,
        holder_type: HolderType,
        representatives: Vec<String>,
    },
    AccountStatusSet {
        account: AccountIdx,
        status: AccountStatus,
    },
    RepresentativeAdded {
        account: AccountIdx,
        person: String,
    },
    RepresentativeRemoved {
        account: AccountIdx,
        person: String,
    },
    UnitTypeRegistered {
        unit: UnitTypeIdx,
        spec: UnitSpec,
    },
    /// New serial numbers come into existence in `account`.
    Issued {
        tx: TxId,
        unit: UnitTypeIdx,
        account: AccountIdx,
        block: Block,
    },
    /// Serial blocks move from one account's free holding to another's.
    Moved {
        tx: TxId,
        kind: TxKind,
        from: AccountIdx,
        to: AccountIdx,
        unit: UnitTypeIdx,
        blocks: Vec<Block>,
    },
    /// Serial blocks leave existence (reversal of an issuance).
    Retired {
        tx: TxId,
        of: TxId,
        unit: UnitTypeIdx,
        account: AccountIdx,
        blocks: Vec<Block>,
    },
    PendingCreated {
        pending: String,
        purpose: PendingPurpose,
        from: AccountIdx,
        to: AccountIdx,
        unit: UnitTypeIdx,
        blocks: Vec<Block>,
    },
    /// Names the accounts and unit again so that each record explains itself.
    PendingPosted {
        pending: String,
        tx: TxId,
        from: AccountIdx,
        to: AccountIdx,
        unit: UnitTypeIdx,
    },
    PendingVoided {
        pending: String,
        from: AccountIdx,
        unit: UnitTypeIdx,
    },
    Frozen {
        freeze: String,
        account: AccountIdx,
        unit: UnitTypeIdx,
        blocks: Vec<Block>,
        order: String,
    },
    Unfrozen {
        freeze: String,
        account: AccountIdx,
        unit: UnitTypeIdx,
    },
    /// Two markets linked; `a` < `b`.
    MarketsLinked {
        a: MarketIdx,
        b: MarketIdx,
        quota: Option<u64>,
    },
    /// Part of a pending transfer delivered to `to`: `blocks` leave the pending (and `from`);
    /// the pending closes when nothing is left.
    PendingDelivered {
        pending: String,
        tx: TxId,
        from: AccountIdx,
        to: AccountIdx,
        unit: UnitTypeIdx,
        blocks: Vec<Block>,
    },
}
