//! The test SMSC (`smsc.pl`, on Perl's Net::SMPP) as the tests start and read it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Smsc {
    pub address: String,
    log: PathBuf,
    _dir: PathBuf,
    _process: Child,
}

impl Smsc {
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_on(0, env).await
    }

    /// On a given port (0: any free one), e.g. one that gerbang was already told to bind to.
    pub async fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        let probe = std::process::Command::new("perl")
            .args(["-MNet::SMPP", "-e", "1"])
            .output();
        assert!(
            probe.is_ok_and(|out| out.status.success()),
            "the test SMSC needs perl with Net::SMPP: apt-get install libnet-smpp-perl (scripts/test installs it)"
        );
        let dir = std::env::temp_dir().join(format!(
            "gerbang-smsc-{}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("smsc.log");
        // From either crate that uses this module.
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../gerbang-delivery/tests/support/smsc.pl"
        );
        let mut process = Command::new("perl");
        process
            .arg(script)
            .arg(&log)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            // Its complaints (a client hanging up mid-read is normal here) go next to the log.
            .stderr(std::fs::File::create(dir.join("smsc.err")).unwrap())
            .kill_on_drop(true);
        for (key, value) in env {
            process.env(key, value);
        }
        let mut process = process.spawn().expect("start the test SMSC");
        let stdout = process.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the SMSC starts")
            .unwrap()
            .expect("the SMSC prints its port");
        let port = first.strip_prefix("LISTENING ").expect("LISTENING <port>");
        Self {
            address: format!("127.0.0.1:{port}"),
            log,
            _dir: dir,
            _process: process,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    /// The text of the first submit to `to`, read as GSM 7-bit unpacked (ASCII letters and digits
    /// are their own septets).
    pub fn text_sent_to(&self, to: &str) -> String {
        let line = self
            .lines()
            .into_iter()
            .find(|l| l.starts_with(&format!("submit {to} ")))
            .unwrap_or_else(|| panic!("no submit to {to}: {:#?}", self.lines()));
        assert!(line.contains("dc=0"), "GSM 7-bit expected: {line}");
        let hex = line.rsplit("text=").next().unwrap_or_default();
        (0..hex.len() / 2)
            .map(|i| char::from(u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()))
            .collect()
    }

    /// The six-digit code in the first submit to `to`.
    pub fn code_sent_to(&self, to: &str) -> String {
        let text = self.text_sent_to(to);
        text.split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .unwrap_or_else(|| panic!("a code in {text:?}"))
            .to_owned()
    }

    /// Waits (up to 15 s) until `prefix` lines number at least `n`.
    pub async fn wait_for(&self, prefix: &str, n: usize) {
        for _ in 0..300 {
            if self.count(prefix) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {n} `{prefix}` lines: {:#?}", self.lines());
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
