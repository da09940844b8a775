//! The message broker adapter (placeholder until the AMQP bus lands).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::invoke::ResultBroker;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {}

pub async fn open(_config: &BrokerConfig) -> anyhow::Result<Option<Arc<dyn ResultBroker>>> {
    Ok(None)
}
