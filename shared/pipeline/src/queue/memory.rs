//! The queues of a standalone run, in this process: the same topology as the broker's (work
//! queues with a delivery limit, delay queues that hand a task back to `voice.clips` after their
//! delay, the dead-letter exchange and its queues), so the stages behave the same over either.
//! Nothing survives the process: a standalone run's state is in its result sink.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::BrokerError;
use super::topology::{
    CLIPS, DEAD_CLIPS, DEAD_LETTER_EXCHANGE, DELIVERY_LIMIT, RESULTS, RETRY_DELAYS_S,
    dead_letter_queue, retry_queue,
};
use super::transport::{Acknowledge, Connect, Deliveries, Envelope, Outgoing, Received, Transport};

/// In-process queues; clones share them.
#[derive(Clone)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: tokio::sync::Notify,
    /// Delay queues: how long a message waits in each before it goes back to `voice.clips`.
    delays: BTreeMap<String, Duration>,
}

#[derive(Default)]
struct State {
    queues: HashMap<String, Queue>,
    next_tag: u64,
    next_consumer: u64,
    /// Unacked deliveries per consumer (its prefetch window).
    held: HashMap<u64, usize>,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Stored>,
    /// By delivery tag: the consumer holding it and the message.
    unacked: BTreeMap<u64, (u64, Stored)>,
}

#[derive(Clone)]
struct Stored {
    data: Vec<u8>,
    envelope: Envelope,
    /// Times handed out.
    deliveries: u32,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// With the broker's delays (`RETRY_DELAYS_S`).
    pub fn new() -> Self {
        let delays = RETRY_DELAYS_S
            .iter()
            .map(|&s| Duration::from_secs(u64::from(s)))
            .collect();
        Self::with_delays(delays)
    }

    /// With other delays for the delay queues, in their order (tests).
    pub fn with_delays(delays: Vec<Duration>) -> Self {
        let delays = (1..)
            .map_while(retry_queue)
            .zip(delays)
            .collect::<BTreeMap<_, _>>();
        Self {
            shared: Arc::new(Shared {
                state: Mutex::default(),
                changed: tokio::sync::Notify::new(),
                delays,
            }),
        }
    }

    /// Messages ready in each queue that holds any, and those handed out but not settled.
    pub fn depths(&self) -> BTreeMap<String, (usize, usize)> {
        self.shared
            .lock()
            .queues
            .iter()
            .filter(|(_, q)| !q.ready.is_empty() || !q.unacked.is_empty())
            .map(|(name, q)| (name.clone(), (q.ready.len(), q.unacked.len())))
            .collect()
    }

    /// The messages ready in `queue`, taken out of it (inspection, tests).
    pub fn drain(&self, queue: &str) -> Vec<(Envelope, Vec<u8>)> {
        let mut state = self.shared.lock();
        let Some(q) = state.queues.get_mut(queue) else {
            return Vec::new();
        };
        q.ready.drain(..).map(|m| (m.envelope, m.data)).collect()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves plain data behind: still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The queues a message for `exchange` and `key` lands in.
    fn route(exchange: &str, key: &str) -> Result<Vec<String>, BrokerError> {
        match exchange {
            "" => Ok(vec![key.to_string()]),
            DEAD_LETTER_EXCHANGE if key == dead_letter_queue(CLIPS) => {
                Ok(vec![key.to_string(), DEAD_CLIPS.to_string()])
            }
            DEAD_LETTER_EXCHANGE => Ok(vec![key.to_string()]),
            _ => Err(BrokerError::Unroutable {
                queue: key.to_string(),
            }),
        }
    }

    fn enqueue(self: &Arc<Self>, state: &mut State, queue: &str, message: Stored) {
        if let Some(delay) = self.delays.get(queue) {
            // A delay queue: the message comes back to the work queue once its delay is over.
            let shared = Arc::clone(self);
            let delay = *delay;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut state = shared.lock();
                shared.enqueue(
                    &mut state,
                    CLIPS,
                    Stored {
                        deliveries: 0,
                        ..message
                    },
                );
                drop(state);
                shared.changed.notify_waiters();
            });
            return;
        }
        state
            .queues
            .entry(queue.to_string())
            .or_default()
            .ready
            .push_back(message);
    }

    /// A delivery handed back: to the head of its queue, or past the delivery limit to the
    /// dead-letter exchange, as the broker's quorum queues do.
    fn requeue(self: &Arc<Self>, queue: &str, tag: u64) {
        let mut state = self.lock();
        let Some((consumer, message)) = state
            .queues
            .get_mut(queue)
            .and_then(|q| q.unacked.remove(&tag))
        else {
            return;
        };
        release(&mut state, consumer, 1);
        let limited = queue == CLIPS || queue == RESULTS;
        if limited && i64::from(message.deliveries) >= DELIVERY_LIMIT {
            let mut message = message;
            message
                .envelope
                .headers
                .set_text("x-first-death-reason", "delivery_limit");
            for target in
                Self::route(DEAD_LETTER_EXCHANGE, &dead_letter_queue(queue)).unwrap_or_default()
            {
                self.enqueue(&mut state, &target, message.clone());
            }
        } else if let Some(q) = state.queues.get_mut(queue) {
            q.ready.push_front(message);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    fn ack(&self, queue: &str, tag: u64, multiple: bool) {
        let mut state = self.lock();
        let Some(q) = state.queues.get_mut(queue) else {
            return;
        };
        let Some(consumer) = q.unacked.get(&tag).map(|(c, _)| *c) else {
            return;
        };
        let tags: Vec<u64> = if multiple {
            q.unacked
                .range(..=tag)
                .filter(|(_, (c, _))| *c == consumer)
                .map(|(t, _)| *t)
                .collect()
        } else {
            vec![tag]
        };
        for t in &tags {
            q.unacked.remove(t);
        }
        release(&mut state, consumer, tags.len());
        drop(state);
        self.changed.notify_waiters();
    }
}

fn release(state: &mut State, consumer: u64, n: usize) {
    if let Some(held) = state.held.get_mut(&consumer) {
        *held = held.saturating_sub(n);
    }
}

#[async_trait]
impl Transport for MemoryBroker {
    async fn publish(&self, message: Outgoing<'_>) -> Result<(), BrokerError> {
        let targets = Shared::route(message.exchange, message.routing_key)?;
        let stored = Stored {
            data: message.body.to_vec(),
            envelope: message.envelope,
            deliveries: 0,
        };
        let mut state = self.shared.lock();
        for target in targets {
            self.shared.enqueue(&mut state, &target, stored.clone());
        }
        drop(state);
        self.shared.changed.notify_waiters();
        Ok(())
    }

    async fn publish_all(&self, messages: Vec<Outgoing<'_>>) -> Vec<Result<(), BrokerError>> {
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            results.push(self.publish(message).await);
        }
        results
    }

    async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        _tag: &str,
    ) -> Result<Box<dyn Deliveries>, BrokerError> {
        let mut state = self.shared.lock();
        state.next_consumer += 1;
        let consumer = state.next_consumer;
        state.held.insert(consumer, 0);
        Ok(Box::new(MemoryDeliveries {
            shared: Arc::clone(&self.shared),
            queue: queue.to_string(),
            prefetch: usize::from(prefetch.max(1)),
            consumer,
            cancelled: false,
        }))
    }

    fn is_connected(&self) -> bool {
        true
    }

    async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError> {
        let state = self.shared.lock();
        let ready = state.queues.get(queue).map_or(0, |q| q.ready.len());
        Ok(u32::try_from(ready).unwrap_or(u32::MAX))
    }

    async fn close(&self) {}
}

