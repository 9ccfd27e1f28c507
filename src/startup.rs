//! Builds the application from settings and runs it.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::admin::Admin;
use crate::config::{AdminPlacement, Settings, TlsSettings};
use crate::http::{self, AppState, Listener, RateLimits};
use crate::metrics::Metrics;
use crate::oidc::{KeyStore, MAX_KEY_AGE, REFETCH_COOL_DOWN};
use crate::problem::{Error, Result};
use crate::store::{Store, SyncReport, now};

/// A built, not yet running, trustpub server.
pub struct Application {
    port: u16,
    server: Server,
    /// The admin API's own listener, when it has one: its port and server.
    admin: Option<(u16, Server)>,
    store: Store,
    metrics: Metrics,
    /// `events.retention_days`, in seconds.
    event_retention: i64,
    /// `database.purge_interval`.
    purge_interval: Duration,
}

impl Application {
    /// Binds `server.listen`, then builds as [`Application::build_with_listener`].
    pub async fn build(settings: &Settings) -> Result<Self> {
        let listener = TcpListener::bind(settings.server.listen)
            .map_err(|e| Error::io(format!("listening on {}", settings.server.listen), e))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Connects the store, applies migrations, syncs the configured
    /// registries, reads them into memory and prepares the server on an
    /// already bound listener.
    pub async fn build_with_listener(settings: &Settings, listener: TcpListener) -> Result<Self> {
        tracing::info!(url = %settings.database.url.redacted(), "connecting to the database");
        let metrics = Metrics::new();
        let store = Store::connect(&settings.database, metrics.clone())
            .await?
            .limit_refusals(settings.rate_limits.refused_unauthenticated);
        store.migrate().await?;
        let report = store.sync_registries(&settings.registries).await?;
        log_sync(&report, settings);
        store.load_registries().await?;
        for warning in crate::config::routing_warnings(&settings.registries) {
            tracing::warn!("{warning}");
        }

        let address = listener
            .local_addr()
            .map_err(|e| Error::io("reading the listener's address", e))?;
        let port = address.port();
        let state = web::Data::new(AppState {
            store: store.clone(),
            keys: KeyStore::new(REFETCH_COOL_DOWN, MAX_KEY_AGE, metrics.clone())?,
            max_body_bytes: settings.server.max_body_bytes,
            upstream: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                // A registry that stops answering gets a 502, not a hang.
                .read_timeout(Duration::from_secs(300))
                // Uploads carry the registry's credential: straight there.
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::io("building the upstream client", std::io::Error::other(e)))?,
            admin: Admin::new(&settings.admin),
            metrics: metrics.clone(),
            limits: RateLimits::new(settings),
        });
        let placement = settings.admin.placement();
        let admin = match placement {
            AdminPlacement::Own(address) => {
                let listener = TcpListener::bind(address)
                    .map_err(|e| Error::io(format!("listening on {address} (admin.listen)"), e))?;
                let port = listener
                    .local_addr()
                    .map_err(|e| Error::io("reading the admin listener's address", e))?
                    .port();
                let server = serve(settings, state.clone(), Listener::Admin, listener, None)
                    .map_err(|e| Error::io("starting the admin HTTP server", e))?;
                tracing::info!(address = %format!("http://{}:{port}", address.ip()), "the admin API is listening");
                Some((port, server))
            }
            AdminPlacement::Main | AdminPlacement::Off => None,
        };
        let listener_serves = Listener::Public {
            admin: placement == AdminPlacement::Main,
            metrics: admin.is_none(),
        };
        let tls = settings.server.tls.as_ref().map(load_tls).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = serve(settings, state, listener_serves, listener, tls)
            .map_err(|e| Error::io("starting the HTTP server", e))?;
        tracing::info!(address = %format!("{scheme}://{address}"), "trustpub is listening");
        Ok(Application {
            port,
            server,
            admin,
            store,
            metrics,
            event_retention: settings.events.retention_seconds(),
            purge_interval: Duration::from_secs(settings.database.purge_interval),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the admin API's own listener, if it has one.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().map(|(port, _)| *port)
    }

    /// The store the server uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish
    /// (up to `server.shutdown_timeout`) and closes the store.
    pub async fn run_until_stopped(self) -> Result<()> {
        let purge = tokio::spawn(purge_periodically(
            self.store.clone(),
            self.metrics,
            self.event_retention,
            self.purge_interval,
        ));
        let handle = self.server.handle();
        let admin = self.admin.map(|(_, server)| server);
        let admin_handle = admin.as_ref().map(Server::handle);
        let signals = tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: finishing in-flight requests");
            if let Some(admin) = admin_handle {
                admin.stop(true).await;
            }
            handle.stop(true).await;
        });
        let admin = tokio::spawn(async move {
            if let Some(server) = admin
                && let Err(error) = server.await
            {
                tracing::error!(%error, "the admin listener failed");
            }
        });
        let served = self.server.await;
        admin.abort();
        purge.abort();
        signals.abort();
        tokio::time::timeout(Duration::from_secs(5), self.store.close())
            .await
            .ok();
        served.map_err(|e| Error::io("serving HTTP", e))
    }
}

