//! Plain example tests of single registry operations: the exact rejection (kind and message)
//! for each rule, idempotency of command ids, and regressions found by `state_machine.rs`.

use ets_core::{Timestamp, Tonnes};
use ets_registry::holding::Holding;
use ets_registry::journal::GENESIS_HASH;
use ets_registry::*;

fn market(code: &str, allowance: &str, offsets: &[&str], authority: &str, individuals: bool) -> Command {
    Command::AddMarket(MarketSpec {
        code: code.into(),
        name: format!("{code} market"),
        level: if code == "CN" { MarketLevel::National } else { MarketLevel::Pilot },
        allowance_code: allowance.into(),
        offset_standards: offsets.iter().map(|s| s.to_string()).collect(),
        individuals_may_trade: individuals,
        authorities: vec![authority.into()],
    })
}

fn open(market: &str, kind: AccountKind, holder_type: HolderType, reps: &[&str]) -> Command {
    Command::OpenAccount {
        market: market.into(),
        kind,
        holder: format!("{market} holder"),
        holder_type,
        representatives: reps.iter().map(|s| s.to_string()).collect(),
    }
}

fn cea(vintage: u16) -> UnitRef {
    UnitRef::allowance("CEA", vintage)
}

fn transfer(from: &str, to: &str, unit: UnitRef, quantity: u64) -> Command {
    Command::Transfer { from: from.into(), to: to.into(), unit, quantity: Tonnes(quantity) }
}

/// A registry under test, with a counter for fresh command ids and the journal records.
struct Reg {
    r: Registry,
    n: u64,
    records: Vec<Record>,
}

impl Reg {
    fn new() -> Reg {
        Reg { r: Registry::new(), n: 0, records: Vec::new() }
    }

    fn envelope(&mut self, actor: &str, command: Command) -> Envelope {
        self.n += 1;
        Envelope { id: format!("cmd-{}", self.n), actor: actor.into(), command }
    }

    fn send(&mut self, env: &Envelope) -> Result<Outcome, Rejection> {
        let out = self.r.execute(env);
        if let Ok(Outcome::Accepted { seq, fingerprint, events, .. }) = &out {
            self.records.push(Record {
                format: ets_registry::journal::JOURNAL_FORMAT,
                seq: *seq,
                at: Timestamp(*seq as i64),
                command_id: env.id.clone(),
                actor: env.actor.clone(),
                fingerprint: *fingerprint,
                events: events.clone(),
            });
        }
        out
    }

    /// Executes a command that must be accepted; returns its receipt.
    fn ok(&mut self, actor: &str, command: Command) -> Receipt {
        let env = self.envelope(actor, command);
        match self.send(&env) {
            Ok(Outcome::Accepted { receipt, .. }) => receipt,
            other => panic!("{env:?} should be accepted, got {other:?}"),
        }
    }

    /// Executes a command that must be rejected; checks that nothing changed.
    fn no(&mut self, actor: &str, command: Command) -> Rejection {
        let env = self.envelope(actor, command);
        self.no_env(&env)
    }

    fn no_env(&mut self, env: &Envelope) -> Rejection {
        let before = self.r.state_hash();
        let out = self.send(env);
        assert_eq!(self.r.state_hash(), before, "a rejected command changed the state");
        match out {
            Err(rejection) => rejection,
            Ok(outcome) => panic!("{env:?} should be rejected, got {outcome:?}"),
        }
    }

    fn account(&self, number: &str) -> AccountIdx {
        self.r.find_account(number).unwrap_or_else(|| panic!("no account {number}"))
    }

    /// (free, encumbered) of an account's holding of a unit.
    fn held(&self, number: &str, unit: &UnitRef) -> (u64, u64) {
        let Ok(u) = self.r.unit_named(unit) else { return (0, 0) };
        self.r.holding(self.account(number), u).map_or((0, 0), |h| (h.free_total(), h.encumbered_total))
    }

    fn invariants(&self) {
        self.r.check_invariants().unwrap();
    }
}

/// CN (CEA, CCER), BJ (BEA, accepts CN units), GD (GDEA, PHCER). Accounts:
/// CN-100001 operator (alice), CN-100002 trading (bob), CN-100003 operator (carol, empty),
/// BJ-100001 operator (dave), GD-100001 operator (erin).
/// CN issues 1,000 CEA:2024 and allocates 100 to CN-100001 and 50 to CN-100002.
fn fixture() -> Reg {
    let mut g = Reg::new();
    g.ok("admin", Command::InitRegistry { admins: vec!["admin".into()] });
    g.ok("admin", market("CN", "CEA", &["CCER"], "cn-auth", false));
    g.ok("admin", market("BJ", "BEA", &[], "bj-auth", true));
    g.ok("admin", market("GD", "GDEA", &["PHCER"], "gd-auth", false));
    g.ok("cn-auth", open("CN", AccountKind::Operator, HolderType::Entity, &["alice"]));
    g.ok("cn-auth", open("CN", AccountKind::Trading, HolderType::Institution, &["bob"]));
    g.ok("admin", open("CN", AccountKind::Operator, HolderType::Entity, &["carol"]));
    g.ok("bj-auth", open("BJ", AccountKind::Operator, HolderType::Entity, &["dave"]));
    g.ok("gd-auth", open("GD", AccountKind::Operator, HolderType::Entity, &["erin"]));
    g.ok("bj-auth", Command::RecogniseUnits { market: "BJ".into(), issuer: "CN".into() });
    g.ok("cn-auth", Command::Issue { unit: cea(2024), quantity: Tonnes(1_000), to: None });
    g.ok("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(100) });
    g.ok("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100002".into(), unit: cea(2024), quantity: Tonnes(50) });
    g.invariants();
    g
}

