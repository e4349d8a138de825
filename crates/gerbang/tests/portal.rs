//! The participant portal in a real browser: headless Chromium driven over WebDriver through every
//! account flow, against the application built in-process on the backend under test, with the
//! codes read from the development inbox. Each page visited is checked with axe-core, for
//! horizontal scroll at 360 px and for touch targets, and photographed at 360 and 1280 px
//! (`target/screenshots`); see `portal_support/browser.rs`. The flows run in Indonesian (the
//! default) and in English (the header's switch), with JavaScript on and off for the core forms.
//! The header, cookie and weight checks need no browser and use plain HTTP.
//!
//! Needs Chromium, chromedriver and axe-core: `scripts/test --install-only` installs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod portal_support;

use std::time::Duration;

use gerbang_testkit::participant;
use portal_support::browser::{Browser, Driver, Js};
use portal_support::{App, Captcha, Lang, PASSWORD, Visitor};

/// Whether `text` holds a time on an Indonesian clock as the pages write it: `09.44 WIB` in
/// Indonesian, `09:44 WIB` in English (WIB, WITA or WIT).
fn has_local_time(text: &str, lang: Lang) -> bool {
    let separator = match lang {
        Lang::Id => '.',
        Lang::En => ':',
    };
    let chars: Vec<char> = text.chars().collect();
    chars.windows(6).enumerate().any(|(i, w)| {
        let zone: String = chars[i + 6..].iter().take(3).collect();
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == separator
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
            && w[5] == ' '
            && (zone == "WIB" || zone == "WIT")
    })
}

#[test]
fn local_times_are_recognised_in_both_languages() {
    assert!(has_local_time(
        "sampai 09.44 WIB, 6 Desember 2025",
        Lang::Id
    ));
    assert!(has_local_time(
        "until 21:05 WITA, 6 December 2025",
        Lang::En
    ));
    assert!(!has_local_time("sampai 09:44 WIB", Lang::Id));
    assert!(!has_local_time("no time here", Lang::En));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_checks_catch_a_missing_language_a_tiny_button_sideways_scroll_and_a_long_number()
{
    let (app, driver, mut b) = start(&[13], Captcha::Test, Js::On).await;
    b.goto("/login?n=3171011234560001").await;
    b.client
        .execute(
            "document.documentElement.removeAttribute('lang');
             const main = document.querySelector('main');
             const tiny = document.createElement('button');
             tiny.style.cssText = 'min-height:0;height:20px;padding:0';
             main.append(tiny);
             const wide = document.createElement('div');
             wide.style.cssText = 'width:900px;height:1px';
             main.append(wide);",
            vec![],
        )
        .await
        .unwrap();
    b.check("harness-self-test").await;
    let problems = b.take_problems().join("\n");
    for expected in [
        "scrolls sideways",
        "under 44 px: button",
        "axe html-has-lang (serious)",
        "axe button-name (critical)",
        "holds a long number",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} is caught:\n{problems}"
        );
    }
    b.finish().await;
    drop(driver);
    app.stop().await;
}

/// The browser and what it runs on, started for one test.
async fn start(numbers: &[u32], captcha: Captcha, js: Js) -> (App, Driver, Browser) {
    let app = App::start(numbers, captcha).await;
    let driver = Driver::start();
    let browser = Browser::open(&driver, &app, js).await;
    (app, driver, browser)
}

/// Logs `p` in on this browser, through the new-device code when one is asked; ends on /account.
async fn log_in(app: &App, b: &mut Browser, p: &gerbang_domain::Participant, lang: Lang) {
    b.goto("/login").await;
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    let seen = app.inbox().await.len();
    b.submit("/login").await;
    if b.path().await == "/code" {
        assert_eq!(b.text("h1").await, lang.t("code.title_login"));
        let code = app.message_after(seen).await.code();
        b.enter_code(&code).await;
    }
    b.expect_path("/account").await;
}

// --- a. registration ------------------------------------------------------------------------

