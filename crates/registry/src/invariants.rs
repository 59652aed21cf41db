//! The full invariant check: everything the incremental asserts rely on, recomputed from scratch.

use crate::model::{AccountKind, Block, MarketIdx, TxKind, UnitTypeIdx};
use crate::registry::RegistryParts;
use ahash::AHashMap;

pub(crate) fn check(r: RegistryParts<'_>) -> Result<(), String> {
    let mut circulating = vec![0u64; r.units.len()];
    let mut surrendered = vec![0u64; r.units.len()];
    let mut cancelled = vec![0u64; r.units.len()];
    let mut account_totals = vec![0u64; r.accounts.len()];
    let mut encumbered: AHashMap<(u32, u32), u64> = AHashMap::new();
    // Every serial block that exists, by issuing market, with its unit type.
    let mut serials: Vec<Vec<(Block, UnitTypeIdx)>> = vec![Vec::new(); r.markets.len()];

    for p in r.pendings.values().map(|p| (p.from, p.unit, &p.blocks)).chain(r.freezes.values().map(|f| (f.account, f.unit, &f.blocks))) {
        let (account, unit, blocks) = p;
        *encumbered.entry((account.0, unit.0)).or_insert(0) += blocks.iter().map(|b| b.len()).sum::<u64>();
        let issuer = r.units[unit.0 as usize].spec.issuer;
        serials[issuer.0 as usize].extend(blocks.iter().map(|b| (*b, unit)));
    }
    for &((account, unit), holding) in &r.holdings {
        let free = holding.recount_free();
        if free != holding.free_total() {
            return Err(format!("holding {}/{}: free blocks sum to {free}, recorded {}", account.0, unit.0, holding.free_total()));
        }
        let aside = encumbered.get(&(account.0, unit.0)).copied().unwrap_or(0);
        if aside != holding.encumbered_total {
            return Err(format!(
                "holding {}/{}: pending and frozen blocks sum to {aside}, recorded {}",
                account.0, unit.0, holding.encumbered_total
            ));
        }
        let total = holding.total();
        account_totals[account.0 as usize] += total;
        match r.accounts[account.0 as usize].kind {
            AccountKind::Surrender => surrendered[unit.0 as usize] += total,
            AccountKind::Cancellation => cancelled[unit.0 as usize] += total,
            _ => circulating[unit.0 as usize] += total,
        }
        let issuer = r.units[unit.0 as usize].spec.issuer;
        serials[issuer.0 as usize].extend(holding.free_blocks().map(|b| (*b, unit)));
    }
    for (i, u) in r.units.iter().enumerate() {
        let counted = (circulating[i], surrendered[i], cancelled[i]);
        if counted != (u.circulating, u.surrendered, u.cancelled) {
            return Err(format!(
                "unit type {i}: holdings give (circulating, surrendered, cancelled) = {counted:?}, counters say ({}, {}, {})",
                u.circulating, u.surrendered, u.cancelled
            ));
        }
        if u.issued != u.circulating + u.surrendered + u.cancelled {
            return Err(format!(
                "unit type {i}: issued {} != circulating {} + surrendered {} + cancelled {}",
                u.issued, u.circulating, u.surrendered, u.cancelled
            ));
        }
    }
    for (i, a) in r.accounts.iter().enumerate() {
        if a.units_held != account_totals[i] {
            return Err(format!("account {}: holds {} by its holdings, {} by its counter", a.number, account_totals[i], a.units_held));
        }
        if a.representatives.is_empty() {
            return Err(format!("account {} has no representative", a.number));
        }
    }
    check_serials(&r, serials)?;
    check_surrendered(&r)
}

