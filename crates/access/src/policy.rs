//! Roles and what they may do. Deny by default: `allows` grants an action only where a role's
//! arm names it. `intended` states the same policy as a table of (role kind, action kind) →
//! `Grant`, written separately so that a test can hold one against the other.

use serde::{Deserialize, Serialize};

/// An account as an action names it: its number and the market it belongs to (the shell reads
/// the market from the registry), so a market authority is scoped to its own market's accounts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountRef {
    pub number: String,
    pub market: String,
}

impl AccountRef {
    pub fn new(number: &str, market: &str) -> AccountRef {
        AccountRef { number: number.to_string(), market: market.to_string() }
    }
}

/// An MRV entity as an action names it: the entity, its market and its compliance account (whose
/// representatives report for it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityRef {
    pub entity: String,
    pub account: AccountRef,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A market's competent authority: issues, allocates, runs auctions, reviews MRV, reads
    /// compliance, all in its own market only.
    MarketAuthority { market: String },
    /// Registry administrators: markets, accounts, users; read everything in the registry.
    RegistryAdmin,
    /// An authorised representative of one account: proposes and approves its transfers, keeps
    /// its trusted list, reports MRV data for its entity.
    AccountRepresentative { account: String },
    /// An additional (approving) representative: approves, never initiates.
    ApprovingRepresentative { account: String },
    /// An accredited verifier: verifies MRV reports (assignment is the MRV workflow's check).
    Verifier,
    /// An exchange member: places and reads its own orders.
    ExchangeMember { member: String },
    /// Reads everything, changes nothing.
    Auditor,
    /// Market data only.
    Public,
    /// The exchange's operator: opens and closes the trading day (which settles), admits
    /// members, credits deposits, pays out withdrawals, lists instruments; reads every member's
    /// exchange data. Acts at the venue as the venue's operator. Appended last: roles are
    /// stored in the access journal by variant index.
    ExchangeOperator,
    /// The finance desk's and the carbon-inclusion register's operator: sets them up, admits
    /// parties, records their cash, registers pledges and repos, marks prices, lists and
    /// settles contracts, runs the end of day, registers aggregators and verifiers; reads
    /// every party's finance data. Acts as the desk's (the register's) operator, and as
    /// nobody's account representative; the pledges and repos it registers and the end of day
    /// move the parties' units, so it is trusted with them as the desk is. Appended last.
    FinanceOperator,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKind {
    MarketAuthority,
    RegistryAdmin,
    AccountRepresentative,
    ApprovingRepresentative,
    Verifier,
    ExchangeMember,
    Auditor,
    Public,
    ExchangeOperator,
    FinanceOperator,
}

impl RoleKind {
    pub const ALL: [RoleKind; 10] = [
        RoleKind::MarketAuthority,
        RoleKind::RegistryAdmin,
        RoleKind::AccountRepresentative,
        RoleKind::ApprovingRepresentative,
        RoleKind::Verifier,
        RoleKind::ExchangeMember,
        RoleKind::Auditor,
        RoleKind::Public,
        RoleKind::ExchangeOperator,
        RoleKind::FinanceOperator,
    ];
}

impl Role {
    pub fn kind(&self) -> RoleKind {
        match self {
            Role::MarketAuthority { .. } => RoleKind::MarketAuthority,
            Role::RegistryAdmin => RoleKind::RegistryAdmin,
            Role::AccountRepresentative { .. } => RoleKind::AccountRepresentative,
            Role::ApprovingRepresentative { .. } => RoleKind::ApprovingRepresentative,
            Role::Verifier => RoleKind::Verifier,
            Role::ExchangeMember { .. } => RoleKind::ExchangeMember,
            Role::Auditor => RoleKind::Auditor,
            Role::Public => RoleKind::Public,
            Role::ExchangeOperator => RoleKind::ExchangeOperator,
            Role::FinanceOperator => RoleKind::FinanceOperator,
        }
    }

    /// The market, account or member a role is scoped to, if any.
    pub fn scope(&self) -> Option<&str> {
        match self {
            Role::MarketAuthority { market } => Some(market),
            Role::AccountRepresentative { account } | Role::ApprovingRepresentative { account } => Some(account),
            Role::ExchangeMember { member } => Some(member),
            _ => None,
        }
    }
}

