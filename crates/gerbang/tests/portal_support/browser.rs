//! Headless Chromium over WebDriver (fantoccini against a chromedriver this test starts), and the
//! checks run on every page a test visits:
//! - axe-core: no violation of impact `serious` or `critical`;
//! - at 360×640 no horizontal scroll, and at 360 and 1280 every visible button, link, field and
//!   `<summary>` at least 44 px high (a radio or checkbox is measured by its label; a link that is
//!   part of a sentence — `display: inline` inside a paragraph with other text — is exempt, as
//!   WCAG 2.5.8 exempts inline targets);
//! - no NIK, card number or code in the address, nor any run of 6 or more digits;
//! - a full-page PNG at both widths under `target/screenshots/<lang>-<width>-<page>.png`.
//!
//! A page problem is collected, printed at once, and fails the test at [`Browser::finish`], so one
//! run lists every problem of a flow instead of the first one only; a broken step of the flow
//! itself fails at once.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::http::Method;
use base64::Engine as _;
use fantoccini::wd::{Capabilities, TimeoutConfiguration, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::{App, Lang};

const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL: &str = "run `scripts/test --install-only` (it installs Debian's chromium and \
                       chromium-driver, and axe-core under target/axe)";

/// The workspace's root.
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots`, else the workspace's `target/screenshots`.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("screenshots")
}

/// axe-core's source, read once (installed by `scripts/test`).
fn axe_source() -> &'static str {
    static AXE: OnceLock<String> = OnceLock::new();
    AXE.get_or_init(|| {
        let path = workspace().join("target/axe/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core is not installed at {}: {e}; {INSTALL}",
                path.display()
            )
        })
    })
}

/// A chromedriver on a free port of 127.0.0.1, killed when dropped (also when the test panics).
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Driver {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing; {INSTALL}"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver cannot be started: {e}; {INSTALL}"));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JavaScript on, or blocked by the browser's content setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Js {
    On,
    Off,
}

/// A Chrome DevTools command through chromedriver (`/session/{id}/goog/cdp/execute`): an exact
/// viewport and full-page screenshots, which WebDriver itself lacks.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (
            Method::POST,
            Some(json!({"cmd": self.cmd, "params": self.params}).to_string()),
        )
    }
}

/// The viewports every page is checked at: width, height, a phone or not.
const VIEWPORTS: [(u32, u32, bool); 2] = [(360, 640, true), (1280, 800, false)];

/// One headless Chromium with a fresh profile, on one application.
pub struct Browser {
    pub client: Client,
    base: String,
    pub js: Js,
    /// Width the flow is driven at (a phone unless a test says otherwise).
    width: u32,
    secrets: Vec<String>,
    problems: Vec<String>,
    finished: bool,
    _profile: tempfile::TempDir,
}

/// What the layout check measures, in the page.
const LAYOUT: &str = r#"
const describe = (el) => {
  let s = el.tagName.toLowerCase();
  if (el.id) s += '#' + el.id;
  if (typeof el.className === 'string' && el.className.trim()) s += '.' + el.className.trim().split(/\s+/).join('.');
  if (el.getAttribute('href')) s += '[href="' + el.getAttribute('href') + '"]';
  if (el.getAttribute('name')) s += '[name="' + el.getAttribute('name') + '"]';
  const text = (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 40);
  return text ? s + ' "' + text + '"' : s;
};
const small = [];
for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
  let target = el;
  if (el.matches('input[type=radio], input[type=checkbox]')) target = el.closest('label') || el;
  const style = getComputedStyle(target);
  if (style.visibility === 'hidden' || style.display === 'none') continue;
  const r = target.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) continue;
  if (r.right + window.scrollX <= 0 || r.bottom + window.scrollY <= 0) continue;
  if (el.tagName === 'A' && getComputedStyle(el).display === 'inline') {
    const block = el.parentElement;
    if (block && block.textContent.trim() !== el.textContent.trim()) continue;
  }
  if (r.height < 44) small.push(describe(target) + ' is ' + r.height.toFixed(1) + ' px high');
}
return {
  scrollWidth: document.documentElement.scrollWidth,
  scrollHeight: Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0),
  innerWidth: window.innerWidth,
  small: small,
  lang: document.documentElement.lang,
};
"#;

/// Runs axe; with JavaScript blocked Chrome fires no timers, so axe's `setTimeout` becomes a
/// microtask (promises still run for scripts WebDriver injects).
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
if (arguments[0]) {
  window.setTimeout = function (f) {
    const rest = Array.prototype.slice.call(arguments, 2);
    Promise.resolve().then(function () { f.apply(null, rest); });
    return 0;
  };
  window.clearTimeout = function () {};
}
axe.run(document, { resultTypes: ['violations'] }).then(function (r) {
  done(r.violations.map(function (v) {
    return { id: v.id, impact: v.impact, help: v.help,
             nodes: v.nodes.slice(0, 6).map(function (n) {
               return n.target.join(' ') + ' :: ' + (n.failureSummary || '').replace(/\s+/g, ' ');
             }) };
  }));
}, function (e) { done({ error: String(e) }); });
"#;

impl Browser {
    /// A fresh Chromium whose Accept-Language is Indonesian, as on a phone in Indonesia.
    pub async fn open(driver: &Driver, app: &App, js: Js) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut prefs = json!({"intl.accept_languages": "id-ID,id"});
        if js == Js::Off {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--lang=id-ID",
                "--window-size=1280,800",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": prefs,
        });
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| {
                panic!("Chromium did not start through chromedriver: {e}; {INSTALL}")
            });
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(0)),
            ))
            .await
            .unwrap();
        let browser = Browser {
            client,
            base: app.base.clone(),
            js,
            width: 360,
            secrets: Vec::new(),
            problems: Vec::new(),
            finished: false,
            _profile: profile,
        };
        browser.viewport(360, 640, true).await;
        browser
    }

    /// Drives the flow at `width` (360 or 1280) from now on.
    pub async fn drive_at(&mut self, width: u32) {
        self.width = width;
        self.restore_viewport().await;
    }

    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    async fn viewport(&self, width: u32, height: u32, mobile: bool) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    async fn restore_viewport(&self) {
        let (width, height, mobile) = VIEWPORTS
            .into_iter()
            .find(|(w, _, _)| *w == self.width)
            .unwrap_or(VIEWPORTS[0]);
        self.viewport(width, height, mobile).await;
    }

    /// Never to appear in an address: a NIK, a card number, a code.
    pub fn secret(&mut self, text: &str) {
        self.secrets.push(text.to_string());
    }

    fn problem(&mut self, text: String) {
        eprintln!("PAGE PROBLEM: {text}");
        self.problems.push(text);
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    }

    pub async fn back(&self) {
        self.client.back().await.unwrap();
    }

    /// The address's path.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Fails unless the browser is at `path`, naming the page it is on instead.
    pub async fn expect_path(&self, path: &str) {
        let now = self.path().await;
        if now != path {
            let heading = self.text_or_empty("h1").await;
            let alerts = self.texts(".alert, .error, .notice").await;
            panic!(
                "expected {path}, but the browser is at {now} (h1 {heading:?}, messages {alerts:?})"
            );
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {}: {e}", self.path_now().await),
        }
    }

    async fn path_now(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn exists(&self, css: &str) -> bool {
        self.count(css).await > 0
    }

    /// The visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn text_or_empty(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The visible texts of every `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            out.push(element.text().await.unwrap_or_default());
        }
        out
    }

    /// The field's current value.
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.unwrap()
    }

    /// Types `text` into the field, as a person would, after emptying it.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Sets a field's value directly (a date field's picker cannot be typed into the same way
    /// in every locale).
    pub async fn set_value(&self, css: &str, value: &str) {
        self.client
            .execute(
                "const f = document.querySelector(arguments[0]); f.value = arguments[1]; \
                 f.dispatchEvent(new Event('input', {bubbles: true})); return f.value;",
                vec![json!(css), json!(value)],
            )
            .await
            .unwrap();
    }

    /// Clicks `css`, which changes nothing but the page itself (a `<summary>`, a radio button).
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Clicks `css`, a link or a submit button, and waits until the next page has loaded: a
    /// WebDriver click may return before a form's redirect has landed.
    pub async fn follow(&self, css: &str) {
        self.client
            .execute("window.__gerbangOldPage = true;", vec![])
            .await
            .unwrap();
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self
                .client
                .execute(
                    "return [window.__gerbangOldPage === true, document.readyState];",
                    vec![],
                )
                .await;
            if let Ok(state) = state
                && state[0] == json!(false)
                && state[1] == json!("complete")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new page within 20 s after clicking {css}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Picks the radio button `name=value`.
    pub async fn choose(&self, name: &str, value: &str) {
        self.click(&format!(
            "input[type=radio][name=\"{name}\"][value=\"{value}\"]"
        ))
        .await;
    }

    /// Presses the submit button of the form posting to `action`.
    pub async fn submit(&self, action: &str) {
        self.follow(&format!("form[action=\"{action}\"] > button[type=submit]"))
            .await;
    }

    /// Types a code that must never reach an address into the code page and submits it.
    pub async fn enter_code(&mut self, code: &str) {
        self.secret(code);
        self.fill("#f-code", code).await;
        self.submit("/code").await;
    }

    /// The page's `<html lang>`.
    pub async fn lang(&self) -> String {
        self.client
            .execute("return document.documentElement.lang", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Switches to `lang` with the header's button unless the page is in it already; the
    /// notice says so and `<html lang>` follows.
    pub async fn use_language(&mut self, lang: Lang, page: &str) {
        if self.lang().await == lang.code() {
            return;
        }
        let here = self.path().await;
        self.follow("form.lang button[type=submit]").await;
        self.expect_path(&here).await;
        assert_eq!(
            self.lang().await,
            lang.code(),
            "the switch changed the language"
        );
        assert_eq!(
            self.text(".notice").await,
            lang.t("notice.language_changed")
        );
        self.check(page).await;
    }

    /// The checks of every page (see the module's header); `page` names its screenshots.
    pub async fn check(&mut self, page: &str) {
        let url = self.client.current_url().await.unwrap();
        let address = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        for secret in self.secrets.clone() {
            if address.contains(&secret) {
                self.problem(format!("{page}: the address {address} holds {secret:?}"));
            }
        }
        let mut run = 0;
        for c in address.chars() {
            run = if c.is_ascii_digit() { run + 1 } else { 0 };
            if run >= 6 {
                self.problem(format!("{page}: the address {address} holds a long number"));
                break;
            }
        }
        let name = match self.js {
            Js::On => page.to_string(),
            Js::Off => format!("{page}-nojs"),
        };
        self.client
            .execute(&format!("{}\n;return typeof axe;", axe_source()), vec![])
            .await
            .unwrap();
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        let mut axe_seen: Vec<String> = Vec::new();
        let before = self.problems.len();
        for (width, height, mobile) in VIEWPORTS {
            self.viewport(width, height, mobile).await;
            let layout = self.client.execute(LAYOUT, vec![]).await.unwrap();
            let lang = layout["lang"].as_str().unwrap_or("none").to_string();
            let scroll_width = layout["scrollWidth"].as_u64().unwrap_or(0);
            let inner_width = layout["innerWidth"].as_u64().unwrap_or(0);
            if width == 360 && (scroll_width > inner_width || scroll_width > 360) {
                self.problem(format!(
                    "{name} at 360 px scrolls sideways: the page is {scroll_width} px wide (window {inner_width} px; a phone widens its window to fit)"
                ));
            }
            for small in layout["small"].as_array().cloned().unwrap_or_default() {
                self.problem(format!(
                    "{name} at {width} px: a touch target under 44 px: {}",
                    small.as_str().unwrap_or_default()
                ));
            }
            let violations = self
                .client
                .execute_async(AXE_RUN, vec![json!(self.js == Js::Off)])
                .await
                .unwrap_or_else(|e| panic!("axe on {name}: {e}"));
            if let Some(error) = violations.get("error") {
                self.problem(format!("{name}: axe failed: {error}"));
            }
            for v in violations.as_array().cloned().unwrap_or_default() {
                let impact = v["impact"].as_str().unwrap_or_default();
                let line = format!(
                    "{name} at {width} px: axe {} ({impact}): {} — {}",
                    v["id"].as_str().unwrap_or_default(),
                    v["help"].as_str().unwrap_or_default(),
                    v["nodes"]
                        .as_array()
                        .map(|n| n
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(" | "))
                        .unwrap_or_default()
                );
                let key = format!("{}:{}", v["id"], v["nodes"]);
                if axe_seen.contains(&key) {
                    continue;
                }
                axe_seen.push(key);
                if impact == "serious" || impact == "critical" {
                    self.problem(line);
                } else {
                    eprintln!("axe note (not failing): {line}");
                }
            }
            // The whole page, not only the viewport.
            let full_height = layout["scrollHeight"].as_u64().unwrap_or(u64::from(height));
            let shot = self
                .cdp(
                    "Page.captureScreenshot",
                    json!({"format": "png", "captureBeyondViewport": true,
                           "clip": {"x": 0, "y": 0, "width": width,
                                    "height": full_height.max(u64::from(height)), "scale": 1}}),
                )
                .await;
            let png = base64::engine::general_purpose::STANDARD
                .decode(shot["data"].as_str().unwrap_or_default())
                .unwrap();
            std::fs::write(dir.join(format!("{lang}-{width}-{name}.png")), png).unwrap();
        }
        self.restore_viewport().await;
        eprintln!(
            "checked {name} at {address}: {} problem(s), {} axe finding(s) of any impact",
            self.problems.len() - before,
            axe_seen.len()
        );
    }

    /// The page problems found so far, which then no longer fail the test (for the harness's own
    /// test).
    pub fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.problems)
    }

    /// Closes the browser; fails if any page had a problem.
    pub async fn finish(mut self) {
        self.finished = true;
        let problems = std::mem::take(&mut self.problems);
        let _ = self.client.clone().close().await;
        assert!(
            problems.is_empty(),
            "{} page problem(s):\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.finished && !self.problems.is_empty() {
            eprintln!(
                "page problems before the test stopped:\n  {}",
                self.problems.join("\n  ")
            );
        }
    }
}