// ---------------------------------------------------------------- holdings

#[test]
fn insufficient_holdings_names_the_account_the_unit_and_the_free_quantity() {
    let mut g = fixture();
    let e = g.no("alice", transfer("CN-100001", "CN-100002", cea(2024), 150));
    assert_eq!(e.kind, RejectKind::Refused);
    assert_eq!(e.message, "insufficient holdings: account CN-100001 holds 100 t of CEA:2024 free; 150 t requested");

    // Units in a pending transfer or frozen are owned but not free; the message says so.
    g.ok(
        "alice",
        Command::CreatePending {
            pending: "p1".into(),
            from: "CN-100001".into(),
            to: "CN-100002".into(),
            unit: cea(2024),
            quantity: Tonnes(30),
            purpose: PendingPurpose::Settlement,
        },
    );
    assert_eq!(g.held("CN-100001", &cea(2024)), (70, 30));
    let e = g.no("alice", transfer("CN-100001", "CN-100002", cea(2024), 80));
    assert_eq!(e.kind, RejectKind::Refused);
    assert_eq!(
        e.message,
        "insufficient holdings: account CN-100001 holds 70 t of CEA:2024 free (30 more pending or frozen); 80 t requested"
    );

    // Large numbers are grouped by thousands.
    let e =
        g.no("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(1_000) });
    assert_eq!(e.message, "insufficient holdings: account CN-ISSUANCE holds 850 t of CEA:2024 free; 1,000 t requested");

    // A holding of a unit the account never had.
    let e = g.no("carol", Command::Cancel { account: "CN-100003".into(), unit: cea(2024), quantity: Tonnes(1) });
    assert_eq!(e.message, "insufficient holdings: account CN-100003 holds 0 t of CEA:2024 free; 1 t requested");
}

#[test]
fn moving_everything_that_is_free_is_allowed_and_one_more_is_not() {
    let mut g = fixture();
    g.ok("alice", transfer("CN-100001", "CN-100002", cea(2024), 100));
    assert_eq!(g.held("CN-100001", &cea(2024)), (0, 0));
    assert_eq!(g.held("CN-100002", &cea(2024)), (150, 0));
    let e = g.no("bob", transfer("CN-100002", "CN-100001", cea(2024), 151));
    assert!(e.message.contains("holds 150 t of CEA:2024 free; 151 t requested"), "{}", e.message);
    g.invariants();
}

#[test]
fn wrong_market_names_both_markets() {
    let mut g = fixture();
    let e = g.no("alice", transfer("CN-100001", "GD-100001", cea(2024), 10));
    assert_eq!(e.kind, RejectKind::Refused);
    assert_eq!(e.message, "wrong market: CEA:2024 was issued by CN and account GD-100001 is in market GD, which does not accept CN units");

    let e =
        g.no("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "GD-100001".into(), unit: cea(2024), quantity: Tonnes(10) });
    assert_eq!(e.kind, RejectKind::Refused);
    assert!(e.message.starts_with("wrong market: CEA:2024 was issued by CN and account GD-100001 is in market GD"), "{}", e.message);

    // BJ recognises CN: the same transfer to BJ goes through, and BJ's operator may surrender it.
    g.ok("alice", transfer("CN-100001", "BJ-100001", cea(2024), 10));
    g.ok("dave", Command::Surrender { account: "BJ-100001".into(), unit: cea(2024), quantity: Tonnes(4), compliance_year: 2024 });
    assert_eq!(g.r.surrendered(g.account("BJ-100001"), 2024), 4);
    assert_eq!(g.held("BJ-SURRENDER", &cea(2024)), (4, 0));

    // Recognition is one-way: CN does not accept BJ units.
    g.ok("bj-auth", Command::Issue { unit: UnitRef::allowance("BEA", 2024), quantity: Tonnes(20), to: None });
    let e = g.no(
        "bj-auth",
        Command::Allocate {
            from: "BJ-ISSUANCE".into(),
            to: "CN-100001".into(),
            unit: UnitRef::allowance("BEA", 2024),
            quantity: Tonnes(5),
        },
    );
    assert_eq!(e.message, "wrong market: BEA:2024 was issued by BJ and account CN-100001 is in market CN, which does not accept BJ units");
    g.invariants();
}

// ---------------------------------------------------------------- account status

#[test]
fn closed_accounts_neither_send_nor_receive_and_are_never_reopened() {
    let mut g = fixture();
    let e = g.no("admin", Command::SetAccountStatus { account: "CN-100001".into(), status: AccountStatus::Closed });
    assert_eq!(e.kind, RejectKind::Refused);
    assert_eq!(e.message, "account CN-100001 still holds 100 units; move them out before closing it");

    g.ok("admin", Command::SetAccountStatus { account: "CN-100003".into(), status: AccountStatus::Closed });
    let e = g.no("alice", transfer("CN-100001", "CN-100003", cea(2024), 1));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Refused, "account CN-100003 is closed: it may not receive units"));
    let e = g.no("carol", transfer("CN-100003", "CN-100001", cea(2024), 1));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Refused, "account CN-100003 is closed"));
    let e = g.no("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100003".into(), unit: cea(2024), quantity: Tonnes(1) });
    assert_eq!(e.message, "account CN-100003 is closed: it may not receive units");
    let e = g.no("admin", Command::SetAccountStatus { account: "CN-100003".into(), status: AccountStatus::Open });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Refused, "account CN-100003 is closed; closed accounts are never reopened"));
    let e = g.no("admin", Command::SetAccountStatus { account: "CN-100003".into(), status: AccountStatus::Closed });
    assert_eq!(e.message, "account CN-100003 is already closed");
    let e = g.no("admin", Command::SetAccountStatus { account: "CN-ISSUANCE".into(), status: AccountStatus::Blocked });
    assert_eq!(e.message, "CN-ISSUANCE is the market's issuance account; its status cannot change");
}