/// Serial blocks never overlap, and each lies inside a live issuance of its own unit type.
fn check_serials(r: &RegistryParts<'_>, mut serials: Vec<Vec<(Block, UnitTypeIdx)>>) -> Result<(), String> {
    let mut issued: Vec<Vec<(Block, UnitTypeIdx)>> = vec![Vec::new(); r.markets.len()];
    for tx in r.txs.iter().filter(|t| t.kind == TxKind::Issuance) {
        let issuer = r.units[tx.unit.0 as usize].spec.issuer;
        issued[issuer.0 as usize].extend(tx.blocks.iter().map(|b| (*b, tx.unit)));
    }
    // Retired serials leave existence: they must not be held anywhere.
    let mut retired: Vec<Vec<Block>> = vec![Vec::new(); r.markets.len()];
    for tx in r.txs.iter() {
        if let TxKind::IssuanceReversal { .. } = tx.kind {
            let issuer = r.units[tx.unit.0 as usize].spec.issuer;
            retired[issuer.0 as usize].extend(tx.blocks.iter().copied());
        }
    }
    for (m, blocks) in serials.iter_mut().enumerate() {
        let market = MarketIdx(m as u16);
        blocks.sort_unstable();
        let ranges = &mut issued[m];
        ranges.sort_unstable();
        // Consecutive issuances of one unit type get contiguous serials, and a holding merges
        // contiguous blocks, so a held block may span several issuances: coalesce them.
        ranges.dedup_by(|next, prev| {
            let joins = prev.1 == next.1 && prev.0.end == next.0.start;
            if joins {
                prev.0.end = next.0.end;
            }
            joins
        });
        let mut held = 0u64;
        for pair in blocks.windows(2) {
            if pair[0].0.end > pair[1].0.start {
                return Err(format!("market {}: serial blocks {} and {} overlap", r.markets[m].spec.code, pair[0].0, pair[1].0));
            }
        }
        for (block, unit) in blocks.iter() {
            held += block.len();
            let i = ranges.partition_point(|(b, _)| b.start <= block.start);
            let inside = i > 0 && ranges[i - 1].0.contains(*block) && ranges[i - 1].1 == *unit;
            if !inside {
                return Err(format!(
                    "market {}: serial block {block} of unit type {} was never issued as that unit",
                    r.markets[m].spec.code, unit.0
                ));
            }
            if retired[m].iter().any(|x| x.start < block.end && block.start < x.end) {
                return Err(format!("market {}: serial block {block} is held but was retired", r.markets[m].spec.code));
            }
            if block.end > r.markets[m].next_serial {
                return Err(format!("market {}: serial block {block} is beyond the next serial", r.markets[m].spec.code));
            }
        }
        let expected: u64 = r.units.iter().filter(|u| u.spec.issuer == market).map(|u| u.issued).sum();
        if held != expected {
            return Err(format!("market {}: {held} serials held, {expected} issued", r.markets[m].spec.code));
        }
    }
    Ok(())
}

fn check_surrendered(r: &RegistryParts<'_>) -> Result<(), String> {
    let mut expected: AHashMap<(u32, u16), u64> = AHashMap::new();
    for tx in r.txs {
        if let (TxKind::Surrender { compliance_year }, Some(from), None) = (tx.kind, tx.from, tx.reversed_by) {
            *expected.entry((from.0, compliance_year)).or_insert(0) += tx.blocks.iter().map(|b| b.len()).sum::<u64>();
        }
    }
    for (&(account, year), &n) in r.surrendered {
        if expected.get(&(account.0, year)).copied().unwrap_or(0) != n {
            return Err(format!(
                "account {}: surrendered for {year} recorded {n}, transactions give {:?}",
                r.accounts[account.0 as usize].number,
                expected.get(&(account.0, year))
            ));
        }
    }
    for (&(account, year), &n) in &expected {
        if r.surrendered.get(&(crate::model::AccountIdx(account), year)).copied().unwrap_or(0) != n {
            return Err(format!("account {}: surrender for {year} of {n} t not recorded", r.accounts[account as usize].number));
        }
    }
    Ok(())
}
