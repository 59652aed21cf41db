//! What clients ask the registry to do, and how the registry says no.

use crate::model::{AccountKind, AccountStatus, HolderType, MarketSpec, PendingPurpose, TxId};
use ets_core::Tonnes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A command with the client-chosen idempotency id and the person who asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub actor: String,
    pub command: Command,
}

/// Names a unit type the way people write it: `CEA:2024` (allowance product code and vintage)
/// or `CCER:PROJECT:2024` (offset standard, project, vintage). Codes are registry-wide unique,
/// so the code names the issuing market.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UnitRef {
    pub code: String,
    pub project: Option<String>,
    pub vintage: u16,
}

impl UnitRef {
    pub fn allowance(code: &str, vintage: u16) -> UnitRef {
        UnitRef { code: code.to_string(), project: None, vintage }
    }

    pub fn offset(standard: &str, project: &str, vintage: u16) -> UnitRef {
        UnitRef { code: standard.to_string(), project: Some(project.to_string()), vintage }
    }

    pub fn parse(text: &str) -> Result<UnitRef, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let vintage = |v: &str| {
            v.parse::<u16>()
                .ok()
                .filter(|y| (1990..=2200).contains(y))
                .ok_or_else(|| format!("unit '{text}': vintage '{v}' must be a year such as 2024"))
        };
        let nonempty = |part: &str, what: &str| {
            if part.is_empty() {
                Err(format!("unit '{text}': {what} is empty"))
            } else {
                Ok(part.to_string())
            }
        };
        match parts.as_slice() {
            [code, year] => Ok(UnitRef { code: nonempty(code, "product code")?, project: None, vintage: vintage(year)? }),
            [code, project, year] => Ok(UnitRef {
                code: nonempty(code, "offset standard")?,
                project: Some(nonempty(project, "project")?),
                vintage: vintage(year)?,
            }),
            _ => Err(format!(
                "unit '{text}' must be CODE:VINTAGE for allowances (CEA:2024) or STANDARD:PROJECT:VINTAGE for offsets (CCER:P001:2024)"
            )),
        }
    }
}

impl fmt::Display for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.project {
            None => write!(f, "{}:{}", self.code, self.vintage),
            Some(p) => write!(f, "{}:{}:{}", self.code, p, self.vintage),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// First command of every registry: names the registry administrators.
    InitRegistry {
        admins: Vec<String>,
    },
    AddMarket(MarketSpec),
    /// The most allowances of one vintage the market may ever issue.
    SetCap {
        market: String,
        vintage: u16,
        cap: Tonnes,
    },
    /// Lets `market` accept units issued by `issuer` (holding and surrender). The hook through
    /// which rulebooks state dual-track recognition.
    RecogniseUnits {
        market: String,
        issuer: String,
    },
    OpenAccount {
        market: String,
        kind: AccountKind,
        holder: String,
        holder_type: HolderType,
        representatives: Vec<String>,
    },
    SetAccountStatus {
        account: String,
        status: AccountStatus,
    },
    AddRepresentative {
        account: String,
        person: String,
    },
    RemoveRepresentative {
        account: String,
        person: String,
    },
    /// Creates units in the market's issuance (or reserve) account.
    Issue {
        unit: UnitRef,
        quantity: Tonnes,
        to: Option<String>,
    },
    /// Free allocation from the authority's issuance or reserve account to a holder.
    Allocate {
        from: String,
        to: String,
        unit: UnitRef,
        quantity: Tonnes,
    },
    Transfer {
        from: String,
        to: String,
        unit: UnitRef,
        quantity: Tonnes,
    },
    Surrender {
        account: String,
        unit: UnitRef,
        quantity: Tonnes,
        compliance_year: u16,
    },
    Cancel {
        account: String,
        unit: UnitRef,
        quantity: Tonnes,
    },
    CreatePending {
        pending: String,
        from: String,
        to: String,
        unit: UnitRef,
        quantity: Tonnes,
        purpose: PendingPurpose,
    },
    PostPending {
        pending: String,
    },
    VoidPending {
        pending: String,
    },
    /// Judicial freeze of a quantity held in an account.
    Freeze {
        freeze: String,
        account: String,
        unit: UnitRef,
        quantity: Tonnes,
        order: String,
    },
    Unfreeze {
        freeze: String,
    },
    /// Correction: a reversing record that undoes an earlier transaction.
    Reverse {
        tx: TxId,
        reason: String,
    },
    /// The market authority takes free units out of a holder's account into the market's
    /// cancellation account, where they leave circulation: a pilot's allowances withdrawn from
    /// an entity that moved to the national market (Tianjin), or converted into another
    /// market's units. The command id names the decision it carries out.
    Withdraw {
        account: String,
        unit: UnitRef,
        quantity: Tonnes,
    },
    /// Links two markets (a registry administrator carries out the agreement): each accepts the
    /// other's units, and transfers between their holders are limited, if `quota` is given, to
    /// that many tonnes in total across the link (a restricted link).
    LinkMarkets {
        a: String,
        b: String,
        quota: Option<Tonnes>,
    },
    /// Delivers part (or all) of a pending transfer's units to `to` instead of its destination:
    /// exchange settlement, where a seller lodges units with the exchange as one pending transfer
    /// and the exchange delivers what was sold, tonne-exact, leaving the rest pending. The
    /// pending's destination (the exchange's clearing account) or the market authority may
    /// deliver; the owner keeps title to what is not delivered.
    DeliverPending {
        pending: String,
        quantity: Tonnes,
        to: String,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::InitRegistry { .. } => "init-registry",
            Command::AddMarket(_) => "add-market",
            Command::SetCap { .. } => "set-cap",
            Command::RecogniseUnits { .. } => "recognise-units",
            Command::OpenAccount { .. } => "open-account",
            Command::SetAccountStatus { .. } => "set-account-status",
            Command::AddRepresentative { .. } => "add-representative",
            Command::RemoveRepresentative { .. } => "remove-representative",
            Command::Issue { .. } => "issue",
            Command::Allocate { .. } => "allocate",
            Command::Transfer { .. } => "transfer",
            Command::Surrender { .. } => "surrender",
            Command::Cancel { .. } => "cancel",
            Command::CreatePending { .. } => "create-pending",
            Command::PostPending { .. } => "post-pending",
            Command::VoidPending { .. } => "void-pending",
            Command::DeliverPending { .. } => "deliver-pending",
            Command::Freeze { .. } => "freeze",
            Command::Unfreeze { .. } => "unfreeze",
            Command::Reverse { .. } => "reverse",
            Command::Withdraw { .. } => "withdraw",
            Command::LinkMarkets { .. } => "link-markets",
        }
    }
}

/// The class of a rejection; the CLI maps each to an exit code and the HTTP API to a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectKind {
    /// The input is malformed (bad identifier, zero quantity, unknown unit code format).
    Invalid,
    /// A named market, account, unit type, pending transfer, freeze or transaction does not exist.
    NotFound,
    /// The actor may not do this.
    Forbidden,
    /// The operation breaks a registry rule (insufficient holdings, closed account, wrong market, cap).
    Refused,
    /// The idempotency id was already used for a different command.
    Conflict,
}

/// A refused registry command.
pub type Rejection = ets_core::Rejection<RejectKind>;