#[test]
fn blocked_accounts_receive_but_do_not_send() {
    let mut g = fixture();
    g.ok("cn-auth", Command::SetAccountStatus { account: "CN-100002".into(), status: AccountStatus::Blocked });
    g.ok("alice", transfer("CN-100001", "CN-100002", cea(2024), 10));
    let e = g.no("bob", transfer("CN-100002", "CN-100001", cea(2024), 10));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Refused, "account CN-100002 is blocked: it may not send units"));
    let e = g.no("bob", Command::Cancel { account: "CN-100002".into(), unit: cea(2024), quantity: Tonnes(1) });
    assert_eq!(e.message, "account CN-100002 is blocked: it may not send units");
    g.ok("cn-auth", Command::SetAccountStatus { account: "CN-100002".into(), status: AccountStatus::Open });
    g.ok("bob", transfer("CN-100002", "CN-100001", cea(2024), 10));
    g.invariants();
}

// ---------------------------------------------------------------- names that do not exist

#[test]
fn unknown_names_are_not_found() {
    let mut g = fixture();
    let cases = [
        (transfer("CN-999999", "CN-100001", cea(2024), 1), "unknown account 'CN-999999'"),
        (transfer("CN-100001", "XX-1", cea(2024), 1), "unknown account 'XX-1'"),
        (transfer("CN-100001", "CN-100002", UnitRef::allowance("ZZZ", 2024), 1), "unknown product code 'ZZZ' in unit ZZZ:2024"),
        (transfer("CN-100001", "CN-100002", cea(2031), 1), "no CEA:2031 units have been issued"),
        (Command::PostPending { pending: "p9".into() }, "no pending transfer 'p9'"),
        (Command::VoidPending { pending: "p9".into() }, "no pending transfer 'p9'"),
        (Command::Unfreeze { freeze: "f9".into() }, "no freeze 'f9'"),
        (Command::Reverse { tx: TxId(99), reason: "typo".into() }, "no transaction T99"),
        (Command::Reverse { tx: TxId(0), reason: "typo".into() }, "no transaction T0"),
        (Command::SetCap { market: "XX".into(), vintage: 2024, cap: Tonnes(1) }, "unknown market 'XX' (markets: CN, BJ, GD)"),
    ];
    for (command, message) in cases {
        let e = g.no("alice", command);
        assert_eq!((e.kind, e.message.as_str()), (RejectKind::NotFound, message));
    }
    let e = g.no("cn-auth", Command::RemoveRepresentative { account: "CN-100001".into(), person: "mallory".into() });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::NotFound, "mallory does not represent account CN-100001"));
}

// ---------------------------------------------------------------- malformed input

#[test]
fn malformed_input_is_invalid() {
    let mut g = fixture();
    let e = g.no("alice", transfer("CN-100001", "CN-100002", cea(2024), 0));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "quantity is zero; give at least 1 tonne"));
    let e = g.no("alice", transfer("CN-100001", "CN-100002", cea(2024), Tonnes::MAX_PARSED.0 + 1));
    assert_eq!(e.kind, RejectKind::Invalid);
    assert_eq!(e.message, "quantity 1,000,000,000,000,001 is larger than the limit 1,000,000,000,000,000");
    let e = g.no("alice", transfer("CN-100001", "CN-100001", cea(2024), 1));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "source and destination are both CN-100001"));
    let e = g.no("alice", Command::Surrender { account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(1), compliance_year: 1900 });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "compliance year 1900 is not a plausible year"));
    let e = g.no("cn-auth", Command::Issue { unit: UnitRef::offset("CEA", "P1", 2024), quantity: Tonnes(1), to: None });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "CEA is an allowance code; write CEA:2024"));
    let e = g.no("cn-auth", Command::Issue { unit: UnitRef::allowance("CCER", 2024), quantity: Tonnes(1), to: None });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "CCER is an offset standard; write CCER:PROJECT:2024"));
    let e = g.no("cn-auth", Command::Reverse { tx: TxId(1), reason: "  ".into() });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "a correction needs a reason"));
    let e = g.no("cn-auth", open("CN", AccountKind::Operator, HolderType::Institution, &["x"]));
    assert_eq!(
        (e.kind, e.message.as_str()),
        (RejectKind::Invalid, "an operator holding account belongs to a covered entity, not to an institution")
    );
    let e = g.no("cn-auth", open("CN", AccountKind::Trading, HolderType::Entity, &["x", "x"]));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "representative x is named twice"));

    // A malformed id or actor is refused before anything else.
    for (id, actor) in [("", "alice"), ("has space", "alice"), ("ok", "")] {
        let env = Envelope { id: id.into(), actor: actor.into(), command: transfer("CN-100001", "CN-100002", cea(2024), 1) };
        assert_eq!(g.no_env(&env).kind, RejectKind::Invalid);
    }
}

