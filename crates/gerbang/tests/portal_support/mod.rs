//! The portal tests' harness: the application in-process on the backend under test with its
//! participants imported, the development inbox, the JSON API for preconditions, the catalogue
//! texts the pages must show, and a plain HTTP client that sees every response (headers, cookies,
//! sizes). The browser half (chromedriver, Chromium, the checks run on every page) is in
//! [`browser`].

pub mod browser;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gerbang::Application;
use gerbang::config::{Overrides, load};
use gerbang_domain::Participant;
use gerbang_testkit::{Backend, TestDatabase};
use serde_json::{Value, json};

/// A password every rule of the default policy accepts.
pub const PASSWORD: &str = "Kopi-Tubruk#2026";

/// The portal's languages, as the pages name them in `<html lang>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Id,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// The catalogue text of `key` (`section.name`), as the pages must show it.
    pub fn t(self, key: &str) -> String {
        let source = match self {
            Lang::Id => include_str!("../../../gerbang-web/i18n/id.toml"),
            Lang::En => include_str!("../../../gerbang-web/i18n/en.toml"),
        };
        let table: toml::Table = source.parse().expect("the portal's catalogue parses");
        let (section, name) = key.split_once('.').expect("a key is section.name");
        table
            .get(section)
            .and_then(|s| s.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("{key} is missing from the {} catalogue", self.code()))
            .to_string()
    }
}

/// Which captcha the application runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Captcha {
    /// `accounts.captcha.mode = test`, answer `ok`: a plain text field.
    Test,
    /// The default: built-in image challenges.
    Builtin,
}

/// One message the development courier took.
#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub to: String,
    pub text: String,
}

impl Message {
    /// The six digits of the code in the text.
    pub fn code(&self) -> String {
        self.text
            .split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 6)
            .unwrap_or_else(|| panic!("no 6-digit code in {:?}", self.text))
            .to_string()
    }
}

type Server = tokio::task::JoinHandle<anyhow::Result<()>>;

/// The application built as `gerbang serve` builds it (development profile: codes go to the
/// development inbox), serving on a free port of 127.0.0.1 on its own task.
pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<Server>,
    /// Kept for the test's life: dropping it removes the database.
    db: TestDatabase,
}

impl App {
    /// The application with participants `numbers` (`gerbang_testkit::participant(n)`) in its
    /// registry and cheap password hashing.
    pub async fn start(numbers: &[u32], captcha: Captcha) -> App {
        let db = TestDatabase::create().await;
        let people: Vec<Participant> = numbers
            .iter()
            .map(|n| gerbang_testkit::participant(*n))
            .collect();
        match db.backend() {
            Backend::Sqlite => import(db.sqlite_store().await, &people).await,
            Backend::Postgres(_) => import(db.postgres_store().await, &people).await,
        }
        let mut vars: Vec<(String, String)> = vec![
            ("GERBANG_SERVER__LISTEN".into(), "127.0.0.1:0".into()),
            (
                "GERBANG_STORAGE__DATA_DIR".into(),
                db.data_dir().display().to_string(),
            ),
            ("GERBANG_REGISTRY__DEMO_PARTICIPANTS".into(), "0".into()),
            (
                "GERBANG_PRIVACY__KEY".into(),
                gerbang_testkit::TEST_KEY.into(),
            ),
            (
                "GERBANG_ACCOUNTS__HASHING__MEMORY_KIB".into(),
                "1024".into(),
            ),
            ("GERBANG_ACCOUNTS__HASHING__ITERATIONS".into(), "1".into()),
        ];
        if let Backend::Postgres(_) = db.backend() {
            vars.push(("GERBANG_STORAGE__DATABASE_URL".into(), db.url()));
        }
        if captcha == Captcha::Test {
            vars.push(("GERBANG_ACCOUNTS__CAPTCHA__MODE".into(), "test".into()));
            vars.push(("GERBANG_ACCOUNTS__CAPTCHA__TEST_ANSWER".into(), "ok".into()));
        }
        let config = load(None, vars, &Overrides::default()).unwrap().config;
        let app = Application::build(&config).await.unwrap();
        let address = app.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        App {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
            stop: Some(stop),
            server: Some(server),
            db,
        }
    }

    /// Stops the application and waits for it to finish cleanly.
    pub async fn stop(mut self) {
        if let (Some(stop), Some(server)) = (self.stop.take(), self.server.take()) {
            let _ = stop.send(());
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the application stops within 10 s")
                .unwrap()
                .unwrap();
        }
    }

