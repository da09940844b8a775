//! The message broker adapter: input arrays from the request's queue (`queue_id`, one message
//! per argument, named by the `argument` header, the `name` header or the message id) and results
//! to the durable queue `kernels_results_{uuid}` on the default exchange (originals 1.7).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serrano_bus::amqp::{Delivery, MessageBroker, MessageProperties, QueueOptions};
use serrano_bus::config::{AmqpConfig, open_message_broker};

use crate::invoke::{InputReceipt, QueueMessage, ResultBroker};

/// `None` (no broker), or the `broker` table: `type = "embedded"` | `type = "rabbitmq"` + `url`.
pub type BrokerConfig = Option<AmqpConfig>;

pub async fn open(config: &BrokerConfig) -> anyhow::Result<Option<Arc<dyn ResultBroker>>> {
    match config {
        None => Ok(None),
        Some(c) => {
            let broker = open_message_broker(c).await?;
            Ok(Some(Arc::new(AmqpResults::new(broker))))
        }
    }
}

/// Deliveries taken for one invocation, settled together.
struct Held(Vec<Delivery>);

#[async_trait]
impl InputReceipt for Held {
    async fn settle(self: Box<Self>, consumed: bool) {
        for d in self.0 {
            let settled = if consumed {
                d.ack().await
            } else {
                d.nack(true).await
            };
            if let Err(e) = settled {
                // An unsettled delivery goes back to its queue when the channel closes.
                tracing::warn!(error = %e, "could not settle an input message");
            }
        }
    }
}

pub struct AmqpResults {
    broker: Arc<dyn MessageBroker>,
}

impl AmqpResults {
    pub fn new(broker: Arc<dyn MessageBroker>) -> Self {
        Self { broker }
    }
}

fn argument_name(d: &Delivery) -> Option<String> {
    let h = &d.properties.headers;
    h.get("argument")
        .or_else(|| h.get("name"))
        .cloned()
        .or_else(|| d.properties.message_id.clone())
}

#[async_trait]
impl ResultBroker for AmqpResults {
    async fn take(
        &self,
        queue: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(Vec<QueueMessage>, Box<dyn InputReceipt>), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut taken: Vec<Delivery> = Vec::with_capacity(count);
        while taken.len() < count {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.broker.get_timeout(queue, left).await {
                Ok(Some(d)) => taken.push(d),
                other => {
                    let got = taken.len();
                    // Give back what was taken so that a retry finds every argument again.
                    for d in taken {
                        let _ = d.nack(true).await;
                    }
                    return Err(match other {
                        Err(e) => e.to_string(),
                        _ => format!("{got} of {count} input messages arrived within {timeout:?}"),
                    });
                }
            }
        }
        let messages = taken
            .iter()
            .map(|d| QueueMessage {
                name: argument_name(d),
                body: d.payload.clone(),
            })
            .collect();
        Ok((messages, Box::new(Held(taken))))
    }

    async fn publish(&self, queue: &str, body: Vec<u8>) -> Result<(), String> {
        self.broker
            .declare_queue(queue, QueueOptions::durable())
            .await
            .map_err(|e| e.to_string())?;
        self.broker
            .publish("", queue, &body, &MessageProperties::json())
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}