// ---------------------------------------------------------------- permissions

#[test]
fn only_the_entitled_may_act() {
    let mut g = fixture();
    let e = g.no("mallory", transfer("CN-100001", "CN-100002", cea(2024), 1));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Forbidden, "mallory is not a representative of account CN-100001"));
    let e = g.no("bob", Command::Issue { unit: cea(2024), quantity: Tonnes(1), to: None });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Forbidden, "bob is not an authority of market CN; only it may issue units"));
    let e = g.no(
        "bj-auth",
        Command::Freeze { freeze: "f1".into(), account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(1), order: "O-1".into() },
    );
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Forbidden, "bj-auth is not an authority of market CN; only it may freeze units"));
    let e = g.no("alice", Command::SetAccountStatus { account: "CN-100001".into(), status: AccountStatus::Blocked });
    assert_eq!(e.kind, RejectKind::Forbidden);
    assert_eq!(e.message, "alice may not manage account CN-100001: only administrators and the market authority may");
    let e = g.no("cn-auth", market("SH", "SHEA", &[], "sh-auth", true));
    assert_eq!(
        (e.kind, e.message.as_str()),
        (RejectKind::Forbidden, "cn-auth is not a registry administrator; only administrators add markets")
    );
    // A representative of the recipient may void a pending transfer but not post it.
    g.ok(
        "alice",
        Command::CreatePending {
            pending: "p1".into(),
            from: "CN-100001".into(),
            to: "CN-100002".into(),
            unit: cea(2024),
            quantity: Tonnes(5),
            purpose: PendingPurpose::Approval,
        },
    );
    let e = g.no("bob", Command::PostPending { pending: "p1".into() });
    assert_eq!(e.kind, RejectKind::Forbidden);
    g.ok("bob", Command::VoidPending { pending: "p1".into() });
    assert_eq!(g.held("CN-100001", &cea(2024)), (100, 0));
}

// ---------------------------------------------------------------- registry rules

#[test]
fn caps_limit_issuance_exactly() {
    let mut g = fixture();
    let e = g.no("cn-auth", Command::SetCap { market: "CN".into(), vintage: 2024, cap: Tonnes(999) });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Refused, "cap 999 for CN vintage 2024 is below the 1000 t already issued"));
    g.ok("cn-auth", Command::SetCap { market: "CN".into(), vintage: 2024, cap: Tonnes(1_500) });
    let e = g.no("cn-auth", Command::Issue { unit: cea(2024), quantity: Tonnes(501), to: None });
    assert_eq!(e.kind, RejectKind::Refused);
    assert_eq!(e.message, "issuing 501 CEA:2024 would exceed the CN cap of 1,500 t for vintage 2024 (1,000 t already issued)");
    g.ok("cn-auth", Command::Issue { unit: cea(2024), quantity: Tonnes(500), to: Some("CN-RESERVE".into()) });
    let e = g.no("cn-auth", Command::Issue { unit: cea(2024), quantity: Tonnes(1), to: None });
    assert_eq!(e.kind, RejectKind::Refused);
    // Reversing an issuance makes room under the cap again.
    let tx = g.r.transactions().len() as u64;
    g.ok("cn-auth", Command::Reverse { tx: TxId(tx), reason: "issued twice".into() });
    g.ok("cn-auth", Command::Issue { unit: cea(2024), quantity: Tonnes(500), to: None });
    let e = g.no("cn-auth", Command::Issue { unit: cea(2024), quantity: Tonnes(1), to: Some("GD-RESERVE".into()) });
    assert_eq!(e.message, "units are issued into CN-ISSUANCE or CN-RESERVE, not GD-RESERVE");
    g.invariants();
}

#[test]
fn only_operators_surrender() {
    let mut g = fixture();
    let e = g.no("bob", Command::Surrender { account: "CN-100002".into(), unit: cea(2024), quantity: Tonnes(1), compliance_year: 2024 });
    assert_eq!(
        (e.kind, e.message.as_str()),
        (RejectKind::Refused, "account CN-100002 is a trading account; only operator holding accounts surrender")
    );
    g.ok("alice", Command::Surrender { account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(60), compliance_year: 2024 });
    assert_eq!(g.r.surrendered(g.account("CN-100001"), 2024), 60);
    assert_eq!(g.r.surrendered(g.account("CN-100001"), 2025), 0);
    let u = g.r.unit_named(&cea(2024)).unwrap();
    let state = g.r.unit(u);
    assert_eq!((state.issued, state.circulating, state.surrendered, state.cancelled), (1_000, 940, 60, 0));
}

