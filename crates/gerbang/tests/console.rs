//! The staff console over HTTP on the backend under test: sign-in with password and authenticator
//! code, and the whole route × role matrix — every console route asked by every role, and by
//! nobody — including a forged request for another role's action, which is refused and recorded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use gerbang::app::Application;
use gerbang::config::{Overrides, load};
use gerbang_core::{PasswordHashing, PasswordHashingSettings, StaffService};
use gerbang_domain::SystemClock;
use gerbang_domain::staff::{Role, StaffMember};
use gerbang_store::audit::AuditFilter;
use gerbang_store::{AuditStore, ParticipantImport, Store};
use gerbang_testkit::{Backend, TestDatabase};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use secrecy::SecretString;

const PASSWORD: &str = "Loket-Cabang#2026";

type Server = tokio::task::JoinHandle<anyhow::Result<()>>;

struct Running {
    base: String,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    server: Server,
}

/// Adds one member of each role (and imports participant 1), then closes the store.
async fn seed<S: Store>(store: S) -> Vec<StaffMember> {
    let mut import = store.begin_participant_import().await.unwrap();
    import
        .upsert_batch(&[gerbang_testkit::participant(1)], chrono::Utc::now())
        .await
        .unwrap();
    import.commit().await.unwrap();
    let hashing = PasswordHashing::new(&PasswordHashingSettings {
        memory_kib: 1024,
        iterations: 1,
        ..Default::default()
    })
    .unwrap();
    let staff = StaffService::new(
        store.clone(),
        Arc::new(hashing),
        Arc::new(SystemClock),
        Default::default(),
        Default::default(),
    );
    let mut members = Vec::new();
    for role in Role::ALL {
        let enrolment = staff
            .add(
                &format!("test-{}", role.as_str()),
                role.as_str(),
                Some(SecretString::from(PASSWORD.to_owned())),
                "operator:test",
            )
            .await
            .unwrap();
        members.push(enrolment.staff.member);
    }
    store.close().await;
    members
}

async fn start(db: &TestDatabase) -> Running {
    start_with(db, &[]).await
}

