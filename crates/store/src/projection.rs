//! The query tables' view of a batch: which account, holding and transaction rows it changes.

use crate::backend::{AccountRow, HoldingRow, TxRow, UnitRow};
use ets_core::Timestamp;
use ets_registry::{AccountIdx, Event, Registry, TxId, TxKind, UnitTypeIdx};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Projection {
    pub units: Vec<UnitRow>,
    pub accounts: Vec<AccountRow>,
    pub holdings: Vec<HoldingRow>,
    pub transactions: Vec<TxRow>,
}

impl Projection {
    /// Builds the rows for records `(seq, at, events)` already applied to `registry`.
    pub fn build<'a>(registry: &Registry, records: impl IntoIterator<Item = (u64, Timestamp, &'a [Event])>) -> Projection {
        let mut accounts = BTreeSet::new();
        let mut holdings: BTreeSet<(AccountIdx, UnitTypeIdx)> = BTreeSet::new();
        let mut transactions = Vec::new();
        let mut units = Vec::new();
        let mut names = UnitNames::default();
        for (seq, at, events) in records {
            for event in events {
                match event {
                    Event::AccountOpened { account, .. }
                    | Event::AccountStatusSet { account, .. }
                    | Event::RepresentativeAdded { account, .. }
                    | Event::RepresentativeRemoved { account, .. } => {
                        accounts.insert(*account);
                    }
                    Event::Issued { tx, unit, account, .. } | Event::Retired { tx, unit, account, .. } => {
                        holdings.insert((*account, *unit));
                        transactions.push(tx_row(registry, *tx, seq, at, &mut names));
                    }
                    Event::Moved { tx, from, to, unit, .. } => {
                        holdings.insert((*from, *unit));
                        holdings.insert((*to, *unit));
                        transactions.push(tx_row(registry, *tx, seq, at, &mut names));
                    }
                    Event::PendingPosted { tx, from, to, unit, .. } | Event::PendingDelivered { tx, from, to, unit, .. } => {
                        holdings.insert((*from, *unit));
                        holdings.insert((*to, *unit));
                        transactions.push(tx_row(registry, *tx, seq, at, &mut names));
                    }
                    Event::PendingCreated { from, unit, .. } | Event::PendingVoided { from, unit, .. } => {
                        holdings.insert((*from, *unit));
                    }
                    Event::Frozen { account, unit, .. } | Event::Unfrozen { account, unit, .. } => {
                        holdings.insert((*account, *unit));
                    }
                    Event::UnitTypeRegistered { unit, spec } => units.push(UnitRow {
                        id: unit.0,
                        name: registry.unit_name(*unit),
                        market: registry.market(spec.issuer).spec.code.clone(),
                        vintage: spec.vintage,
                    }),
                    Event::RegistryInitialised { .. }
                    | Event::MarketsLinked { .. }
                    | Event::MarketAdded { .. }
                    | Event::CapSet { .. }
                    | Event::UnitsRecognised { .. } => {}
                }
            }
        }
        Projection {
            units,
            accounts: accounts.into_iter().map(|a| account_row(registry, a)).collect(),
            holdings: holdings.into_iter().map(|(a, u)| holding_row_named(registry, a, u, names.get(registry, u))).collect(),
            transactions,
        }
    }
}

pub fn account_row(registry: &Registry, idx: AccountIdx) -> AccountRow {
    let a = registry.account(idx);
    AccountRow {
        id: idx.0,
        number: a.number.clone(),
        market: registry.market(a.market).spec.code.clone(),
        kind: a.kind.name().to_string(),
        holder: a.holder.clone(),
        holder_type: a.holder_type.name().to_string(),
        status: a.status.name().to_string(),
        representatives: a.representatives.join(","),
    }
}

/// Unit names formatted once per batch rather than once per row.
#[derive(Default)]
struct UnitNames(Vec<Option<String>>);

impl UnitNames {
    fn get(&mut self, registry: &Registry, unit: UnitTypeIdx) -> String {
        let i = unit.0 as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        self.0[i].get_or_insert_with(|| registry.unit_name(unit)).clone()
    }
}

pub fn holding_row(registry: &Registry, account: AccountIdx, unit: UnitTypeIdx) -> HoldingRow {
    holding_row_named(registry, account, unit, registry.unit_name(unit))
}

fn holding_row_named(registry: &Registry, account: AccountIdx, unit: UnitTypeIdx, name: String) -> HoldingRow {
    let h = registry.holding(account, unit);
    HoldingRow {
        account: registry.account(account).number.clone(),
        unit: name,
        free: h.map_or(0, |h| h.free_total()),
        encumbered: h.map_or(0, |h| h.encumbered_total),
    }
}

fn tx_row(registry: &Registry, tx: TxId, seq: u64, at: Timestamp, names: &mut UnitNames) -> TxRow {
    let record = &registry.transactions()[(tx.0 - 1) as usize];
    let number = |a: u32| registry.account(AccountIdx(a)).number.clone();
    let (from_id, to_id) = match record.kind {
        TxKind::IssuanceReversal { .. } => (Some(record.to.0), None),
        _ => (record.from.map(|a| a.0), Some(record.to.0)),
    };
    TxRow {
        tx: tx.0,
        from_id,
        to_id,
        unit_id: record.unit.0,
        seq,
        at,
        kind: record.kind.name().to_string(),
        from_account: from_id.map(number),
        to_account: to_id.map(number),
        unit: names.get(registry, record.unit),
        quantity: record.blocks.iter().map(|b| b.len()).sum(),
        compliance_year: match record.kind {
            TxKind::Surrender { compliance_year } => Some(compliance_year),
            _ => None,
        },
        reverses: match record.kind {
            TxKind::Reversal { of } | TxKind::IssuanceReversal { of } => Some(of.0),
            _ => None,
        },
    }
}
