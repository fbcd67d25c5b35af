//! What the stages need of a message queue, whichever carries them: RabbitMQ between processes
//! ([`super::Broker`]), or the in-process queues of a standalone run ([`super::MemoryBroker`]).
//! Both follow the same topology ([`super::topology`]): work queues, delay queues that hand a
//! task back after their delay, dead-letter queues, and a delivery limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

/// A publish not confirmed within this many seconds is an error, never a wait for ever.
pub const CONFIRM_TIMEOUT_S: u64 = 30;

/// What can go wrong with a queue, whichever carries it.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The URL is shown without its password, also where the client's own message quoted it.
    #[error("cannot reach the broker at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("broker: {0}")]
    Amqp(String),
    #[error("the broker refused a message for {queue}")]
    Nacked { queue: String },
    #[error("no queue takes messages routed to {queue}")]
    Unroutable { queue: String },
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error(
        "the broker did not confirm a message for {queue} within {} s",
        CONFIRM_TIMEOUT_S
    )]
    ConfirmTimeout { queue: String },
    #[error(transparent)]
    Encode(#[from] super::MessageError),
}

/// A header value: readable text, or a number (`attempt`).
#[derive(Debug, Clone, PartialEq)]
pub enum Header {
    Text(String),
    Number(i64),
}

/// A message's readable headers (the body is binary): what an operator reads in a queue, and
/// what a dead letter is attributed by when its body cannot be decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(BTreeMap<String, Header>);

impl Headers {
    pub fn set_text(&mut self, key: &str, value: &str) {
        self.0.insert(key.into(), Header::Text(value.into()));
    }

    pub fn set_number(&mut self, key: &str, value: i64) {
        self.0.insert(key.into(), Header::Number(value));
    }

    pub fn text(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Header::Text(s) => Some(s.clone()),
            Header::Number(_) => None,
        }
    }

    /// A number, also where the sender wrote it as text.
    pub fn number(&self, key: &str) -> Option<i64> {
        match self.0.get(key)? {
            Header::Number(n) => Some(*n),
            Header::Text(s) => s.parse().ok(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Header)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Everything a message carries beside its body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Envelope {
    /// The clip's id: the same clip published twice has the same one.
    pub message_id: String,
    /// The job's id.
    pub correlation_id: String,
    pub headers: Headers,
}

impl Envelope {
    pub fn new(message_id: &str, correlation_id: &str, headers: Headers) -> Self {
        Self {
            message_id: message_id.into(),
            correlation_id: correlation_id.into(),
            headers,
        }
    }
}

/// Where a message goes and what it carries.
pub struct Outgoing<'a> {
    /// "" for the default exchange, where the routing key is the queue's name.
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub envelope: Envelope,
}

impl<'a> Outgoing<'a> {
    /// A message for `queue` through the default exchange.
    pub fn to_queue(queue: &'a str, body: &'a [u8], envelope: Envelope) -> Self {
        Self {
            exchange: "",
            routing_key: queue,
            body,
            envelope,
        }
    }
}

/// How a delivery is settled with the queue that handed it out.
#[async_trait]
pub trait Acknowledge: Send + Sync {
    /// Done with; with `multiple`, so is every earlier delivery of the same consumer.
    async fn ack(&self, multiple: bool) -> Result<(), BrokerError>;
    /// Back to its queue, for this or another consumer (a delivery the limit counts).
    async fn requeue(&self) -> Result<(), BrokerError>;
}

/// A message handed out by a queue, to be acked or requeued once.
pub struct Received {
    pub data: Vec<u8>,
    pub envelope: Envelope,
    acker: Box<dyn Acknowledge>,
}

impl Received {
    pub fn new(data: Vec<u8>, envelope: Envelope, acker: Box<dyn Acknowledge>) -> Self {
        Self {
            data,
            envelope,
            acker,
        }
    }

    pub async fn ack(&self) -> Result<(), BrokerError> {
        self.acker.ack(false).await
    }

    /// Acks this delivery and every earlier one of its consumer (a reducer's batch).
    pub async fn ack_up_to(&self) -> Result<(), BrokerError> {
        self.acker.ack(true).await
    }

    pub async fn requeue(&self) -> Result<(), BrokerError> {
        self.acker.requeue().await
    }

    /// The `attempt` header (1 when absent).
    pub fn attempt(&self) -> u32 {
        self.envelope
            .headers
            .number("attempt")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
            .max(1)
    }
}

/// A consumer: deliveries of one queue, at most its prefetch unacked at once.
#[async_trait]
pub trait Deliveries: Send {
    /// The next delivery; `None` when the queue's transport cancelled the consumer.
    async fn next(&mut self) -> Option<Result<Received, BrokerError>>;
    /// Takes no more deliveries; those handed out are still settled as usual.
    async fn cancel(&mut self);
}

/// A connection to the queues: publishes are confirmed before they return.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn publish(&self, message: Outgoing<'_>) -> Result<(), BrokerError>;

    /// Publishes every message, then collects the confirms: one result per message.
    async fn publish_all(&self, messages: Vec<Outgoing<'_>>) -> Vec<Result<(), BrokerError>>;

    async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        tag: &str,
    ) -> Result<Box<dyn Deliveries>, BrokerError>;

    /// Whether the connection is still there (a consumer's stream may not say so at once).
    fn is_connected(&self) -> bool;

    /// Messages ready in `queue` now.
    async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError>;

    async fn close(&self);
}

/// Sends `delivery` on to `routing_key` through `exchange` with `headers` added (replacing those
/// of the same name); body and ids unchanged.
pub async fn forward(
    transport: &dyn Transport,
    delivery: &Received,
    exchange: &str,
    routing_key: &str,
    headers: &[(&str, Header)],
) -> Result<(), BrokerError> {
    let mut envelope = delivery.envelope.clone();
    for (key, value) in headers {
        envelope.headers.0.insert((*key).into(), value.clone());
    }
    transport
        .publish(Outgoing {
            exchange,
            routing_key,
            body: &delivery.data,
            envelope,
        })
        .await
}

/// Puts `delivery` in its queue's dead-letter queue with the reason an operator reads there.
pub async fn dead_letter(
    transport: &dyn Transport,
    delivery: &Received,
    queue: &str,
    reason: &str,
    error: &str,
) -> Result<(), BrokerError> {
    forward(
        transport,
        delivery,
        super::topology::DEAD_LETTER_EXCHANGE,
        &super::topology::dead_letter_queue(queue),
        &[
            ("dead_reason", Header::Text(reason.into())),
            ("dead_error", Header::Text(error.into())),
            ("dead_from", Header::Text(queue.into())),
        ],
    )
    .await
}

/// Where a service gets its transport, again after it was lost: RabbitMQ reconnects, the
/// in-process queues are always there.
#[async_trait]
pub trait Connect: Send + Sync {
    /// Connects, retrying while the queues cannot be reached: for ever, or `give_up_after`
    /// tries, the last one's error.
    async fn connect(
        &self,
        name: &str,
        give_up_after: Option<usize>,
    ) -> Result<Arc<dyn Transport>, BrokerError>;
}