async fn start_with(db: &TestDatabase, extra: &[(&str, &str)]) -> Running {
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
    vars.extend(
        extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
    );
    let config = load(None, vars, &Overrides::default()).unwrap().config;
    let app = Application::build(&config).await.unwrap();
    let address = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Running {
        base: format!("http://{address}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        stop,
        server,
    }
}

/// A browser's cookies and the CSRF token of its pages.
struct Visitor {
    cookies: Vec<(String, String)>,
    csrf: String,
}

impl Visitor {
    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn take(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }
}

async fn visitor(app: &Running) -> Visitor {
    let response = app
        .http
        .get(format!("{}/staff/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut visitor = Visitor {
        cookies: Vec::new(),
        csrf: String::new(),
    };
    visitor.take(&response);
    let html = response.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    visitor.csrf = html[at..at + html[at..].find('"').unwrap()].to_owned();
    visitor
}

async fn sign_in(app: &Running, member: &StaffMember) -> Visitor {
    let mut visitor = visitor(app).await;
    let code = member
        .totp
        .code_at(&member.name, chrono::Utc::now())
        .unwrap();
    let response = app
        .http
        .post(format!("{}/staff/login", app.base))
        .header(COOKIE, visitor.header())
        .form(&[
            ("csrf", visitor.csrf.as_str()),
            ("name", member.name.as_str()),
            ("password", PASSWORD),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        member.name.as_str()
    );
    assert_eq!(response.headers()[LOCATION], "/staff");
    let set: Vec<&str> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let staff_cookie = set.iter().find(|c| c.starts_with("gb_staff=")).unwrap();
    assert!(staff_cookie.contains("HttpOnly"), "{staff_cookie}");
    assert!(staff_cookie.contains("SameSite=Lax"), "{staff_cookie}");
    visitor.take(&response);
    visitor
}

/// A console route: method, path, form fields.
type Route = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// Every console route.
fn routes() -> Vec<Route> {
    let nik: &'static str = Box::leak(
        gerbang_testkit::participant(1)
            .nik
            .as_str()
            .to_owned()
            .into_boxed_str(),
    );
    vec![
        ("GET", "/staff", vec![]),
        ("GET", "/staff/participants", vec![]),
        (
            "POST",
            "/staff/participants",
            vec![
                ("kind", "nik"),
                ("value", nik),
                ("reason", "tes matriks peran"),
            ],
        ),
        (
            "POST",
            "/staff/accounts/unlock",
            vec![
                ("account", "acct_000000000000000000000000"),
                ("reason", "KTP diperiksa"),
            ],
        ),
        (
            "POST",
            "/staff/accounts/sign-out-devices",
            vec![
                ("account", "acct_000000000000000000000000"),
                ("reason", "HP hilang"),
            ],
        ),
        ("GET", "/staff/tickets", vec![]),
        (
            "POST",
            "/staff/tickets",
            vec![("account", ""), ("subject", "kode OTP tidak masuk")],
        ),
        ("GET", "/staff/tickets/T-0000-0000", vec![]),
        (
            "POST",
            "/staff/tickets/T-0000-0000/notes",
            vec![("text", "catatan untuk tiket yang tidak ada")],
        ),
        ("GET", "/staff/requests", vec![]),
        (
            "POST",
            "/staff/requests/new",
            vec![("account", "acct_000000000000000000000000")],
        ),
        (
            "POST",
            "/staff/requests",
            vec![
                ("account", "acct_000000000000000000000000"),
                ("kind", "phone"),
                ("value", "081399990001"),
                ("document", "ktp"),
                ("document_number", nik),
                ("reason", "SIM lama hilang"),
                ("ticket", "T-0000-0000"),
            ],
        ),
        ("GET", "/staff/requests/R-0000-0000", vec![]),
        ("POST", "/staff/requests/R-0000-0000/approve", vec![]),
        ("POST", "/staff/requests/R-0000-0000/decline", vec![]),
        ("POST", "/staff/requests/R-0000-0000/send", vec![]),
        (
            "POST",
            "/staff/requests/R-0000-0000/code",
            vec![("code", "123456")],
        ),
        ("GET", "/staff/audit", vec![]),
        ("GET", "/staff/team", vec![]),
        ("POST", "/staff/team/reset", vec![("name", "nobody-here")]),
        (
            "POST",
            "/staff/team/add",
            vec![("name", "matrix-new-agent"), ("role", "agent")],
        ),
        (
            "POST",
            "/staff/team/role",
            vec![("name", "nobody-here"), ("role", "agent")],
        ),
        ("POST", "/staff/team/disable", vec![("name", "nobody-here")]),
        ("GET", "/staff/settings", vec![]),
        ("GET", "/staff/health", vec![]),
        (
            "POST",
            "/staff/health/lift",
            vec![("block", "+6200000000"), ("reason", "tes matriks rem")],
        ),
    ]
}

/// What each role gets from each route: 200 (303 for a ticket opened; 404 for an action on an
/// account or ticket that does not exist, which only a role allowed to act gets as far as), else
/// 403.
fn expected(role: Role, post: bool, path: &str) -> StatusCode {
    let allowed = match path {
        "/staff" => true,
        "/staff/participants" => role != Role::Admin,
        "/staff/accounts/unlock" | "/staff/accounts/sign-out-devices" => {
            matches!(role, Role::Officer | Role::Supervisor)
        }
        "/staff/tickets" | "/staff/tickets/T-0000-0000" | "/staff/tickets/T-0000-0000/notes" => {
            role != Role::Admin
        }
        "/staff/audit" | "/staff/health" => matches!(role, Role::Supervisor | Role::Admin),
        "/staff/team"
        | "/staff/team/reset"
        | "/staff/team/add"
        | "/staff/team/role"
        | "/staff/team/disable"
        | "/staff/settings" => role == Role::Admin,
        "/staff/health/lift" => role == Role::Supervisor,
        // The counter's four-eyes requests: officers and supervisors.
        path if path.starts_with("/staff/requests") => {
            matches!(role, Role::Officer | Role::Supervisor)
        }
        other => panic!("no expectation for {other}"),
    };
    match (allowed, path) {
        // A ticket opened: on to its page.
        (true, "/staff/tickets") if post => StatusCode::SEE_OTHER,
        // A number that does not exist is refused by name.
        (true, "/staff/tickets/T-0000-0000" | "/staff/tickets/T-0000-0000/notes") => {
            StatusCode::NOT_FOUND
        }
        (
            true,
            "/staff/accounts/unlock"
            | "/staff/accounts/sign-out-devices"
            | "/staff/team/reset"
            | "/staff/team/role"
            | "/staff/team/disable"
            | "/staff/health/lift",
        ) => StatusCode::NOT_FOUND,
        // The queue; a request for an account or a request number that does not exist.
        (true, "/staff/requests") if !post => StatusCode::OK,
        (true, path) if path.starts_with("/staff/requests") => StatusCode::NOT_FOUND,
        (true, _) => StatusCode::OK,
        (false, _) => StatusCode::FORBIDDEN,
    }
}

async fn ask(
    app: &Running,
    visitor: Option<&Visitor>,
    method: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let url = format!("{}{path}", app.base);
    let mut request = match method {
        "GET" => app.http.get(url),
        _ => {
            let mut form: Vec<(&str, &str)> = fields.to_vec();
            if let Some(visitor) = visitor {
                form.push(("csrf", visitor.csrf.as_str()));
            }
            app.http.post(url).form(&form)
        }
    };
    if let Some(visitor) = visitor {
        request = request.header(COOKIE, visitor.header());
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_route_answers_each_role_as_its_permissions_say() {
    let db = TestDatabase::create().await;
    let members = match db.backend() {
        Backend::Sqlite => seed(db.sqlite_store().await).await,
        Backend::Postgres(_) => seed(db.postgres_store().await).await,
    };
    let app = start(&db).await;

    // A form that cannot be read is a 400 page in the portal's and the console's own layout.
    for path in ["/login", "/staff/login"] {
        let response = app
            .http
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("<h1>"), "{path}: {html}");
        assert_eq!(
            html.contains("/staff/sign-out") || html.contains("class=\"console\""),
            path.starts_with("/staff"),
            "{path} keeps its own layout"
        );
    }

    // Nobody signed in: every route leads to the sign-in page.
    let anonymous = visitor(&app).await;
    for (method, path, fields) in routes() {
        let response = ask(
            &app,
            Some(&Visitor {
                cookies: anonymous.cookies.clone(),
                csrf: anonymous.csrf.clone(),
            }),
            method,
            path,
            &fields,
        )
        .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{method} {path}");
        assert_eq!(
            response.headers()[LOCATION],
            "/staff/login",
            "{method} {path}"
        );
    }

    let mut refused = 0;
    for member in &members {
        let visitor = sign_in(&app, member).await;
        for (method, path, fields) in routes() {
            let response = ask(&app, Some(&visitor), method, path, &fields).await;
            let want = expected(member.role, method == "POST", path);
            assert_eq!(
                response.status(),
                want,
                "{} {method} {path}",
                member.role.as_str()
            );
            if want == StatusCode::FORBIDDEN {
                refused += 1;
            }
            let csp = response.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        }
        // A form without the token is refused whatever the role.
        let forged = app
            .http
            .post(format!("{}/staff/participants", app.base))
            .header(COOKIE, visitor.header())
            .form(&[
                ("kind", "nik"),
                ("value", "3171011708450001"),
                ("reason", "tanpa token"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    }
    app.stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), app.server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // Every refusal is in the audit log with who asked and what for.
    let store_refusals = |entries: Vec<gerbang_store::AuditEntry>| {
        entries
            .into_iter()
            .map(|e| (e.record.actor, e.record.detail))
            .collect::<Vec<_>>()
    };
    let filter = AuditFilter {
        action: Some("staff_access_refused".into()),
        ..AuditFilter::default()
    };
    let (refusals, searches) = match db.backend() {
        Backend::Sqlite => {
            let store = db.sqlite_store().await;
            let searches = store
                .audit_recent(
                    &AuditFilter {
                        action: Some("participant_searched".into()),
                        ..AuditFilter::default()
                    },
                    100,
                )
                .await
                .unwrap();
            (
                store_refusals(store.audit_recent(&filter, 100).await.unwrap()),
                searches,
            )
        }
        Backend::Postgres(_) => {
            let store = db.postgres_store().await;
            let searches = store
                .audit_recent(
                    &AuditFilter {
                        action: Some("participant_searched".into()),
                        ..AuditFilter::default()
                    },
                    100,
                )
                .await
                .unwrap();
            (
                store_refusals(store.audit_recent(&filter, 100).await.unwrap()),
                searches,
            )
        }
    };
    assert_eq!(refusals.len(), refused);
    assert!(refusals.contains(&(
        "staff:test-agent".to_owned(),
        "/staff/accounts/unlock needs LiftLocks".to_owned()
    )));
    assert_eq!(searches.len(), 3, "agent, officer and supervisor searched");
    for search in &searches {
        assert!(
            search.record.detail.contains("reason: tes matriks peran"),
            "{:?}",
            search.record
        );
        let nik = gerbang_testkit::participant(1).nik;
        assert!(
            !search.record.detail.contains(nik.as_str()),
            "no NIK in the log"
        );
        assert!(
            search.record.detail.contains("by nik: found"),
            "{:?}",
            search.record
        );
    }
}

/// The console and the portal are served independently: an internal instance may serve only the
/// console, a public one only the portal; each keeps the shared stylesheet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_the_portal_are_each_served_without_the_other() {
    let db = TestDatabase::create().await;
    for (portal, console) in [("false", "true"), ("true", "false")] {
        let app = start_with(
            &db,
            &[
                ("GERBANG_PORTAL__ENABLED", portal),
                ("GERBANG_CONSOLE__ENABLED", console),
            ],
        )
        .await;
        let status = |path: &'static str| {
            let http = app.http.clone();
            let url = format!("{}{path}", app.base);
            async move { http.get(url).send().await.unwrap() }
        };
        let login = status("/staff/login").await;
        let home = status("/").await;
        assert_eq!(
            login.status() == StatusCode::OK,
            console == "true",
            "console {console}"
        );
        assert_eq!(
            home.status() == StatusCode::OK,
            portal == "true",
            "portal {portal}"
        );
        // The page's stylesheet is served either way.
        let page = if console == "true" { login } else { home };
        let html = page.text().await.unwrap();
        let css = html
            .split("href=\"")
            .filter_map(|rest| rest.split('"').next())
            .find(|href| href.starts_with("/assets/") && href.ends_with(".css"))
            .expect("a stylesheet")
            .to_owned();
        assert_eq!(
            app.http
                .get(format!("{}{css}", app.base))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK,
            "{css}"
        );
        app.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), app.server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
