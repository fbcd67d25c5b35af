//! The three services of distributed mode (DESIGN §2, §8): the dispatcher publishes clip tasks,
//! workers turn them into results, the reducer stores them. The clip work itself is the same
//! [`crate::ClipProcessor`] that standalone mode runs; this module adds the broker,
//! the store, retries and shutdown.

mod dead;
pub mod dispatch;
pub mod in_process;
mod poison;
pub mod profiles;
pub mod reducer;
pub mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::queue::{BrokerError, Connect, Transport};

/// Runs `session` on a connection until it returns `Ok` (a clean shutdown) or shutdown is
/// asked for; when the queues go away (`Err`) it connects again, with backoff, and goes on.
async fn reconnecting<F, Fut>(queues: &dyn Connect, name: &str, shutdown: &Shutdown, mut session: F)
where
    F: FnMut(Arc<dyn Transport>) -> Fut,
    Fut: Future<Output = Result<(), BrokerError>>,
{
    while !shutdown.is_set() {
        let broker = tokio::select! {
            broker = queues.connect(name, None) => broker,
            () = shutdown.wait() => return,
        };
        let broker = match broker {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "broker connection failed");
                continue;
            }
        };
        ops::health::set_broker_connected(true);
        let ended = session(Arc::clone(&broker)).await;
        ops::health::set_broker_connected(false);
        match ended {
            Ok(()) => {
                broker.close().await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "lost the broker; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Set once, when the process is asked to stop (SIGTERM, SIGINT).
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown that follows SIGTERM and SIGINT. Must be called inside the runtime.
    pub fn on_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let (tx, rx) = watch::channel(false);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
            let _ = tx.send(true);
        });
        Ok(Self(rx))
    }

    /// A shutdown driven by hand (tests, benches): send `true` to stop.
    pub fn manual() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown is asked for (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the sender is gone: nobody can ask any more, so never resolve.
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
