//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL`, so a committed
//! batch survives a process kill and a power cut.

use crate::backend::{
    hash32, postings, sha256_hex, tx_row_of_posting, AccountRow, Backend, EvidenceFile, HoldingRow, JournalRow, StoreError, TxRow,
};
use crate::migrations::{MIGRATIONS, SCHEMA_VERSION};
use crate::projection::Projection;
use ets_core::Timestamp;
use ets_registry::SealedRecord;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql, TransactionBehavior};
use std::path::Path;

pub struct SqliteBackend {
    conn: Connection,
}

fn io(e: rusqlite::Error) -> StoreError {
    StoreError::Io(format!("sqlite: {e}"))
}

impl SqliteBackend {
    pub fn open(path: &Path) -> Result<SqliteBackend, StoreError> {
        let conn = Connection::open(path).map_err(|e| StoreError::Io(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(io)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(io)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(format!("{} cannot use WAL journal mode (got {mode})", path.display())));
        }
        // A large page cache (256 MiB) keeps the B-tree pages that appends touch in memory, so
        // they are not read back or spilt half-written; checkpoints every 64 MiB of WAL rather
        // than every 4 MiB keep most commits from also paying for a checkpoint.
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY;
             PRAGMA wal_autocheckpoint=16384;",
        )
        .map_err(io)?;
        let mut backend = SqliteBackend { conn };
        backend.migrate()?;
        Ok(backend)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(io)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)").map_err(io)?;
        let current: u32 = tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(io)?;
        if current > SCHEMA_VERSION {
            return Err(StoreError::Incompatible(format!(
                "database schema version {current} is newer than this program's {SCHEMA_VERSION}; upgrade ets"
            )));
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            tx.execute_batch(m.sqlite).map_err(io)?;
            tx.execute("INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)", params![m.version, m.name]).map_err(io)?;
        }
        tx.commit().map_err(io)
    }

    /// The command id of journal record 1, read without changing the file (no migrations):
    /// None for anything that is not an ets registry with at least one record.
    pub fn first_command_id(path: &Path) -> Option<String> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        conn.query_row("SELECT command_id FROM journal WHERE seq = 1", [], |r| r.get(0)).ok()
    }

    /// The raw connection, for tests that tamper with the file on purpose.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Rows per multi-row INSERT (SQLite allows 32,766 parameters per statement).
const ROWS_PER_INSERT: usize = 128;

fn multi_insert(table: &str, columns: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(","));
    format!("INSERT INTO {table} ({columns}) VALUES {}", vec![row; rows].join(","))
}

impl SqliteBackend {
    /// Appends chained records to a journal table (`exchange_journal`, `access_journal`) that
    /// holds only its records, in one transaction, if it ends at `expected_last_seq`.
    fn chain_append(&mut self, table: &'static str, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError> {
        let journal = table.replace('_', " ");
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(io)?;
        let last: i64 = tx.query_row(&format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"), [], |r| r.get(0)).map_err(io)?;
        if last as u64 != expected_last_seq {
            return Err(StoreError::Conflict(format!("{journal} ends at record {last}, this writer expected {expected_last_seq}")));
        }
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO {table} (seq, at_ms, command_id, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ))
                .map_err(io)?;
            for record in records {
                insert
                    .execute(params![
                        i64_of(record.seq),
                        record.at.0,
                        record.command_id,
                        record.body,
                        &record.prev_hash[..],
                        &record.hash[..]
                    ])
                    .map_err(|e| match e {
                        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                            StoreError::Conflict(format!("command id '{}' is already in the {journal}", record.command_id))
                        }
                        e => io(e),
                    })?;
            }
        }
        tx.commit().map_err(io)
    }

    /// Streams every record of a journal table in order.
    fn chain_scan(&mut self, table: &'static str, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut stmt =
            self.conn.prepare(&format!("SELECT seq, at_ms, command_id, body, prev_hash, hash FROM {table} ORDER BY seq")).map_err(io)?;
        let mut rows = stmt.query([]).map_err(io)?;
        while let Some(row) = rows.next().map_err(io)? {
            visit(sqlite_journal_row(row)?)?;
        }
        Ok(())
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).expect("value fits the database's signed 64-bit integers")
}

