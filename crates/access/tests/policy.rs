//! The authorization matrix: every role kind × every action kind, on actions scoped to the
//! role's own market/account/member and to others, against the intended table.

use ets_access::{allows, intended, matrix, AccountRef, Action, ActionKind, EntityRef, Grant, Role, RoleKind};

/// The role instance of each kind: market M1, account A1, member X1.
fn role(kind: RoleKind) -> Role {
    match kind {
        RoleKind::MarketAuthority => Role::MarketAuthority { market: "M1".into() },
        RoleKind::RegistryAdmin => Role::RegistryAdmin,
        RoleKind::AccountRepresentative => Role::AccountRepresentative { account: "A1".into() },
        RoleKind::ApprovingRepresentative => Role::ApprovingRepresentative { account: "A1".into() },
        RoleKind::Verifier => Role::Verifier,
        RoleKind::ExchangeMember => Role::ExchangeMember { member: "X1".into() },
        RoleKind::Auditor => Role::Auditor,
        RoleKind::Public => Role::Public,
        RoleKind::ExchangeOperator => Role::ExchangeOperator,
        RoleKind::FinanceOperator => Role::FinanceOperator,
    }
}

/// The scope an action instance is built on.
#[derive(Clone, Copy, Debug)]
struct Scope {
    account: &'static str,
    market: &'static str,
    member: &'static str,
}

fn action(kind: ActionKind, s: Scope) -> Action {
    let account = AccountRef::new(s.account, s.market);
    let entity = EntityRef { entity: "E1".into(), account: account.clone() };
    let market = s.market.to_string();
    let member = s.member.to_string();
    match kind {
        ActionKind::ReadMarketData => Action::ReadMarketData,
        ActionKind::ReadHoldings => Action::ReadHoldings { account },
        ActionKind::ReadAccounts => Action::ReadAccounts { market },
        ActionKind::ReadRegistry => Action::ReadRegistry,
        ActionKind::ProposeTransfer => Action::ProposeTransfer { account },
        ActionKind::ApproveTransfer => Action::ApproveTransfer { account },
        ActionKind::ManageTrustedList => Action::ManageTrustedList { account },
        ActionKind::ApproveTrustedList => Action::ApproveTrustedList { account },
        ActionKind::AdministerRegistry => Action::AdministerRegistry,
        ActionKind::IssueUnits => Action::IssueUnits { market },
        ActionKind::ManageMarket => Action::ManageMarket { market },
        ActionKind::ReadCompliance => Action::ReadCompliance { market },
        ActionKind::SubmitMrv => Action::SubmitMrv { entity },
        ActionKind::ReadMrv => Action::ReadMrv { entity },
        ActionKind::VerifyMrv => Action::VerifyMrv,
        ActionKind::ReviewMrv => Action::ReviewMrv { market },
        ActionKind::PlaceOrder => Action::PlaceOrder { member },
        ActionKind::ReadOrders => Action::ReadOrders { member },
        ActionKind::RunAuction => Action::RunAuction { market },
        ActionKind::ManageUsers => Action::ManageUsers,
        ActionKind::ReadAudit => Action::ReadAudit,
        ActionKind::OperateExchange => Action::OperateExchange,
        ActionKind::OperateFinance => Action::OperateFinance,
    }
}

/// Own account in own market; another account in the same market; an account of another
/// market; and each with the other member.
const SCOPES: [Scope; 6] = [
    Scope { account: "A1", market: "M1", member: "X1" },
    Scope { account: "A2", market: "M1", member: "X1" },
    Scope { account: "A2", market: "M2", member: "X1" },
    Scope { account: "A1", market: "M1", member: "X2" },
    Scope { account: "A2", market: "M1", member: "X2" },
    Scope { account: "A2", market: "M2", member: "X2" },
];

fn expected(grant: Grant, s: Scope) -> bool {
    match grant {
        Grant::Never => false,
        Grant::Always => true,
        Grant::SameMarket => s.market == "M1",
        Grant::SameAccount => s.account == "A1",
        Grant::SameMember => s.member == "X1",
    }
}