#[test]
fn a_transaction_is_reversed_once_and_a_reversal_is_not_reversed() {
    let mut g = fixture();
    let receipt =
        g.ok("alice", Command::Surrender { account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(60), compliance_year: 2024 });
    let tx = receipt.tx.unwrap();
    let e = g.no("alice", Command::Reverse { tx, reason: "wrong year".into() });
    assert_eq!(
        (e.kind, e.message.as_str()),
        (RejectKind::Forbidden, "alice is not an authority of market CN; only it may correct transactions")
    );
    let reversal = g.ok("cn-auth", Command::Reverse { tx, reason: "wrong year".into() }).tx.unwrap();
    assert_eq!(g.r.surrendered(g.account("CN-100001"), 2024), 0);
    assert_eq!(g.held("CN-100001", &cea(2024)), (100, 0));
    let e = g.no("cn-auth", Command::Reverse { tx, reason: "again".into() });
    assert_eq!((e.kind, e.message), (RejectKind::Refused, format!("transaction {tx} was already reversed by {reversal}")));
    let e = g.no("cn-auth", Command::Reverse { tx: reversal, reason: "undo".into() });
    assert_eq!(e.kind, RejectKind::Refused);
    assert_eq!(e.message, format!("transaction {reversal} is itself a correction; record a new transaction instead"));
    // Once the units have moved on, the transaction that brought them cannot be reversed.
    g.ok("alice", transfer("CN-100001", "CN-100002", cea(2024), 100));
    let e = g.no("cn-auth", Command::Reverse { tx: reversal, reason: "undo".into() });
    assert_eq!(e.message, format!("transaction {reversal} cannot be reversed: account CN-100001 no longer holds all of its units freely"));
    g.invariants();
}

#[test]
fn nothing_but_init_before_init() {
    let mut g = Reg::new();
    let e = g.no("admin", market("CN", "CEA", &[], "cn-auth", false));
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Refused, "the registry is not initialised; run init first"));
    let e = g.no("admin", Command::InitRegistry { admins: vec![] });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Invalid, "name at least one registry administrator"));
    g.ok("admin", Command::InitRegistry { admins: vec!["admin".into()] });
    let e = g.no("admin", Command::InitRegistry { admins: vec!["admin".into()] });
    assert_eq!((e.kind, e.message.as_str()), (RejectKind::Refused, "the registry is already initialised"));
}

// ---------------------------------------------------------------- idempotency

#[test]
fn an_exact_retry_is_a_duplicate_with_the_same_receipt_and_no_change() {
    let mut g = fixture();
    let env = g.envelope("alice", transfer("CN-100001", "CN-100002", cea(2024), 10));
    let Ok(Outcome::Accepted { receipt, .. }) = g.send(&env) else { panic!("first send is accepted") };
    let (hash, seq, txs) = (g.r.state_hash(), g.r.seq(), g.r.transactions().len());
    for _ in 0..3 {
        assert_eq!(g.send(&env), Ok(Outcome::Duplicate(receipt)));
    }
    assert_eq!(g.r.state_hash(), hash, "a duplicate changed the state");
    assert_eq!((g.r.seq(), g.r.transactions().len()), (seq, txs));
    assert_eq!(g.held("CN-100001", &cea(2024)), (90, 0), "the retry moved units again");
    assert_eq!(g.r.command_receipt(&env.id), Some(receipt));
}

/// A trial answers what executing would, and changes nothing: one command checked in place,
/// a sequence (whose later commands depend on the earlier ones) on a copy; a repeat passes, an
/// id used for another command does not, and the first refusal is named by its index.
#[test]
fn a_trial_answers_as_execution_would_and_changes_nothing() {
    let mut g = fixture();
    let hash = g.r.state_hash();
    let send = g.envelope("alice", transfer("CN-100001", "CN-100002", cea(2024), 10));
    assert_eq!(g.r.trial(std::slice::from_ref(&send)), Ok(()));
    let too_much = g.envelope("alice", transfer("CN-100001", "CN-100002", cea(2024), 101));
    let (i, refused) = g.r.trial(std::slice::from_ref(&too_much)).unwrap_err();
    assert_eq!(i, 0);
    assert_eq!(refused, g.r.clone().execute(&too_much).unwrap_err(), "the refusal execution gives");
    // 60 then 40 pass together (100 held); 60 then 41 do not, and the second is the one named.
    let first = g.envelope("alice", transfer("CN-100001", "CN-100002", cea(2024), 60));
    let rest = g.envelope("alice", transfer("CN-100001", "CN-100003", cea(2024), 40));
    let one_more = g.envelope("alice", transfer("CN-100001", "CN-100003", cea(2024), 41));
    assert_eq!(g.r.trial(&[first.clone(), rest]), Ok(()));
    let (i, refused) = g.r.trial(&[first.clone(), one_more]).unwrap_err();
    assert_eq!((i, refused.kind), (1, RejectKind::Refused), "{refused:?}");
    assert_eq!(g.r.state_hash(), hash, "a trial changed the state");
    // After the command ran: the same command is a repeat, other content under its id is not.
    g.send(&send).unwrap();
    assert_eq!(g.r.trial(std::slice::from_ref(&send)), Ok(()));
    let other = Envelope { command: transfer("CN-100001", "CN-100002", cea(2024), 11), ..send };
    assert_eq!(g.r.trial(&[other]).unwrap_err().1.kind, RejectKind::Conflict);
    let bad_id = Envelope { id: String::new(), ..first };
    assert_eq!(g.r.trial(&[bad_id]).unwrap_err().1.kind, RejectKind::Invalid);
}