async fn registration(lang: Lang, js: Js) {
    let (app, driver, mut b) = start(&[1], Captcha::Test, js).await;
    let p = participant(1);
    b.secret(p.nik.as_str());
    b.secret(p.card_number.as_str());
    b.goto("/").await;
    assert_eq!(b.lang().await, "id", "Indonesian is the default");
    b.check("home").await;
    b.use_language(lang, "home-language-switched").await;
    b.follow(".actions a[href=\"/register\"]").await;
    b.expect_path("/register").await;
    assert_eq!(b.text("h1").await, lang.t("register.title"));
    b.check("register").await;

    b.fill("#f-identifier", p.nik.as_str()).await;
    b.set_value("#f-birth_date", &p.birth_date.to_string())
        .await;
    b.fill("#f-captcha", "ok").await;
    b.submit("/register").await;
    b.expect_path("/register/contact").await;
    let name = b.text(".found .name").await;
    assert!(
        !name.is_empty() && name != "Budi Santoso" && name.starts_with('B'),
        "the name is shown masked: {name:?}"
    );
    b.check("register-contact").await;

    // A weak password: the failed rules are marked, the email stays, the password does not.
    let email = "budi.portal@example.com";
    b.fill("#f-email", email).await;
    b.fill("#f-phone", "0812 3456 0001").await;
    b.choose("channel", "email").await;
    b.fill("#f-password", "password").await;
    b.fill("#f-password_confirmation", "password").await;
    b.submit("/register/contact").await;
    b.expect_path("/register/contact").await;
    assert!(
        b.count("li.failed").await >= 1,
        "a weak password marks the failed rules"
    );
    assert!(
        b.exists("#e-password").await,
        "the refusal is beside the password"
    );
    assert_eq!(b.value("#f-email").await, email, "the email is kept");
    assert_eq!(
        b.value("#f-password").await,
        "",
        "the password is not sent back"
    );
    b.check("register-contact-weak-password").await;

    // The same form sent twice: once from a second tab, then again from this (now stale) one.
    let first = b.client.window().await.unwrap();
    let second = b.client.new_window(true).await.unwrap();
    b.client.switch_to_window(second.handle).await.unwrap();
    b.goto("/register/contact").await;
    b.fill("#f-email", email).await;
    b.fill("#f-password", PASSWORD).await;
    b.fill("#f-password_confirmation", PASSWORD).await;
    if js == Js::On {
        // The rules the script can check (common words, NIK and birth date are the server's).
        let checkable = ["too_short", "no_upper", "no_lower", "no_digit", "no_symbol"]
            .map(|rule| format!("li[data-rule=password_{rule}]"))
            .join(", ");
        assert_eq!(
            b.count("li.met").await,
            b.count(&checkable).await,
            "the script marks each rule met as the password is typed"
        );
    }
    b.submit("/register/contact").await;
    b.expect_path("/code").await;
    let message = app.message_after(0).await;
    assert_eq!(message.to, email);
    b.client.close_window().await.unwrap();
    b.client.switch_to_window(first).await.unwrap();
    b.fill("#f-password", PASSWORD).await;
    b.fill("#f-password_confirmation", PASSWORD).await;
    b.submit("/register/contact").await;
    b.expect_path("/code").await;
    assert_eq!(b.text("h1").await, lang.t("code.title_registration"));
    b.check("code-registration").await;
    // The back button, then the contact page again: the code page, and still one code.
    b.back().await;
    b.goto("/register/contact").await;
    b.expect_path("/code").await;
    assert_eq!(
        app.settled_count().await,
        1,
        "a double submit sent one code"
    );

    let code = message.code();
    b.enter_code(&code).await;
    b.expect_path("/login").await;
    assert_eq!(b.text(".notice").await, lang.t("notice.registered"));
    b.check("login-registered").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_in_indonesian_with_javascript_on_ends_on_the_login_page() {
    registration(Lang::Id, Js::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_in_english_with_javascript_off_ends_on_the_login_page() {
    registration(Lang::En, Js::Off).await;
}

// --- b. login --------------------------------------------------------------------------------

async fn login_from_a_new_device(lang: Lang, js: Js) {
    let (app, driver, mut b) = start(&[2], Captcha::Test, js).await;
    let p = participant(2);
    app.register_over_api(&p).await;
    b.secret(p.nik.as_str());
    b.goto("/login").await;
    b.check("login").await;
    b.use_language(lang, "login-language-switched").await;
    assert_eq!(b.text("h1").await, lang.t("login.title"));
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    let seen = app.inbox().await.len();
    b.submit("/login").await;
    b.expect_path("/code").await;
    assert_eq!(b.text("h1").await, lang.t("code.title_login"));
    b.check("code-login").await;
    let code = app.message_after(seen).await.code();
    b.enter_code(&code).await;
    b.expect_path("/account").await;
    assert_eq!(b.text("h1").await, lang.t("account.title"));
    let source = b.client.source().await.unwrap();
    assert!(
        !source.contains(p.nik.as_str()),
        "the account page shows the NIK masked"
    );
    b.check("account").await;

    b.submit("/account/logout").await;
    b.expect_path("/").await;
    assert_eq!(b.text(".notice").await, lang.t("notice.signed_out"));
    b.check("home-signed-out").await;

    // The device is trusted now: no code the second time.
    let seen = app.inbox().await.len();
    b.goto("/login").await;
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    b.submit("/login").await;
    b.expect_path("/account").await;
    assert_eq!(
        app.settled_count().await,
        seen,
        "a trusted device gets no code"
    );
    b.submit("/account/logout").await;
    b.expect_path("/").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_from_a_new_device_in_indonesian_with_javascript_on_asks_a_code_once() {
    login_from_a_new_device(Lang::Id, Js::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_from_a_new_device_in_english_with_javascript_off_asks_a_code_once() {
    login_from_a_new_device(Lang::En, Js::Off).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_passwords_lock_the_account_and_the_right_one_then_shows_until_when_in_wib() {
    let (app, driver, mut b) = start(&[3], Captcha::Test, Js::On).await;
    let p = participant(3);
    app.register_over_api(&p).await;
    b.secret(p.nik.as_str());
    b.goto("/login").await;
    // Six wrong passwords: each told the same way, the lock itself never told to a guesser.
    for attempt in 1..=6 {
        b.fill("#f-identifier", p.nik.as_str()).await;
        b.fill("#f-password", "Salah-Sandi#1").await;
        b.submit("/login").await;
        b.expect_path("/login").await;
        assert_eq!(
            b.text("h1").await,
            Lang::Id.t("login.title"),
            "attempt {attempt}"
        );
        assert!(
            b.exists("#e-password").await,
            "a wrong password is told beside the password field"
        );
        assert_eq!(
            b.value("#f-identifier").await,
            p.nik.as_str(),
            "the identifier is kept"
        );
        if attempt == 1 {
            b.check("login-wrong-password").await;
        }
    }
    // The right password: the lock page, until when on the participant's clock.
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    b.submit("/login").await;
    assert_eq!(b.text("h1").await, Lang::Id.t("locked.title"));
    let alert = b.text(".alert").await;
    assert!(
        alert.contains(&Lang::Id.t("locked.temporary")) && has_local_time(&alert, Lang::Id),
        "the lock page says until when, on the participant's clock: {alert:?}"
    );
    assert!(
        b.exists("a[href=\"/recover\"]").await,
        "and offers recovery"
    );
    b.check("locked").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

// --- c. the code page ------------------------------------------------------------------------

async fn code_page(lang: Lang, js: Js) {
    let (app, driver, mut b) = start(&[4], Captcha::Test, js).await;
    let p = participant(4);
    app.register_over_api(&p).await;
    b.secret(p.nik.as_str());
    b.goto("/login").await;
    b.use_language(lang, "login-language-switched").await;
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    let seen = app.inbox().await.len();
    b.submit("/login").await;
    b.expect_path("/code").await;
    let code = app.message_after(seen).await.code();
    b.secret(&code);

    // The resend button waits for the countdown, with or without the script.
    let resend = b.find("[data-resend]").await;
    assert!(
        !resend.is_enabled().await.unwrap(),
        "resend is disabled during the countdown"
    );
    let countdown = b.text(".countdown").await;
    let prefix = lang.t("code.resend_in_prefix");
    let template = lang.t("code.resend_in");
    let shown = template.split("{time}").next().unwrap_or_default().trim();
    assert!(
        countdown.starts_with(&prefix) || countdown.starts_with(shown),
        "the page says when the code may be sent again: {countdown:?}"
    );
    assert!(
        countdown.contains(':'),
        "the countdown reads m:ss: {countdown:?}"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = b.text(".countdown").await;
    match js {
        Js::On => assert_ne!(later, countdown, "the script counts down"),
        Js::Off => assert_eq!(later, countdown, "without the script the text stays"),
    }
    assert!(!b.find("[data-resend]").await.is_enabled().await.unwrap());
    b.check("code-countdown").await;

    // A wrong code: the error beside the field.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    b.fill("#f-code", wrong).await;
    b.submit("/code").await;
    b.expect_path("/code").await;
    assert!(
        b.exists("#e-code").await,
        "a wrong code is told beside the field"
    );
    assert_eq!(
        b.attr("#f-code", "aria-invalid").await.as_deref(),
        Some("true")
    );
    assert!(
        b.attr("#f-code", "aria-describedby")
            .await
            .unwrap_or_default()
            .contains("e-code"),
        "the field is described by its error"
    );
    b.check("code-wrong").await;

    // "Didn't get the code?" opens on the delivery status.
    assert!(b.attr("#not-received", "open").await.is_none());
    b.click("#not-received > summary").await;
    assert!(
        b.attr("#not-received", "open").await.is_some(),
        "the details open"
    );
    let panel = b.find("#not-received [data-status]").await;
    assert!(panel.is_displayed().await.unwrap(), "the status is shown");
    assert!(!panel.text().await.unwrap().trim().is_empty());
    b.check("code-not-received").await;

    // The right code still works after a wrong one.
    b.fill("#f-code", &code).await;
    b.submit("/code").await;
    b.expect_path("/account").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_page_with_javascript_on_counts_down_refuses_a_wrong_code_and_shows_the_status() {
    code_page(Lang::Id, Js::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_page_with_javascript_off_says_when_refuses_a_wrong_code_and_shows_the_status() {
    code_page(Lang::En, Js::Off).await;
}

// --- d. forgot password ----------------------------------------------------------------------

async fn recovery(lang: Lang, js: Js) {
    let (app, driver, mut b) = start(&[5], Captcha::Test, js).await;
    let p = participant(5);
    app.register_over_api(&p).await;
    b.secret(p.nik.as_str());
    b.goto("/login").await;
    b.use_language(lang, "login-language-switched").await;
    b.follow("a[href=\"/recover\"]").await;
    b.expect_path("/recover").await;
    assert_eq!(b.text("h1").await, lang.t("recover.title"));
    b.check("recover").await;
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.set_value("#f-birth_date", &p.birth_date.to_string())
        .await;
    b.fill("#f-captcha", "ok").await;
    b.submit("/recover").await;
    b.expect_path("/recover/channel").await;
    assert!(b.count("input[type=radio][name=channel]").await >= 2);
    b.check("recover-channel").await;
    b.choose("channel", "sms").await;
    let seen = app.inbox().await.len();
    b.submit("/recover/channel").await;
    b.expect_path("/code").await;
    assert_eq!(b.text("h1").await, lang.t("code.title_recovery"));
    assert!(b.exists("#f-password").await && b.exists("#f-password_confirmation").await);
    b.check("code-recovery").await;
    let message = app.message_after(seen).await;
    assert_eq!(message.channel, "sms");
    let code = message.code();
    b.secret(&code);
    let new_password = "Es-Teh-Manis#2027";
    b.fill("#f-code", &code).await;
    b.fill("#f-password", new_password).await;
    b.fill("#f-password_confirmation", new_password).await;
    b.submit("/code").await;
    b.expect_path("/login").await;
    assert_eq!(b.text(".notice").await, lang.t("notice.recovered"));
    b.check("login-recovered").await;

    // The old password no longer works; the new one does.
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    b.submit("/login").await;
    b.expect_path("/login").await;
    assert!(b.exists("#e-password").await, "the old password is refused");
    b.fill("#f-identifier", p.nik.as_str()).await;
    b.fill("#f-password", new_password).await;
    b.submit("/login").await;
    let now = b.path().await;
    assert!(
        now == "/code" || now == "/account",
        "the new password is accepted (at {now})"
    );
    b.finish().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_in_indonesian_sends_a_code_by_sms_and_replaces_the_password() {
    recovery(Lang::Id, Js::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgot_password_in_english_with_javascript_off_replaces_the_password() {
    recovery(Lang::En, Js::Off).await;
}

// --- e. the account page ---------------------------------------------------------------------

/// An account registered over the API, this browser signed in on it (a new device: one code).
async fn signed_in(number: u32, lang: Lang, js: Js, width: u32) -> (App, Driver, Browser) {
    let (app, driver, mut b) = start(&[number], Captcha::Test, js).await;
    b.drive_at(width).await;
    let p = participant(number);
    app.register_over_api(&p).await;
    b.secret(p.nik.as_str());
    b.goto("/").await;
    b.use_language(lang, "home-language-switched").await;
    log_in(&app, &mut b, &p, lang).await;
    (app, driver, b)
}

async fn devices_and_bank(lang: Lang, js: Js, width: u32) {
    let p = participant(6);
    let (app, driver, mut b) = signed_in(6, lang, js, width).await;
    app.session_over_api(&p, "hp-lama").await;
    b.goto("/account").await;
    b.check("account").await;

    // Devices: this one and the phone; the phone is signed out.
    assert_eq!(b.count(".devices > li").await, 2, "two trusted devices");
    assert_eq!(b.count(".devices .badge").await, 1, "this device is marked");
    b.follow(".devices > li:not(:has(.badge)) form > button[type=submit]")
        .await;
    b.expect_path("/account").await;
    assert_eq!(b.text(".notice").await, lang.t("notice.device_signed_out"));
    assert_eq!(b.count(".devices > li").await, 1);
    b.check("account-device-signed-out").await;

    // A bank account change, confirmed by a code bound to its details.
    b.follow("a[href=\"/account/bank\"]").await;
    b.expect_path("/account/bank").await;
    b.check("bank").await;
    b.fill("#f-bank", "Bank Rakyat Indonesia").await;
    b.fill("#f-account_number", "0123 4567 8901").await;
    b.fill("#f-holder", "Budi Santoso").await;
    let seen = app.inbox().await.len();
    b.submit("/account/bank").await;
    b.expect_path("/code").await;
    assert_eq!(b.text("h1").await, lang.t("code.title_step_up"));
    let details = b.text("dl.details").await;
    assert!(
        details.contains("Bank Rakyat Indonesia")
            && details.contains("Budi Santoso")
            && details.contains("012345678901"),
        "the code page shows what is confirmed: {details:?}"
    );
    b.check("code-step-up").await;
    let message = app.message_after(seen).await;
    assert!(
        message.text.contains("8901"),
        "the code's message names the account: {message:?}"
    );
    b.enter_code(&message.code()).await;
    b.expect_path("/account").await;
    assert_eq!(b.text(".notice").await, lang.t("notice.bank_changed"));
    b.check("account-bank-changed").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

async fn phone_change_and_cool_off(lang: Lang, js: Js, width: u32) {
    let (app, driver, mut b) = signed_in(12, lang, js, width).await;
    // A new phone: a code to the old contact, then one to the new number.
    b.follow("a[href=\"/account/contact\"]").await;
    b.expect_path("/account/contact").await;
    b.check("contact").await;
    b.choose("kind", "phone").await;
    b.fill("#f-value", "0813 9876 5432").await;
    let seen = app.inbox().await.len();
    b.submit("/account/contact").await;
    b.expect_path("/code").await;
    assert_eq!(b.text("h1").await, lang.t("code.title_contact_old"));
    b.check("code-contact-old").await;
    let old = app.message_after(seen).await;
    assert!(
        !old.to.contains("81398765432"),
        "the first code goes to the old contact: {old:?}"
    );
    b.secret(&old.code());
    b.fill("#f-code", &old.code()).await;
    let seen = app.inbox().await.len();
    b.submit("/code").await;
    b.expect_path("/code").await;
    assert_eq!(
        b.text("h1").await,
        lang.t("code.title_contact_new"),
        "after the old contact, the new one (messages on the page: {:?})",
        b.texts(".alert, .error").await
    );
    b.check("code-contact-new").await;
    let new = app.message_after(seen).await;
    assert!(
        new.to.contains("81398765432"),
        "the second code goes to the new number: {new:?}"
    );
    b.enter_code(&new.code()).await;
    b.expect_path("/account").await;
    assert_eq!(b.text(".notice").await, lang.t("notice.contact_changed"));
    let cooling = b.text("p.alert.soft").await;
    assert!(
        cooling.contains(&lang.t("account.cooling_off")) && has_local_time(&cooling, lang),
        "the account page says until when the cool-off lasts: {cooling:?}"
    );
    b.check("account-cooling-off").await;

    // During the cool-off a bank change is refused, on the page, and no code is sent.
    b.follow("a[href=\"/account/bank\"]").await;
    b.fill("#f-bank", "Bank Mandiri").await;
    b.fill("#f-account_number", "9876543210").await;
    b.fill("#f-holder", "Budi Santoso").await;
    let seen = app.inbox().await.len();
    b.submit("/account/bank").await;
    b.expect_path("/account/bank").await;
    let refusal = b.text(".alert").await;
    assert!(
        has_local_time(&refusal, lang),
        "the cool-off refusal is on the page and says until when: {refusal:?}"
    );
    assert_eq!(
        app.settled_count().await,
        seen,
        "no code during the cool-off"
    );
    b.check("bank-cooling-off").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_lists_devices_signs_one_out_and_confirms_a_bank_change_by_code() {
    devices_and_bank(Lang::Id, Js::On, 360).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_in_english_on_a_desktop_without_javascript_changes_devices_and_bank() {
    devices_and_bank(Lang::En, Js::Off, 1280).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_change_proves_old_then_new_contact_and_holds_bank_changes_during_the_cool_off() {
    phone_change_and_cool_off(Lang::Id, Js::On, 360).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_change_in_english_on_a_desktop_without_javascript_holds_bank_changes_too() {
    phone_change_and_cool_off(Lang::En, Js::Off, 1280).await;
}

// --- the built-in captcha --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_captcha_shows_an_image_gives_another_and_refuses_a_wrong_answer() {
    let (app, driver, mut b) = start(&[7], Captcha::Builtin, Js::On).await;
    let p = participant(7);
    b.secret(p.nik.as_str());
    b.goto("/register").await;
    let image = b.find("img.captcha-image").await;
    assert!(image.is_displayed().await.unwrap());
    let first = image.attr("src").await.unwrap().unwrap_or_default();
    assert!(first.starts_with("data:image/png;base64,"), "{first:.40}");
    let natural = b
        .client
        .execute(
            "return document.querySelector('img.captcha-image').naturalWidth",
            vec![],
        )
        .await
        .unwrap();
    assert!(natural.as_u64().unwrap_or(0) > 0, "the image decodes");
    b.check("register-captcha").await;

    b.fill("#f-identifier", p.nik.as_str()).await;
    b.set_value("#f-birth_date", &p.birth_date.to_string())
        .await;
    b.follow("button[name=action][value=another]").await;
    b.expect_path("/register").await;
    let second = b.attr("img.captcha-image", "src").await.unwrap_or_default();
    assert_ne!(first, second, "another image");
    assert_eq!(
        b.value("#f-identifier").await,
        p.nik.as_str(),
        "the identifier is kept"
    );

    b.fill("#f-captcha", "zzzzzz").await;
    b.submit("/register").await;
    b.expect_path("/register").await;
    assert!(
        b.exists(".captcha #e-captcha").await,
        "a wrong answer is refused next to the captcha field"
    );
    assert_eq!(
        b.attr("#f-captcha", "aria-invalid").await.as_deref(),
        Some("true")
    );
    let third = b.attr("img.captcha-image", "src").await.unwrap_or_default();
    assert_ne!(third, second, "a spent challenge is replaced");
    b.check("register-captcha-wrong").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

// --- f. security, without a browser ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_framed_by_nobody_runs_no_inline_script_and_sets_strict_cookies() {
    let app = App::start(&[8, 9], Captcha::Test).await;
    let p = participant(8);
    let registered = participant(9);
    app.register_over_api(&registered).await;
    let mut v = Visitor::new(&app);
    for path in ["/", "/register", "/login", "/recover"] {
        assert_eq!(v.get(path).await.status, 200, "{path}");
    }
    // Registration up to the code page.
    let csrf = v.get("/register").await.csrf();
    let birth = p.birth_date.to_string();
    let sent = v
        .post(
            "/register",
            &[
                ("csrf", &csrf),
                ("identifier", p.nik.as_str()),
                ("birth_date", &birth),
                ("captcha_token", "test"),
                ("captcha_answer", "ok"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let page = v.get("/register/contact").await;
    assert_eq!(page.what, "GET /register/contact");
    let csrf = page.csrf();
    let sent = v
        .post(
            "/register/contact",
            &[
                ("csrf", &csrf),
                ("email", "budi.aman@example.com"),
                ("phone", ""),
                ("channel", "email"),
                ("password", PASSWORD),
                ("password_confirmation", PASSWORD),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(v.get("/code").await.status, 200);

    // A tampered flow cookie starts over, with a message.
    let flow = v.cookies["gb_flow"].clone();
    let mut tampered = flow.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let mut t = Visitor::new(&app);
    t.cookies = v.cookies.clone();
    t.cookies.insert("gb_flow".into(), tampered);
    let home = t.get("/code").await;
    assert_eq!(home.what, "GET /", "a tampered flow goes home");
    assert!(
        home.body.contains("class=\"notice\"")
            && home.body.contains(&Lang::Id.t("notice.flow_expired")),
        "and says the step is over"
    );
    assert!(
        !t.cookies.contains_key("gb_flow"),
        "the bad flow is dropped"
    );
    t.cookies
        .insert("gb_flow".into(), "gbf_notoneofours".into());
    let again = t.get("/register/contact").await;
    assert_eq!(again.what, "GET /register", "registration starts over");
    assert!(again.body.contains(&Lang::Id.t("notice.flow_expired")));

    // A form without the CSRF token: 403, as a page.
    for (path, form) in [
        (
            "/login",
            vec![("identifier", p.nik.as_str()), ("password", PASSWORD)],
        ),
        ("/code", vec![("code", "123456")]),
        ("/language", vec![("lang", "en"), ("next", "/")]),
        ("/account/logout", vec![("csrf", "00")]),
    ] {
        let refused = v.post(path, &form).await;
        assert_eq!(refused.status, 403, "POST {path} without the token");
        assert!(
            refused.is_html() && refused.body.contains(&Lang::Id.t("problem.csrf_title")),
            "POST {path}: the refusal is a page: {}",
            refused.body
        );
    }

    // Recovery and the signed-in pages.
    let mut r = Visitor::new(&app);
    let csrf = r.get("/recover").await.csrf();
    let birth = registered.birth_date.to_string();
    let sent = r
        .post(
            "/recover",
            &[
                ("csrf", &csrf),
                ("identifier", registered.nik.as_str()),
                ("birth_date", &birth),
                ("captcha_token", "test"),
                ("captcha_answer", "ok"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(r.get("/recover/channel").await.status, 200);
    let token = app.session_over_api(&registered, "laptop-1").await;
    r.cookies.insert("gb_session".into(), token);
    for path in ["/account", "/account/contact", "/account/bank"] {
        let page = r.get(path).await;
        assert_eq!(page.what, format!("GET {path}"), "signed in");
        assert_eq!(page.status, 200);
    }

    let mut problems = Vec::new();
    for response in v.seen.iter().chain(t.seen.iter()).chain(r.seen.iter()) {
        let what = &response.what;
        let csp = response.header("content-security-policy");
        if csp.is_empty() || csp.contains("unsafe-inline") || csp.contains("unsafe-eval") {
            problems.push(format!("{what}: Content-Security-Policy {csp:?}"));
        }
        if !csp.contains("frame-ancestors 'none'") {
            problems.push(format!("{what}: no frame-ancestors 'none'"));
        }
        if response.header("x-frame-options") != "DENY" {
            problems.push(format!(
                "{what}: X-Frame-Options {:?}",
                response.header("x-frame-options")
            ));
        }
        if response.header("x-content-type-options") != "nosniff" {
            problems.push(format!("{what}: no nosniff"));
        }
        for cookie in response.headers.get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap_or_default();
            let lower = cookie.to_ascii_lowercase();
            if !lower.contains("httponly") || !lower.contains("samesite=lax") {
                problems.push(format!(
                    "{what}: cookie without HttpOnly and SameSite=Lax: {cookie}"
                ));
            }
        }
        let location = response.location();
        if location.contains(p.nik.as_str()) || location.contains(registered.nik.as_str()) {
            problems.push(format!("{what}: redirects to an address with the NIK"));
        }
        if response.is_html() && response.body.contains("<script>") {
            problems.push(format!("{what}: an inline script"));
        }
        if response.is_html() && response.body.contains(" style=\"") {
            problems.push(format!("{what}: an inline style"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.stop().await;
}

// --- g. page weight --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_with_its_stylesheet_script_and_icon_weighs_under_60_kb_and_is_gzipped() {
    let app = App::start(&[10, 11], Captcha::Test).await;
    let p = participant(10);
    let registered = participant(11);
    app.register_over_api(&registered).await;
    let mut v = Visitor::new(&app);
    let mut pages = Vec::new();
    for path in ["/", "/register", "/login", "/recover"] {
        pages.push(path.to_string());
        v.get(path).await;
    }
    let csrf = v.get("/register").await.csrf();
    let birth = p.birth_date.to_string();
    v.post(
        "/register",
        &[
            ("csrf", &csrf),
            ("identifier", p.nik.as_str()),
            ("birth_date", &birth),
            ("captcha_token", "test"),
            ("captcha_answer", "ok"),
        ],
    )
    .await;
    let csrf = v.get("/register/contact").await.csrf();
    pages.push("/register/contact".into());
    v.post(
        "/register/contact",
        &[
            ("csrf", &csrf),
            ("email", "budi.ringan@example.com"),
            ("channel", "email"),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ],
    )
    .await;
    v.get("/code").await;
    pages.push("/code".into());
    let token = app.session_over_api(&registered, "laptop-1").await;
    let mut s = Visitor::new(&app);
    s.cookies.insert("gb_session".into(), token);
    for path in ["/account", "/account/contact", "/account/bank"] {
        s.get(path).await;
    }

    let mut problems = Vec::new();
    let http = reqwest::Client::new();
    let mut asset_sizes = std::collections::BTreeMap::new();
    let responses: Vec<_> = v
        .seen
        .iter()
        .chain(s.seen.iter())
        .filter(|r| r.status == 200 && r.is_html() && r.what.starts_with("GET "))
        .collect();
    assert!(responses.len() >= 9, "every page was fetched");
    for page in responses {
        let mut assets = Vec::new();
        for marker in [
            "rel=\"stylesheet\" href=\"",
            "<script src=\"",
            "rel=\"icon\" href=\"",
        ] {
            match portal_support::attribute_after(&page.body, marker) {
                Some(href) => assets.push(href),
                None => problems.push(format!("{}: no {marker}…", page.what)),
            }
        }
        let mut total = page.body.len();
        for href in assets {
            if !asset_sizes.contains_key(&href) {
                let bytes = http
                    .get(format!("{}{href}", app.base))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                asset_sizes.insert(href.clone(), bytes.len());
            }
            total += asset_sizes[&href];
        }
        eprintln!(
            "{}: HTML {} B, with assets {} B",
            page.what,
            page.body.len(),
            total
        );
        if total > 60 * 1024 {
            problems.push(format!(
                "{} weighs {total} bytes with its assets",
                page.what
            ));
        }
    }
    // Compressed on request.
    let mut z = Visitor::new(&app);
    z.get("/").await;
    let path = "/register";
    let response = http
        .get(format!("{}{path}", app.base))
        .header("accept-encoding", "gzip")
        .header("cookie", format!("gb_csrf={}", z.cookies["gb_csrf"]))
        .send()
        .await
        .unwrap();
    let encoding = response
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.bytes().await.unwrap();
    if encoding != "gzip" || !body.starts_with(&[0x1f, 0x8b]) {
        problems.push(format!(
            "{path} is not gzipped (Content-Encoding {encoding:?})"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    app.stop().await;
}

// --- g. the staff console --------------------------------------------------------------------

/// Signs `member` in on the console; ends on its home page.
async fn staff_sign_in(b: &mut Browser, member: &gerbang_domain::staff::StaffMember) {
    b.goto("/staff").await;
    b.expect_path("/staff/login").await;
    let code = member
        .totp
        .code_at(&member.name, chrono::Utc::now())
        .unwrap();
    b.fill("#f-name", member.name.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    b.fill("#f-code", &code).await;
    b.submit("/staff/login").await;
    b.expect_path("/staff").await;
}

async fn console(lang: Lang, js: Js) {
    let (app, driver, mut b) = start(&[7], Captcha::Test, js).await;
    let p = participant(7);
    app.register_over_api(&p).await;
    app.session_over_api(&p, "hp-1").await;
    app.lock_over_api(&p).await;
    let officer = app.add_staff("cabang-jaksel-07", "officer").await;
    let supervisor = app.add_staff("supervisor.pusat", "supervisor").await;
    let admin = app.add_staff("admin.pusat", "admin").await;
    b.secret(p.nik.as_str());

    // Sign-in: a wrong code is told above the form, the name kept.
    b.goto("/staff").await;
    b.expect_path("/staff/login").await;
    b.use_language(lang, "console-login-language-switched")
        .await;
    assert_eq!(b.text("h1").await, lang.t("console.login_title"));
    b.check("console-login").await;
    b.fill("#f-name", officer.name.as_str()).await;
    b.fill("#f-password", PASSWORD).await;
    b.fill("#f-code", "000000").await;
    b.submit("/staff/login").await;
    assert!(b.exists("#form-error").await, "a wrong code is refused");
    assert_eq!(b.value("#f-name").await, officer.name.as_str());
    b.check("console-login-refused").await;

    // The officer finds the locked participant by NIK, with a reason, and lifts the lock.
    staff_sign_in(&mut b, &officer).await;
    assert_eq!(b.text("h1").await, lang.t("console.home_title"));
    b.check("console-home").await;
    b.follow("main a[href=\"/staff/participants\"]").await;
    b.expect_path("/staff/participants").await;
    b.check("console-search").await;
    b.fill("#f-value", p.nik.as_str()).await;
    b.submit("/staff/participants").await;
    assert!(b.exists("#e-reason").await, "a search needs a reason");
    b.fill("#f-value", p.nik.as_str()).await;
    b.fill("#f-reason", "telepon 165: akun terkunci").await;
    b.submit("/staff/participants").await;
    let source = b.client.source().await.unwrap();
    assert!(!source.contains(p.nik.as_str()), "the NIK is shown masked");
    assert!(b.exists("form[action=\"/staff/accounts/unlock\"]").await);
    b.check("console-found-locked").await;
    // A ticket for the complaint, with a note about the registration code.
    b.fill("#f-subject", "akun terkunci setelah salah kata sandi")
        .await;
    b.submit("/staff/tickets").await;
    let path = b.path().await;
    let number = path.strip_prefix("/staff/tickets/").unwrap().to_owned();
    assert!(number.starts_with("T-") && number.len() == 11, "{number}");
    b.fill("#f-text", "peserta menelepon 165, identitas dicocokkan")
        .await;
    b.submit(&format!("/staff/tickets/{number}/notes")).await;
    assert!(
        b.text(".timeline").await.contains("identitas dicocokkan"),
        "the note is shown"
    );
    b.check("console-ticket").await;
    // A ticket number that does not exist is refused by name.
    b.goto("/staff/tickets?number=T-0000-0001").await;
    assert!(b.text("#e-number").await.contains("T-0000-0001"));
    b.check("console-ticket-unknown").await;
    b.goto("/staff/participants").await;
    b.fill("#f-value", p.nik.as_str()).await;
    b.fill("#f-reason", "telepon 165: akun terkunci").await;
    b.submit("/staff/participants").await;
    b.fill("#f-unlock-reason", "KTP diperiksa di loket").await;
    b.fill("#f-unlock-ticket", &number).await;
    let seen = app.inbox().await.len();
    b.submit("/staff/accounts/unlock").await;
    // The participant is told on their phone and email.
    let notice = app.message_after(seen).await;
    assert!(notice.text.contains("dibuka oleh petugas"), "{notice:?}");
    assert!(
        !b.exists("form[action=\"/staff/accounts/unlock\"]").await,
        "the lock is lifted"
    );
    b.check("console-unlocked").await;
    // The phone was stolen: every device signed out, with the reason.
    b.fill("#f-devices-reason", "HP dilaporkan hilang lewat 165")
        .await;
    let seen = app.inbox().await.len();
    b.submit("/staff/accounts/sign-out-devices").await;
    let notice = app.message_after(seen).await;
    assert!(
        notice.text.contains("dikeluarkan oleh petugas"),
        "{notice:?}"
    );
    assert!(
        !b.exists("form[action=\"/staff/accounts/sign-out-devices\"]")
            .await,
        "no trusted device is left"
    );
    // The old number is dead: a change at the counter, after the KTP is seen. A KTP that is not
    // the participant's is refused; the request then waits for someone else.
    b.submit("/staff/requests/new").await;
    b.expect_path("/staff/requests/new").await;
    b.check("console-request-new").await;
    b.fill("#f-value", "0813 9999 0007").await;
    b.fill("#f-document_number", "3171015708450001").await;
    b.fill("#f-reason", "SIM lama hilang, nomor baru").await;
    b.fill("#f-ticket", &number).await;
    b.submit("/staff/requests").await;
    assert!(
        b.exists("#e-document_number").await,
        "the KTP is not theirs"
    );
    b.check("console-request-refused").await;
    b.fill("#f-document_number", p.nik.as_str()).await;
    b.submit("/staff/requests").await;
    let path = b.path().await;
    let request = path.strip_prefix("/staff/requests/").unwrap().to_owned();
    assert!(request.starts_with("R-"), "{request}");
    assert!(
        !b.exists(&format!(
            "form[action=\"/staff/requests/{request}/approve\"]"
        ))
        .await,
        "the author is not offered the approval"
    );
    b.check("console-request-own").await;
    b.submit("/staff/sign-out").await;
    b.expect_path("/staff/login").await;

    // The supervisor finds it in the queue, approves it, and enters the code the participant
    // reads from the new phone: the number changes and the old one is told.
    staff_sign_in(&mut b, &supervisor).await;
    b.follow("nav a[href=\"/staff/requests\"]").await;
    b.expect_path("/staff/requests").await;
    assert!(b.text("main").await.contains(&request), "queued");
    b.check("console-queue").await;
    b.follow(&format!("main a[href=\"/staff/requests/{request}\"]"))
        .await;
    let seen = app.inbox().await.len();
    b.submit(&format!("/staff/requests/{request}/approve"))
        .await;
    let code = app.message_to(seen, &["+6281399990007"]).await.code();
    b.check("console-request-approved").await;
    b.fill(
        "#f-code",
        if code == "000000" { "111111" } else { "000000" },
    )
    .await;
    b.submit(&format!("/staff/requests/{request}/code")).await;
    assert!(b.exists("#e-code").await, "a wrong code is refused");
    b.fill("#f-code", &code).await;
    let seen = app.inbox().await.len();
    b.submit(&format!("/staff/requests/{request}/code")).await;
    assert!(
        b.text("main")
            .await
            .contains(&lang.t("console.stage_completed")),
        "completed"
    );
    let notice = app
        .message_to(seen, &[p.phone.as_ref().unwrap().e164()])
        .await;
    assert!(notice.text.contains("0813****0007"), "{notice:?}");
    b.check("console-request-completed").await;

    // The supervisor reads the log: the search and the unlock, by the officer.
    b.follow("nav a[href=\"/staff/audit\"]").await;
    b.expect_path("/staff/audit").await;
    let rows = b.texts("tbody tr").await;
    assert!(
        rows.iter().any(|r| r.contains("staff:cabang-jaksel-07")
            && r.contains("lock_lifted")
            && r.contains("T-")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("participant_searched") && r.contains("telepon 165")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("devices_revoked") && r.contains("HP dilaporkan hilang")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.contains("staff:supervisor.pusat") && r.contains("contact_change_approved")),
        "{rows:?}"
    );
    b.check("console-audit").await;
    // Delivery health: every code of this test went through the development inbox. A pumped
    // number block is braked; the supervisor lifts the brake with a reason.
    app.brake_block("+6281299990").await;
    b.follow("nav a[href=\"/staff/health\"]").await;
    assert!(
        b.text("section[aria-labelledby=\"health-brakes\"]")
            .await
            .contains("+6281299990"),
        "the brake is listed"
    );
    b.check("console-health-braked").await;
    b.fill(
        "form[action=\"/staff/health/lift\"] input[name=\"reason\"]",
        "dicek dengan operator: trafik asli",
    )
    .await;
    b.submit("/staff/health/lift").await;
    assert!(
        !b.exists("form[action=\"/staff/health/lift\"]").await,
        "the brake is lifted"
    );
    assert!(
        b.text("section[aria-labelledby=\"health-brakes\"]")
            .await
            .contains("supervisor.pusat"),
        "lifted by the supervisor"
    );
    assert_eq!(b.text("h1").await, lang.t("console.health_title"));
    assert!(
        b.exists("svg.chart rect").await,
        "the hourly chart has bars"
    );
    assert!(
        b.count("section[aria-labelledby=\"health-providers\"] tbody tr")
            .await
            >= 1,
        "the provider is listed"
    );
    assert!(
        b.text("section[aria-labelledby=\"health-providers\"]")
            .await
            .contains("Telkomsel"),
        "outcomes per operator"
    );
    // The queue and admission table, the day's sends against their (absent) caps, and the
    // conversion of the number blocks this test sent codes to.
    let admission = b
        .text("section[aria-labelledby=\"health-admission\"]")
        .await;
    assert!(admission.contains("dev_inbox"), "{admission}");
    assert!(
        admission.contains(&lang.t("console.admission_accepting")),
        "{admission}"
    );
    assert!(
        b.count("section[aria-labelledby=\"health-conversion\"] tbody tr")
            .await
            >= 1,
        "the blocks codes went to are listed"
    );
    b.check("console-health").await;
    b.submit("/staff/sign-out").await;

    // The administrator sees the staff, and may not search participants.
    staff_sign_in(&mut b, &admin).await;
    b.follow("nav a[href=\"/staff/team\"]").await;
    assert_eq!(b.count("tbody tr").await, 3);
    b.check("console-team").await;
    // The officer lost their phone: a new password and authenticator, shown once.
    b.follow(&format!(
        "form[action=\"/staff/team/reset\"]:has(input[value=\"{}\"]) button",
        officer.name.as_str()
    ))
    .await;
    assert_eq!(b.text("h1").await, lang.t("console.enrolment_title"));
    let password = b.text("#enrolment-password").await;
    b.secret(&password);
    assert_eq!(password.len(), 20, "{password}");
    assert!(b.exists("img.qr").await, "the QR code is shown");
    b.check("console-enrolment").await;
    // A new agent, shown once; then made an officer, then disabled. The administrator's own row
    // offers neither.
    b.goto("/staff/team").await;
    b.fill("#f-name", "agen.165-baru").await;
    b.submit("/staff/team/add").await;
    assert_eq!(b.text("h1").await, lang.t("console.enrolment_title"));
    let password = b.text("#enrolment-password").await;
    b.secret(&password);
    b.goto("/staff/team").await;
    assert_eq!(b.count("tbody tr").await, 4);
    let row = "tbody tr:has(input[value=\"agen.165-baru\"])";
    b.set_value(&format!("{row} select[name=\"role\"]"), "officer")
        .await;
    b.follow(&format!("{row} form[action=\"/staff/team/role\"] button"))
        .await;
    assert!(
        b.text(row).await.contains(&lang.t("console.role_officer")),
        "re-roled"
    );
    b.follow(&format!(
        "{row} form[action=\"/staff/team/disable\"] button"
    ))
    .await;
    assert!(
        b.text(row)
            .await
            .contains(&lang.t("console.state_disabled")),
        "disabled"
    );
    assert!(
        !b.exists(
            "tbody tr:has(input[value=\"admin.pusat\"]) form[action=\"/staff/team/disable\"]"
        )
        .await,
        "no disabling oneself"
    );
    b.check("console-team-changed").await;
    // The settings, read-only.
    b.follow("nav a[href=\"/staff/settings\"]").await;
    assert_eq!(b.text("h1").await, lang.t("console.settings_title"));
    b.check("console-settings").await;
    b.goto("/staff/participants").await;
    assert_eq!(b.text("h1").await, lang.t("console.forbidden_title"));
    b.check("console-forbidden").await;
    b.finish().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_indonesian_signs_in_finds_unlocks_and_shows_the_log_by_role() {
    console(Lang::Id, Js::On).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_english_without_javascript_does_the_same() {
    console(Lang::En, Js::Off).await;
}
