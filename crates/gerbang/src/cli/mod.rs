//! The `gerbang` commands. Each parses its flags, loads the configuration and calls into the
//! library; results go to stdout, logs and problems to stderr.

// Printing results is this module's job; everywhere else the lint keeps stray prints out.
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Parser, Subcommand};
use gerbang_domain::delivery::explain;
use gerbang_domain::verification::{Channel, OtpPolicy, Verification};
use gerbang_domain::{Clock, JknCardNumber, KpjNumber, Nik, SystemClock};
use gerbang_registry::ParticipantDirectory;
use gerbang_registry::{
    ImportError, ImportObserver, ImportReport, RowProblem, import_csv, write_csv,
};
use gerbang_store::{DeliveryAttempt, ParticipantKey, PumpingStore, Store, StoreError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::app::{Application, registry, sealer};
use crate::config::{self, Config, Overrides, RegistrySource};
use crate::database::Database;
use crate::{telemetry, with_store};

pub mod audit;
pub mod rotate;
pub mod staff;

#[derive(Debug, Parser)]
#[command(
    name = "gerbang",
    version,
    about = "Identity verification and one-time passwords for social-security participants"
)]
pub struct Cli {
    /// Configuration file (TOML); see `gerbang config example`.
    #[arg(long, global = true, env = "GERBANG_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on (server.listen).
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Bring the database schema up to date and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Personal-data key helpers.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The participant registry.
    #[command(subcommand)]
    Participants(ParticipantsCommand),
    /// Participant accounts, for branch officers.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// The tamper-evident audit log of account events and staff actions.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The SMS pumping brake: number blocks whose codes are held.
    #[command(subcommand)]
    Brakes(BrakesCommand),
    /// Copy the SQLite database to FILE while gerbang keeps serving (for PostgreSQL use pg_dump).
    Backup {
        /// Where the copy goes; it must not exist yet.
        file: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Back-office staff accounts (docs/staff.md); changes are recorded as `operator:BY`.
    #[command(subcommand)]
    Staff(StaffCommand),
}

#[derive(Debug, Subcommand)]
enum BrakesCommand {
    /// Number blocks braked now, and brakes made or lifted in the last day.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Lift the brake on a number block (after checking with the operator that the traffic is
    /// real); recorded as `operator:BY` with the reason.
    Lift {
        /// The block as `gerbang brakes list` shows it, e.g. +6281211112.
        #[arg(long)]
        block: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Add a staff member; prints their authenticator QR code (and the password gerbang chose,
    /// unless --password-stdin gave one) once.
    Add {
        #[arg(long)]
        name: String,
        /// agent, officer, supervisor or admin.
        #[arg(long)]
        role: String,
        /// Read the password from the first line of standard input instead of choosing one.
        #[arg(long)]
        password_stdin: bool,
        /// Who runs this (recorded in the audit log).
        #[arg(long)]
        by: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Change a staff member's role; it applies from their next request.
    Role {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        by: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Disable a staff member and end their sessions.
    Disable {
        #[arg(long)]
        name: String,
        #[arg(long)]
        by: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// A lost authenticator or password: a new TOTP secret and password, the lock and the disable
    /// lifted, every session ended.
    Reset {
        #[arg(long)]
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        by: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Every staff member with their role and state.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk the whole log and name the first entry that was changed, removed or reordered (exit
    /// status 3); print the head (number and MAC of the last entry) to keep elsewhere.
    Verify {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Write the log as JSON lines (for a SIEM) to standard output, oldest first.
    Export {
        /// Only entries at or after this date (2026-12-01, UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// An account's lock state and audit trail (locks, unlocks, devices, contact and password
    /// changes), contacts masked.
    Show {
        /// NIK (16 digits).
        #[arg(long)]
        nik: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Lift a lock (temporary or permanent) after checking the participant's identity in person
    /// (KTP); the officer is recorded in the account's trail.
    Unlock {
        /// NIK (16 digits).
        #[arg(long)]
        nik: String,
        /// Who checked the identity (staff id).
        #[arg(long)]
        officer: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// Database URL (storage.database_url): sqlite:///path or postgres://…
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Data directory (storage.data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a commented configuration file with every key at its default.
    Example,
    /// Load the configuration, report problems, and print it with secrets hidden.
    Check,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print a new random personal-data key (base64) for privacy.key / GERBANG_PRIVACY__KEY.
    Generate,
    /// Re-seal all personal data under the new key (privacy.key) while gerbang serves, then retire
    /// the previous one (privacy.previous_key). Start it once every instance runs with both keys;
    /// safe to run again after an interruption.
    Rotate {
        /// Rows re-sealed per transaction (default: 100 on SQLite, 500 on PostgreSQL).
        #[arg(long)]
        batch: Option<u32>,
        /// Rest after each transaction, in ms, so that serving instances write between them
        /// (default: 30 on SQLite, which has one writer at a time; 0 on PostgreSQL).
        #[arg(long)]
        pause_ms: Option<u64>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ParticipantsCommand {
    /// Write synthetic participants as CSV in the import format (deterministic for a seed).
    Generate {
        /// How many participants.
        #[arg(long)]
        count: u64,
        /// Seed: the same seed gives the same participants.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file; standard output if absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Upsert participants from a CSV file; rejected rows are listed with line and reason.
    Import {
        /// CSV file with a header row (columns: see docs/registry.md in the repository).
        file: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Look one participant up through the configured registry (registry.source) and show what it
    /// holds, masked: to check an import or the membership API without exposing personal data.
    Show {
        #[command(flatten)]
        key: LookupArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// The verifications started for one NIK, newest first, each with its delivery attempts as
    /// staff see them (provider, the provider's message id, cause, the provider's raw words): to
    /// answer "my code never came". Destinations are masked; codes are never stored, so never shown.
    Trail {
        /// NIK (16 digits).
        #[arg(long)]
        nik: String,
        /// How many of the newest verifications to show.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Which number to look a participant up by: exactly one.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct LookupArgs {
    /// NIK (16 digits).
    #[arg(long)]
    nik: Option<String>,
    /// JKN card number (13 digits).
    #[arg(long)]
    card: Option<String>,
    /// KPJ number (11 digits).
    #[arg(long)]
    kpj: Option<String>,
}

/// Exit status when `participants show` finds no one, or `participants trail` no verification.
const NOT_FOUND: u8 = 1;

/// Exit status when some rows of an import were rejected (the good rows are loaded).
const ROWS_REJECTED: u8 = 1;
/// Exit status when the command could not do its work at all.
const FAILED: u8 = 2;

pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(FAILED)
        }
    }
}

fn load_config(cli_config: Option<&PathBuf>, overrides: &Overrides) -> anyhow::Result<Config> {
    let loaded = config::load(
        cli_config.map(PathBuf::as_path),
        std::env::vars(),
        overrides,
    )?;
    telemetry::init(&loaded.config.log)?;
    for name in &loaded.unknown_variables {
        tracing::warn!(variable = %name, "unknown GERBANG_* environment variable ignored: is it misspelt? (see `gerbang config example`)");
    }
    if let Some(file) = &loaded.file {
        tracing::info!(file = %file.display(), "configuration file loaded");
    }
    Ok(loaded.config)
}

fn overrides(database: &DatabaseArgs, listen: Option<SocketAddr>) -> Overrides {
    Overrides {
        listen,
        database_url: database.database_url.clone(),
        data_dir: database.data_dir.clone(),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { listen, database } => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, listen))?;
            let app = Application::build(&config).await?;
            app.run_until(shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { database } => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            let db = Database::open(&config, sealer(&config)?).await?;
            let version = db.migrate().await?;
            println!("{} database is at schema version {version}", db.backend());
            db.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check) => {
            let config = load_config(cli.config.as_ref(), &Overrides::default())?;
            // The same checks `serve` makes before it starts.
            crate::app::validate(&config)?;
            println!("configuration is valid (secrets hidden):\n{config:#?}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCommand::Generate) => {
            println!(
                "{}",
                gerbang_store::PersonalDataKey::generate().expose_base64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(KeyCommand::Rotate {
            batch,
            pause_ms,
            database,
        }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            rotate::rotate(&config, batch, pause_ms).await
        }
        Command::Participants(ParticipantsCommand::Generate {
            count,
            seed,
            output,
        }) => {
            let today = SystemClock.now().date_naive();
            match output {
                Some(path) => {
                    let file = File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    write_csv(BufWriter::new(file), count, seed, today)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                None => {
                    let stdout = std::io::stdout().lock();
                    write_csv(BufWriter::new(stdout), count, seed, today)
                        .context("cannot write to standard output")?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Participants(ParticipantsCommand::Import { file, database }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            import_file(&config, &file).await
        }
        Command::Participants(ParticipantsCommand::Show { key, database }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            show_participant(&config, &key).await
        }
        Command::Participants(ParticipantsCommand::Trail {
            nik,
            limit,
            database,
        }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            show_trail(&config, &nik, limit).await
        }
        Command::Accounts(AccountsCommand::Show { nik, database }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            account_command(&config, &nik, None).await
        }
        Command::Accounts(AccountsCommand::Unlock {
            nik,
            officer,
            database,
        }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            account_command(&config, &nik, Some(&officer)).await
        }
        Command::Staff(command) => {
            let (action, by, database) = match command {
                StaffCommand::Add {
                    name,
                    role,
                    password_stdin,
                    by,
                    database,
                } => (
                    staff::Action::Add {
                        name,
                        role,
                        password_stdin,
                    },
                    Some(by),
                    database,
                ),
                StaffCommand::Role {
                    name,
                    role,
                    by,
                    database,
                } => (staff::Action::Role { name, role }, Some(by), database),
                StaffCommand::Disable { name, by, database } => {
                    (staff::Action::Disable { name }, Some(by), database)
                }
                StaffCommand::Reset {
                    name,
                    password_stdin,
                    by,
                    database,
                } => (
                    staff::Action::Reset {
                        name,
                        password_stdin,
                    },
                    Some(by),
                    database,
                ),
                StaffCommand::List { database } => (staff::Action::List, None, database),
            };
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            staff::run(&config, action, by.as_deref()).await
        }
        Command::Audit(AuditCommand::Verify { database }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            audit::verify(&config).await
        }
        Command::Brakes(BrakesCommand::List { database }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            let db = Database::open(&config, sealer(&config)?).await?;
            let now = chrono::Utc::now();
            let brakes = with_store!(&db, |store| store
                .brakes(now, now - chrono::Duration::days(1))
                .await);
            db.close().await;
            let brakes = brakes.context("cannot read the brakes")?;
            if brakes.is_empty() {
                println!("no number block is braked, and none was in the last day");
            }
            for brake in brakes {
                let state = match (&brake.lifted_at, &brake.lifted_by) {
                    (Some(at), Some(by)) => format!("lifted {} by {by}", at.to_rfc3339()),
                    _ if brake.holds(now) => format!("held until {}", brake.until.to_rfc3339()),
                    _ => "ended".to_owned(),
                };
                println!(
                    "{}  braked {}  {} of {} codes entered  {state}",
                    brake.block,
                    brake.braked_at.to_rfc3339(),
                    brake.verified,
                    brake.sent
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Brakes(BrakesCommand::Lift {
            block,
            by,
            reason,
            database,
        }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            let db = Database::open(&config, sealer(&config)?).await?;
            let by = gerbang_store::audit::actor::operator(&by);
            let lifted = with_store!(&db, |store| {
                gerbang_core::pumping::lift(store, block.trim(), &by, &reason, chrono::Utc::now())
                    .await
            });
            db.close().await;
            if lifted.context("cannot lift the brake")? {
                println!(
                    "lifted the brake on {}; codes to it go again within a second",
                    block.trim()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("no brake holds on {}", block.trim());
                Ok(ExitCode::from(1))
            }
        }
        Command::Backup { file, database } => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            backup(&config, &file).await
        }
        Command::Audit(AuditCommand::Export { since, database }) => {
            let config = load_config(cli.config.as_ref(), &overrides(&database, None))?;
            audit::export(&config, since.as_deref()).await
        }
    }
}

/// `gerbang backup FILE`: an online copy of the SQLite database, checked before it is reported.
async fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    use crate::database::{Location, location};
    if let Location::Postgres = location(config)? {
        eprintln!(
            "gerbang backup copies a SQLite database; for PostgreSQL use the server's own tools, e.g.\n  \
             pg_dump --format=custom --file=gerbang.dump DATABASE_URL\n(README, \"Backups\")"
        );
        return Ok(ExitCode::from(2));
    }
    if file.exists() {
        eprintln!("{} exists already; choose a new file", file.display());
        return Ok(ExitCode::from(2));
    }
    let db = Database::open(config, sealer(config)?).await?;
    let started = std::time::Instant::now();
    let copied = match &db {
        Database::Sqlite(store) => store.backup_into(file).await,
        Database::Postgres(_) => Err(gerbang_store::StoreError::Unavailable(
            "PostgreSQL is backed up with pg_dump".into(),
        )),
    };
    db.close().await;
    let bytes = copied.with_context(|| format!("cannot write the backup {}", file.display()))?;
    println!(
        "backed up to {} ({bytes} bytes, integrity ok) in {:.1} s",
        file.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `accounts show` (no officer) or `accounts unlock`.
async fn account_command(
    config: &Config,
    nik: &str,
    officer: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let nik = Nik::parse(nik).map_err(|e| anyhow::anyhow!("--nik: {e}"))?;
    if let Some(officer) = officer
        && (officer.trim().is_empty() || officer.len() > 64)
    {
        anyhow::bail!(
            "--officer: give the staff id of who checked the identity (at most 64 characters)"
        );
    }
    let sealer = sealer(config)?;
    let code_key = gerbang_domain::verification::code::CodeKey::new(sealer.code_key())
        .with_previous(sealer.previous_code_key());
    let settings = config.accounts.settings()?;
    let hashing = std::sync::Arc::new(
        gerbang_core::PasswordHashing::new(&config.accounts.hashing)
            .map_err(|e| anyhow::anyhow!("accounts.hashing: {e}"))?,
    );
    let db = Database::open(config, sealer).await?;
    let result = with_store!(&db, |store| {
        let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(SystemClock);
        let engine = gerbang_core::VerificationEngine::new(
            store.clone(),
            clock.clone(),
            code_key.clone(),
            Default::default(),
        );
        let accounts = gerbang_core::AccountService::new(
            engine,
            hashing.clone(),
            gerbang_core::CaptchaGate::Disabled,
            clock,
            settings.clone(),
        );
        account_report(&accounts, store, &nik, officer).await
    });
    db.close().await;
    match result {
        Ok(report) => {
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(gerbang_core::AccountError::AccountNotFound) => {
            eprintln!("no account for that NIK");
            Ok(ExitCode::from(NOT_FOUND))
        }
        Err(error) => Err(anyhow::anyhow!(
            "cannot read or change the account: {error}"
        )),
    }
}

async fn account_report<S: Store>(
    accounts: &gerbang_core::AccountService<S>,
    store: &S,
    nik: &Nik,
    officer: Option<&str>,
) -> Result<String, gerbang_core::AccountError> {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(officer) = officer {
        let lifted = accounts.lift_lock(nik, officer).await?;
        let _ = writeln!(
            out,
            "{}",
            if lifted {
                "lock lifted"
            } else {
                "the account was not locked; nothing changed"
            }
        );
    }
    let stored = store
        .find_account(gerbang_store::AccountKey::Nik(nik))
        .await?
        .ok_or(gerbang_core::AccountError::AccountNotFound)?;
    let view = accounts.view(&stored);
    let now = SystemClock.now();
    let _ = writeln!(out, "account {} for NIK {}", view.id, view.nik_masked);
    let _ = writeln!(
        out,
        "  phone: {}",
        view.phone_masked.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        out,
        "  email: {}",
        view.email_masked.as_deref().unwrap_or("none")
    );
    let lock = match stored.account.guard.check(now) {
        Ok(()) => "not locked".to_owned(),
        Err(gerbang_domain::account::Locked::Temporarily { until }) => {
            format!("locked until {}", time(until))
        }
        Err(gerbang_domain::account::Locked::Permanently) => {
            "locked permanently (unlock after an identity check)".to_owned()
        }
    };
    let _ = writeln!(out, "  lock: {lock}");
    let _ = writeln!(
        out,
        "  trusted devices: {}",
        stored.account.devices.list().len()
    );
    if let Some(until) = view.cooling_off_until {
        let _ = writeln!(
            out,
            "  cooling off after a phone change until {}",
            time(until)
        );
    }
    let _ = writeln!(out, "events:");
    for event in store.account_events(stored.id).await? {
        let _ = writeln!(
            out,
            "  {}  {}  {}",
            time(event.at),
            event.kind,
            printable(&event.detail)
        );
    }
    Ok(out)
}

/// One verification and its delivery attempts, oldest attempt first.
type TrailEntry = (Verification, Vec<DeliveryAttempt>);

async fn load_trail<S: Store>(
    store: &S,
    nik: &Nik,
    limit: u32,
) -> Result<Vec<TrailEntry>, StoreError> {
    let verifications = store.verifications_for_nik(nik, limit).await?;
    let mut trail = Vec::with_capacity(verifications.len());
    for verification in verifications {
        let attempts = store.delivery_trail(verification.id).await?;
        trail.push((verification, attempts));
    }
    Ok(trail)
}

async fn show_trail(config: &Config, nik: &str, limit: u32) -> anyhow::Result<ExitCode> {
    // Parse before touching the database: a mistyped number is the operator's to fix.
    let nik = Nik::parse(nik).map_err(|e| anyhow::anyhow!("--nik: {e}"))?;
    // The status "as of now" depends on the configured code lifetimes, as the service's does.
    let policy = config.otp.engine_settings()?.policy;
    // The advice names the channels the service offers instead.
    let others = config.delivery.fallback_policy()?.order;
    let db = Database::open(config, sealer(config)?).await?;
    let trail = with_store!(&db, |store| load_trail(store, &nik, limit).await);
    db.close().await;
    let trail = trail.context("cannot read the verifications of that NIK")?;
    if trail.is_empty() {
        eprintln!(
            "no verification for that NIK (only verifications started with participant.nik are listed)"
        );
        return Ok(ExitCode::from(NOT_FOUND));
    }
    let mut out = std::io::stdout().lock();
    write_trail(
        &mut out,
        &nik,
        limit,
        &trail,
        &policy,
        &others,
        SystemClock.now(),
    )?;
    Ok(ExitCode::SUCCESS)
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A provider's words as they came, with control characters escaped so that they cannot move the
/// cursor or recolour the operator's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The staff view of a trail. Destinations are masked; the NIK is masked; nothing here holds a code.
fn write_trail(
    out: &mut impl Write,
    nik: &Nik,
    limit: u32,
    trail: &[TrailEntry],
    policy: &OtpPolicy,
    others: &[Channel],
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "verifications for NIK {}, newest first ({} shown, at most {limit}):",
        nik.masked(),
        trail.len()
    )?;
    for (verification, attempts) in trail {
        writeln!(out)?;
        let action = verification
            .action
            .map(|action| format!(" ({})", action.as_str()))
            .unwrap_or_default();
        writeln!(
            out,
            "{}  {}{action}  {}  created {}  client {}",
            verification.id,
            verification.purpose.as_str(),
            verification.status(policy, now).as_str(),
            time(verification.created_at),
            printable(&verification.client),
        )?;
        writeln!(
            out,
            "  wrong codes {} of {}",
            verification.wrong_attempts, policy.max_wrong_attempts
        )?;
        for (index, send) in verification.sends.iter().enumerate() {
            let handed_off = send
                .handed_off_at
                .map(|at| format!(", handed off {}", time(at)))
                .unwrap_or_else(|| ", not handed off".into());
            writeln!(
                out,
                "  send {}: {} to {}, issued {}{handed_off}",
                index + 1,
                send.channel.as_str(),
                send.destination.masked(),
                time(send.issued_at),
            )?;
        }
        if attempts.is_empty() {
            writeln!(out, "  no delivery attempt yet")?;
        }
        for attempt in attempts {
            writeln!(
                out,
                "  attempt: {} via {}, message id {}: {}",
                printable(&attempt.channel),
                printable(&attempt.provider),
                attempt
                    .provider_message_id
                    .as_deref()
                    .map_or_else(|| "none".into(), printable),
                attempt.status.as_str(),
            )?;
            if let Some(cause) = attempt.cause {
                let channel = Channel::parse(&attempt.channel).unwrap_or(Channel::Sms);
                let explained = explain(cause, channel, others, false);
                writeln!(
                    out,
                    "    cause {}: {} / {}",
                    cause.as_str(),
                    explained.id,
                    explained.en
                )?;
                writeln!(out, "    next step {}", explained.next_step.as_str())?;
            }
            if let Some(detail) = &attempt.detail {
                writeln!(out, "    provider said: {}", printable(detail))?;
            }
            writeln!(
                out,
                "    attempted {}, updated {}",
                time(attempt.attempted_at),
                time(attempt.updated_at)
            )?;
        }
    }
    Ok(())
}

async fn show_participant(config: &Config, key: &LookupArgs) -> anyhow::Result<ExitCode> {
    // Parse before touching the database: a mistyped number is the operator's to fix.
    let (nik, card, kpj) = (
        key.nik
            .as_deref()
            .map(Nik::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--nik: {e}"))?,
        key.card
            .as_deref()
            .map(JknCardNumber::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--card: {e}"))?,
        key.kpj
            .as_deref()
            .map(KpjNumber::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--kpj: {e}"))?,
    );
    let lookup = match (&nik, &card, &kpj) {
        (Some(nik), _, _) => ParticipantKey::Nik(nik),
        (_, Some(card), _) => ParticipantKey::CardNumber(card),
        (_, _, Some(kpj)) => ParticipantKey::KpjNumber(kpj),
        _ => anyhow::bail!("give one of --nik, --card or --kpj"),
    };
    let db = Database::open(config, sealer(config)?).await?;
    let found = with_store!(&db, |store| registry(config, store.clone())?
        .lookup(lookup)
        .await);
    db.close().await;
    let source = match config.registry.source {
        RegistrySource::Embedded => "the embedded registry",
        RegistrySource::Http => "the membership API",
    };
    let Some(p) = found.with_context(|| format!("cannot look the participant up in {source}"))?
    else {
        eprintln!("no participant with that number in {source}");
        return Ok(ExitCode::from(NOT_FOUND));
    };
    let yes_no = |b: bool| {
        if b {
            "yes"
        } else {
            "NO (a hint only: the registry's date stands)"
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "found in {source}: {}", p.full_name.masked())?;
    writeln!(
        out,
        "  NIK {}  card {}",
        p.nik.masked(),
        p.card_number.masked()
    )?;
    writeln!(out, "  status {}  sex {:?}", p.status.as_str(), p.sex)?;
    writeln!(
        out,
        "  birth date agrees with the NIK: {}",
        yes_no(p.birth_date_matches_nik())
    )?;
    match &p.phone {
        Some(phone) => writeln!(
            out,
            "  phone {} ({})",
            phone.masked(),
            phone.operator().name()
        )?,
        None => writeln!(out, "  phone: none on file")?,
    }
    match &p.email {
        Some(email) => writeln!(out, "  email {}", email.masked())?,
        None => writeln!(out, "  email: none on file")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints rejected rows as `FILE:LINE: field: reason [code]` and drives a progress bar on a terminal.
struct Terminal {
    file: String,
    bar: ProgressBar,
}

impl ImportObserver for Terminal {
    fn rejected(&mut self, row: &RowProblem) {
        let line = format!(
            "{}:{}: {}: {} [{}]",
            self.file, row.line, row.field, row.reason, row.code
        );
        self.bar.suspend(|| eprintln!("{line}"));
    }

    fn dropped_field(&mut self, problem: &RowProblem) {
        let line = format!(
            "{}:{}: {}: {} [{}] (loaded without it)",
            self.file, problem.line, problem.field, problem.reason, problem.code
        );
        self.bar.suspend(|| eprintln!("{line}"));
    }

    fn progress(&mut self, bytes_read: u64, report: &ImportReport) {
        self.bar.set_position(bytes_read);
        self.bar.set_message(format!("{} rows", report.rows_read));
    }
}

async fn import_file(config: &Config, path: &PathBuf) -> anyhow::Result<ExitCode> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let db = Database::open_for_import(config, sealer(config)?).await?;
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut terminal = Terminal {
        file: path.display().to_string(),
        bar,
    };
    let started = Instant::now();
    let input = Box::new(BufReader::with_capacity(1 << 20, file));
    let result = with_store!(&db, |store| import_csv(
        store,
        input,
        &SystemClock,
        &mut terminal
    )
    .await);
    terminal.bar.finish_and_clear();
    db.close().await;
    let report = match result {
        Ok(report) => report,
        Err(ImportError::Header(reason)) => {
            anyhow::bail!(
                "{}: the header row is not usable: {reason}; nothing was imported",
                path.display()
            )
        }
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!(
                "{}: import stopped; nothing was imported",
                path.display()
            )));
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: {} rows read in {seconds:.2} s ({:.0} rows/s): {} inserted, {} updated, {} unchanged, {} superseded by a later row, {} rejected",
        path.display(),
        report.rows_read,
        report.rows_read as f64 / seconds.max(1e-9),
        report.inserted,
        report.updated,
        report.unchanged,
        report.superseded,
        report.rejected,
    )?;
    if report.fields_dropped > 0 {
        writeln!(
            out,
            "note: {} invalid optional fields (phone, email, KPJ or family-card number) were left out; their rows loaded (listed above)",
            report.fields_dropped
        )?;
    }
    if report.birth_date_differs_from_nik + report.sex_differs_from_nik > 0 {
        writeln!(
            out,
            "note: {} loaded rows have a birth date and {} a sex that differ from their NIK's digits (kept: the registry is authoritative)",
            report.birth_date_differs_from_nik, report.sex_differs_from_nik
        )?;
    }
    if report.rejected > 0 {
        eprintln!(
            "{} rows were rejected (listed above). The other rows are loaded; fix those rows and import the file again — \
             importing again is safe.",
            report.rejected
        );
        return Ok(ExitCode::from(ROWS_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gerbang_domain::MobileNumber;
    use gerbang_domain::delivery::{Cause, DeliveryStatus};
    use gerbang_domain::verification::code::CodeDigest;
    use gerbang_domain::verification::purpose::{Purpose, SensitiveAction};
    use gerbang_domain::verification::{Channel, CodeSend, Destination, Locale, VerificationId};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_staff_trail_shows_the_provider_s_id_cause_and_raw_words_but_only_masked_numbers() {
        let nik = Nik::parse("3171011708450001").unwrap();
        let id = VerificationId::new(at(0), &mut rand::rng());
        let verification = Verification {
            id,
            client: "mobile-jkn".into(),
            purpose: Purpose::StepUp,
            action: Some(SensitiveAction::PhoneChange),
            action_hint: None,
            locale: Locale::Id,
            flow: "step_up/to:+6281234567890".into(),
            binding: b"step_up".to_vec(),
            account: None,
            nik: Some(nik.clone()),
            created_at: at(0),
            sends: vec![CodeSend {
                channel: Channel::Sms,
                destination: Destination::Phone(MobileNumber::parse("081234567890").unwrap()),
                issued_at: at(0),
                handed_off_at: Some(at(1)),
                digest: CodeDigest::from_bytes([1; 32]),
            }],
            wrong_attempts: 1,
            outcome: None,
        };
        let attempt = DeliveryAttempt {
            outbox_id: 7,
            channel: "sms".into(),
            provider: "smpp:telkomsel".into(),
            provider_message_id: Some("1a2b3c".into()),
            status: DeliveryStatus::Failed,
            cause: Some(Cause::NumberInactive),
            detail: Some("stat:UNDELIV err:001\u{1b}[2J".into()),
            attempted_at: at(1),
            updated_at: at(9),
        };
        // A message given up has its own line: not sent, why, and what to do.
        let dropped = DeliveryAttempt {
            outbox_id: 8,
            channel: "email".into(),
            provider: "gerbang".into(),
            provider_message_id: None,
            status: DeliveryStatus::Failed,
            cause: Some(Cause::NotSent),
            detail: Some("no provider took it before its code expired".into()),
            attempted_at: at(400),
            updated_at: at(400),
        };
        let mut out = Vec::new();
        write_trail(
            &mut out,
            &nik,
            20,
            &[(verification, vec![attempt, dropped])],
            &OtpPolicy::default(),
            &[Channel::Sms, Channel::Whatsapp, Channel::Email],
            at(60),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        for shown in [
            "NIK 3171********0001",
            "step_up (phone_change)  pending",
            "wrong codes 1 of 5",
            "sms to 0812****7890, issued 2026-09-21T14:13:20Z, handed off 2026-09-21T14:13:21Z",
            "attempt: sms via smpp:telkomsel, message id 1a2b3c: failed",
            "cause number_inactive: Nomor tidak aktif, sudah hangus, atau salah. Pastikan nomor HP Anda \
             benar dan masih aktif; jika sudah tidak aktif, ubah nomor di kantor cabang. / The number \
             is inactive, expired or wrong. Check that your phone number is right and still active; \
             if not, change it at a branch office.",
            "provider said: stat:UNDELIV err:001\\u{1b}[2J",
            "next step check_number",
            "attempt: email via gerbang, message id none: failed",
            "cause not_sent: Kode tidak terkirim: tidak ada penyedia yang bisa mengirimnya sebelum \
             kode kedaluwarsa. Minta kode baru, atau minta kode lewat SMS atau WhatsApp. / The code \
             was not sent: no provider could send it before it expired. Ask for a new code, or ask \
             for the code by SMS or WhatsApp.",
            "next step ask_again",
            "provider said: no provider took it before its code expired",
            "attempted 2026-09-21T14:13:21Z, updated 2026-09-21T14:13:29Z",
        ] {
            assert!(text.contains(shown), "{shown:?} missing from:\n{text}");
        }
        assert!(
            !text.contains('\u{1b}'),
            "a control character reached the terminal"
        );
        assert!(!text.contains("81234567890") && !text.contains("3171011708450001"));
    }
}