/// Serves what `serves` says on a bound listener, over TLS when given.
fn serve(
    settings: &Settings,
    state: web::Data<AppState>,
    serves: Listener,
    listener: TcpListener,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<Server> {
    let max_body_bytes = settings.server.max_body_bytes;
    let head_limits = settings.server.head_limits();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(move |request, next| {
                http::check_head(head_limits, request, next)
            }))
            .wrap(http::problem_safety_net())
            .wrap(TracingLogger::<http::RequestSpan>::new())
            .wrap(from_fn(http::observe))
            .app_data(state.clone())
            .configure(|cfg| http::configure(cfg, max_body_bytes, serves))
    })
    .shutdown_timeout(settings.server.shutdown_timeout)
    .disable_signals();
    Ok(match tls {
        Some(config) => server.listen_rustls_0_23(listener, config),
        None => server.listen(listener),
    }?
    .run())
}

/// What the configuration sync changed, and the registries now served.
fn log_sync(report: &SyncReport, settings: &Settings) {
    tracing::info!(
        registries = report.registries_upserted,
        removed = report.registries_removed.len(),
        publishers_added = report.publishers_added,
        publishers_removed = report.publishers_removed,
        "registries synced from the configuration"
    );
    for name in &report.registries_removed {
        tracing::warn!(
            registry = %name,
            "registry removed from the store, with its publishers and credentials: \
             it is no longer in the configuration file"
        );
    }
    for registry in &settings.registries {
        let issuers: Vec<&str> = registry.issuers.iter().map(|i| i.url.as_str()).collect();
        tracing::info!(
            registry = %registry.name,
            upload_url = %registry.upload_url,
            issuers = %issuers.join(" "),
            "serving registry"
        );
    }
    if settings.registries.is_empty() {
        tracing::warn!("no registry is configured: discovery answers 404 for every upload URL");
    }
}

/// The TLS configuration from `[server.tls]`: the PEM certificate chain and
/// private key, checked against each other now rather than at the first
/// handshake (and by `check-config`).
pub fn load_tls(tls: &TlsSettings) -> Result<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::config("server.tls.cert", format!("{}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(Error::config(
            "server.tls.cert",
            format!("{} holds no PEM certificate", tls.cert.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| Error::config("server.tls.key", format!("{}: {e}", tls.key.display())))?;
    rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::config("server.tls", e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        Error::config(
            "server.tls",
            format!("the certificate and key do not fit: {e}"),
        )
    })
}

/// Deletes used `jti`s once their tokens can no longer be accepted anyway,
/// credentials once they have expired, and events (and refusal counts)
/// older than `retention` seconds, every `every`; a failure is counted in
/// `metrics`.
async fn purge_periodically(store: Store, metrics: Metrics, retention: i64, every: Duration) {
    // The first purge comes one interval after start: what it deletes is
    // no longer valid anyway, so there is no hurry.
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        interval.tick().await;
        let now = now();
        let started = std::time::Instant::now();
        let purged = (
            store.purge_used_jtis(now).await,
            store.purge_expired_upload_tokens(now).await,
            store.purge_events(now - retention).await,
        );
        match purged {
            (Ok(0), Ok(0), Ok(0)) => {}
            (Ok(jtis), Ok(credentials), Ok(events)) => {
                tracing::info!(
                    jtis,
                    credentials,
                    events,
                    milliseconds = started.elapsed().as_millis() as u64,
                    "deleted expired jtis, credentials and events"
                )
            }
            (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
                metrics.store_error("purge");
                tracing::warn!(%error, "purging expired jtis, credentials and events failed")
            }
        }
    }
}

/// SIGTERM or SIGINT (Ctrl-C): both stop the server gracefully.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
