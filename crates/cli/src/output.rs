//! How results look: aligned tables for people, JSON (`--json`) for programs. Only this module
//! decides the wire shape; registry types are converted here by hand.

use crate::{describe, CliError};
use ets_core::{Date, Tonnes};
use ets_registry::journal::hex;
use ets_registry::{AccountIdx, Envelope, Registry};
use ets_store::{AccountRow, AuditReport, MrvAudit, Submitted, TxRow};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub struct Output {
    json: bool,
}

/// Renders rows as a left-aligned table with a header; numbers are right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let numeric =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.' || c == '%' || c == '-' || c == '+');
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                text.push_str("  ");
            }
            if numeric(cell) {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    line(widths.iter().map(|w| "-".repeat(*w)).collect(), &mut out);
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

/// A balance in tonnes; negative only if history rows are missing, and then shown as such.
fn signed_tonnes(value: i128) -> String {
    let shown = Tonnes(value.unsigned_abs().min(u128::from(u64::MAX)) as u64).to_string();
    if value < 0 {
        format!("-{shown}")
    } else {
        shown
    }
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A one-line message for people; JSON output gets `{"message": ...}`.
    pub fn line(&self, text: &str) {
        if self.json {
            self.print_json(json!({ "message": text }));
        } else {
            println!("{text}");
        }
    }

    pub fn print_json(&self, value: Value) {
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
    }

    pub fn error(&self, e: &CliError) {
        if self.json {
            let value = json!({"error": {"code": e.code as u8, "kind": format!("{:?}", e.code).to_lowercase(), "message": e.message}});
            eprintln!("{}", serde_json::to_string(&value).expect("json"));
        } else {
            eprintln!("error: {}", e.message);
        }
    }

    pub fn submitted(&self, registry: &Registry, envelope: &Envelope, s: &Submitted) {
        let r = s.receipt;
        if self.json {
            self.print_json(json!({
                "status": if s.duplicate { "duplicate" } else { "accepted" },
                "command": envelope.command.name(),
                "command_id": envelope.id,
                "seq": r.seq,
                "tx": r.tx.map(|t| t.0),
                "account": r.account.map(|a| registry.account(a).number.clone()),
                "market": r.market.map(|m| registry.market(m).spec.code.clone()),
            }));
        } else if s.duplicate {
            println!("already applied: command id '{}' was accepted before ({}); nothing changed", envelope.id, describe(registry, s));
        } else {
            println!("accepted {} '{}': {}", envelope.command.name(), envelope.id, describe(registry, s));
        }
    }

    pub fn markets(&self, registry: &Registry) {
        let mut rows = Vec::new();
        let mut values = Vec::new();
        for (i, m) in registry.markets().iter().enumerate() {
            let idx = ets_registry::MarketIdx(i as u16);
            let accounts = registry.accounts().iter().filter(|a| a.market == idx).count();
            let issued: u64 = registry.units().iter().filter(|u| u.spec.issuer == idx).map(|u| u.issued).sum();
            let surrendered: u64 = registry.units().iter().filter(|u| u.spec.issuer == idx).map(|u| u.surrendered).sum();
            let level = format!("{:?}", m.spec.level).to_lowercase();
            rows.push(vec![
                m.spec.code.clone(),
                m.spec.name.clone(),
                level.clone(),
                m.spec.allowance_code.clone(),
                m.spec.offset_standards.join(","),
                accounts.to_string(),
                Tonnes(issued).to_string(),
                Tonnes(surrendered).to_string(),
            ]);
            values.push(json!({
                "code": m.spec.code, "name": m.spec.name, "level": level, "allowance_code": m.spec.allowance_code,
                "offset_standards": m.spec.offset_standards, "individuals_may_trade": m.spec.individuals_may_trade,
                "authorities": m.spec.authorities, "accounts": accounts, "issued_t": issued, "surrendered_t": surrendered,
                "caps": m.caps.iter().map(|(v, c)| json!({"vintage": v, "cap_t": c})).collect::<Vec<_>>(),
            }));
        }
        if self.json {
            self.print_json(Value::Array(values));
        } else {
            print!("{}", table(&["CODE", "NAME", "LEVEL", "ALLOWANCE", "OFFSETS", "ACCOUNTS", "ISSUED_T", "SURRENDERED_T"], &rows));
        }
    }

    pub fn accounts(&self, rows: &[AccountRow]) {
        if self.json {
            self.print_json(Value::Array(
                rows.iter()
                    .map(|a| {
                        json!({"number": a.number, "market": a.market, "kind": a.kind, "holder": a.holder,
                               "holder_type": a.holder_type, "status": a.status, "representatives": a.representatives.split(',').collect::<Vec<_>>()})
                    })
                    .collect(),
            ));
        } else {
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|a| {
                    vec![a.number.clone(), a.market.clone(), a.kind.clone(), a.holder.clone(), a.holder_type.clone(), a.status.clone()]
                })
                .collect();
            print!("{}", table(&["ACCOUNT", "MARKET", "KIND", "HOLDER", "HOLDER_TYPE", "STATUS"], &rows));
        }
    }

    pub fn holdings(&self, registry: &Registry, account: AccountIdx, with_blocks: bool) {
        let acc = registry.account(account);
        let holdings = registry.holdings_of(account);
        if self.json {
            let list: Vec<Value> = holdings
                .iter()
                .map(|(u, h)| {
                    let mut v = json!({"unit": registry.unit_name(*u), "free_t": h.free_total(), "encumbered_t": h.encumbered_total, "total_t": h.total()});
                    if with_blocks {
                        v["free_blocks"] = Value::Array(h.free_blocks().map(|b| json!({"first": b.start, "last": b.end - 1, "tonnes": b.len()})).collect());
                    }
                    v
                })
                .collect();
            self.print_json(json!({"account": acc.number, "market": registry.market(acc.market).spec.code, "kind": acc.kind.name(),
                                   "holder": acc.holder, "status": acc.status.name(), "holdings": list}));
            return;
        }
        println!(
            "{} ({} {} account of {}, {})",
            acc.number,
            registry.market(acc.market).spec.code,
            acc.kind.name(),
            acc.holder,
            acc.status.name()
        );
        let rows: Vec<Vec<String>> = holdings
            .iter()
            .map(|(u, h)| {
                vec![
                    registry.unit_name(*u),
                    Tonnes(h.free_total()).to_string(),
                    Tonnes(h.encumbered_total).to_string(),
                    Tonnes(h.total()).to_string(),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("no holdings");
        } else {
            print!("{}", table(&["UNIT", "FREE_T", "PENDING_OR_FROZEN_T", "TOTAL_T"], &rows));
        }
        if with_blocks {
            for (u, h) in &holdings {
                let issuer = &registry.market(registry.unit(*u).spec.issuer).spec.code;
                let blocks: Vec<String> = h.free_blocks().map(|b| format!("{issuer}:{b}")).collect();
                println!("{} free serial blocks: {}", registry.unit_name(*u), blocks.join(" "));
            }
        }
    }

    pub fn history(&self, account: &str, at: Option<Date>, rows: &[TxRow]) {
        let mut balances: BTreeMap<String, i128> = BTreeMap::new();
        let mut lines = Vec::new();
        let mut values = Vec::new();
        for r in rows {
            let incoming = r.to_account.as_deref() == Some(account);
            let outgoing = r.from_account.as_deref() == Some(account);
            let delta: i128 = match (incoming, outgoing) {
                (true, false) => r.quantity as i128,
                (false, true) => -(r.quantity as i128),
                _ => 0,
            };
            let balance = balances.entry(r.unit.clone()).or_insert(0);
            *balance += delta;
            let counterparty = if incoming { r.from_account.clone() } else { r.to_account.clone() }.unwrap_or_else(|| "-".into());
            lines.push(vec![
                format!("T{}", r.tx),
                r.at.to_string(),
                match (r.kind.as_str(), r.compliance_year, r.reverses) {
                    (k, Some(y), _) => format!("{k} {y}"),
                    (k, _, Some(of)) => format!("{k} of T{of}"),
                    (k, _, _) => k.to_string(),
                },
                counterparty.clone(),
                r.unit.clone(),
                format!("{}{}", if delta < 0 { "-" } else { "+" }, Tonnes(r.quantity)),
                signed_tonnes(*balance),
            ]);
            values.push(json!({"tx": r.tx, "seq": r.seq, "at": r.at.to_string(), "kind": r.kind, "counterparty": counterparty,
                               "unit": r.unit, "change_t": delta as i64, "balance_t": *balance as i64,
                               "compliance_year": r.compliance_year, "reverses": r.reverses}));
        }
        let when = at.map_or("now".to_string(), |d| format!("end of {d}"));
        if self.json {
            let balance_list: Vec<Value> =
                balances.iter().filter(|(_, b)| **b != 0).map(|(u, b)| json!({"unit": u, "balance_t": *b as i64})).collect();
            self.print_json(json!({"account": account, "as_of": when, "transactions": values, "balances": balance_list}));
            return;
        }
        if lines.is_empty() {
            println!("{account}: no transactions up to {when}");
        } else {
            print!("{}", table(&["TX", "TIME", "KIND", "COUNTERPARTY", "UNIT", "CHANGE_T", "BALANCE_T"], &lines));
        }
        println!("balances of {account} at {when} (pending and frozen units included: they are still owned):");
        let nonzero: Vec<_> = balances.iter().filter(|(_, b)| **b != 0).collect();
        if nonzero.is_empty() {
            println!("  none");
        }
        for (unit, b) in nonzero {
            println!("  {unit}: {} t", signed_tonnes(*b));
        }
    }

    pub fn audit(&self, report: &AuditReport, mrv: &MrvAudit) {
        if self.json {
            self.print_json(json!({"status": "ok", "records": report.records, "head_hash": hex(&report.head_hash), "state_hash": hex(&report.state_hash),
                                   "snapshots_checked": report.snapshots_checked, "holdings_checked": report.holdings_checked, "accounts_checked": report.accounts_checked,
                                   "mrv": {"records": mrv.records, "head_hash": hex(&mrv.head_hash), "monthly_submissions": mrv.monthly_submissions, "evidence_files": mrv.evidence_files}}));
        } else {
            println!("audit ok: {} journal records, hash chain intact", report.records);
            println!("  head hash:  {}", hex(&report.head_hash));
            println!("  state hash: {} (full replay = snapshot + tail; invariants hold)", hex(&report.state_hash));
            println!(
                "  checked {} snapshots, {} holdings rows, {} account rows against the replay",
                report.snapshots_checked, report.holdings_checked, report.accounts_checked
            );
            println!("MRV journal ok: {} records, hash chain intact, every body decodes into valid data", mrv.records);
            println!("  head hash:  {}", hex(&mrv.head_hash));
            println!(
                "  {} monthly submissions; {} stored evidence files match their recorded SHA-256",
                mrv.monthly_submissions, mrv.evidence_files
            );
        }
    }
}