/// What an endpoint needs. Each action names the market, account, entity or member it touches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    ReadMarketData,
    ReadHoldings {
        account: AccountRef,
    },
    /// Lists and details of one market's accounts.
    ReadAccounts {
        market: String,
    },
    /// Registry-wide views (all markets, all accounts, the journal).
    ReadRegistry,
    ProposeTransfer {
        account: AccountRef,
    },
    ApproveTransfer {
        account: AccountRef,
    },
    /// Propose additions to, cancel and remove entries of the account's trusted list.
    ManageTrustedList {
        account: AccountRef,
    },
    ApproveTrustedList {
        account: AccountRef,
    },
    /// Add markets, open and close accounts, change representatives.
    AdministerRegistry,
    IssueUnits {
        market: String,
    },
    /// Allocate, set caps, freeze, correct, withdraw in the market.
    ManageMarket {
        market: String,
    },
    ReadCompliance {
        market: String,
    },
    SubmitMrv {
        entity: EntityRef,
    },
    ReadMrv {
        entity: EntityRef,
    },
    VerifyMrv,
    ReviewMrv {
        market: String,
    },
    PlaceOrder {
        member: String,
    },
    ReadOrders {
        member: String,
    },
    RunAuction {
        market: String,
    },
    ManageUsers,
    ReadAudit,
    /// Run the exchange: open and close the trading day, admit members, credit deposits and
    /// pay out withdrawals, list instruments. The exchange operator's alone. Appended last.
    OperateExchange,
    /// Run the finance desk and the carbon-inclusion register as their operator (see
    /// `Role::FinanceOperator`). The finance operator's alone. Appended last.
    OperateFinance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKind {
    ReadMarketData,
    ReadHoldings,
    ReadAccounts,
    ReadRegistry,
    ProposeTransfer,
    ApproveTransfer,
    ManageTrustedList,
    ApproveTrustedList,
    AdministerRegistry,
    IssueUnits,
    ManageMarket,
    ReadCompliance,
    SubmitMrv,
    ReadMrv,
    VerifyMrv,
    ReviewMrv,
    PlaceOrder,
    ReadOrders,
    RunAuction,
    ManageUsers,
    ReadAudit,
    OperateExchange,
    OperateFinance,
}

