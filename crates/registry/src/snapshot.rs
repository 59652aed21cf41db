//! A canonical, ordered image of the registry state. It is what snapshots store, and its
//! SHA-256 is the state hash that proves a replayed registry equals the live one.

use crate::holding::Holding;
use crate::model::{AccountIdx, UnitTypeIdx};
use crate::registry::{Account, Freeze, MarketState, Pending, Receipt, Registry, TxRecord, UnitTypeState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the snapshot encoding; bump when a field changes.
pub const SNAPSHOT_FORMAT: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    pub seq: u64,
    pub admins: Vec<String>,
    pub markets: Vec<MarketState>,
    pub accounts: Vec<Account>,
    pub units: Vec<UnitTypeState>,
    pub holdings: Vec<((AccountIdx, UnitTypeIdx), Holding)>,
    pub pendings: Vec<(String, Pending)>,
    pub freezes: Vec<(String, Freeze)>,
    pub txs: Vec<TxRecord>,
    pub surrendered: Vec<((AccountIdx, u16), u64)>,
    /// Idempotency index: (command key, fingerprint, receipt), by key.
    pub commands: Vec<(u128, u64, Receipt)>,
}

impl Snapshot {
    pub(crate) fn of(registry: &Registry) -> Snapshot {
        let p = registry.parts();
        let mut holdings: Vec<_> = p.holdings.iter().map(|(k, v)| (*k, (*v).clone())).collect();
        holdings.sort_unstable_by_key(|(k, _)| *k);
        let mut pendings: Vec<_> = p.pendings.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        pendings.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut freezes: Vec<_> = p.freezes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        freezes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut surrendered: Vec<_> = p.surrendered.iter().map(|(k, v)| (*k, *v)).collect();
        surrendered.sort_unstable();
        let mut commands = p.commands;
        commands.sort_unstable_by_key(|c| c.0);
        Snapshot {
            format: SNAPSHOT_FORMAT,
            seq: p.seq,
            admins: p.admins.to_vec(),
            markets: p.markets.to_vec(),
            accounts: p.accounts.to_vec(),
            units: p.units.to_vec(),
            holdings,
            pendings,
            freezes,
            txs: p.txs.to_vec(),
            surrendered,
            commands,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("snapshot encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        let snapshot: Snapshot = postcard::from_bytes(bytes).map_err(|e| format!("snapshot does not decode: {e}"))?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(format!("snapshot format {} is not the supported {SNAPSHOT_FORMAT}", snapshot.format));
        }
        Ok(snapshot)
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    pub fn into_registry(self) -> Registry {
        Registry::from_parts(
            self.admins,
            self.markets,
            self.accounts,
            self.units,
            self.holdings,
            self.pendings,
            self.freezes,
            self.txs,
            self.surrendered,
            self.commands,
            self.seq,
        )
    }
}

impl Registry {
    /// SHA-256 of the canonical snapshot: equal hashes mean equal registries.
    pub fn state_hash(&self) -> [u8; 32] {
        self.snapshot().hash()
    }
}
