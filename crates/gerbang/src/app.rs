//! [`Application`]: gerbang as a value. `gerbang serve` builds one and runs it until a signal; tests
//! build one on port 0 and run it until they are done.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use gerbang_domain::{Clock, SystemClock};
use std::sync::Arc;

use gerbang_core::{Courier, DeliveryWorker, DevInbox, Route, VerificationEngine};
use gerbang_delivery::email::SmtpCourier;
use gerbang_delivery::http_sms::HttpSmsCourier;
use gerbang_delivery::http_sms::Secret;
use gerbang_delivery::smpp::{SmppClient, SmppEvent};
use gerbang_delivery::voice::VoiceCourier;
use gerbang_delivery::whatsapp::WhatsappCourier;
use gerbang_delivery::{Provider, SmppCourier, apply_receipts};
use gerbang_domain::verification::Channel;
use gerbang_domain::verification::code::CodeKey;
use gerbang_http::{ApiClients, HttpState, StatusWebhooks};
use gerbang_registry::{HttpDirectory, Registry, StoreDirectory, SyntheticParticipants};
use gerbang_store::{ParticipantImport, Sealer, Store};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{Config, Profile, ProviderKind, RegistrySource, SmsProvider};
use crate::database::Database;
use crate::keys::{KeyOrigin, personal_data_key};
use crate::webhooks::{Hook, ProviderWebhooks};
use crate::with_store;

/// The configured registry as the account flows look participants up.
struct RegistryLookup<S>(Registry<S>);

impl<S: Store> gerbang_core::accounts::ParticipantLookup for RegistryLookup<S> {
    fn find<'a>(
        &'a self,
        key: gerbang_store::ParticipantKey<'a>,
    ) -> std::pin::Pin<
        Box<
            dyn Future<
                    Output = Result<
                        Option<gerbang_domain::Participant>,
                        gerbang_core::AccountError,
                    >,
                > + Send
                + 'a,
        >,
    > {
        use gerbang_registry::ParticipantDirectory;
        Box::pin(async move {
            self.0.lookup(key).await.map_err(|error| match error {
                gerbang_registry::DirectoryError::Store(store) => {
                    gerbang_core::AccountError::Store(store)
                }
                other => gerbang_core::AccountError::RegistryUnavailable(other.to_string()),
            })
        })
    }
}

/// The captcha of `accounts.captcha`; its challenge key derives from the code key, so every
/// instance sharing the database's key accepts the others' challenges.
fn captcha_gate(config: &Config, root: &[u8; 32]) -> anyhow::Result<gerbang_core::CaptchaGate> {
    let captcha = &config.accounts.captcha;
    Ok(match captcha.mode.as_str() {
        "builtin" => {
            gerbang_core::CaptchaGate::Builtin(Arc::new(gerbang_core::BuiltinCaptcha::new(
                gerbang_core::BuiltinCaptcha::derive_key(root),
                Arc::new(SystemClock),
                chrono::Duration::seconds(captcha.lifetime_seconds.clamp(30, 3600) as i64),
                captcha.length,
            )))
        }
        "off" => gerbang_core::CaptchaGate::Disabled,
        "hosted" => {
            let url: url::Url = captcha.hosted_url.parse().map_err(|e| {
                anyhow::anyhow!(
                    "accounts.captcha.hosted_url must be the service's siteverify URL: {e}"
                )
            })?;
            let secret = captcha.hosted_secret.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "accounts.captcha.mode = \"hosted\" needs accounts.captcha.hosted_secret (GERBANG_ACCOUNTS__CAPTCHA__HOSTED_SECRET)"
                )
            })?;
            gerbang_core::CaptchaGate::Hosted(Arc::new(crate::captcha::SiteVerify::new(
                url,
                secret,
                Duration::from_millis(captcha.hosted_timeout_ms.clamp(100, 30_000)),
            )?))
        }
        "test" if config.profile == Profile::Production => anyhow::bail!(
            "accounts.captcha.mode = \"test\" accepts a fixed answer and is refused in the production profile"
        ),
        "test" if captcha.test_answer.trim().is_empty() => {
            anyhow::bail!("accounts.captcha.mode = \"test\" needs accounts.captcha.test_answer")
        }
        "test" => {
            tracing::warn!(
                "captcha in test mode: a fixed answer passes; never use this in production"
            );
            gerbang_core::CaptchaGate::Test {
                answer: captcha.test_answer.clone(),
            }
        }
        other => anyhow::bail!(
            "accounts.captcha.mode must be \"builtin\", \"hosted\", \"off\" or \"test\", not {other:?}"
        ),
    })
}