impl ActionKind {
    pub const ALL: [ActionKind; 23] = [
        ActionKind::ReadMarketData,
        ActionKind::ReadHoldings,
        ActionKind::ReadAccounts,
        ActionKind::ReadRegistry,
        ActionKind::ProposeTransfer,
        ActionKind::ApproveTransfer,
        ActionKind::ManageTrustedList,
        ActionKind::ApproveTrustedList,
        ActionKind::AdministerRegistry,
        ActionKind::IssueUnits,
        ActionKind::ManageMarket,
        ActionKind::ReadCompliance,
        ActionKind::SubmitMrv,
        ActionKind::ReadMrv,
        ActionKind::VerifyMrv,
        ActionKind::ReviewMrv,
        ActionKind::PlaceOrder,
        ActionKind::ReadOrders,
        ActionKind::RunAuction,
        ActionKind::ManageUsers,
        ActionKind::ReadAudit,
        ActionKind::OperateExchange,
        ActionKind::OperateFinance,
    ];
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::ReadMarketData => ActionKind::ReadMarketData,
            Action::ReadHoldings { .. } => ActionKind::ReadHoldings,
            Action::ReadAccounts { .. } => ActionKind::ReadAccounts,
            Action::ReadRegistry => ActionKind::ReadRegistry,
            Action::ProposeTransfer { .. } => ActionKind::ProposeTransfer,
            Action::ApproveTransfer { .. } => ActionKind::ApproveTransfer,
            Action::ManageTrustedList { .. } => ActionKind::ManageTrustedList,
            Action::ApproveTrustedList { .. } => ActionKind::ApproveTrustedList,
            Action::AdministerRegistry => ActionKind::AdministerRegistry,
            Action::IssueUnits { .. } => ActionKind::IssueUnits,
            Action::ManageMarket { .. } => ActionKind::ManageMarket,
            Action::ReadCompliance { .. } => ActionKind::ReadCompliance,
            Action::SubmitMrv { .. } => ActionKind::SubmitMrv,
            Action::ReadMrv { .. } => ActionKind::ReadMrv,
            Action::VerifyMrv => ActionKind::VerifyMrv,
            Action::ReviewMrv { .. } => ActionKind::ReviewMrv,
            Action::PlaceOrder { .. } => ActionKind::PlaceOrder,
            Action::ReadOrders { .. } => ActionKind::ReadOrders,
            Action::RunAuction { .. } => ActionKind::RunAuction,
            Action::ManageUsers => ActionKind::ManageUsers,
            Action::ReadAudit => ActionKind::ReadAudit,
            Action::OperateExchange => ActionKind::OperateExchange,
            Action::OperateFinance => ActionKind::OperateFinance,
        }
    }

    /// The market the action touches, if any.
    pub fn market(&self) -> Option<&str> {
        match self {
            Action::ReadHoldings { account }
            | Action::ProposeTransfer { account }
            | Action::ApproveTransfer { account }
            | Action::ManageTrustedList { account }
            | Action::ApproveTrustedList { account } => Some(&account.market),
            Action::SubmitMrv { entity } | Action::ReadMrv { entity } => Some(&entity.account.market),
            Action::ReadAccounts { market }
            | Action::IssueUnits { market }
            | Action::ManageMarket { market }
            | Action::ReadCompliance { market }
            | Action::ReviewMrv { market }
            | Action::RunAuction { market } => Some(market),
            _ => None,
        }
    }

    /// The account the action touches, if any.
    pub fn account(&self) -> Option<&str> {
        match self {
            Action::ReadHoldings { account }
            | Action::ProposeTransfer { account }
            | Action::ApproveTransfer { account }
            | Action::ManageTrustedList { account }
            | Action::ApproveTrustedList { account } => Some(&account.number),
            Action::SubmitMrv { entity } | Action::ReadMrv { entity } => Some(&entity.account.number),
            _ => None,
        }
    }

    /// The exchange member the action touches, if any.
    pub fn member(&self) -> Option<&str> {
        match self {
            Action::PlaceOrder { member } | Action::ReadOrders { member } => Some(member),
            _ => None,
        }
    }
}

/// Whether any of `roles` permits `action`. Deny by default.
pub fn allows(roles: &[Role], action: &Action) -> bool {
    roles.iter().any(|role| role_allows(role, action))
}

fn role_allows(role: &Role, action: &Action) -> bool {
    use Action as A;
    match role {
        Role::Public => matches!(action, A::ReadMarketData),
        Role::Auditor => matches!(
            action,
            A::ReadMarketData
                | A::ReadHoldings { .. }
                | A::ReadAccounts { .. }
                | A::ReadRegistry
                | A::ReadCompliance { .. }
                | A::ReadMrv { .. }
                | A::ReadOrders { .. }
                | A::ReadAudit
        ),
        Role::RegistryAdmin => matches!(
            action,
            A::ReadMarketData
                | A::ReadHoldings { .. }
                | A::ReadAccounts { .. }
                | A::ReadRegistry
                | A::ReadCompliance { .. }
                | A::ReadMrv { .. }
                | A::ReadAudit
                | A::AdministerRegistry
                | A::ManageUsers
        ),
        Role::MarketAuthority { market } => match action {
            A::ReadMarketData => true,
            A::ReadHoldings { .. }
            | A::ReadAccounts { .. }
            | A::ReadCompliance { .. }
            | A::IssueUnits { .. }
            | A::ManageMarket { .. }
            | A::ReadMrv { .. }
            | A::ReviewMrv { .. }
            | A::RunAuction { .. } => action.market() == Some(market.as_str()),
            _ => false,
        },
        Role::AccountRepresentative { account } => match action {
            A::ReadMarketData => true,
            A::ReadHoldings { .. }
            | A::ProposeTransfer { .. }
            | A::ApproveTransfer { .. }
            | A::ManageTrustedList { .. }
            | A::ApproveTrustedList { .. }
            | A::SubmitMrv { .. }
            | A::ReadMrv { .. } => action.account() == Some(account.as_str()),
            _ => false,
        },
        Role::ApprovingRepresentative { account } => match action {
            A::ReadMarketData => true,
            A::ReadHoldings { .. } | A::ApproveTransfer { .. } | A::ApproveTrustedList { .. } => action.account() == Some(account.as_str()),
            _ => false,
        },
        Role::Verifier => matches!(action, A::ReadMarketData | A::VerifyMrv | A::ReadMrv { .. }),
        Role::ExchangeMember { member } => match action {
            A::ReadMarketData => true,
            A::PlaceOrder { .. } | A::ReadOrders { .. } => action.member() == Some(member.as_str()),
            _ => false,
        },
        // Runs the venue and reads every member's exchange data; never trades for a member,
        // and nothing in the registry.
        Role::ExchangeOperator => matches!(action, A::ReadMarketData | A::ReadOrders { .. } | A::OperateExchange),
        // Runs the desk and the inclusion register; moves no units itself (the desk's registry
        // instructions run as the parties, the registrar or the pilots' authorities), and
        // reads nothing in the registry.
        Role::FinanceOperator => matches!(action, A::ReadMarketData | A::OperateFinance),
    }
}

