//! DNS discovery for the [`Balancer`](crate::Balancer) (feature `dns`): a name resolved again
//! on an interval with hickory-resolver and the system's resolver configuration, each address an
//! [`Endpoint`]. Covers Kubernetes headless services and Consul's DNS interface.

use super::endpoint::{Endpoint, EndpointConfig};
use futures_core::Stream;
use hickory_resolver::TokioResolver;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use tower::BoxError;
use tower::discover::Change;

/// The endpoints behind `host`: every address it resolves to, with `port`, resolved again
/// every `every`. An address that appears is inserted, one that disappears is removed; a
/// failed resolution changes nothing (and is logged). Give it to [`Balancer::new`](crate::Balancer::new).
///
/// Resolving starts when the balancer first polls the stream, inside its tokio runtime.
pub fn dns(host: impl Into<String>, port: u16, every: Duration, config: EndpointConfig) -> DnsDiscovery {
    DnsDiscovery { host: host.into(), port, every, config, changes: None }
}

/// The stream of endpoint changes made by [`dns`].
#[derive(Debug)]
pub struct DnsDiscovery {
    host: String,
    port: u16,
    every: Duration,
    config: EndpointConfig,
    /// Filled by the resolving task, which starts on the first poll.
    changes: Option<mpsc::Receiver<Result<Change<String, Endpoint>, BoxError>>>,
}

impl Stream for DnsDiscovery {
    type Item = Result<Change<String, Endpoint>, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let changes = this.changes.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(resolve_forever(this.host.clone(), this.port, this.every, this.config.clone(), tx));
            rx
        });
        changes.poll_recv(cx)
    }
}

/// Resolves `host` every `every` and sends the differences, until the stream is dropped.
async fn resolve_forever(
    host: String,
    port: u16,
    every: Duration,
    config: EndpointConfig,
    tx: mpsc::Sender<Result<Change<String, Endpoint>, BoxError>>,
) {
    let resolver = match TokioResolver::builder_tokio().and_then(|b| b.build()) {
        Ok(resolver) => resolver,
        Err(e) => {
            let _ = tx.send(Err(format!("could not set up DNS resolution for {host}: {e}").into())).await;
            return;
        }
    };
    let mut known: BTreeSet<IpAddr> = BTreeSet::new();
    loop {
        match resolver.lookup_ip(host.as_str()).await {
            Ok(found) => {
                let now: BTreeSet<IpAddr> = found.iter().collect();
                for gone in known.difference(&now) {
                    let key = SocketAddr::new(*gone, port).to_string();
                    if tx.send(Ok(Change::Remove(key))).await.is_err() {
                        return;
                    }
                }
                for new in now.difference(&known) {
                    let key = SocketAddr::new(*new, port).to_string();
                    let endpoint = Endpoint::new(key.clone(), config.clone());
                    if tx.send(Ok(Change::Insert(key, endpoint))).await.is_err() {
                        return;
                    }
                }
                known = now;
            }
            Err(e) => {
                tracing::warn!(%host, error = %e, "DNS discovery could not resolve; keeping the endpoints it had");
            }
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
