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
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};
use lapin::{Confirmation, PublisherConfirm};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::transport::{
    Acknowledge, Connect, Deliveries, Envelope, Header, Headers, Outgoing, Received, Transport,
};
use super::{CONTENT_TYPE, topology};
use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The URL is shown without its password, also where the client's own message quoted it.
    #[error("cannot reach the broker at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("broker: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused a message for {queue}")]
    Nacked { queue: String },
    #[error("no queue takes messages routed to {queue}")]
    Unroutable { queue: String },
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("the broker did not confirm a message for {queue} within {} s", CONFIRM_TIMEOUT.as_secs())]
    ConfirmTimeout { queue: String },
    #[error(transparent)]
    Encode(#[from] super::MessageError),
}

/// A publish the broker has not confirmed by then is an error (the message may still arrive:
/// consumers take duplicates in their stride), never a wait for ever.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Persistent MessagePack with the ids and readable headers of DESIGN §8.
fn properties(envelope: &Envelope) -> BasicProperties {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut headers = FieldTable::default();
    for (key, value) in envelope.headers.iter() {
        let value = match value {
            Header::Text(t) => text(t),
            Header::Number(n) => AMQPValue::LongLongInt(*n),
        };
        headers.insert(key.into(), value);
    }
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(2)
        .with_message_id(short(&envelope.message_id))
        .with_correlation_id(short(&envelope.correlation_id))
        .with_timestamp(now)
        .with_headers(headers)
}

/// The envelope of a delivered message: its ids, and the headers that are text or numbers
/// (the broker's own `x-death` tables are left out; `x-first-death-reason` is kept).
fn envelope(properties: &BasicProperties) -> Envelope {
    let mut headers = Headers::default();
    if let Some(table) = properties.headers() {
        for (key, value) in table.inner() {
            let key = key.as_str();
            match value {
                AMQPValue::LongString(s) => {
                    headers.set_text(key, &String::from_utf8_lossy(s.as_bytes()));
                }
                AMQPValue::ShortString(s) => headers.set_text(key, s.as_str()),
                other => {
                    if let Some(n) = number(other) {
                        headers.set_number(key, n);
                    }
                }
            }
        }
    }
    Envelope {
        message_id: properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        correlation_id: properties
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        headers,
    }
}

/// AMQP short strings hold 255 bytes; longer values are cut at a character boundary.
fn short(value: &str) -> ShortString {
    let mut end = value.len().min(255);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::from(&value[..end])
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// An integer header, whatever integer type the sender (or the broker) used.
fn number(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::LongLongInt(n) => Some(*n),
        _ => None,
    }
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
        let publisher = connection.create_channel().await?;
        topology::declare(&publisher).await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
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
            Ok(confirmation) => check(confirmation?, &queue),
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
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Err(BrokerError::ConfirmTimeout { queue }),
                },
                Err(e) => Err(e),
            });
        }
        results
    }

    async fn send(&self, message: Outgoing<'_>) -> Result<PublisherConfirm, BrokerError> {
        Ok(self
            .publisher
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
            .await?)
    }

    /// A plain channel on this connection (inspection, `basic_get`).
    pub async fn channel(&self) -> Result<Channel, BrokerError> {
        Ok(self.connection.create_channel().await?)
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
            .await?;
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
        let channel = self.connection.create_channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
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
            Err(e) => return Some(Err(e.into())),
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
        self.0.ack(BasicAckOptions { multiple }).await?;
        Ok(())
    }

    async fn requeue(&self) -> Result<(), BrokerError> {
        self.0
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await?;
        Ok(())
    }
}
