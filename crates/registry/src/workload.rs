//! The benchmark workload, shared by the core bench, the durable bench and the profiling loop:
//! one market (`CN`, allowance `CEA`, authority `mee`, administrator `admin`), `accounts`
//! operator accounts (`CN-100001`, ... represented by `r0`, `r1`, ...), each allocated
//! `allocation_t` of `CEA:2024`, and a deterministic stream of transfers between random
//! accounts of 1 to 1,000 t, each with a fresh idempotency id. Seeded, so runs compare.

use crate::command::{Command, Envelope, UnitRef};
use crate::model::{AccountKind, HolderType, MarketLevel, MarketSpec};
use crate::registry::ACCOUNT_NUMBER_FIRST;
use ets_core::Tonnes;

fn envelope(id: String, actor: &str, command: Command) -> Envelope {
    Envelope { id, actor: actor.into(), command }
}

/// Number of the `i`-th operator account of the workload.
pub fn account(i: u32) -> String {
    format!("CN-{}", ACCOUNT_NUMBER_FIRST + u64::from(i))
}

/// The commands that build the workload's registry: init, market, accounts, issuance, allocation.
pub fn setup(accounts: u32, allocation_t: u64) -> Vec<Envelope> {
    let spec = MarketSpec {
        code: "CN".into(),
        name: "National".into(),
        level: MarketLevel::National,
        allowance_code: "CEA".into(),
        offset_standards: vec![],
        individuals_may_trade: false,
        authorities: vec!["mee".into()],
    };
    let mut out = vec![
        envelope("init".into(), "admin", Command::InitRegistry { admins: vec!["admin".into()] }),
        envelope("cn".into(), "admin", Command::AddMarket(spec)),
    ];
    for i in 0..accounts {
        let open = Command::OpenAccount {
            market: "CN".into(),
            kind: AccountKind::Operator,
            holder: format!("Entity {i}"),
            holder_type: HolderType::Entity,
            representatives: vec![format!("r{i}")],
        };
        out.push(envelope(format!("open-{i}"), "admin", open));
    }
    let unit = UnitRef::allowance("CEA", 2024);
    let total = Tonnes(u64::from(accounts) * allocation_t);
    out.push(envelope("issue".into(), "mee", Command::Issue { unit: unit.clone(), quantity: total, to: None }));
    for i in 0..accounts {
        let allocate = Command::Allocate { from: "CN-ISSUANCE".into(), to: account(i), unit: unit.clone(), quantity: Tonnes(allocation_t) };
        out.push(envelope(format!("alloc-{i}"), "mee", allocate));
    }
    out
}

/// Transfers between random accounts of the workload (xorshift64; ids `t{seed}-{n}`).
pub struct Transfers {
    state: u64,
    seed: u64,
    n: u64,
    accounts: u32,
    unit: UnitRef,
}

impl Transfers {
    pub fn new(accounts: u32, seed: u64) -> Transfers {
        assert!(accounts >= 2, "transfers need two accounts");
        Transfers {
            state: 0x9e37_79b9_7f4a_7c15 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d),
            seed,
            n: 0,
            accounts,
            unit: UnitRef::allowance("CEA", 2024),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}

impl Iterator for Transfers {
    type Item = Envelope;

    fn next(&mut self) -> Option<Envelope> {
        let accounts = u64::from(self.accounts);
        let from = (self.next_u64() % accounts) as u32;
        let to = ((u64::from(from) + 1 + self.next_u64() % (accounts - 1)) % accounts) as u32;
        let quantity = Tonnes(1 + self.next_u64() % 1000);
        self.n += 1;
        let transfer = Command::Transfer { from: account(from), to: account(to), unit: self.unit.clone(), quantity };
        Some(envelope(format!("t{}-{}", self.seed, self.n), &format!("r{from}"), transfer))
    }
}
