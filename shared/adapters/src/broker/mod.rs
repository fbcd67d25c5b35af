//! A connection to RabbitMQ with one publisher-confirm channel: every publish here returns only
//! once the broker has taken the message (or said it cannot).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use futures_lite::StreamExt;
use lapin::Acker;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};
use lapin::{Confirmation, PublisherConfirm};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use pipeline::queue::{
    Acknowledge, BrokerError, CONFIRM_TIMEOUT_S, Connect, Deliveries, Outgoing, Received, Transport,
};

mod declare;
mod properties;

use ops::Secret;
use properties::{envelope, properties};

/// A publish the broker has not confirmed by then is an error (the message may still arrive:
/// consumers take duplicates in their stride), never a wait for ever.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(CONFIRM_TIMEOUT_S);

/// The client's error, as the transport-neutral one.
fn amqp(e: lapin::Error) -> BrokerError {
    BrokerError::Amqp(e.to_string())
}

/// Where the broker is: AMQP_URL, and for `amqps://` the extra CA certificates
/// (AMQP_CA_CERT) trusted beside the system's roots.
#[derive(Clone)]
pub struct BrokerConfig {
    pub url: Secret,
    ca_pem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("AMQP_CA_CERT {path}: {reason}")]
pub struct CaCertError {
    path: String,
    reason: String,
}

impl BrokerConfig {
    pub fn new(url: Secret) -> Self {
        Self { url, ca_pem: None }
    }

    /// Trusts the CA certificates of the PEM file at `path` as well.
    pub fn with_ca_cert(mut self, path: &Path) -> Result<Self, CaCertError> {
        let bad = |reason: String| CaCertError {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        self.ca_pem = Some(pem);
        Ok(self)
    }

    pub fn redacted(&self) -> String {
        self.url.redacted()
    }

    fn tls(&self) -> OwnedTLSConfig {
        OwnedTLSConfig {
            identity: None,
            cert_chain: self.ca_pem.clone(),
        }
    }
}

pub struct Broker {
    connection: Connection,
    publisher: Channel,
}

impl Broker {
    /// Whether the connection and the publishing channel are still up. A consumer stream does
    /// not always end when the connection dies under it, so the services also look here.
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }

    /// One attempt: connect (TLS for `amqps://`, never plaintext), declare the topology, open
    /// the confirm channel.
    pub async fn connect(broker: &BrokerConfig, name: &str) -> Result<Self, BrokerError> {
        let url = &broker.url;
        let connect_error = |source: lapin::Error| BrokerError::Connect {
            url: url.redacted(),
            reason: url.scrub(&source.to_string()),
        };
        crate::http::install_tls_provider();
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let runtime = lapin::runtime::default_runtime().map_err(connect_error)?;
        let connection =
            Connection::connect_with_config(url.expose(), properties, broker.tls(), runtime)
                .await
                .map_err(connect_error)?;
        let publisher = connection.create_channel().await.map_err(amqp)?;
        declare::declare(&publisher).await.map_err(amqp)?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(amqp)?;
        Ok(Self {
            connection,
            publisher,
        })
    }

    /// Connects, retrying with a growing delay (capped at 10 s) for as long as it takes, or
    /// `attempts` times; each failure is logged.
    pub async fn connect_retrying(
        url: &BrokerConfig,
        name: &str,
        attempts: Option<usize>,
    ) -> Result<Self, BrokerError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_jitter();
        let backoff = match attempts {
            Some(n) => backoff.with_max_times(n.saturating_sub(1)),
            None => backoff.without_max_times(),
        };
        (|| Self::connect(url, name))
            .retry(backoff)
            .notify(|e, wait| tracing::warn!(error = %e, retry_in = ?wait, "broker not reachable"))
            .await
    }

    /// Publishes and waits for the broker's confirm.
    pub async fn publish(&self, message: Outgoing<'_>) -> Result<(), BrokerError> {
        let queue = message.routing_key.to_string();
        let confirm = self.send(message).await?;
        match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Ok(confirmation) => check(confirmation.map_err(amqp)?, &queue),
            Err(_) => Err(BrokerError::ConfirmTimeout { queue }),
        }
    }

    /// Publishes everything first and then collects the confirms: the broker confirms in
    /// batches, so this is far faster than one round trip per message. One result per message.
    pub async fn publish_all<'a>(
        &self,
        messages: impl IntoIterator<Item = Outgoing<'a>>,
    ) -> Vec<Result<(), BrokerError>> {
        let mut pending = Vec::new();
        for message in messages {
            let queue = message.routing_key.to_string();
            pending.push((queue, self.send(message).await));
        }
        let mut results = Vec::with_capacity(pending.len());
        for (queue, sent) in pending {
            results.push(match sent {
                Ok(confirm) => match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
                    Ok(Ok(confirmation)) => check(confirmation, &queue),
                    Ok(Err(e)) => Err(amqp(e)),
                    Err(_) => Err(BrokerError::ConfirmTimeout { queue }),
                },
                Err(e) => Err(e),
            });
        }
        results
    }

    async fn send(&self, message: Outgoing<'_>) -> Result<PublisherConfirm, BrokerError> {
        self.publisher
            .basic_publish(
                message.exchange.into(),
                message.routing_key.into(),
                // Mandatory: a message no queue takes comes back instead of vanishing.
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                message.body,
                properties(&message.envelope),
            )
            .await
            .map_err(amqp)
    }

    /// A plain channel on this connection (inspection, `basic_get`).
    pub async fn channel(&self) -> Result<Channel, BrokerError> {
        self.connection.create_channel().await.map_err(amqp)
    }

    /// Messages ready in `queue` now (a passive declare: the queue must exist).
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError> {
        let channel = self.channel().await?;
        let options = lapin::options::QueueDeclareOptions {
            passive: true,
            ..lapin::options::QueueDeclareOptions::default()
        };
        let declared = channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .map_err(amqp)?;
        let _ = channel.close(200, "depth read".into()).await;
        Ok(declared.message_count())
    }

    /// A consumer on its own channel, with at most `prefetch` unacknowledged deliveries.
    async fn consumer(
        &self,
        queue: &str,
        prefetch: u16,
        tag: &str,
    ) -> Result<(Channel, Consumer), BrokerError> {
        let channel = self.connection.create_channel().await.map_err(amqp)?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(amqp)?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(amqp)?;
        Ok((channel, consumer))
    }

    pub async fn close(&self) {
        let _ = self.connection.close(200, "shutting down".into()).await;
    }
}

