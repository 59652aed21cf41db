//! PostgreSQL for larger deployments. Batches go in with binary COPY; an advisory lock per
//! schema keeps writers in single file, and the journal's primary key keeps them honest.

use crate::backend::{
    hash32, postings, sha256_hex, tx_row_of_posting, AccountRow, Backend, EvidenceFile, HoldingRow, JournalRow, StoreError, TxRow,
};
use crate::migrations::{MIGRATIONS, SCHEMA_VERSION};
use crate::projection::Projection;
use ets_core::Timestamp;
use ets_registry::SealedRecord;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres::{Client, NoTls};

pub struct PostgresBackend {
    client: Client,
}

fn io(e: postgres::Error) -> StoreError {
    StoreError::Io(format!("postgres: {e}"))
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).expect("value fits BIGINT")
}

const APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ets-journal:' || current_schema()))";

impl PostgresBackend {
    /// Connects to `url`; with `schema`, creates it if needed and keeps every table there.
    pub fn open(url: &str, schema: Option<&str>) -> Result<PostgresBackend, StoreError> {
        let mut client = Client::connect(url, NoTls).map_err(|e| StoreError::Io(format!("cannot connect to {url}: {e}")))?;
        // Acknowledgement waits for the commit to be flushed, whatever the role or server default.
        client.batch_execute("SET synchronous_commit = on").map_err(io)?;
        if let Some(schema) = schema {
            if !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || schema.is_empty() {
                return Err(StoreError::Io(format!("schema name '{schema}' must be letters, digits and underscores")));
            }
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\"")).map_err(io)?;
        }
        let mut backend = PostgresBackend { client };
        backend.migrate()?;
        Ok(backend)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(io)?;
        tx.batch_execute("SELECT pg_advisory_xact_lock(hashtext('ets-migrate:' || current_schema()))").map_err(io)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)").map_err(io)?;
        let current: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).map_err(io)?.get(0);
        if current as u32 > SCHEMA_VERSION {
            return Err(StoreError::Incompatible(format!(
                "database schema version {current} is newer than this program's {SCHEMA_VERSION}; upgrade ets"
            )));
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current as u32) {
            tx.batch_execute(m.postgres).map_err(io)?;
            tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[&(m.version as i32), &m.name]).map_err(io)?;
        }
        tx.commit().map_err(io)
    }

    /// The raw client, for tests that tamper with the database on purpose.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Backend for PostgresBackend {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn append(&mut self, expected_last_seq: u64, records: &[SealedRecord], projection: &Projection) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(io)?;
        tx.batch_execute(APPEND_LOCK).map_err(io)?;
        let last: i64 = tx.query_one("SELECT COALESCE(MAX(seq), 0) FROM journal", &[]).map_err(io)?.get(0);
        if last as u64 != expected_last_seq {
            return Err(StoreError::Conflict(format!("journal ends at record {last}, this writer expected {expected_last_seq}")));
        }
        {
            let sink = tx.copy_in("COPY journal (seq, at_ms, command_id, body, prev_hash, hash) FROM STDIN (FORMAT binary)").map_err(io)?;
            let mut writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::TEXT, Type::BYTEA, Type::BYTEA, Type::BYTEA]);
            for r in records {
                writer.write(&[&i64_of(r.seq), &r.at.0, &r.command_id, &r.body, &&r.prev_hash[..], &&r.hash[..]]).map_err(io)?;
            }
            writer.finish().map_err(io)?;
        }
        for u in &projection.units {
            tx.execute(
                "INSERT INTO units (id, name, market, vintage) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
                &[&(u.id as i32), &u.name, &u.market, &i32::from(u.vintage)],
            )
            .map_err(io)?;
        }
        for a in &projection.accounts {
            tx.execute(
                "INSERT INTO accounts (id, number, market, kind, holder, holder_type, status, representatives) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (number) DO UPDATE SET status = excluded.status, representatives = excluded.representatives",
                &[&(a.id as i32), &a.number, &a.market, &a.kind, &a.holder, &a.holder_type, &a.status, &a.representatives],
            )
            .map_err(io)?;
        }
        tx.commit().map_err(io)
    }

    fn last_seq(&mut self) -> Result<u64, StoreError> {
        let last: i64 = self.client.query_one("SELECT COALESCE(MAX(seq), 0) FROM journal", &[]).map_err(io)?.get(0);
        Ok(last as u64)
    }

    fn scan_journal(&mut self, after_seq: u64, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let after = i64_of(after_seq);
        let params: [&(dyn postgres::types::ToSql + Sync); 1] = [&after];
        let mut rows = self
            .client
            .query_raw("SELECT seq, at_ms, command_id, body, prev_hash, hash FROM journal WHERE seq > $1 ORDER BY seq", params)
            .map_err(io)?;
        while let Some(row) = rows.next().map_err(io)? {
            let seq = row.get::<_, i64>(0) as u64;
            visit(JournalRow {
                seq,
                at: Timestamp(row.get(1)),
                command_id: row.get(2),
                body: row.get(3),
                prev_hash: hash32(row.get::<_, &[u8]>(4), &format!("record {seq} prev_hash"))?,
                hash: hash32(row.get::<_, &[u8]>(5), &format!("record {seq} hash"))?,
            })?;
        }
        Ok(())
    }

    fn record_hash(&mut self, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        let row = self.client.query_opt("SELECT hash FROM journal WHERE seq = $1", &[&i64_of(seq)]).map_err(io)?;
        row.map(|r| hash32(r.get::<_, &[u8]>(0), &format!("record {seq} hash"))).transpose()
    }

    fn snapshot_list(&mut self) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let rows = self.client.query("SELECT seq, state_hash FROM snapshots ORDER BY seq", &[]).map_err(io)?;
        rows.iter()
            .map(|r| {
                let seq = r.get::<_, i64>(0) as u64;
                Ok((seq, hash32(r.get::<_, &[u8]>(1), &format!("snapshot {seq} hash"))?))
            })
            .collect()
    }

    fn load_snapshot(&mut self, seq: u64) -> Result<Vec<u8>, StoreError> {
        Ok(self.client.query_one("SELECT body FROM snapshots WHERE seq = $1", &[&i64_of(seq)]).map_err(io)?.get(0))
    }

    fn save_snapshot(&mut self, seq: u64, state_hash: [u8; 32], body: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(io)?;
        tx.execute(
            "INSERT INTO snapshots (seq, state_hash, body) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING",
            &[&i64_of(seq), &&state_hash[..], &body],
        )
        .map_err(io)?;
        tx.execute("DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 2)", &[]).map_err(io)?;
        tx.commit().map_err(io)
    }

    fn accounts(&mut self, market: Option<&str>) -> Result<Vec<AccountRow>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT id, number, market, kind, holder, holder_type, status, representatives FROM accounts
                 WHERE $1::text IS NULL OR market = $1 ORDER BY market, number",
                &[&market],
            )
            .map_err(io)?;
        Ok(rows
            .iter()
            .map(|r| AccountRow {
                id: r.get::<_, i32>(0) as u32,
                number: r.get(1),
                market: r.get(2),
                kind: r.get(3),
                holder: r.get(4),
                holder_type: r.get(5),
                status: r.get(6),
                representatives: r.get(7),
            })
            .collect())
    }

    fn holdings(&mut self, account: Option<&str>) -> Result<Vec<HoldingRow>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT account, unit, free, encumbered FROM holdings
                 WHERE ($1::text IS NULL OR account = $1) AND (free > 0 OR encumbered > 0) ORDER BY account COLLATE \"C\", unit COLLATE \"C\"",
                &[&account],
            )
            .map_err(io)?;
        Ok(rows
            .iter()
            .map(|r| HoldingRow {
                account: r.get(0),
                unit: r.get(1),
                free: r.get::<_, i64>(2) as u64,
                encumbered: r.get::<_, i64>(3) as u64,
            })
            .collect())
    }

    fn append_trailing(&mut self, rows: &[TxRow], holdings: &[HoldingRow], after_seq: u64, through_seq: u64) -> Result<bool, StoreError> {
        let mut tx = self.client.transaction().map_err(io)?;
        let mark: i64 = tx.query_one("SELECT seq FROM projection_marks WHERE name = 'trailing' FOR UPDATE", &[]).map_err(io)?.get(0);
        if mark as u64 != after_seq {
            return Ok(false);
        }
        if !holdings.is_empty() {
            let accounts: Vec<&str> = holdings.iter().map(|h| h.account.as_str()).collect();
            let units: Vec<&str> = holdings.iter().map(|h| h.unit.as_str()).collect();
            let free: Vec<i64> = holdings.iter().map(|h| i64_of(h.free)).collect();
            let encumbered: Vec<i64> = holdings.iter().map(|h| i64_of(h.encumbered)).collect();
            tx.execute(
                "INSERT INTO holdings (account, unit, free, encumbered)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[])
                 ON CONFLICT (account, unit) DO UPDATE SET free = excluded.free, encumbered = excluded.encumbered",
                &[&accounts, &units, &free, &encumbered],
            )
            .map_err(io)?;
        }
        if !rows.is_empty() {
            let sink = tx
                .copy_in(
                    "COPY postings (account_id, tx, seq, at_ms, kind, incoming, counterparty_id, unit_id, quantity, compliance_year, reverses)
                     FROM STDIN (FORMAT binary)",
                )
                .map_err(io)?;
            let types = [
                Type::INT4,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::BOOL,
                Type::INT4,
                Type::INT4,
                Type::INT8,
                Type::INT4,
                Type::INT8,
            ];
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            for p in postings(rows) {
                let t = p.row;
                let year = t.compliance_year.map(i32::from);
                let reverses = t.reverses.map(i64_of);
                let (account, counterparty, unit) = (p.account_id as i32, p.counterparty_id.map(|a| a as i32), t.unit_id as i32);
                writer
                    .write(&[
                        &account,
                        &i64_of(t.tx),
                        &i64_of(t.seq),
                        &t.at.0,
                        &t.kind,
                        &p.incoming,
                        &counterparty,
                        &unit,
                        &i64_of(t.quantity),
                        &year,
                        &reverses,
                    ])
                    .map_err(io)?;
            }
            writer.finish().map_err(io)?;
        }
        tx.execute("UPDATE projection_marks SET seq = $1 WHERE name = 'trailing'", &[&i64_of(through_seq)]).map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(true)
    }

    fn trailing_through(&mut self) -> Result<u64, StoreError> {
        let mark: i64 = self.client.query_one("SELECT seq FROM projection_marks WHERE name = 'trailing'", &[]).map_err(io)?.get(0);
        Ok(mark as u64)
    }

    fn transactions(&mut self, account: &str, before: Option<Timestamp>) -> Result<Vec<TxRow>, StoreError> {
        let before = before.map(|t| t.0);
        let rows = self
            .client
            .query(
                "SELECT p.tx, p.seq, p.at_ms, p.kind, p.incoming, p.account_id, a.number, p.counterparty_id, c.number, p.unit_id, u.name,
                        p.quantity, p.compliance_year, p.reverses
                 FROM postings p
                 JOIN accounts a ON a.id = p.account_id
                 LEFT JOIN accounts c ON c.id = p.counterparty_id
                 JOIN units u ON u.id = p.unit_id
                 WHERE p.account_id = (SELECT id FROM accounts WHERE number = $1) AND ($2::int8 IS NULL OR p.at_ms < $2)
                 ORDER BY p.tx",
                &[&account, &before],
            )
            .map_err(io)?;
        Ok(rows
            .iter()
            .map(|r| {
                tx_row_of_posting(
                    r.get::<_, i64>(0) as u64,
                    r.get::<_, i64>(1) as u64,
                    Timestamp(r.get(2)),
                    r.get(3),
                    r.get(4),
                    (r.get::<_, i32>(5) as u32, r.get(6)),
                    (r.get::<_, Option<i32>>(7).map(|a| a as u32), r.get(8)),
                    (r.get::<_, i32>(9) as u32, r.get(10)),
                    r.get::<_, i64>(11) as u64,
                    r.get::<_, Option<i32>>(12).map(|y| y as u16),
                    r.get::<_, Option<i64>>(13).map(|v| v as u64),
                )
            })
            .collect())
    }

    fn posting_balances(&mut self) -> Result<Vec<(u32, u32, i64, u64)>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT account_id, unit_id, SUM(CASE WHEN incoming THEN quantity ELSE -quantity END)::int8, COUNT(*)
                 FROM postings GROUP BY account_id, unit_id ORDER BY account_id, unit_id",
                &[],
            )
            .map_err(io)?;
        Ok(rows.iter().map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i32>(1) as u32, r.get(2), r.get::<_, i64>(3) as u64)).collect())
    }

    fn begin_consistent_read(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").map_err(io)
    }

    fn end_consistent_read(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute("COMMIT").map_err(io)
    }

    fn schema_version(&mut self) -> Result<u32, StoreError> {
        let v: i32 = self.client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).map_err(io)?.get(0);
        Ok(v as u32)
    }

    fn mrv_append(&mut self, expected_last_seq: u64, records: &[SealedRecord], evidence: &[EvidenceFile]) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(io)?;
        tx.batch_execute(MRV_APPEND_LOCK).map_err(io)?;
        let last: i64 = tx.query_one("SELECT COALESCE(MAX(seq), 0) FROM mrv_journal", &[]).map_err(io)?.get(0);
        if last as u64 != expected_last_seq {
            return Err(StoreError::Conflict(format!("MRV journal ends at record {last}, this writer expected {expected_last_seq}")));
        }
        for record in records {
            if let Some(row) = tx.query_opt("SELECT seq FROM mrv_journal WHERE command_id = $1", &[&record.command_id]).map_err(io)? {
                let seq: i64 = row.get(0);
                return Err(StoreError::Conflict(format!("command id '{}' is already MRV record {seq}", record.command_id)));
            }
            tx.execute(
                "INSERT INTO mrv_journal (seq, at_ms, command_id, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&i64_of(record.seq), &record.at.0, &record.command_id, &record.body, &&record.prev_hash[..], &&record.hash[..]],
            )
            .map_err(io)?;
        }
        for e in evidence {
            tx.execute(
                "INSERT INTO mrv_evidence (sha256, name, content) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
                &[&e.sha256, &e.name, &e.content],
            )
            .map_err(io)?;
        }
        tx.commit().map_err(io)
    }

    fn exchange_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError> {
        self.chain_append("exchange_journal", EXCHANGE_APPEND_LOCK, expected_last_seq, records)
    }

    fn exchange_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("exchange_journal", visit)
    }

    fn access_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError> {
        self.chain_append("access_journal", ACCESS_APPEND_LOCK, expected_last_seq, records)
    }

    fn access_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("access_journal", visit)
    }

    fn finance_append(&mut self, expected_last_seq: u64, records: &[SealedRecord]) -> Result<(), StoreError> {
        self.chain_append("finance_journal", FINANCE_APPEND_LOCK, expected_last_seq, records)
    }

    fn finance_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("finance_journal", visit)
    }

    fn mrv_scan(&mut self, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.chain_scan("mrv_journal", visit)
    }

    fn mrv_command(&mut self, command_id: &str) -> Result<Option<JournalRow>, StoreError> {
        let row = self
            .client
            .query_opt("SELECT seq, at_ms, command_id, body, prev_hash, hash FROM mrv_journal WHERE command_id = $1", &[&command_id])
            .map_err(io)?;
        row.as_ref().map(pg_journal_row).transpose()
    }

    fn mrv_evidence(&mut self, sha256: &str) -> Result<Option<EvidenceFile>, StoreError> {
        let row = self.client.query_opt("SELECT sha256, name, content FROM mrv_evidence WHERE sha256 = $1", &[&sha256]).map_err(io)?;
        Ok(row.map(|r| EvidenceFile { sha256: r.get(0), name: r.get(1), content: r.get(2) }))
    }

    fn mrv_evidence_check(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.client.query("SELECT sha256, content FROM mrv_evidence ORDER BY sha256", &[]).map_err(io)?;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), sha256_hex(r.get::<_, &[u8]>(1)))).collect())
    }
}