/// A built, listening, not yet serving gerbang.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// Header-read timeout and connection cap of `[server]`.
    limits: gerbang_http::server::ServerLimits,
    database: Database,
    grace: Duration,
    /// Tells the delivery worker to finish its step and stop.
    stop_delivery: tokio::sync::watch::Sender<bool>,
    delivery: tokio::task::JoinHandle<()>,
}

impl Application {
    /// Resolves the key, opens and migrates the database, seeds demo participants when due, checks
    /// the registry settings and binds the listening socket.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        // The same checks `gerbang config check` runs, before anything is opened or started.
        validate(config)?;
        let sealer = sealer(config)?;
        let sealer_for_codes = sealer.clone();
        let database = Database::open(config, sealer).await?;
        tracing::info!(backend = database.backend(), "database ready");
        // Built now so that a bad registry setting stops the start, not the first registration.
        with_store!(&database, |store| registry(config, store.clone()).map(drop))?;
        with_store!(&database, |store| seed_demo_participants(
            config,
            store,
            &SystemClock
        )
        .await)?;
        let mut settings = config.otp.engine_settings()?;
        settings.fallback = config.delivery.fallback_policy()?;
        // Read once, before anything is served: a bad template stops the start.
        let templates = Arc::new(config.delivery.templates()?);
        match &config.delivery.templates_dir {
            Some(dir) => tracing::info!(dir = %dir.display(), "message templates loaded"),
            None => tracing::info!("built-in message templates"),
        }
        settings.templates = templates.clone();
        let metrics = Arc::new(gerbang_core::Metrics::default());
        let DeliveryWiring {
            routes,
            receipts,
            webhooks,
            causes,
        } = delivery_routes(config, &templates, true)?;
        let retry = config.delivery.retry_policy()?;
        let brake = Arc::new(gerbang_core::PumpingBrake::new(config.brake_policy()?));
        let admission = Arc::new(
            gerbang_core::Admission::new(config.admission_policy()?, settings.policy.hard_cap)
                .with_metrics(metrics.clone()),
        );
        let provider_names: Vec<&str> = routes.iter().map(|route| route.courier.name()).collect();
        let budgets = Arc::new(
            gerbang_core::Budgets::new(config.budget_policy(&provider_names)?)
                .with_metrics(metrics.clone()),
        );
        let lease = config.delivery.claim_lease()?;
        let account_settings = config.accounts.settings()?;
        let staff_policy = config.staff_policy()?;
        let hashing = Arc::new(
            gerbang_core::PasswordHashing::new(&config.accounts.hashing)
                .map_err(|e| anyhow::anyhow!("accounts.hashing: {e}"))?,
        );
        let captcha = captcha_gate(config, &sealer_for_codes.code_key())?;
        // The portal's CSRF key derives from the same root, so every instance accepts the others' forms.
        let portal_root = sealer_for_codes.code_key();
        let clients = api_clients(config);
        let (http_settings, limits) = http_settings(config)?;
        let code_key = CodeKey::new(sealer_for_codes.code_key())
            .with_previous(sealer_for_codes.previous_code_key());
        let (stop_delivery, delivery_stops) = tokio::sync::watch::channel(false);
        let (router, delivery) = with_store!(&database, |store| {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            // Measured by the worker, read by the engine's queue estimate.
            let pace = Arc::new(gerbang_core::DeliveryPace::default());
            let engine = VerificationEngine::new(
                store.clone(),
                clock.clone(),
                code_key.clone(),
                settings.clone(),
            )
            .with_pace(pace.clone())
            .with_brake(brake.clone())
            .with_admission(admission.clone())
            .with_budgets(budgets.clone());
            let mut brake_stops = delivery_stops.clone();
            tokio::spawn(brake.clone().run(store.clone(), clock.clone(), async move {
                let _ = brake_stops.wait_for(|stop| *stop).await;
            }));
            let mut admission_stops = delivery_stops.clone();
            tokio::spawn(admission.clone().run(
                store.clone(),
                pace.clone(),
                clock.clone(),
                async move {
                    let _ = admission_stops.wait_for(|stop| *stop).await;
                },
            ));
            let mut budget_stops = delivery_stops.clone();
            tokio::spawn(
                budgets
                    .clone()
                    .run(store.clone(), clock.clone(), async move {
                        let _ = budget_stops.wait_for(|stop| *stop).await;
                    }),
            );
            for (provider, events) in receipts {
                tokio::spawn(apply_receipts(
                    store.clone(),
                    provider,
                    events,
                    clock.clone(),
                    causes.clone(),
                    metrics.clone(),
                ));
            }
            let mut worker = DeliveryWorker::with_routes(store.clone(), routes, clock);
            worker.metrics = metrics.clone();
            worker.retry = retry;
            worker.lease = lease;
            let worker = worker.with_pace(pace).with_budgets(budgets.clone());
            let mut stops = delivery_stops.clone();
            let delivery = tokio::spawn(worker.run(engine.queued_signal(), async move {
                let _ = stops.wait_for(|stop| *stop).await;
            }));
            let accounts = gerbang_core::AccountService::new(
                engine.clone(),
                hashing.clone(),
                captcha.clone(),
                Arc::new(SystemClock),
                account_settings.clone(),
            )
            .with_registry(Arc::new(RegistryLookup(registry(config, store.clone())?)));
            let cookies = gerbang_web::CookiePolicy {
                secure: config.profile != Profile::Development,
            };
            let portal = config.portal.enabled.then(|| {
                let mut portal = gerbang_web::Portal::new(
                    accounts.clone(),
                    gerbang_web::CsrfKey::derive(&portal_root),
                    cookies,
                );
                portal.help_line = config.portal.help_line.clone();
                gerbang_web::routes(portal)
            });
            // The console stands on its own: a deployment may serve it without the portal (an
            // internal address) or the portal without it.
            let console = config.console.enabled.then(|| {
                gerbang_web::console::routes(gerbang_web::console::Console {
                    staff: Arc::new(gerbang_core::StaffService::new(
                        store.clone(),
                        hashing.clone(),
                        Arc::new(SystemClock),
                        staff_policy.clone(),
                        config.accounts.password.clone(),
                    )),
                    accounts: accounts.clone(),
                    store: store.clone(),
                    csrf: gerbang_web::CsrfKey::derive(&portal_root),
                    cookies,
                })
            });
            let pages = match (portal, console) {
                (None, None) => None,
                (portal, console) => Some(
                    gerbang_web::asset_routes()
                        .merge(portal.unwrap_or_default())
                        .merge(console.unwrap_or_default()),
                ),
            };
            let router = gerbang_http::router_with_pages(
                HttpState {
                    store: store.clone(),
                    accounts: Some(accounts),
                    engine,
                    clients: clients.clone(),
                    dev_inbox: config.profile == Profile::Development,
                    trust_forwarded_for: config.server.trust_forwarded_for,
                    webhooks: webhooks.clone(),
                    webhook_counters: Default::default(),
                    metrics: metrics.clone(),
                    settings: http_settings.clone(),
                },
                pages,
            );
            (router, delivery)
        });
        let listen = config.server.listen;
        let listener = TcpListener::bind(listen).await.with_context(|| {
            format!("cannot listen on {listen}: is another process using it? Choose another with --listen or server.listen")
        })?;
        Ok(Self {
            listener,
            router,
            limits,
            database,
            grace: Duration::from_secs(config.server.shutdown_grace_seconds),
            stop_delivery,
            delivery,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish (up to the grace period)
    /// and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.local_addr()?;
        tracing::info!(%address, "gerbang is serving; GET /healthz and /readyz");
        let (fired, grace_starts) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests in flight");
            let _ = fired.send(());
        };
        let server = gerbang_http::server::serve(self.listener, self.router, self.limits, signal);
        let grace = self.grace;
        let deadline = async move {
            match grace_starts.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = server => {}
            () = deadline => tracing::warn!(grace_seconds = grace.as_secs(), "requests still in flight after the grace period; stopping anyway"),
        }
        let _ = self.stop_delivery.send(true);
        if tokio::time::timeout(Duration::from_secs(5), self.delivery)
            .await
            .is_err()
        {
            tracing::warn!("the delivery worker did not stop within 5 s");
        }
        // Connections held by requests cut off at the deadline are never returned, and closing the
        // pool waits for them: bound the wait so a hung query cannot keep the process alive.
        if tokio::time::timeout(Duration::from_secs(5), self.database.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "database connections still busy after 5 s; exiting without waiting for them"
            );
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Every check `serve` makes of the configuration before it opens the database or starts a
/// provider, with nothing opened, started or written: `gerbang config check` runs exactly this,
/// and `Application::build` runs it first, so the two cannot disagree.
pub fn validate(config: &Config) -> anyhow::Result<()> {
    // A configured key must be usable, and production needs one; in development a missing key is
    // generated at start, which a check must not do.
    if config.privacy.key.is_some()
        || config.privacy.key_file.is_some()
        || config.profile == Profile::Production
    {
        personal_data_key(config)?;
    }
    crate::database::location(config)?;
    let mut settings = config.otp.engine_settings()?;
    settings.fallback = config.delivery.fallback_policy()?;
    let templates = Arc::new(config.delivery.templates()?);
    let wiring = delivery_routes(config, &templates, false)?;
    let providers: Vec<&str> = wiring
        .routes
        .iter()
        .map(|route| route.courier.name())
        .collect();
    config.budget_policy(&providers)?;
    config.brake_policy()?;
    config.admission_policy()?;
    config.delivery.retry_policy()?;
    config.delivery.claim_lease()?;
    config.accounts.settings()?;
    gerbang_core::PasswordHashing::new(&config.accounts.hashing)
        .map_err(|e| anyhow::anyhow!("accounts.hashing: {e}"))?;
    // The challenge key only matters to a running gate; any key checks the settings.
    captcha_gate(config, &[0; 32])?;
    http_settings(config)?;
    if config.registry.source == RegistrySource::Http {
        let http = &config.registry.http;
        let url = http
            .url
            .as_ref()
            .context("registry.source is \"http\" but registry.http.url is empty")?;
        HttpDirectory::new(url.url(), Duration::from_millis(http.timeout_ms), None)?;
    }
    Ok(())
}

/// What `[server]` and `[metrics]` say about the HTTP surface: body time limit and metrics token
/// for the router, header time limit and connection cap for the connection loop.
pub fn http_settings(
    config: &Config,
) -> anyhow::Result<(
    gerbang_http::HttpSettings,
    gerbang_http::server::ServerLimits,
)> {
    let server = &config.server;
    let seconds = |key: &str, value: u64| {
        anyhow::ensure!(
            (1..=3600).contains(&value),
            "server.{key} must be between 1 and 3600 seconds, not {value}"
        );
        Ok(Duration::from_secs(value))
    };
    let header_timeout = seconds("header_timeout_seconds", server.header_timeout_seconds)?;
    let body_timeout = seconds("body_timeout_seconds", server.body_timeout_seconds)?;
    anyhow::ensure!(
        server.max_connections >= 1,
        "server.max_connections must be at least 1"
    );
    let metrics_token =
        config.metrics.token.as_ref().map(|token| {
            gerbang_http::MetricsToken::new(secrecy::ExposeSecret::expose_secret(token))
        });
    if metrics_token.is_none() && config.profile == Profile::Production {
        tracing::warn!("metrics.token is empty: /metrics is open to whoever reaches this address");
    }
    Ok((
        gerbang_http::HttpSettings {
            body_timeout,
            metrics_token,
        },
        gerbang_http::server::ServerLimits {
            header_timeout,
            max_connections: server.max_connections,
        },
    ))
}

/// The API's clients; in development without any, token-less requests act as client `dev`.
pub fn api_clients(config: &Config) -> ApiClients {
    let clients: Vec<(String, String)> = config
        .api
        .clients
        .iter()
        .map(|client| {
            (
                client.name.clone(),
                secrecy::ExposeSecret::expose_secret(&client.token).to_string(),
            )
        })
        .collect();
    let anonymous = (clients.is_empty() && config.profile == Profile::Development).then(|| {
        tracing::warn!("api.clients is empty: in development, API requests without a token act as client \"dev\"");
        "dev".to_owned()
    });
    if clients.is_empty() && anonymous.is_none() {
        tracing::warn!("api.clients is empty: the verification API refuses every request");
    }
    ApiClients::new(&clients, anonymous)
}

/// The sealer for personal data, warning loudly when a development key was just generated.
pub fn sealer(config: &Config) -> anyhow::Result<Sealer> {
    let (key, origin) = personal_data_key(config)?;
    let sealer = match crate::keys::previous_personal_data_key(config)? {
        Some(previous) => {
            let sealer =
                Sealer::rotating(&key, &previous).context("privacy.previous_key cannot be used")?;
            tracing::warn!(
                previous = %sealer.previous_fingerprint().map(ToString::to_string).unwrap_or_default(),
                "privacy.previous_key is set: a key rotation is running (data opens with either key, \
                 is sealed with the current one); finish it with `gerbang key rotate`"
            );
            sealer
        }
        None => Sealer::new(&key)?,
    };
    let fingerprint = sealer.fingerprint().to_string();
    match origin {
        KeyOrigin::GeneratedForDevelopment(path) => tracing::warn!(
            key_file = %path.display(),
            %fingerprint,
            "NO PERSONAL-DATA KEY CONFIGURED: generated a development key. Data sealed with it is unreadable \
             without this file. For production set GERBANG_PRIVACY__KEY (see `gerbang key generate`)"
        ),
        KeyOrigin::DevelopmentFile(path) => {
            tracing::warn!(key_file = %path.display(), %fingerprint, "using the development personal-data key file")
        }
        KeyOrigin::KeyFile(path) => {
            tracing::info!(key_file = %path.display(), %fingerprint, "personal-data key loaded")
        }
        KeyOrigin::Configured => tracing::info!(%fingerprint, "personal-data key loaded"),
    }
    Ok(sealer)
}

/// The participant directory the configuration names: the embedded store or the membership API.
pub fn registry<S: Store>(config: &Config, store: S) -> anyhow::Result<Registry<S>> {
    Ok(match config.registry.source {
        RegistrySource::Embedded => Registry::Embedded(StoreDirectory::new(store)),
        RegistrySource::Http => {
            let http = &config.registry.http;
            let url = http
                .url
                .as_ref()
                .context("registry.source is \"http\" but registry.http.url is empty")?;
            let token = http
                .token
                .as_ref()
                .map(|t| secrecy::ExposeSecret::expose_secret(t).to_string());
            Registry::Http(HttpDirectory::new(
                url.url(),
                Duration::from_millis(http.timeout_ms),
                token,
            )?)
        }
    })
}

/// In development, fills an empty embedded registry with synthetic participants so a fresh start has
/// people to register.
pub async fn seed_demo_participants<S: Store>(
    config: &Config,
    store: &S,
    clock: &impl Clock,
) -> anyhow::Result<()> {
    let count = config.registry.demo_participants;
    if config.profile != Profile::Development
        || config.registry.source != RegistrySource::Embedded
        || count == 0
    {
        return Ok(());
    }
    if store.count_participants().await? > 0 {
        return Ok(());
    }
    let seed = config.registry.demo_seed;
    let mut people = SyntheticParticipants::new(seed, clock.now().date_naive());
    let mut import = store.begin_participant_import().await?;
    let mut left = count;
    while left > 0 {
        let batch: Vec<_> = people.by_ref().take(left.min(5_000) as usize).collect();
        left -= batch.len() as u64;
        import.upsert_batch(&batch, clock.now()).await?;
    }
    import.commit().await?;
    tracing::info!(
        count,
        seed,
        "the registry was empty: seeded {count} synthetic participants (registry.demo_participants = 0 disables this)"
    );
    Ok(())
}

/// A provider's name and the events of its bind.
type ProviderEvents = (String, mpsc::Receiver<SmppEvent>);

/// The routes the configuration names, in order, and for each SMPP bind (which starts connecting
/// now) its events, whose receipts go to the delivery trail.
/// Also the status callbacks of the providers that send them.
/// With `start` false, nothing is started: the settings are only checked (`gerbang config check`).
fn delivery_routes(
    config: &Config,
    templates: &Arc<gerbang_domain::verification::template::Templates>,
    start: bool,
) -> anyhow::Result<DeliveryWiring> {
    let delivery = &config.delivery;
    let circuit = delivery.circuit_policy()?;
    let causes = Arc::new(delivery.cause_map()?);
    let development = config.profile == Profile::Development;
    let mut routes = Vec::new();
    let mut receipts = Vec::new();
    let mut hooks = std::collections::HashMap::new();
    // When only checking, an SMPP bind is not started (it would connect): its route is left out.
    let mut smpp_route = |name: String, settings: gerbang_delivery::smpp::SmppConfig| {
        if !start {
            return None;
        }
        let (client, events) = SmppClient::start(settings);
        receipts.push((name.clone(), events));
        Some(Provider::Smpp(SmppCourier {
            name,
            client,
            causes: causes.clone(),
        }))
    };
    if delivery.sms == SmsProvider::Smpp {
        let settings = delivery.smpp.client_config()?;
        let name = format!("smpp:{}", settings.address);
        if let Some(courier) = smpp_route(name, settings) {
            routes.push(Route::new(courier, vec![Channel::Sms]));
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for provider in &delivery.providers {
        let key = format!("delivery.providers[{}]", provider.name);
        anyhow::ensure!(
            !provider.name.trim().is_empty() && names.insert(provider.name.clone()),
            "delivery.providers: every provider needs a name of its own (`{}` is empty or repeated)",
            provider.name
        );
        let (courier, channels) = match provider.kind {
            ProviderKind::Smpp => {
                let settings = provider
                    .smpp
                    .as_ref()
                    .with_context(|| format!("{key}: kind = \"smpp\" needs an `smpp` table"))?
                    .client_config_for(&format!("{key}.smpp"))?;
                match smpp_route(provider.name.clone(), settings) {
                    Some(courier) => (courier, vec![Channel::Sms]),
                    None => continue,
                }
            }
            ProviderKind::HttpSms => {
                let settings = provider
                    .http_sms
                    .as_ref()
                    .with_context(|| {
                        format!("{key}: kind = \"http_sms\" needs an `http_sms` table")
                    })?
                    .settings(&format!("{key}.http_sms"))?;
                let token = provider
                    .http_sms
                    .as_ref()
                    .and_then(|http| http.callback_token.as_ref())
                    .map(|token| secrecy::ExposeSecret::expose_secret(token).to_owned())
                    .unwrap_or_default();
                hooks.insert(
                    provider.name.clone(),
                    Hook::HttpSms {
                        token: Secret::new(token),
                        callback: settings.callback.clone(),
                    },
                );
                let gateway = HttpSmsCourier::new(provider.name.clone(), settings)
                    .with_context(|| format!("{key}.http_sms"))?;
                (Provider::HttpSms(gateway), vec![Channel::Sms])
            }
            ProviderKind::Smtp => {
                let mut settings = provider
                    .smtp
                    .as_ref()
                    .with_context(|| format!("{key}: kind = \"smtp\" needs an `smtp` table"))?
                    .settings(&format!("{key}.smtp"), &config.otp.brand)?;
                settings.templates = templates.clone();
                let relay = SmtpCourier::new(provider.name.clone(), settings, causes.clone())
                    .with_context(|| format!("{key}.smtp"))?;
                (Provider::Smtp(relay), vec![Channel::Email])
            }
            ProviderKind::Whatsapp => {
                let settings = provider
                    .whatsapp
                    .as_ref()
                    .with_context(|| {
                        format!("{key}: kind = \"whatsapp\" needs a `whatsapp` table")
                    })?
                    .settings(&format!("{key}.whatsapp"))?;
                hooks.insert(
                    provider.name.clone(),
                    Hook::Whatsapp {
                        app_secret: settings.app_secret.clone(),
                        verify_token: settings.webhook_verify_token.clone(),
                    },
                );
                let whatsapp =
                    WhatsappCourier::new(provider.name.clone(), settings, causes.clone())
                        .with_context(|| format!("{key}.whatsapp"))?;
                (Provider::Whatsapp(whatsapp), vec![Channel::Whatsapp])
            }
            ProviderKind::Voice => {
                let mut settings = provider
                    .voice
                    .as_ref()
                    .with_context(|| format!("{key}: kind = \"voice\" needs a `voice` table"))?
                    .settings(&format!("{key}.voice"), &config.otp.brand)?;
                settings.templates = templates.clone();
                let voice = VoiceCourier::new(provider.name.clone(), settings)
                    .with_context(|| format!("{key}.voice"))?;
                (Provider::Voice(voice), vec![Channel::Voice])
            }
            ProviderKind::DevInbox => {
                anyhow::ensure!(
                    development,
                    "{key}: the development inbox is for the development profile only"
                );
                (Provider::DevInbox(DevInbox), Vec::new())
            }
        };
        routes.push(Route::new(courier, channels).for_operators(provider.operators.clone()));
    }
    let mut routes: Vec<Route<Provider>> = routes
        .into_iter()
        .map(|route| route.with_circuit(circuit))
        .collect();
    let uncovered: Vec<Channel> = Channel::ALL
        .into_iter()
        .filter(|channel| {
            !routes
                .iter()
                .any(|route| route.channels.is_empty() || route.channels.contains(channel))
        })
        .collect();
    if !uncovered.is_empty() {
        let names: Vec<&str> = uncovered.iter().map(|channel| channel.as_str()).collect();
        if development && delivery.dev_inbox_fallback {
            tracing::info!(channels = ?names, "these channels go to the development inbox");
            routes.push(Route::new(Provider::DevInbox(DevInbox), uncovered));
        } else if config.profile == Profile::Production {
            tracing::warn!(
                channels = ?names,
                "no provider carries these channels: their messages are dropped with cause provider_misconfigured"
            );
        }
    }
    let webhooks = ProviderWebhooks::new(hooks, causes.clone());
    Ok(DeliveryWiring {
        routes,
        receipts,
        causes,
        webhooks: (!webhooks.is_empty()).then(|| Arc::new(webhooks) as Arc<dyn StatusWebhooks>),
    })
}

/// The delivery side of the application, as the configuration describes it.
struct DeliveryWiring {
    routes: Vec<Route<Provider>>,
    receipts: Vec<ProviderEvents>,
    webhooks: Option<Arc<dyn StatusWebhooks>>,
    /// The cause mapping with the configured overrides, for receipts as for submits.
    causes: Arc<gerbang_domain::delivery::CauseMap>,
}