fn check(confirmation: Confirmation, queue: &str) -> Result<(), BrokerError> {
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => Err(BrokerError::Unroutable {
            queue: queue.to_string(),
        }),
        Confirmation::Nack(_) => Err(BrokerError::Nacked {
            queue: queue.to_string(),
        }),
    }
}

#[async_trait]
impl Transport for Broker {
    async fn publish(&self, message: Outgoing<'_>) -> Result<(), BrokerError> {
        Broker::publish(self, message).await
    }

    async fn publish_all(&self, messages: Vec<Outgoing<'_>>) -> Vec<Result<(), BrokerError>> {
        Broker::publish_all(self, messages).await
    }

    async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        tag: &str,
    ) -> Result<Box<dyn Deliveries>, BrokerError> {
        let (channel, consumer) = self.consumer(queue, prefetch, tag).await?;
        Ok(Box::new(AmqpDeliveries {
            channel,
            consumer,
            tag: tag.to_string(),
        }))
    }

    fn is_connected(&self) -> bool {
        Broker::is_connected(self)
    }

    async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError> {
        Broker::queue_depth(self, queue).await
    }

    async fn close(&self) {
        Broker::close(self).await;
    }
}

#[async_trait]
impl Connect for BrokerConfig {
    async fn connect(
        &self,
        name: &str,
        give_up_after: Option<usize>,
    ) -> Result<Arc<dyn Transport>, BrokerError> {
        let broker = Broker::connect_retrying(self, name, give_up_after).await?;
        Ok(Arc::new(broker))
    }
}

/// A consumer and its channel: closing the channel (dropping this) hands whatever it still
/// holds unacked back to the queue.
struct AmqpDeliveries {
    channel: Channel,
    consumer: lapin::Consumer,
    tag: String,
}

#[async_trait]
impl Deliveries for AmqpDeliveries {
    async fn next(&mut self) -> Option<Result<Received, BrokerError>> {
        let delivery = match self.consumer.next().await? {
            Ok(delivery) => delivery,
            Err(e) => return Some(Err(amqp(e))),
        };
        let envelope = envelope(&delivery.properties);
        let acker = Box::new(AmqpAck(delivery.acker));
        Some(Ok(Received::new(delivery.data, envelope, acker)))
    }

    async fn cancel(&mut self) {
        let _ = self
            .channel
            .basic_cancel(self.tag.as_str().into(), BasicCancelOptions::default())
            .await;
    }
}

impl Drop for AmqpDeliveries {
    fn drop(&mut self) {
        let channel = self.channel.clone();
        if channel.status().connected() {
            // Closing waits for the broker; nobody needs to.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = channel.close(200, "consumer done".into()).await;
                });
            }
        }
    }
}

struct AmqpAck(Acker);

#[async_trait]
impl Acknowledge for AmqpAck {
    async fn ack(&self, multiple: bool) -> Result<(), BrokerError> {
        self.0
            .ack(BasicAckOptions { multiple })
            .await
            .map_err(amqp)?;
        Ok(())
    }

    async fn requeue(&self) -> Result<(), BrokerError> {
        self.0
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .map_err(amqp)?;
        Ok(())
    }
}