/// The intended outcome of one (role kind, action kind) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    Never,
    Always,
    /// Only when the action's market is the role's market.
    SameMarket,
    /// Only when the action's account is the role's account.
    SameAccount,
    /// Only when the action's member is the role's member.
    SameMember,
}

/// The policy as a table: every pair's intended outcome.
pub fn intended(role: RoleKind, action: ActionKind) -> Grant {
    use ActionKind as A;
    use Grant::*;
    let read = matches!(
        action,
        A::ReadMarketData
            | A::ReadHoldings
            | A::ReadAccounts
            | A::ReadRegistry
            | A::ReadCompliance
            | A::ReadMrv
            | A::ReadOrders
            | A::ReadAudit
    );
    if action == A::ReadMarketData {
        return Always;
    }
    match role {
        RoleKind::Public => Never,
        RoleKind::Auditor => {
            if read {
                Always
            } else {
                Never
            }
        }
        RoleKind::RegistryAdmin => match action {
            A::ReadOrders => Never,
            _ if read => Always,
            A::AdministerRegistry | A::ManageUsers => Always,
            _ => Never,
        },
        RoleKind::MarketAuthority => match action {
            A::ReadHoldings
            | A::ReadAccounts
            | A::ReadCompliance
            | A::IssueUnits
            | A::ManageMarket
            | A::ReadMrv
            | A::ReviewMrv
            | A::RunAuction => SameMarket,
            _ => Never,
        },
        RoleKind::AccountRepresentative => match action {
            A::ReadHoldings
            | A::ProposeTransfer
            | A::ApproveTransfer
            | A::ManageTrustedList
            | A::ApproveTrustedList
            | A::SubmitMrv
            | A::ReadMrv => SameAccount,
            _ => Never,
        },
        RoleKind::ApprovingRepresentative => match action {
            A::ReadHoldings | A::ApproveTransfer | A::ApproveTrustedList => SameAccount,
            _ => Never,
        },
        RoleKind::Verifier => match action {
            A::VerifyMrv | A::ReadMrv => Always,
            _ => Never,
        },
        RoleKind::ExchangeMember => match action {
            A::PlaceOrder | A::ReadOrders => SameMember,
            _ => Never,
        },
        RoleKind::ExchangeOperator => match action {
            A::ReadOrders | A::OperateExchange => Always,
            _ => Never,
        },
        RoleKind::FinanceOperator => match action {
            A::OperateFinance => Always,
            _ => Never,
        },
    }
}

/// Every (role kind, action kind) pair with its intended outcome: the whole policy as a list.
pub fn matrix() -> Vec<(RoleKind, ActionKind, Grant)> {
    RoleKind::ALL.iter().flat_map(|&r| ActionKind::ALL.iter().map(move |&a| (r, a, intended(r, a)))).collect()
}