    /// Every message of the development inbox, oldest first.
    pub async fn inbox(&self) -> Vec<Message> {
        let body: Value = self
            .http
            .get(format!("{}/dev/inbox.json?limit=1000", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut messages: Vec<Message> = body
            .as_array()
            .expect("the inbox is a JSON array")
            .iter()
            .map(|m| Message {
                channel: m["channel"].as_str().unwrap_or_default().into(),
                to: m["to"].as_str().unwrap_or_default().into(),
                text: m["text"].as_str().unwrap_or_default().into(),
            })
            .collect();
        messages.reverse();
        messages
    }

    /// The first message after the first `seen` ones, once the courier has it (10 s at most).
    pub async fn message_after(&self, seen: usize) -> Message {
        self.message_to(seen, &[]).await
    }

    /// The first message after the first `seen` ones sent to one of `to` (any, if empty): codes
    /// of other flows running at the same time are passed over.
    pub async fn message_to(&self, seen: usize, to: &[&str]) -> Message {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let inbox = self.inbox().await;
            let found = inbox
                .iter()
                .skip(seen)
                .find(|m| to.is_empty() || to.iter().any(|t| m.to == *t));
            if let Some(message) = found {
                return message.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no message to {to:?} after the first {seen} within 10 s: {inbox:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next code to one of `p`'s registry contacts after the first `seen` messages.
    pub async fn code_for(&self, seen: usize, p: &Participant) -> String {
        let email = p.email.as_ref().unwrap().as_str();
        let phone = p.phone.as_ref().unwrap().e164();
        self.message_to(seen, &[email, phone]).await.code()
    }

    /// The inbox's count once it has been still for a moment: a second code, if one were sent,
    /// would have reached it by then.
    pub async fn settled_count(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.inbox().await.len()
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Registers `p` over the JSON API with its registry email and phone and [`PASSWORD`], the
    /// code going by email.
    pub async fn register_over_api(&self, p: &Participant) {
        let (status, body) = self
            .post(
                "/v1/accounts/registration",
                json!({"identifier": p.nik.as_str(), "birth_date": p.birth_date.to_string(),
                       "captcha": {"token": "test", "answer": "ok"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let flow = body["flow"].clone();
        let seen = self.inbox().await.len();
        let (status, body) = self
            .post(
                "/v1/accounts/registration/contact",
                json!({"flow": flow, "email": p.email.as_ref().unwrap().as_str(),
                       "phone": p.phone.as_ref().unwrap().e164(), "password": PASSWORD,
                       "password_confirmation": PASSWORD}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let code = self.code_for(seen, p).await;
        let (status, body) = self
            .post(
                "/v1/accounts/registration/confirm",
                json!({"flow": flow, "code": code}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Five wrong passwords for `p` over the JSON API: the account is locked.
    pub async fn lock_over_api(&self, p: &Participant) {
        for _ in 0..5 {
            let (status, body) = self
                .post(
                    "/v1/accounts/login",
                    json!({"identifier": p.nik.as_str(), "password": "Salah-Sandi#1",
                           "device": {"id": "hp-lain"}}),
                )
                .await;
            assert_eq!(status, 401, "{body}");
        }
    }

    /// A staff member `name` with `role` and [`PASSWORD`], added beside the running application
    /// through a second handle on its database, as `gerbang staff add` would; their record, with
    /// the authenticator secret.
    pub async fn add_staff(&self, name: &str, role: &str) -> gerbang_domain::staff::StaffMember {
        async fn add<S: gerbang_store::Store>(
            store: S,
            name: &str,
            role: &str,
        ) -> gerbang_domain::staff::StaffMember {
            let hashing =
                gerbang_core::PasswordHashing::new(&gerbang_core::PasswordHashingSettings {
                    memory_kib: 1024,
                    iterations: 1,
                    ..Default::default()
                })
                .unwrap();
            let staff = gerbang_core::StaffService::new(
                store.clone(),
                std::sync::Arc::new(hashing),
                std::sync::Arc::new(gerbang_domain::SystemClock),
                Default::default(),
                Default::default(),
            );
            let enrolment = staff
                .add(
                    name,
                    role,
                    Some(secrecy::SecretString::from(PASSWORD.to_owned())),
                    "operator:test",
                )
                .await
                .unwrap();
            store.close().await;
            enrolment.staff.member
        }
        match self.db.backend() {
            Backend::Sqlite => add(self.db.sqlite_store().await, name, role).await,
            Backend::Postgres(_) => add(self.db.postgres_store().await, name, role).await,
        }
    }

    /// A brake of the SMS pumping brake on `block`, as the brake's task would make it.
    pub async fn brake_block(&self, block: &str) {
        async fn brake<S: gerbang_store::Store>(store: S, block: &str) {
            let now = chrono::Utc::now();
            let made = store
                .brake_block(
                    &gerbang_store::Brake {
                        block: block.to_owned(),
                        braked_at: now,
                        until: now + chrono::Duration::hours(24),
                        sent: 140,
                        verified: 2,
                        lifted_at: None,
                        lifted_by: None,
                    },
                    Vec::new(),
                )
                .await
                .unwrap();
            assert!(made);
            store.close().await;
        }
        match self.db.backend() {
            Backend::Sqlite => brake(self.db.sqlite_store().await, block).await,
            Backend::Postgres(_) => brake(self.db.postgres_store().await, block).await,
        }
    }

    /// A session of `p` on `device` over the JSON API, through the new-device code; its token.
    pub async fn session_over_api(&self, p: &Participant, device: &str) -> String {
        let seen = self.inbox().await.len();
        let (status, body) = self
            .post(
                "/v1/accounts/login",
                json!({"identifier": p.nik.as_str(), "password": PASSWORD,
                       "device": {"id": device, "name": "Galaxy A15"}}),
            )
            .await;
        if status == 200 {
            return body["session"]["token"].as_str().unwrap().to_owned();
        }
        assert_eq!(status, 202, "{body}");
        let code = self.code_for(seen, p).await;
        let (status, body) = self
            .post(
                "/v1/accounts/login/confirm",
                json!({"flow": body["flow"], "code": code}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["session"]["token"].as_str().unwrap().to_owned()
    }
}

/// Loads `people` into the registry of `store`, then closes it.
async fn import<S: gerbang_store::Store>(store: S, people: &[Participant]) {
    use gerbang_store::ParticipantImport;
    let mut import = store.begin_participant_import().await.unwrap();
    import
        .upsert_batch(people, chrono::Utc::now())
        .await
        .unwrap();
    import.commit().await.unwrap();
    store.close().await;
}

/// One response as a browser would have received it, redirects not followed.
#[derive(Debug)]
pub struct Fetched {
    pub what: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Fetched {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    pub fn location(&self) -> String {
        self.header("location")
    }

    pub fn is_html(&self) -> bool {
        self.header("content-type").starts_with("text/html")
    }

    /// The form token in the page.
    pub fn csrf(&self) -> String {
        attribute_after(&self.body, "name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("{}: no CSRF token in the page", self.what))
    }
}

/// The text between `marker` and the next `"`.
pub fn attribute_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// A browser without a browser: a cookie jar over reqwest that follows nothing by itself and
/// keeps every response it saw, for the header, cookie and weight checks.
pub struct Visitor {
    base: String,
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    pub seen: Vec<Fetched>,
}

impl Visitor {
    pub fn new(app: &App) -> Visitor {
        Visitor {
            base: app.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            seen: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, what: String, request: reqwest::RequestBuilder) -> &Fetched {
        let response = request
            .header("cookie", self.cookie_header())
            .header("accept-language", "id-ID,id;q=0.9")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for value in headers.get_all("set-cookie") {
            let value = value.to_str().unwrap_or_default();
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((name, content)) = pair.split_once('=') {
                let expired = value.to_ascii_lowercase().contains("max-age=0");
                if expired || content.is_empty() {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_string(), content.trim().to_string());
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        self.seen.push(Fetched {
            what,
            status,
            headers,
            body,
        });
        self.seen.last().unwrap()
    }

    /// `GET path`, following redirects as a browser would; the last response.
    pub async fn get(&mut self, path: &str) -> &Fetched {
        let mut path = path.to_string();
        for _ in 0..5 {
            let request = self.http.get(format!("{}{path}", self.base));
            let status = self.send(format!("GET {path}"), request).await.status;
            if !(300..400).contains(&status) {
                break;
            }
            path = self.seen.last().unwrap().location();
        }
        self.seen.last().unwrap()
    }

    /// `POST path` with `form`; the answer itself (a redirect is not followed).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> &Fetched {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(format!("POST {path}"), request).await
    }
}
