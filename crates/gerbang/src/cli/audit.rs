//! `gerbang audit verify` and `gerbang audit export`: the audit log (`gerbang_store::audit`) for
//! auditors and a SIEM.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use gerbang_store::Store;
use gerbang_store::audit::{AuditChain, AuditEntry, Verdict, walk};
use serde::Serialize;

use crate::app::sealer;
use crate::config::Config;
use crate::database::Database;
use crate::with_store;
use gerbang_domain::account::hex;

/// Exit status when the log shows tampering.
pub const TAMPERED: u8 = 3;

/// Entries read per query.
const PAGE: u32 = 10_000;

pub async fn verify(config: &Config) -> anyhow::Result<ExitCode> {
    let sealer = sealer(config)?;
    let chain = AuditChain::for_sealer(&sealer);
    let db = Database::open(config, sealer).await?;
    let started = Instant::now();
    let verdict = with_store!(&db, |store| walk(store, chain).await);
    db.close().await;
    let seconds = started.elapsed().as_secs_f64();
    match verdict.context("cannot read the audit log")? {
        Verdict::Whole { head, entries } => {
            println!(
                "audit log whole: {entries} entries, head {} {} ({:.0} entries/s)",
                head.seq,
                hex(&head.mac),
                entries as f64 / seconds.max(1e-9)
            );
            Ok(ExitCode::SUCCESS)
        }
        Verdict::Tampered(tamper) => {
            eprintln!("AUDIT LOG TAMPERED: {tamper}");
            Ok(ExitCode::from(TAMPERED))
        }
    }
}

/// One exported line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    seq: i64,
    at: String,
    actor: &'a str,
    action: &'a str,
    account: Option<&'a str>,
    ticket: Option<&'a str>,
    detail: &'a str,
    mac: String,
}

/// `--since` as an instant: RFC 3339, or a date (midnight UTC).
pub fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        anyhow::anyhow!(
            "--since: give a date (2026-12-01) or an RFC 3339 time (2026-12-01T08:00:00+07:00)"
        )
    })?;
    Ok(date.and_time(chrono::NaiveTime::MIN).and_utc())
}

async fn write_lines<S: Store>(
    store: &S,
    since: Option<DateTime<Utc>>,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut after = 0;
    let mut written = 0;
    loop {
        let page = store.audit_entries(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in page
            .iter()
            .filter(|e| since.is_none_or(|since| e.record.at >= since))
        {
            serde_json::to_writer(&mut *out, &line(entry))?;
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    Ok(written)
}

fn line(entry: &AuditEntry) -> Line<'_> {
    Line {
        seq: entry.seq,
        at: entry.record.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        actor: &entry.record.actor,
        action: &entry.record.action,
        account: entry.account_public_id.as_deref(),
        ticket: entry.record.ticket.as_deref(),
        detail: &entry.record.detail,
        mac: hex(&entry.mac),
    }
}

pub async fn export(config: &Config, since: Option<&str>) -> anyhow::Result<ExitCode> {
    let since = since.map(parse_since).transpose()?;
    let sealer = sealer(config)?;
    let db = Database::open(config, sealer).await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = with_store!(&db, |store| write_lines(store, since, &mut out).await);
    db.close().await;
    let written = written?;
    out.flush()?;
    eprintln!("{written} entries exported");
    Ok(ExitCode::SUCCESS)
}