#[async_trait]
impl Connect for MemoryBroker {
    async fn connect(
        &self,
        _name: &str,
        _give_up_after: Option<usize>,
    ) -> Result<Arc<dyn Transport>, BrokerError> {
        Ok(Arc::new(self.clone()))
    }
}

struct MemoryDeliveries {
    shared: Arc<Shared>,
    queue: String,
    prefetch: usize,
    consumer: u64,
    cancelled: bool,
}

#[async_trait]
impl Deliveries for MemoryDeliveries {
    async fn next(&mut self) -> Option<Result<Received, BrokerError>> {
        loop {
            if self.cancelled {
                return None;
            }
            // Made before looking, so a change between the look and the wait still wakes it.
            let changed = self.shared.changed.notified();
            {
                let mut state = self.shared.lock();
                let held = state.held.get(&self.consumer).copied().unwrap_or(0);
                let next = state
                    .queues
                    .get_mut(&self.queue)
                    .filter(|_| held < self.prefetch)
                    .and_then(|q| q.ready.pop_front());
                if let Some(mut message) = next {
                    state.next_tag += 1;
                    let tag = state.next_tag;
                    message.deliveries += 1;
                    let (data, envelope) = (message.data.clone(), message.envelope.clone());
                    let q = state.queues.entry(self.queue.clone()).or_default();
                    q.unacked.insert(tag, (self.consumer, message));
                    *state.held.entry(self.consumer).or_default() += 1;
                    let acker = MemoryAck {
                        shared: Arc::clone(&self.shared),
                        queue: self.queue.clone(),
                        tag,
                        settled: AtomicBool::new(false),
                    };
                    return Some(Ok(Received::new(data, envelope, Box::new(acker))));
                }
            }
            changed.await;
        }
    }

    async fn cancel(&mut self) {
        self.cancelled = true;
    }
}

/// One delivery's settlement. Dropped unsettled (its holder gave up on it), the delivery goes
/// back to its queue, as the broker does with a closed channel's.
struct MemoryAck {
    shared: Arc<Shared>,
    queue: String,
    tag: u64,
    settled: AtomicBool,
}

#[async_trait]
impl Acknowledge for MemoryAck {
    async fn ack(&self, multiple: bool) -> Result<(), BrokerError> {
        self.settled.store(true, Ordering::SeqCst);
        self.shared.ack(&self.queue, self.tag, multiple);
        Ok(())
    }

    async fn requeue(&self) -> Result<(), BrokerError> {
        self.settled.store(true, Ordering::SeqCst);
        self.shared.requeue(&self.queue, self.tag);
        Ok(())
    }
}

impl Drop for MemoryAck {
    fn drop(&mut self) {
        if !self.settled.load(Ordering::SeqCst) {
            self.shared.requeue(&self.queue, self.tag);
        }
    }
}
