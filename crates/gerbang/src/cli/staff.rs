//! `gerbang staff …`: the server operator's commands for back-office staff accounts. Every change
//! is recorded in the audit log under `operator:BY`.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use gerbang_core::{Enrolment, PasswordHashing, StaffService, StaffServiceError};
use gerbang_domain::{Explain, SystemClock};
use gerbang_store::audit::actor;
use qrcode::QrCode;
use qrcode::render::unicode;
use secrecy::{ExposeSecret, SecretString};

use crate::app::sealer;
use crate::config::Config;
use crate::database::Database;
use crate::with_store;

/// Exit status when the named staff member does not exist.
const NOT_FOUND: u8 = 1;
/// Exit status when the request was refused (a bad name, role or password, a name taken).
const REFUSED: u8 = 4;

/// One staff command.
#[derive(Debug)]
pub enum Action {
    Add {
        name: String,
        role: String,
        password_stdin: bool,
    },
    Role {
        name: String,
        role: String,
    },
    Disable {
        name: String,
    },
    Reset {
        name: String,
        password_stdin: bool,
    },
    List,
}

fn read_password(from_stdin: bool) -> anyhow::Result<Option<SecretString>> {
    if !from_stdin {
        return Ok(None);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "--password-stdin: no password on standard input"
    );
    Ok(Some(SecretString::from(password)))
}

pub async fn run(config: &Config, action: Action, by: Option<&str>) -> anyhow::Result<ExitCode> {
    let by = match (&action, by) {
        (Action::List, _) => actor::operator("cli"),
        (_, Some(by)) if !by.trim().is_empty() && by.len() <= 64 => actor::operator(by.trim()),
        _ => anyhow::bail!(
            "--by: give your own name (at most 64 characters); it is recorded in the audit log"
        ),
    };
    let password = match &action {
        Action::Add { password_stdin, .. } | Action::Reset { password_stdin, .. } => {
            read_password(*password_stdin)?
        }
        _ => None,
    };
    let policy = config.staff_policy()?;
    let passwords = config.accounts.password.clone();
    let hashing = Arc::new(
        PasswordHashing::new(&config.accounts.hashing)
            .map_err(|e| anyhow::anyhow!("accounts.hashing: {e}"))?,
    );
    let db = Database::open(config, sealer(config)?).await?;
    let mut out = String::new();
    let result = with_store!(&db, |store| {
        let staff = StaffService::new(
            store.clone(),
            hashing.clone(),
            Arc::new(SystemClock),
            policy.clone(),
            passwords.clone(),
        );
        match action {
            Action::Add { name, role, .. } => staff
                .add(&name, &role, password, &by)
                .await
                .map(|enrolment| enrolled(&mut out, "added", &enrolment)),
            Action::Role { name, role } => staff.set_role(&name, &role, &by).await.map(|s| {
                out = format!(
                    "{} is now {}\n",
                    s.member.name.as_str(),
                    s.member.role.as_str()
                );
            }),
            Action::Disable { name } => staff.disable(&name, &by).await.map(|s| {
                out = format!(
                    "{} disabled; their sessions have ended\n",
                    s.member.name.as_str()
                );
            }),
            Action::Reset { name, .. } => staff
                .reset(&name, password, &by)
                .await
                .map(|enrolment| enrolled(&mut out, "reset", &enrolment)),
            Action::List => staff.list().await.map(|all| {
                for s in all {
                    let state = s.member.state(chrono::Utc::now());
                    out.push_str(&format!(
                        "{:<24} {:<11} {state}\n",
                        s.member.name.as_str(),
                        s.member.role.as_str()
                    ));
                }
            }),
        }
    });
    db.close().await;
    match result {
        Ok(()) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(StaffServiceError::NotFound) => {
            eprintln!("no staff member of that name");
            Ok(ExitCode::from(NOT_FOUND))
        }
        Err(StaffServiceError::Staff(error)) => {
            eprintln!("{} ({})", error.message_en(), error.code());
            Ok(ExitCode::from(REFUSED))
        }
        Err(StaffServiceError::NameTaken) => {
            eprintln!("a staff member of that name exists already");
            Ok(ExitCode::from(REFUSED))
        }
        Err(StaffServiceError::WeakPassword(weak)) => {
            let rules: Vec<String> = weak.failed().iter().map(|r| r.message_en()).collect();
            eprintln!(
                "the password does not meet the policy: {}",
                rules.join("; ")
            );
            Ok(ExitCode::from(REFUSED))
        }
        Err(error) => Err(anyhow::anyhow!("cannot change staff: {error}")),
    }
}

/// What the new or reset member needs, shown once: the password gerbang chose (if it chose), and
/// the authenticator's QR code with its address and base32 secret.
fn enrolled(out: &mut String, what: &str, enrolment: &Enrolment) {
    let member = &enrolment.staff.member;
    out.push_str(&format!(
        "{} {what} as {}. Shown once — hand it over in person:\n",
        member.name.as_str(),
        member.role.as_str()
    ));
    if let Some(password) = &enrolment.password {
        out.push_str(&format!("  password: {}\n", password.expose_secret()));
    }
    out.push_str(&format!(
        "  authenticator secret: {}\n  authenticator address: {}\n",
        enrolment.totp_base32.expose_secret(),
        enrolment.totp_url.expose_secret()
    ));
    if let Ok(code) = QrCode::new(enrolment.totp_url.expose_secret().as_bytes()) {
        out.push_str("  scan with an authenticator app:\n\n");
        out.push_str(&code.render::<unicode::Dense1x2>().quiet_zone(true).build());
        out.push('\n');
    }
}