#[test]
fn a_reused_id_with_other_content_is_a_conflict() {
    let mut g = fixture();
    let env = g.envelope("alice", transfer("CN-100001", "CN-100002", cea(2024), 10));
    let Ok(Outcome::Accepted { seq, .. }) = g.send(&env) else { panic!("first send is accepted") };
    let other_quantity = Envelope { command: transfer("CN-100001", "CN-100002", cea(2024), 11), ..env.clone() };
    let e = g.no_env(&other_quantity);
    assert_eq!(e.kind, RejectKind::Conflict);
    assert_eq!(
        e.message,
        format!("command id '{}' was already used (journal record {seq}) for a different command; choose a new id", env.id)
    );
    // The actor is part of the content too.
    let other_actor = Envelope { actor: "cn-auth".into(), ..env.clone() };
    assert_eq!(g.no_env(&other_actor).kind, RejectKind::Conflict);
}

#[test]
fn a_rejected_command_leaves_its_id_free() {
    let mut g = fixture();
    let env = g.envelope("alice", transfer("CN-100001", "CN-100002", cea(2024), 150));
    assert_eq!(g.no_env(&env).kind, RejectKind::Refused);
    assert_eq!(g.r.command_receipt(&env.id), None);
    g.ok("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(50) });
    assert!(matches!(g.send(&env), Ok(Outcome::Accepted { .. })), "the same envelope succeeds once the units are there");
}

// ---------------------------------------------------------------- journal, replay, snapshot

#[test]
fn replay_rebuilds_the_same_state_and_refuses_records_that_do_not_follow() {
    let mut g = fixture();
    g.ok("alice", transfer("CN-100001", "BJ-100001", cea(2024), 10));
    let mut replayed = Registry::new();
    for rec in &g.records {
        replayed.apply_record(rec.seq, &rec.command_id, rec.fingerprint, &rec.events).unwrap();
    }
    assert_eq!(replayed.state_hash(), g.r.state_hash());
    let restored = Snapshot::decode(&g.r.snapshot().encode()).unwrap().into_registry();
    assert_eq!(restored.state_hash(), g.r.state_hash());

    let last = g.records.last().unwrap();
    let before = replayed.state_hash();
    let e = replayed.apply_record(last.seq + 2, "new-id", 0, &[]).unwrap_err();
    assert_eq!(e, format!("journal record {} does not follow record {}", last.seq + 2, last.seq));
    let e = replayed.apply_record(last.seq + 1, &last.command_id, 0, &[]).unwrap_err();
    assert_eq!(e, format!("journal record {} repeats command id '{}'", last.seq + 1, last.command_id));
    assert_eq!(replayed.state_hash(), before, "a refused record changed the state");
}

#[test]
fn the_chain_names_the_altered_record() {
    let g = fixture();
    let mut prev = GENESIS_HASH;
    let mut sealed = Vec::new();
    for rec in &g.records {
        let s = rec.seal(prev);
        prev = s.hash;
        sealed.push(s);
    }
    let verify = |records: &[SealedRecord]| -> Result<(), String> {
        let mut v = ChainVerifier::default();
        records.iter().try_for_each(|s| v.check(s.seq, &s.body, &s.prev_hash, &s.hash))
    };
    verify(&sealed).unwrap();
    let mut altered = sealed.clone();
    altered[4].body[0] ^= 0x80;
    assert_eq!(verify(&altered).unwrap_err(), "record 5 was altered: its content does not match its hash");
    let mut removed = sealed.clone();
    removed.remove(6);
    assert_eq!(verify(&removed).unwrap_err(), "record 7 is missing (next stored record is 8)");
}

// ---------------------------------------------------------------- regressions

/// Two issuances of one unit into one account get contiguous serials, which the holding merges
/// into one block; `check_invariants` used to report that block as "never issued as that unit".
#[test]
fn consecutive_issuances_merge_without_breaking_the_invariant_check() {
    let mut g = fixture();
    g.ok("cn-auth", Command::Issue { unit: cea(2023), quantity: Tonnes(1), to: None });
    g.ok("cn-auth", Command::Issue { unit: cea(2023), quantity: Tonnes(1), to: None });
    let u = g.r.unit_named(&cea(2023)).unwrap();
    let h = g.r.holding(g.account("CN-ISSUANCE"), u).unwrap();
    assert_eq!(h.free_block_count(), 1, "contiguous issuances merge");
    g.invariants();
    // And a block that spans both issuances moves and checks fine too.
    g.ok("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100001".into(), unit: cea(2023), quantity: Tonnes(2) });
    g.invariants();
}

/// A holding's free blocks are not kept coalesced: units that come back are appended. A
/// correction whose serials are all free but split over two free blocks used to be refused
/// ("no longer holds all of its units freely").
#[test]
fn a_correction_finds_its_serials_across_fragmented_free_blocks() {
    let mut g = fixture();
    let issuance = g.ok("cn-auth", Command::Issue { unit: cea(2023), quantity: Tonnes(2), to: Some("CN-RESERVE".into()) }).tx.unwrap();
    let allocation = g
        .ok("cn-auth", Command::Allocate { from: "CN-RESERVE".into(), to: "CN-100001".into(), unit: cea(2023), quantity: Tonnes(1) })
        .tx
        .unwrap();
    g.ok("cn-auth", Command::Reverse { tx: allocation, reason: "wrong holder".into() });
    let u = g.r.unit_named(&cea(2023)).unwrap();
    assert_eq!(g.r.holding(g.account("CN-RESERVE"), u).unwrap().free_block_count(), 2, "the returned serial sits in its own block");
    g.ok("cn-auth", Command::Reverse { tx: issuance, reason: "issued in error".into() });
    assert_eq!(g.held("CN-RESERVE", &cea(2023)), (0, 0));
    assert_eq!(g.r.unit(u).issued, 0);
    g.invariants();
}