impl PostgresBackend {
    /// Appends chained records to a journal table (`exchange_journal`, `access_journal`) that
    /// holds only its records, in one transaction under its advisory `lock`, if it ends at
    /// `expected_last_seq`.
    fn chain_append(
        &mut self,
        table: &'static str,
        lock: &'static str,
        expected_last_seq: u64,
        records: &[SealedRecord],
    ) -> Result<(), StoreError> {
        let journal = table.replace('_', " ");
        let mut tx = self.client.transaction().map_err(io)?;
        tx.batch_execute(lock).map_err(io)?;
        let last: i64 = tx.query_one(&format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"), &[]).map_err(io)?.get(0);
        if last as u64 != expected_last_seq {
            return Err(StoreError::Conflict(format!("{journal} ends at record {last}, this writer expected {expected_last_seq}")));
        }
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {table} (seq, at_ms, command_id, body, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (command_id) DO NOTHING"
            ))
            .map_err(io)?;
        for record in records {
            let n = tx
                .execute(
                    &insert,
                    &[&i64_of(record.seq), &record.at.0, &record.command_id, &record.body, &&record.prev_hash[..], &&record.hash[..]],
                )
                .map_err(io)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("command id '{}' is already in the {journal}", record.command_id)));
            }
        }
        tx.commit().map_err(io)
    }

    /// Streams every record of a journal table in order.
    fn chain_scan(&mut self, table: &'static str, visit: &mut dyn FnMut(JournalRow) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let params: [&(dyn postgres::types::ToSql + Sync); 0] = [];
        let mut rows = self
            .client
            .query_raw(&format!("SELECT seq, at_ms, command_id, body, prev_hash, hash FROM {table} ORDER BY seq"), params)
            .map_err(io)?;
        while let Some(row) = rows.next().map_err(io)? {
            visit(pg_journal_row(&row)?)?;
        }
        Ok(())
    }
}

const ACCESS_APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ets-access-journal:' || current_schema()))";
const EXCHANGE_APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ets-exchange-journal:' || current_schema()))";
const FINANCE_APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ets-finance-journal:' || current_schema()))";
const MRV_APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('ets-mrv-journal:' || current_schema()))";

fn pg_journal_row(row: &postgres::Row) -> Result<JournalRow, StoreError> {
    let seq = row.get::<_, i64>(0) as u64;
    Ok(JournalRow {
        seq,
        at: Timestamp(row.get(1)),
        command_id: row.get(2),
        body: row.get(3),
        prev_hash: hash32(row.get::<_, &[u8]>(4), &format!("journal record {seq} prev_hash"))?,
        hash: hash32(row.get::<_, &[u8]>(5), &format!("journal record {seq} hash"))?,
    })
}
