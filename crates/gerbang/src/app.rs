//! [`Application`]: gerbang as a value. `gerbang serve` builds one and runs it until a signal; tests
//! build one on port 0 and run it until they are done.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use gerbang_domain::{Clock, SystemClock};
use std::sync::Arc;

use gerbang_core::{DeliveryWorker, DevInbox, VerificationEngine};
use gerbang_delivery::smpp::{SmppClient, SmppEvent};
use gerbang_delivery::{SmppCourier, SmsCourier, apply_receipts};
use gerbang_domain::verification::code::CodeKey;
use gerbang_http::{ApiClients, HttpState};
use gerbang_registry::{HttpDirectory, Registry, StoreDirectory, SyntheticParticipants};
use gerbang_store::{ParticipantImport, Sealer, Store};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::{Config, Profile, RegistrySource, SmsProvider};
use crate::database::Database;
use crate::keys::{KeyOrigin, personal_data_key};
use crate::with_store;

/// A built, listening, not yet serving gerbang.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
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
        let settings = config.otp.engine_settings()?;
        let (sms, receipts) = sms_courier(config)?;
        let clients = api_clients(config);
        let code_key = CodeKey::new(sealer_for_codes.code_key());
        let (stop_delivery, delivery_stops) = tokio::sync::watch::channel(false);
        let (router, delivery) = with_store!(&database, |store| {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            let engine = VerificationEngine::new(
                store.clone(),
                clock.clone(),
                code_key.clone(),
                settings.clone(),
            );
            if let Some((provider, events)) = receipts {
                tokio::spawn(apply_receipts(
                    store.clone(),
                    provider,
                    events,
                    clock.clone(),
                ));
            }
            let worker = DeliveryWorker::new(store.clone(), sms.clone(), clock);
            let mut stops = delivery_stops.clone();
            let delivery = tokio::spawn(worker.run(engine.queued_signal(), async move {
                let _ = stops.wait_for(|stop| *stop).await;
            }));
            let router = gerbang_http::router(HttpState {
                store: store.clone(),
                engine,
                clients: clients.clone(),
                dev_inbox: config.profile == Profile::Development,
            });
            (router, delivery)
        });
        let listen = config.server.listen;
        let listener = TcpListener::bind(listen).await.with_context(|| {
            format!("cannot listen on {listen}: is another process using it? Choose another with --listen or server.listen")
        })?;
        Ok(Self {
            listener,
            router,
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
        let server = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(signal)
            .into_future();
        let grace = self.grace;
        let deadline = async move {
            match grace_starts.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            served = server => served.context("the HTTP server failed")?,
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
    let sealer = Sealer::new(&key)?;
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

/// The SMS courier the configuration names, and for an SMPP bind (which starts connecting now) its
/// events, whose receipts go to the delivery trail.
fn sms_courier(config: &Config) -> anyhow::Result<(SmsCourier, Option<ProviderEvents>)> {
    match config.delivery.sms {
        SmsProvider::DevInbox => {
            if config.profile == Profile::Production {
                tracing::warn!(
                    "delivery.sms = \"dev_inbox\" in production: codes are kept locally and never reach participants"
                );
            }
            Ok((SmsCourier::DevInbox(DevInbox), None))
        }
        SmsProvider::Smpp => {
            let smpp = config.delivery.smpp.client_config()?;
            let name = format!("smpp:{}", smpp.address);
            let (client, events) = SmppClient::start(smpp);
            Ok((
                SmsCourier::Smpp(SmppCourier {
                    name: name.clone(),
                    client,
                    causes: Default::default(),
                }),
                Some((name, events)),
            ))
        }
    }
}