impl Backend for SqliteBackend {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn append(&mut self, expected_last_seq: u64, records: &[SealedRecord], projection: &Projection) -> Result<(), StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(io)?;
        let last: u64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| r.get::<_, i64>(0)).map_err(io)? as u64;
        if last != expected_last_seq {
            return Err(StoreError::Conflict(format!("journal ends at record {last}, this writer expected {expected_last_seq}")));
        }
        {
            // Multi-row INSERTs: one statement per ROWS_PER_INSERT records instead of one each.
            for chunk in records.chunks(ROWS_PER_INSERT) {
                let seqs: Vec<i64> = chunk.iter().map(|r| i64_of(r.seq)).collect();
                let mut values: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 6);
                for (r, seq) in chunk.iter().zip(&seqs) {
                    values.extend([seq as &dyn ToSql, &r.at.0, &r.command_id, &r.body, &r.prev_hash, &r.hash]);
                }
                let sql = multi_insert("journal", "seq, at_ms, command_id, body, prev_hash, hash", 6, chunk.len());
                tx.prepare_cached(&sql).map_err(io)?.execute(params_from_iter(values)).map_err(io)?;
            }
            let mut unit = tx
                .prepare_cached("INSERT INTO units (id, name, market, vintage) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING")
                .map_err(io)?;
            for u in &projection.units {
                unit.execute(params![u.id, u.name, u.market, u.vintage]).map_err(io)?;
            }
            let mut account = tx
                .prepare_cached(
                    "INSERT INTO accounts (id, number, market, kind, holder, holder_type, status, representatives) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (number) DO UPDATE SET status = excluded.status, representatives = excluded.representatives",
                )
                .map_err(io)?;
            for a in &projection.accounts {
                account
                    .execute(params![a.id, a.number, a.market, a.kind, a.holder, a.holder_type, a.status, a.representatives])
                    .map_err(io)?;
            }
        }
        tx.commit().map_err(io)
    }

    fn last_seq(&mut self) -> Result<u64, StoreError> {
        let last: i64 = self.conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| r.get(0)).map_err(io)?;
        Ok(last as u64)
    }

    fn scan_journal(&mut self, after_seq: u64, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at_ms, command_id, body, prev_hash, hash FROM journal WHERE seq > ?1 ORDER BY seq")
            .map_err(io)?;
        let mut rows = stmt.query(params![i64_of(after_seq)]).map_err(io)?;
        while let Some(row) = rows.next().map_err(io)? {
            let prev: Vec<u8> = row.get(4).map_err(io)?;
            let hash: Vec<u8> = row.get(5).map_err(io)?;
            let seq = row.get::<_, i64>(0).map_err(io)? as u64;
            visit(JournalRow {
                seq,
                at: Timestamp(row.get(1).map_err(io)?),
                command_id: row.get(2).map_err(io)?,
                body: row.get(3).map_err(io)?,
                prev_hash: hash32(&prev, &format!("record {seq} prev_hash"))?,
                hash: hash32(&hash, &format!("record {seq} hash"))?,
            })?;
        }
        Ok(())
    }

    fn record_hash(&mut self, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let hash: Option<Vec<u8>> =
            self.conn.query_row("SELECT hash FROM journal WHERE seq = ?1", params![i64_of(seq)], |r| r.get(0)).optional().map_err(io)?;
        hash.map(|h| hash32(&h, &format!("record {seq} hash"))).transpose()
    }

    fn snapshot_list(&mut self) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT seq, state_hash FROM snapshots ORDER BY seq").map_err(io)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)))
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        rows.into_iter().map(|(seq, h)| Ok((seq, hash32(&h, &format!("snapshot {seq} hash"))?))).collect()
    }

    fn load_snapshot(&mut self, seq: u64) -> Result<Vec<u8>, StoreError> {
        self.conn.query_row("SELECT body FROM snapshots WHERE seq = ?1", params![i64_of(seq)], |r| r.get(0)).map_err(io)
    }

    fn save_snapshot(&mut self, seq: u64, state_hash: [u8; 32], body: &[u8]) -> Result<(), StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(io)?;
        tx.execute(
            "INSERT INTO snapshots (seq, state_hash, body) VALUES (?1, ?2, ?3) ON CONFLICT (seq) DO NOTHING",
            params![i64_of(seq), &state_hash[..], body],
        )
        .map_err(io)?;
        // Keep the two newest: one to fall back on if the newest is found damaged.
        tx.execute("DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 2)", []).map_err(io)?;
        tx.commit().map_err(io)
    }

    fn accounts(&mut self, market: Option<&str>) -> Result<Vec<AccountRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, number, market, kind, holder, holder_type, status, representatives FROM accounts
                 WHERE ?1 IS NULL OR market = ?1 ORDER BY market, number",
            )
            .map_err(io)?;
        let rows = stmt
            .query_map(params![market], |r| {
                Ok(AccountRow {
                    id: r.get(0)?,
                    number: r.get(1)?,
                    market: r.get(2)?,
                    kind: r.get(3)?,
                    holder: r.get(4)?,
                    holder_type: r.get(5)?,
                    status: r.get(6)?,
                    representatives: r.get(7)?,
                })
            })
            .map_err(io)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(io)
    }

    fn holdings(&mut self, account: Option<&str>) -> Result<Vec<HoldingRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT account, unit, free, encumbered FROM holdings
                 WHERE (?1 IS NULL OR account = ?1) AND (free > 0 OR encumbered > 0) ORDER BY account, unit",
            )
            .map_err(io)?;
        let rows = stmt
            .query_map(params![account], |r| {
                Ok(HoldingRow {
                    account: r.get(0)?,
                    unit: r.get(1)?,
                    free: r.get::<_, i64>(2)? as u64,
                    encumbered: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(io)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(io)
    }

    fn append_trailing(&mut self, rows: &[TxRow], holdings: &[HoldingRow], after_seq: u64, through_seq: u64) -> Result<bool, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(io)?;
        let mark: i64 = tx.query_row("SELECT seq FROM projection_marks WHERE name = 'trailing'", [], |r| r.get(0)).map_err(io)?;
        if mark as u64 != after_seq {
            return Ok(false);
        }
        {
            // One-row statements: an UPDATE that touches one row needs no statement journal,
            // where a multi-row upsert copies every page it touches into one.
            let mut update =
                tx.prepare_cached("UPDATE holdings SET free = ?3, encumbered = ?4 WHERE account = ?1 AND unit = ?2").map_err(io)?;
            let mut insert =
                tx.prepare_cached("INSERT INTO holdings (account, unit, free, encumbered) VALUES (?1, ?2, ?3, ?4)").map_err(io)?;
            for h in holdings {
                let values = params![h.account, h.unit, i64_of(h.free), i64_of(h.encumbered)];
                if update.execute(values).map_err(io)? == 0 {
                    insert.execute(values).map_err(io)?;
                }
            }
            let postings = postings(rows);
            for chunk in postings.chunks(ROWS_PER_INSERT) {
                let ints: Vec<[i64; 3]> = chunk.iter().map(|p| [i64_of(p.row.tx), i64_of(p.row.seq), i64_of(p.row.quantity)]).collect();
                let extra: Vec<(Option<u16>, Option<i64>)> =
                    chunk.iter().map(|p| (p.row.compliance_year, p.row.reverses.map(i64_of))).collect();
                let mut values: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 11);
                for ((p, i), (year, reverses)) in chunk.iter().zip(&ints).zip(&extra) {
                    values.extend([
                        &p.account_id as &dyn ToSql,
                        &i[0],
                        &i[1],
                        &p.row.at.0,
                        &p.row.kind,
                        &p.incoming,
                        &p.counterparty_id,
                        &p.row.unit_id,
                        &i[2],
                        year,
                        reverses,
                    ]);
                }
                let sql = multi_insert(
                    "postings",
                    "account_id, tx, seq, at_ms, kind, incoming, counterparty_id, unit_id, quantity, compliance_year, reverses",
                    11,
                    chunk.len(),
                );
                tx.prepare_cached(&sql).map_err(io)?.execute(params_from_iter(values)).map_err(io)?;
            }
        }
        tx.execute("UPDATE projection_marks SET seq = ?1 WHERE name = 'trailing'", params![i64_of(through_seq)]).map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(true)
    }

    fn trailing_through(&mut self) -> Result<u64, StoreError> {
        let mark: i64 = self.conn.query_row("SELECT seq FROM projection_marks WHERE name = 'trailing'", [], |r| r.get(0)).map_err(io)?;
        Ok(mark as u64)
    }

    fn transactions(&mut self, account: &str, before: Option<Timestamp>) -> Result<Vec<TxRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.tx, p.seq, p.at_ms, p.kind, p.incoming, p.account_id, a.number, p.counterparty_id, c.number, p.unit_id, u.name,
                        p.quantity, p.compliance_year, p.reverses
                 FROM postings p
                 JOIN accounts a ON a.id = p.account_id
                 LEFT JOIN accounts c ON c.id = p.counterparty_id
                 JOIN units u ON u.id = p.unit_id
                 WHERE p.account_id = (SELECT id FROM accounts WHERE number = ?1) AND (?2 IS NULL OR p.at_ms < ?2)
                 ORDER BY p.tx",
            )
            .map_err(io)?;
        let rows = stmt
            .query_map(params![account, before.map(|t| t.0)], |r| {
                Ok(tx_row_of_posting(
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    Timestamp(r.get(2)?),
                    r.get(3)?,
                    r.get(4)?,
                    (r.get(5)?, r.get(6)?),
                    (r.get(7)?, r.get(8)?),
                    (r.get(9)?, r.get(10)?),
                    r.get::<_, i64>(11)? as u64,
                    r.get(12)?,
                    r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
                ))
            })
            .map_err(io)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(io)
    }

    fn posting_balances(&mut self) -> Result<Vec<(u32, u32, i64, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT account_id, unit_id, SUM(CASE WHEN incoming THEN quantity ELSE -quantity END), COUNT(*)
                 FROM postings GROUP BY account_id, unit_id ORDER BY account_id, unit_id",
            )
            .map_err(io)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? as u64))).map_err(io)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(io)
    }

    fn begin_consistent_read(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN DEFERRED").map_err(io)?;
        // A deferred transaction takes its read snapshot at its first read.
        self.conn.query_row("SELECT COUNT(*) FROM projection_marks", [], |r| r.get::<_, i64>(0)).map_err(io)?;
        Ok(())
    }

    fn end_consistent_read(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT").map_err(io)
    }

    fn schema_version(&mut self) -> Result<u32, StoreError> {
        self.conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0)).map_err(io)
    }

    fn mrv_append(&mut self, expected_last_seq: u64, records: &[SealedRecord], evidence: &[EvidenceFile]) -> Result<(), StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(io)?;
        let last: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM mrv_journal", [], |r| r.get(0)).map_err(io)?;
        if last as u64 != expected_last_seq {
            return Err(StoreError::Conflict(format!("MRV journal ends at record {last}, this writer expected {expected_last_seq}")));
        }
        for record in records {
            let taken: Option<i64> = tx
                .query_row("SELECT seq FROM mrv_journal WHERE command_id = ?1", params![record.command_id], |r| r.get(0))
                .optional()
                .map_err(io)?;
            if let Some(seq) = taken {
                return Err(StoreError::Conflict(format!("command id '{}' is already MRV record {seq}", record.command_id)));
            }
            tx.execute(
                "INSERT INTO mrv_journal (seq, at_ms, command_id, body, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![i64_of(record.seq), record.at.0, record.command_id, record.body, &record.prev_hash[..], &record.hash[..]],
            )
            .map_err(io)?;
        }
        for e in evidence {
            tx.execute(
                "INSERT INTO mrv_evidence (sha256, name, content) VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING",
                params![e.sha256, e.name, e.content],
            )
            .map_err(io)?;
        }
        tx.commit().map_err(io)
    }

    fn exchange_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError> {
        self.chain_append("exchange_journal", expected_last_seq, records)
    }

    fn exchange_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("exchange_journal", visit)
    }

    fn access_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError> {
        self.chain_append("access_journal", expected_last_seq, records)
    }

    fn access_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("access_journal", visit)
    }

    fn finance_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError> {
        self.chain_append("finance_journal", expected_last_seq, records)
    }

    fn finance_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("finance_journal", visit)
    }

    fn mrv_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("mrv_journal", visit)
    }
    fn mrv_command(&mut self, command_id: &str) -> Result<Option<JournalRow>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT seq, at_ms, command_id, body, prev_hash, hash FROM mrv_journal WHERE command_id = ?1").map_err(io)?;
        let mut rows = stmt.query(params![command_id]).map_err(io)?;
        match rows.next().map_err(io)? {
            Some(row) => Ok(Some(sqlite_journal_row(row)?)),
            None => Ok(None),
        }
    }

    fn mrv_evidence(&mut self, sha256: &str) -> Result<Option<EvidenceFile>, StoreError> {
        self.conn
            .query_row("SELECT sha256, name, content FROM mrv_evidence WHERE sha256 = ?1", params![sha256], |r| {
                Ok(EvidenceFile { sha256: r.get(0)?, name: r.get(1)?, content: r.get(2)? })
            })
            .optional()
            .map_err(io)
    }

    fn mrv_evidence_check(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT sha256, content FROM mrv_evidence ORDER BY sha256").map_err(io)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, sha256_hex(&r.get::<_, Vec<u8>>(1)?))))
            .map_err(io)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io)?;
        Ok(rows)
    }
}

fn sqlite_journal_row(row: &rusqlite::Row<'_>) -> Result<JournalRow, StoreError> {
    let prev: Vec<u8> = row.get(4).map_err(io)?;
    let hash: Vec<u8> = row.get(5).map_err(io)?;
    let seq = row.get::<_, i64>(0).map_err(io)? as u64;
    Ok(JournalRow {
        seq,
        at: Timestamp(row.get(1).map_err(io)?),
        command_id: row.get(2).map_err(io)?,
        body: row.get(3).map_err(io)?,
        prev_hash: hash32(&prev, &format!("journal record {seq} prev_hash"))?,
        hash: hash32(&hash, &format!("journal record {seq} hash"))?,
    })
}
