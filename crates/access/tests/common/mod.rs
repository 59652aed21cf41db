#![allow(dead_code)]

use ets_access::{Access, AccountRef, Actor, Command, ControlRules, Envelope, PasswordRules, Record, Refusal, Role};
use ets_core::{Date, Timestamp};

pub const PASSWORD: &str = "correct horse battery staple";

/// Default rules with cheap Argon2id parameters (tests hash many passwords).
pub fn rules() -> ControlRules {
    ControlRules {
        password: PasswordRules { memory_kib: 64, iterations: 1, parallelism: 1, ..PasswordRules::default() },
        ..ControlRules::default()
    }
}

pub fn date(text: &str) -> Date {
    Date::parse(text).unwrap()
}

/// `hh:mm` UTC on `day`.
pub fn utc(day: &str, hour: i64, minute: i64) -> Timestamp {
    Timestamp(date(day).start().0 + hour * 3_600_000 + minute * 60_000)
}

/// `hh:mm` CET (UTC+01:00) on `day`.
pub fn cet(day: &str, hour: i64, minute: i64) -> Timestamp {
    Timestamp(utc(day, hour, minute).0 - 3_600_000)
}

pub fn a1() -> AccountRef {
    AccountRef::new("A1", "M1")
}
pub fn a2() -> AccountRef {
    AccountRef::new("A2", "M1")
}
pub fn a3() -> AccountRef {
    AccountRef::new("A3", "M2")
}

/// An `Access` driven like the server drives it, keeping every journaled record.
pub struct World {
    pub access: Access,
    pub records: Vec<Record>,
    pub root: Actor,
    secrets: u64,
}

impl World {
    /// Root administrator plus: alice and bob represent A1, carol approves for A1, dave
    /// represents A2, erin represents A3; everyone logged in.
    pub fn new(rules: ControlRules, start: Timestamp) -> World {
        let mut w = World { access: Access::new(rules).unwrap(), records: Vec::new(), root: Actor::System, secrets: 0 };
        w.exec(start, Actor::System, Command::Bootstrap { user: "root".into(), password: PASSWORD.into(), salt: [1; 16] }).unwrap();
        w.root = w.login("root", start);
        for (name, role) in [
            ("alice", Role::AccountRepresentative { account: "A1".into() }),
            ("bob", Role::AccountRepresentative { account: "A1".into() }),
            ("carol", Role::ApprovingRepresentative { account: "A1".into() }),
            ("dave", Role::AccountRepresentative { account: "A2".into() }),
            ("erin", Role::AccountRepresentative { account: "A3".into() }),
        ] {
            w.create_user(start, name, vec![role]);
        }
        w
    }

    pub fn create_user(&mut self, at: Timestamp, name: &str, roles: Vec<Role>) {
        let root = self.root.clone();
        self.exec(at, root, Command::CreateUser { user: name.into(), roles, password: PASSWORD.into(), salt: [2; 16] }).unwrap();
    }

    pub fn secret(&mut self) -> String {
        self.secrets += 1;
        format!("test-secret-{:032}", self.secrets)
    }

    /// Logs `user` in at `at`; the session id is the secret's number.
    pub fn login(&mut self, user: &str, at: Timestamp) -> Actor {
        let (session, secret) = self.login_with_secret(user, at);
        let _ = secret;
        session
    }

    pub fn login_with_secret(&mut self, user: &str, at: Timestamp) -> (Actor, String) {
        let secret = self.secret();
        let session = format!("s{}", self.secrets);
        let command =
            Command::Login { user: user.into(), password: PASSWORD.into(), session: session.clone(), secret: secret.clone().into() };
        self.exec(at, Actor::Anonymous, command).unwrap();
        (Actor::Session(session), secret)
    }

    pub fn exec(&mut self, at: Timestamp, actor: Actor, command: Command) -> Result<Record, Refusal> {
        self.exec_from(at, "127.0.0.1", actor, command)
    }

    pub fn exec_from(&mut self, at: Timestamp, origin: &str, actor: Actor, command: Command) -> Result<Record, Refusal> {
        let result = self.access.execute(&Envelope { at, origin: origin.into(), actor, command });
        match &result {
            Ok(record) => self.records.push(record.clone()),
            Err(Refusal { record: Some(record), .. }) => self.records.push((**record).clone()),
            Err(_) => {}
        }
        result
    }

    pub fn tick(&mut self, at: Timestamp) -> Record {
        self.exec(at, Actor::System, Command::Tick).unwrap()
    }

    /// Rebuilds the state from the journaled records (through their JSON form) and compares.
    pub fn check_replay(&self) {
        let json = serde_json::to_string(&self.records).unwrap();
        let records: Vec<Record> = serde_json::from_str(&json).unwrap();
        let replayed = Access::replay(self.access.rules().clone(), &records).unwrap();
        assert!(replayed == self.access, "replay differs from the live state");
    }
}