#[test]
fn holding_removes_a_block_spanning_several_free_blocks() {
    let b = |start, end| Block { start, end };
    let mut h = Holding::default();
    h.receive(&[b(2, 4)]);
    assert!(h.remove(&[b(2, 3)]));
    h.receive(&[b(2, 3)]);
    assert_eq!(h.free_blocks().copied().collect::<Vec<_>>(), vec![b(3, 4), b(2, 3)]);
    assert!(h.holds_free(&[b(2, 4)]));
    assert!(!h.holds_free(&[b(2, 5)]), "serial 4 is not held");
    assert!(!h.holds_free(&[b(2, 3), b(2, 4)]), "overlapping request");
    assert!(h.remove(&[b(2, 4)]));
    assert_eq!((h.free_total(), h.free_block_count()), (0, 0));

    let mut h = Holding::default();
    h.receive(&[b(10, 20), b(1, 5), b(5, 8)]);
    assert_eq!(h.free_blocks().copied().collect::<Vec<_>>(), vec![b(10, 20), b(1, 8)]);
    assert!(h.remove(&[b(3, 6), b(12, 14)]));
    assert_eq!(h.free_blocks().copied().collect::<Vec<_>>(), vec![b(10, 12), b(14, 20), b(1, 3), b(6, 8)]);
    assert_eq!(h.free_total(), 12);
    assert!(!h.remove(&[b(2, 7)]), "serials 3-5 are gone");
    assert_eq!(h.free_total(), 12, "a refused remove changes nothing");
}

/// Names resolve only when spelt exactly. Packed code lookups used to treat a code padded with
/// NUL bytes ("CN\0") as the code itself, so commands naming "CN\0" or "CEA\0:2024" went through.
#[test]
fn only_the_exact_spelling_names_a_market_an_account_or_a_unit() {
    let mut g = fixture();
    for code in ["CN\0", "CN\0\0", "cn", "CN ", "C", ""] {
        assert_eq!(g.r.find_market(code), None, "{code:?}");
        let e = g.no("cn-auth", Command::SetCap { market: code.into(), vintage: 2024, cap: Tonnes(5_000) });
        assert_eq!(e.kind, RejectKind::NotFound, "{code:?}: {}", e.message);
    }
    for number in [
        "CN\0-100001",
        "cn-100001",
        "CN-0100001",
        "CN-100001 ",
        "CN-100001\0",
        "CN-+100001",
        "CN-100000",
        "CN-99999999999",
        "CN-issuance",
        "CN\0-ISSUANCE",
    ] {
        assert_eq!(g.r.find_account(number), None, "{number:?}");
        let e = g.no("alice", transfer("CN-100001", number, cea(2024), 1));
        assert_eq!(e.kind, RejectKind::NotFound, "{number:?}: {}", e.message);
    }
    assert_eq!(g.r.find_account("CN-100001"), Some(g.account("CN-100001")));
    for code in ["CEA\0", "cea", "CEA "] {
        let e = g.no("cn-auth", Command::Issue { unit: UnitRef::allowance(code, 2024), quantity: Tonnes(1), to: None });
        assert_eq!(e.kind, RejectKind::NotFound, "{code:?}: {}", e.message);
        let e = g.no("alice", transfer("CN-100001", "CN-100002", UnitRef::allowance(code, 2024), 1));
        assert_eq!(e.kind, RejectKind::NotFound, "{code:?}: {}", e.message);
    }
}

// ---------------------------------------------------------------- withdrawal by the authority

#[test]
fn the_market_authority_withdraws_free_units_into_the_cancellation_account() {
    let mut g = fixture();
    // Only the authority of the account's market may withdraw, not the holder or another market's.
    let e = g.no("alice", Command::Withdraw { account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(10) });
    assert_eq!(
        (e.kind, e.message.as_str()),
        (RejectKind::Forbidden, "alice is not an authority of market CN; only it may withdraw units from its accounts")
    );
    let e = g.no("bj-auth", Command::Withdraw { account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(10) });
    assert_eq!(e.kind, RejectKind::Forbidden);
    // Frozen units are not free: a withdrawal takes free units only.
    g.ok(
        "cn-auth",
        Command::Freeze { freeze: "f".into(), account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(30), order: "court".into() },
    );
    let e = g.no("cn-auth", Command::Withdraw { account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(80) });
    assert_eq!(
        e.message,
        "insufficient holdings: account CN-100001 holds 70 t of CEA:2024 free (30 more pending or frozen); 80 t requested"
    );
    let r = g.ok("cn-auth", Command::Withdraw { account: "CN-100001".into(), unit: cea(2024), quantity: Tonnes(70) });
    assert!(r.tx.is_some());
    assert_eq!(g.held("CN-100001", &cea(2024)), (0, 30));
    assert_eq!(g.held("CN-CANCELLATION", &cea(2024)), (70, 0));
    // Not from the market's own accounts.
    let e = g.no("cn-auth", Command::Withdraw { account: "CN-ISSUANCE".into(), unit: cea(2024), quantity: Tonnes(1) });
    assert_eq!(e.kind, RejectKind::Refused);
    g.invariants();
}

// ---------------------------------------------------------------- linked markets

