//! The `ets` binary as the tests run it: a database in a temporary folder, a pinned clock
//! (`ETS_CLOCK`), no actor or database from the environment, and the output captured.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct Ets {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    /// The day commands are stamped with unless a test says otherwise.
    pub clock: &'static str,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ets {
    pub fn new_at(file: &str, clock: &'static str) -> Ets {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(file);
        Ets { dir, db, clock }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run_at(&self, clock: &str, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_ets"))
            .arg("--database")
            .arg(&self.db)
            .args(args)
            .env_remove("ETS_DATABASE_URL")
            .env_remove("ETS_ACTOR")
            .env("ETS_CLOCK", clock)
            .output()
            .expect("run ets");
        Run {
            code: output.status.code().expect("exit code"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_at(self.clock, args)
    }

    pub fn ok_at(&self, clock: &str, args: &[&str]) -> String {
        let r = self.run_at(clock, args);
        assert_eq!(r.code, 0, "ets {args:?} failed: {}", r.stderr);
        r.stdout
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_at(self.clock, args)
    }

    /// The JSON a command prints with `--json`.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full)).unwrap()
    }

    /// The rows of SQL queries over the SQLite database, one text line each, in order.
    pub fn rows(&self, queries: &[&str]) -> String {
        if !self.db.exists() {
            return String::new();
        }
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let mut out = String::new();
        for sql in queries {
            let mut stmt = conn.prepare(sql).unwrap();
            for row in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
                out.push_str(&row.unwrap());
                out.push('\n');
            }
        }
        out
    }
}
