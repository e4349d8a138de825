//! The test SMTP server (`smtp_server.py`, on aiosmtpd) as the SMTP tests start and read it, and the
//! certificates and DKIM key those tests need, made with the `openssl` CLI at test time so that no
//! key is ever committed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What the server offers and demands.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    /// STARTTLS with a certificate for 127.0.0.1 from a throwaway CA, required before MAIL.
    pub starttls: bool,
    /// AUTH PLAIN/LOGIN with this user and password, required before MAIL.
    pub auth: Option<(String, String)>,
    /// The DNS TXT record (`name`, `value`) that dkimpy checks signatures against.
    pub dkim_record: Option<(String, String)>,
}

/// One running server; killed, and its files removed, on drop.
pub struct SmtpServer {
    // First, so that the server is killed before its directory goes.
    _process: Child,
    pub port: u16,
    /// The CA that issued the server's certificate (PEM), when it offers STARTTLS.
    pub ca_pem: Option<String>,
    log: PathBuf,
    scratch: Scratch,
}

/// One message as the server received it, read by Python's `email` package.
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub tls: bool,
    pub login: Option<String>,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub date: String,
    pub message_id: String,
    pub content_type: String,
    pub parts: Vec<Part>,
    pub dkim_signature: Option<String>,
    pub dkim_valid: Option<bool>,
    /// dkimpy's log of the check, which says why a signature does not verify.
    pub dkim_log: String,
    pub raw: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Part {
    pub content_type: String,
    pub charset: Option<String>,
    pub transfer_encoding: Option<String>,
    pub content: String,
}

impl Received {
    pub fn part(&self, content_type: &str) -> &Part {
        self.parts
            .iter()
            .find(|part| part.content_type == content_type)
            .unwrap_or_else(|| panic!("no {content_type} part in {:#?}", self.parts))
    }
}

impl SmtpServer {
    pub async fn start(options: ServerOptions) -> Self {
        require_python();
        let scratch = Scratch::new("smtp");
        let log = scratch.path.join("received.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(&log);
        let mut ca_pem = None;
        if options.starttls {
            let pki = TestPki::make(&scratch.path);
            command.arg("--starttls").arg(&pki.cert).arg(&pki.key);
            ca_pem = Some(pki.ca_pem);
        }
        if let Some((user, password)) = &options.auth {
            command.arg("--auth").arg(user).arg(password);
        }
        if let Some((name, txt)) = &options.dkim_record {
            command.arg("--dkim-record").arg(name).arg(txt);
        }
        let mut process = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(scratch.path.join("server.err")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("start the test SMTP server");
        let stdout = process.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .expect("the test SMTP server starts within 15 s")
            .unwrap();
        let Some(first) = first else {
            let err = std::fs::read_to_string(scratch.path.join("server.err")).unwrap_or_default();
            panic!("the test SMTP server stopped before listening:\n{err}");
        };
        let port = first
            .strip_prefix("LISTENING ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("expected `LISTENING <port>`, got {first:?}"));
        Self {
            _process: process,
            port,
            ca_pem,
            log,
            scratch,
        }
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// The message to `to`, waiting up to 10 s for it: the server writes its line just before it
    /// answers 250, so it is normally there already.
    pub async fn message_to(&self, to: &str) -> Received {
        for _ in 0..200 {
            if let Some(found) = self
                .received()
                .into_iter()
                .find(|message| message.rcpt_tos.iter().any(|rcpt| rcpt == to))
            {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message to {to}; the server has: {:#?}", self.received());
    }

    /// What the server wrote on stderr (its tracebacks), for failure messages.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.scratch.path.join("server.err")).unwrap_or_default()
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An RSA DKIM key made for one test.
pub struct DkimKey {
    /// PKCS#1 PEM, the form lettre reads.
    pub private_pem: String,
    /// The `p=` value: the DER SubjectPublicKeyInfo in base64.
    pub public_b64: String,
}

impl DkimKey {
    pub fn generate() -> Self {
        let scratch = Scratch::new("dkim");
        let key = scratch.path.join("dkim.key");
        openssl(&["genrsa", "-traditional", "-out", path(&key), "2048"]);
        let public = scratch.path.join("dkim.pub");
        openssl(&["rsa", "-in", path(&key), "-pubout", "-out", path(&public)]);
        // A PEM body is the DER in base64, which is what a DKIM record publishes.
        let public_b64 = std::fs::read_to_string(&public)
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        Self {
            private_pem: std::fs::read_to_string(&key).unwrap(),
            public_b64,
        }
    }

    /// The TXT record for `selector._domainkey.domain`.
    pub fn record(&self, selector: &str, domain: &str) -> (String, String) {
        (
            format!("{selector}._domainkey.{domain}"),
            format!("v=DKIM1; k=rsa; p={}", self.public_b64),
        )
    }
}

/// A CA and a server certificate it issued for 127.0.0.1 (rustls refuses a CA certificate used as
/// the server's own, so a plain self-signed one will not do).
struct TestPki {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

impl TestPki {
    fn make(dir: &Path) -> Self {
        let ca_key = dir.join("ca.key");
        let ca = dir.join("ca.pem");
        let key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let cert = dir.join("server.pem");
        let ext = dir.join("server.ext");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend(["-keyout", path(&ca_key), "-out", path(&ca), "-days", "2"]);
        args.extend(["-subj", "/CN=gerbang test CA"]);
        openssl(&args);
        let mut args = vec!["req"];
        args.extend(ec);
        args.extend([
            "-keyout",
            path(&key),
            "-out",
            path(&csr),
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&args);
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&ca),
            "-CAkey",
            path(&ca_key),
            "-set_serial",
            "1",
            "-days",
            "2",
            "-extfile",
            path(&ext),
            "-out",
            path(&cert),
        ]);
        Self {
            ca_pem: std::fs::read_to_string(&ca).unwrap(),
            cert,
            key,
        }
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn openssl(args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("the SMTP tests need the openssl CLI (apt-get install openssl): {error}")
        });
    assert!(
        output.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Fails (never skips) when the server cannot run, saying what to install.
fn require_python() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd, dkim"])
        .output();
    let ok = probe.as_ref().is_ok_and(|out| out.status.success());
    assert!(
        ok,
        "the SMTP interop tests need python3 with aiosmtpd and dkimpy: \
         `python3 -m pip install aiosmtpd dkimpy` (scripts/test installs them); {}",
        match &probe {
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(error) => format!("python3 cannot be started: {error}"),
        }
    );
}

/// A directory of its own under the system temp dir, removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(what: &str) -> Self {
        use std::hash::{BuildHasher, RandomState};
        let suffix = RandomState::new().hash_one(std::time::SystemTime::now());
        let path =
            std::env::temp_dir().join(format!("gerbang-{what}-{}-{suffix:x}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