#[test]
fn a_restricted_link_caps_transfers_between_the_two_markets() {
    let mut g = fixture();
    // Before the link, a Guangdong account does not accept national allowances.
    let e = g.no("alice", transfer("CN-100001", "GD-100001", cea(2024), 10));
    assert_eq!(e.kind, RejectKind::Refused);
    let e = g.no("cn-auth", Command::LinkMarkets { a: "CN".into(), b: "GD".into(), quota: Some(Tonnes(50)) });
    assert_eq!(e.kind, RejectKind::Forbidden, "an administrator carries out a link");
    g.ok("admin", Command::LinkMarkets { a: "GD".into(), b: "CN".into(), quota: Some(Tonnes(50)) });
    let e = g.no("admin", Command::LinkMarkets { a: "CN".into(), b: "GD".into(), quota: None });
    assert_eq!(e.message, "markets CN and GD are already linked");
    g.ok("alice", transfer("CN-100001", "GD-100001", cea(2024), 30));
    let e = g.no("alice", transfer("CN-100001", "GD-100001", cea(2024), 21));
    assert_eq!(e.message, "the link between CN and GD allows 50 t of transfers; 30 t used, 21 t requested");
    // Both directions count against the one quota; transfers inside a market do not.
    let e = g.no("erin", transfer("GD-100001", "CN-100001", cea(2024), 21));
    assert_eq!(e.kind, RejectKind::Refused);
    g.ok("erin", transfer("GD-100001", "CN-100001", cea(2024), 20));
    g.ok("alice", transfer("CN-100001", "CN-100002", cea(2024), 40));
    // Pending transfers count when they are posted.
    g.ok("cn-auth", Command::Issue { unit: cea(2024), quantity: Tonnes(10), to: None });
    g.ok(
        "alice",
        Command::CreatePending {
            pending: "x".into(),
            from: "CN-100001".into(),
            to: "GD-100001".into(),
            unit: cea(2024),
            quantity: Tonnes(1),
            purpose: PendingPurpose::Settlement,
        },
    );
    let e = g.no("alice", Command::PostPending { pending: "x".into() });
    assert_eq!(e.message, "the link between CN and GD allows 50 t of transfers; 50 t used, 1 t requested");
    g.invariants();
    // Replay gives the same state, link use included.
    let mut replayed = Registry::new();
    for r in &g.records {
        replayed.apply_record(r.seq, &r.command_id, r.fingerprint, &r.events).unwrap();
    }
    assert_eq!(replayed.state_hash(), g.r.state_hash());
}

#[test]
fn an_authority_sets_reserve_units_aside_for_the_exchange_and_nobody_else_can_take_them() {
    let mut g = fixture();
    let escrow = |pending: &str, from: &str, to: &str, qty: u64, purpose: PendingPurpose| Command::CreatePending {
        pending: pending.into(),
        from: from.into(),
        to: to.into(),
        unit: cea(2024),
        quantity: Tonnes(qty),
        purpose,
    };
    // CN-ISSUANCE holds 850 t after the fixture's allocations; CN-100001 (alice's) stands in for
    // the exchange's clearing account.
    assert_eq!(g.held("CN-ISSUANCE", &cea(2024)), (850, 0));
    let e = g.no("alice", escrow("a1", "CN-ISSUANCE", "CN-100001", 100, PendingPurpose::Escrow));
    assert_eq!(e.kind, RejectKind::Forbidden, "{e:?}");
    let e = g.no("cn-auth", escrow("a1", "CN-ISSUANCE", "CN-RESERVE", 100, PendingPurpose::Escrow));
    assert_eq!(e.kind, RejectKind::Refused, "only a holding account may receive an escrow of authority units: {e:?}");
    assert!(e.message.contains("only for a holding account of its market"), "{}", e.message);
    let e = g.no("cn-auth", escrow("a1", "CN-ISSUANCE", "BJ-100001", 100, PendingPurpose::Escrow));
    assert_eq!(e.kind, RejectKind::Refused, "another market's operator account is refused: {e:?}");
    // Other purposes still cannot move an authority account's units.
    let e = g.no("cn-auth", escrow("a1", "CN-ISSUANCE", "CN-100001", 100, PendingPurpose::Settlement));
    assert_eq!(e.message, "CN-ISSUANCE is a issuance account; it moves units by allocation or correction, not transfer");
    g.ok("cn-auth", escrow("a1", "CN-ISSUANCE", "CN-100001", 800, PendingPurpose::Escrow));
    assert_eq!(g.held("CN-ISSUANCE", &cea(2024)), (50, 800));
    // The authority's own allocation cannot reach the units set aside.
    let e =
        g.no("cn-auth", Command::Allocate { from: "CN-ISSUANCE".into(), to: "CN-100002".into(), unit: cea(2024), quantity: Tonnes(51) });
    assert_eq!(e.kind, RejectKind::Refused);
    // The clearing account's representative delivers part, then voids the rest back.
    g.ok("alice", Command::DeliverPending { pending: "a1".into(), quantity: Tonnes(300), to: "CN-100002".into() });
    assert_eq!(g.held("CN-100002", &cea(2024)), (350, 0));
    g.ok("alice", Command::VoidPending { pending: "a1".into() });
    assert_eq!(g.held("CN-ISSUANCE", &cea(2024)), (550, 0));
    // A sale out of escrow is not an allocation.
    let last = g.r.transactions().last().expect("a transaction");
    assert_eq!(last.kind, TxKind::PendingPost);
    g.invariants();
}