#[test]
fn every_role_and_action_is_allowed_exactly_where_intended() {
    let mut checked = 0;
    for role_kind in RoleKind::ALL {
        let r = role(role_kind);
        assert_eq!(r.kind(), role_kind);
        for action_kind in ActionKind::ALL {
            let grant = intended(role_kind, action_kind);
            for scope in SCOPES {
                let a = action(action_kind, scope);
                assert_eq!(a.kind(), action_kind);
                assert_eq!(allows(std::slice::from_ref(&r), &a), expected(grant, scope), "{r:?} on {a:?} (intended {grant:?})");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 10 * 23 * 6);
    let listed = matrix();
    assert_eq!(listed.len(), 10 * 23);
    assert!(listed.iter().all(|&(r, a, g)| intended(r, a) == g));
}

#[test]
fn intended_table_spot_checks() {
    // The table is not vacuous: the separations the registry relies on.
    assert_eq!(intended(RoleKind::ApprovingRepresentative, ActionKind::ProposeTransfer), Grant::Never);
    assert_eq!(intended(RoleKind::AccountRepresentative, ActionKind::ProposeTransfer), Grant::SameAccount);
    assert_eq!(intended(RoleKind::MarketAuthority, ActionKind::IssueUnits), Grant::SameMarket);
    assert_eq!(intended(RoleKind::RegistryAdmin, ActionKind::IssueUnits), Grant::Never);
    assert_eq!(intended(RoleKind::Auditor, ActionKind::ProposeTransfer), Grant::Never);
    assert_eq!(intended(RoleKind::Auditor, ActionKind::ReadAudit), Grant::Always);
    assert_eq!(intended(RoleKind::Public, ActionKind::ReadHoldings), Grant::Never);
    // Only the exchange operator runs the exchange: not the registry's administrator, not an
    // auditor, not a member; and the operator trades for nobody and reads no registry data.
    for role in RoleKind::ALL {
        let expected = if role == RoleKind::ExchangeOperator { Grant::Always } else { Grant::Never };
        assert_eq!(intended(role, ActionKind::OperateExchange), expected, "{role:?}");
    }
    assert_eq!(intended(RoleKind::ExchangeOperator, ActionKind::ReadOrders), Grant::Always);
    assert_eq!(intended(RoleKind::ExchangeOperator, ActionKind::PlaceOrder), Grant::Never);
    assert_eq!(intended(RoleKind::ExchangeOperator, ActionKind::ReadHoldings), Grant::Never);
    assert_eq!(intended(RoleKind::ExchangeOperator, ActionKind::ManageUsers), Grant::Never);
    // Only the finance operator runs the desk and the inclusion register; it moves nobody's
    // units, reads no registry data and runs nothing else.
    for role in RoleKind::ALL {
        let expected = if role == RoleKind::FinanceOperator { Grant::Always } else { Grant::Never };
        assert_eq!(intended(role, ActionKind::OperateFinance), expected, "{role:?}");
    }
    for action in [ActionKind::ProposeTransfer, ActionKind::ReadHoldings, ActionKind::OperateExchange, ActionKind::IssueUnits] {
        assert_eq!(intended(RoleKind::FinanceOperator, action), Grant::Never, "{action:?}");
    }
    for action in ActionKind::ALL {
        let writes = !matches!(
            action,
            ActionKind::ReadMarketData
                | ActionKind::ReadHoldings
                | ActionKind::ReadAccounts
                | ActionKind::ReadRegistry
                | ActionKind::ReadCompliance
                | ActionKind::ReadMrv
                | ActionKind::ReadOrders
                | ActionKind::ReadAudit
        );
        if writes {
            assert_eq!(intended(RoleKind::Auditor, action), Grant::Never, "auditors change nothing: {action:?}");
        }
        assert_eq!(intended(RoleKind::Public, action) != Grant::Never, action == ActionKind::ReadMarketData);
    }
}

#[test]
fn deny_by_default_and_roles_combine() {
    let a1 = AccountRef::new("A1", "M1");
    assert!(!allows(&[], &Action::ReadMarketData));
    let both = [Role::AccountRepresentative { account: "A1".into() }, Role::MarketAuthority { market: "M2".into() }];
    assert!(allows(&both, &Action::ProposeTransfer { account: a1.clone() }));
    assert!(allows(&both, &Action::IssueUnits { market: "M2".into() }));
    assert!(!allows(&both, &Action::IssueUnits { market: "M1".into() }));
    // An authority of M2 reads holdings in M2 only, whatever the account number says.
    assert!(!allows(&both[1..], &Action::ReadHoldings { account: a1 }));
    assert!(allows(&both[1..], &Action::ReadHoldings { account: AccountRef::new("A1", "M2") }));
}
