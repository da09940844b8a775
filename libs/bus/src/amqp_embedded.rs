//! An in-process AMQP broker with RabbitMQ's semantics for what [`MessageBroker`] offers:
//! direct, fanout and topic exchanges, the default exchange, durable/exclusive/auto-delete
//! queues, per-consumer prefetch with round-robin dispatch, explicit acks, requeue in the
//! original order, exclusive queues deleted with their connection. The default for
//! `serrano up` (one process) and for tests.
//!
//! Everything is in memory: `durable` and `persistent` are recorded (a redeclaration must
//! match) but nothing outlives the process. Each [`EmbeddedMessageBroker`] is one connection;
//! [`EmbeddedMessageBroker::connect`] opens another to the same broker, and
//! [`EmbeddedMessageBroker::shared`] connects to the one broker of the process. Dropping a
//! connection closes it.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::BusError;
use crate::amqp::{
    BUILTIN_EXCHANGES, ConsumeOptions, Delivery, DeliveryStream, ExchangeKind, MessageBroker,
    MessageProperties, PublishOutcome, QueueInfo, QueueOptions, Settle, Settlement,
    generated_queue_name, topic_matches, validate_binding, validate_declared_name,
    validate_message, validate_name, validate_publish_exchange, validate_routing_key,
};

/// One connection to an in-process broker.
pub struct EmbeddedMessageBroker {
    core: Arc<Core>,
    conn: u64,
}

struct Core {
    state: Mutex<State>,
}

struct State {
    exchanges: HashMap<String, Exchange>,
    queues: HashMap<String, Queue>,
    consumers: HashMap<u64, ConsumerEntry>,
    open_conns: HashSet<u64>,
    /// Connection ids, consumer ids, delivery tags and message sequence numbers: unique over
    /// the broker's life, so a tag of a deleted queue never matches one of its successor.
    next_id: u64,
}

struct Exchange {
    kind: ExchangeKind,
    durable: bool,
    builtin: bool,
    /// (queue, binding key), ordered for a deterministic routing order.
    bindings: BTreeSet<(String, String)>,
}

struct Queue {
    options: QueueOptions,
    /// The connection of an exclusive queue.
    owner: Option<u64>,
    /// Ordered by `seq`; requeued messages go back to their place.
    ready: VecDeque<Message>,
    unacked: HashMap<u64, Unacked>,
    consumers: Vec<u64>,
    /// Round-robin position in `consumers`.
    turn: usize,
    had_consumer: bool,
}

#[derive(Clone)]
struct Message {
    seq: u64,
    exchange: Arc<str>,
    routing_key: Arc<str>,
    payload: Arc<[u8]>,
    properties: Arc<MessageProperties>,
    redelivered: bool,
}

struct Unacked {
    msg: Message,
    /// `None` for a `get`.
    consumer: Option<u64>,
    conn: u64,
}

struct ConsumerEntry {
    queue: String,
    conn: u64,
    prefetch: u16,
    in_flight: usize,
    tx: mpsc::UnboundedSender<Event>,
}

enum Event {
    Deliver {
        tag: u64,
        msg: Message,
    },
    /// The broker ended the consumer (queue deleted, connection closed).
    End(BusError),
}

fn lock(core: &Core) -> MutexGuard<'_, State> {
    // Every update completes before anything that can panic, so a poisoned state is usable.
    core.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn closed() -> BusError {
    BusError::Unavailable("the AMQP connection is closed".to_string())
}

fn queue_not_found(name: &str) -> BusError {
    BusError::NotFound(format!("no queue '{name}'"))
}

fn exchange_not_found(name: &str) -> BusError {
    BusError::NotFound(format!("no exchange '{name}'"))
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Queue {
    fn info(&self, name: &str) -> QueueInfo {
        QueueInfo {
            name: name.to_string(),
            message_count: u32_of(self.ready.len()),
            consumer_count: u32_of(self.consumers.len()),
        }
    }

    /// RabbitMQ's RESOURCE_LOCKED (405): another connection's exclusive queue.
    fn check_access(&self, name: &str, conn: u64) -> Result<(), BusError> {
        match self.owner {
            Some(owner) if owner != conn => Err(BusError::Conflict(format!(
                "queue '{name}' is exclusive to another connection"
            ))),
            _ => Ok(()),
        }
    }

    fn requeue(&mut self, mut msg: Message) {
        msg.redelivered = true;
        let at = self.ready.partition_point(|m| m.seq < msg.seq);
        self.ready.insert(at, msg);
    }
}

impl State {
    fn new() -> Self {
        let exchanges = BUILTIN_EXCHANGES
            .iter()
            .map(|(name, kind)| {
                (
                    (*name).to_string(),
                    Exchange {
                        kind: *kind,
                        durable: true,
                        builtin: true,
                        bindings: BTreeSet::new(),
                    },
                )
            })
            .collect();
        Self {
            exchanges,
            queues: HashMap::new(),
            consumers: HashMap::new(),
            open_conns: HashSet::new(),
            next_id: 1,
        }
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn check_open(&self, conn: u64) -> Result<(), BusError> {
        if self.open_conns.contains(&conn) {
            Ok(())
        } else {
            Err(closed())
        }
    }

    /// The queue, if this connection may use it.
    fn queue_for(&mut self, name: &str, conn: u64) -> Result<&mut Queue, BusError> {
        let q = self
            .queues
            .get_mut(name)
            .ok_or_else(|| queue_not_found(name))?;
        q.check_access(name, conn)?;
        Ok(q)
    }

    /// Hands ready messages to consumers with room, round robin.
    fn dispatch(&mut self, name: &str) {
        let State {
            queues,
            consumers,
            next_id,
            ..
        } = self;
        let Some(q) = queues.get_mut(name) else {
            return;
        };
        while !q.ready.is_empty() && !q.consumers.is_empty() {
            let n = q.consumers.len();
            let chosen = (0..n).map(|k| (q.turn + k) % n).find(|&i| {
                consumers
                    .get(&q.consumers[i])
                    .is_some_and(|c| c.prefetch == 0 || c.in_flight < usize::from(c.prefetch))
            });
            let Some(i) = chosen else {
                break;
            };
            let cid = q.consumers[i];
            let Some(c) = consumers.get_mut(&cid) else {
                break;
            };
            let Some(msg) = q.ready.pop_front() else {
                break;
            };
            let tag = *next_id;
            *next_id += 1;
            if c.tx
                .send(Event::Deliver {
                    tag,
                    msg: msg.clone(),
                })
                .is_err()
            {
                // The consumer is gone without cancelling (cannot happen: its drop cancels
                // under the lock); forget it and keep the message.
                q.ready.push_front(msg);
                q.consumers.remove(i);
                consumers.remove(&cid);
                q.turn = 0;
                continue;
            }
            c.in_flight += 1;
            q.turn = (i + 1) % n;
            q.unacked.insert(
                tag,
                Unacked {
                    msg,
                    consumer: Some(cid),
                    conn: c.conn,
                },
            );
        }
    }

    /// Deletes a queue: bindings, ready and unacked messages; its consumers end.
    fn delete_queue(&mut self, name: &str) -> u32 {
        let Some(q) = self.queues.remove(name) else {
            return 0;
        };
        for cid in &q.consumers {
            if let Some(c) = self.consumers.remove(cid) {
                // The receiver may be gone already.
                let _ = c.tx.send(Event::End(BusError::NotFound(format!(
                    "queue '{name}' was deleted"
                ))));
            }
        }
        for ex in self.exchanges.values_mut() {
            ex.bindings.retain(|(qn, _)| qn != name);
        }
        u32_of(q.ready.len())
    }

    fn settle(
        &mut self,
        queue: &str,
        tag: u64,
        conn: u64,
        how: Settlement,
    ) -> Result<(), BusError> {
        self.check_open(conn)?;
        // The queue was deleted with its messages: nothing left to settle (RabbitMQ accepts
        // such an ack too).
        let Some(q) = self.queues.get_mut(queue) else {
            return Ok(());
        };
        let u = q.unacked.remove(&tag).ok_or_else(|| {
            BusError::Unavailable("unknown delivery (settled already or requeued)".to_string())
        })?;
        if let Settlement::Nack { requeue: true } = how {
            q.requeue(u.msg);
        }
        if let Some(c) = u.consumer.and_then(|cid| self.consumers.get_mut(&cid)) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        self.dispatch(queue);
        Ok(())
    }

    /// Cancels a consumer: the messages sent to it but not handed out go back.
    fn cancel(&mut self, cid: u64, rx: &mut mpsc::UnboundedReceiver<Event>) {
        let entry = self.consumers.remove(&cid);
        rx.close();
        let mut undelivered = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            if let Event::Deliver { tag, .. } = ev {
                undelivered.push(tag);
            }
        }
        let Some(entry) = entry else {
            return;
        };
        let name = entry.queue;
        let Some(q) = self.queues.get_mut(&name) else {
            return;
        };
        q.consumers.retain(|&c| c != cid);
        q.turn = 0;
        for tag in undelivered {
            if let Some(u) = q.unacked.remove(&tag) {
                q.requeue(u.msg);
            }
        }
        if q.options.auto_delete && q.had_consumer && q.consumers.is_empty() {
            self.delete_queue(&name);
        } else {
            self.dispatch(&name);
        }
    }

    /// Closes a connection: its consumers end, its unacked deliveries are requeued, its
    /// exclusive queues are deleted.
    fn close_conn(&mut self, conn: u64) {
        if !self.open_conns.remove(&conn) {
            return;
        }
        let mine: Vec<u64> = self
            .consumers
            .iter()
            .filter(|(_, c)| c.conn == conn)
            .map(|(&id, _)| id)
            .collect();
        let mut touched = BTreeSet::new();
        for cid in mine {
            if let Some(c) = self.consumers.remove(&cid) {
                let _ = c.tx.send(Event::End(closed()));
                if let Some(q) = self.queues.get_mut(&c.queue) {
                    q.consumers.retain(|&x| x != cid);
                    q.turn = 0;
                }
                touched.insert(c.queue);
            }
        }
        for (name, q) in &mut self.queues {
            let tags: Vec<u64> = q
                .unacked
                .iter()
                .filter(|(_, u)| u.conn == conn)
                .map(|(&t, _)| t)
                .collect();
            for t in tags {
                if let Some(u) = q.unacked.remove(&t) {
                    q.requeue(u.msg);
                    touched.insert(name.clone());
                }
            }
        }
        let doomed: Vec<String> = self
            .queues
            .iter()
            .filter(|(name, q)| {
                q.owner == Some(conn)
                    || (q.options.auto_delete
                        && q.had_consumer
                        && q.consumers.is_empty()
                        && touched.contains(*name))
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in &doomed {
            self.delete_queue(name);
        }
        for name in touched {
            self.dispatch(&name);
        }
    }

    /// The queues a message goes to.
    fn route(&self, exchange: &str, routing_key: &str) -> Result<BTreeSet<String>, BusError> {
        if exchange.is_empty() {
            return Ok(self
                .queues
                .contains_key(routing_key)
                .then(|| routing_key.to_string())
                .into_iter()
                .collect());
        }
        let ex = self
            .exchanges
            .get(exchange)
            .ok_or_else(|| exchange_not_found(exchange))?;
        Ok(ex
            .bindings
            .iter()
            .filter(|(_, key)| match ex.kind {
                ExchangeKind::Direct => key == routing_key,
                ExchangeKind::Fanout => true,
                ExchangeKind::Topic => topic_matches(key, routing_key),
            })
            .map(|(q, _)| q.clone())
            .collect())
    }
}

/// The broker of [`EmbeddedMessageBroker::shared`].
static SHARED: OnceLock<Arc<Core>> = OnceLock::new();

impl EmbeddedMessageBroker {
    /// A new, empty broker and a first connection to it.
    pub fn new() -> Self {
        Self::connect_to(Arc::new(Core {
            state: Mutex::new(State::new()),
        }))
    }

    /// A connection to the process's one shared broker (created on first use): what
    /// [`crate::open_message_broker`] gives, so that the services of one process meet.
    pub fn shared() -> Self {
        let core = SHARED.get_or_init(|| {
            Arc::new(Core {
                state: Mutex::new(State::new()),
            })
        });
        Self::connect_to(core.clone())
    }

    /// Another connection to the same broker.
    pub fn connect(&self) -> Self {
        Self::connect_to(self.core.clone())
    }

    fn connect_to(core: Arc<Core>) -> Self {
        let conn = {
            let mut st = lock(&core);
            let id = st.id();
            st.open_conns.insert(id);
            id
        };
        Self { core, conn }
    }

    /// The names of the queues that exist, sorted.
    pub fn queues(&self) -> Vec<String> {
        let mut names: Vec<String> = lock(&self.core).queues.keys().cloned().collect();
        names.sort();
        names
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.core)
    }
}

impl Default for EmbeddedMessageBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for EmbeddedMessageBroker {
    fn drop(&mut self) {
        self.state().close_conn(self.conn);
    }
}

#[async_trait]
impl MessageBroker for EmbeddedMessageBroker {
    async fn declare_exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        durable: bool,
    ) -> Result<(), BusError> {
        validate_declared_name("exchange", name)?;
        let mut st = self.state();
        st.check_open(self.conn)?;
        if let Some(ex) = st.exchanges.get(name) {
            if ex.kind != kind || ex.durable != durable {
                return Err(BusError::Conflict(format!(
                    "exchange '{name}' exists as {} (durable: {}), not {kind} (durable: {durable})",
                    ex.kind, ex.durable
                )));
            }
            return Ok(());
        }
        st.exchanges.insert(
            name.to_string(),
            Exchange {
                kind,
                durable,
                builtin: false,
                bindings: BTreeSet::new(),
            },
        );
        Ok(())
    }

    async fn delete_exchange(&self, name: &str) -> Result<(), BusError> {
        validate_declared_name("exchange", name)?;
        let mut st = self.state();
        st.check_open(self.conn)?;
        if st.exchanges.get(name).is_some_and(|e| !e.builtin) {
            st.exchanges.remove(name);
        }
        Ok(())
    }

    async fn declare_queue(
        &self,
        name: &str,
        options: QueueOptions,
    ) -> Result<QueueInfo, BusError> {
        let name = if name.is_empty() {
            generated_queue_name()
        } else {
            validate_declared_name("queue", name)?;
            name.to_string()
        };
        let mut st = self.state();
        st.check_open(self.conn)?;
        if let Some(q) = st.queues.get(&name) {
            q.check_access(&name, self.conn)?;
            if q.options != options {
                return Err(BusError::Conflict(format!(
                    "queue '{name}' exists with {:?}, not {options:?}",
                    q.options
                )));
            }
            return Ok(q.info(&name));
        }
        let q = Queue {
            options,
            owner: options.exclusive.then_some(self.conn),
            ready: VecDeque::new(),
            unacked: HashMap::new(),
            consumers: Vec::new(),
            turn: 0,
            had_consumer: false,
        };
        let info = q.info(&name);
        st.queues.insert(name, q);
        Ok(info)
    }

    async fn queue_info(&self, name: &str) -> Result<Option<QueueInfo>, BusError> {
        validate_name("queue", name)?;
        let st = self.state();
        st.check_open(self.conn)?;
        match st.queues.get(name) {
            None => Ok(None),
            Some(q) => {
                q.check_access(name, self.conn)?;
                Ok(Some(q.info(name)))
            }
        }
    }

    async fn delete_queue(&self, name: &str) -> Result<u32, BusError> {
        validate_name("queue", name)?;
        let mut st = self.state();
        st.check_open(self.conn)?;
        match st.queues.get(name) {
            None => Ok(0),
            Some(q) => {
                q.check_access(name, self.conn)?;
                Ok(st.delete_queue(name))
            }
        }
    }

    async fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BusError> {
        validate_binding(queue, exchange, routing_key)?;
        let mut st = self.state();
        st.check_open(self.conn)?;
        st.queue_for(queue, self.conn)?;
        let ex = st
            .exchanges
            .get_mut(exchange)
            .ok_or_else(|| exchange_not_found(exchange))?;
        ex.bindings
            .insert((queue.to_string(), routing_key.to_string()));
        Ok(())
    }

    async fn unbind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), BusError> {
        validate_binding(queue, exchange, routing_key)?;
        let mut st = self.state();
        st.check_open(self.conn)?;
        st.queue_for(queue, self.conn)?;
        let ex = st
            .exchanges
            .get_mut(exchange)
            .ok_or_else(|| exchange_not_found(exchange))?;
        ex.bindings
            .remove(&(queue.to_string(), routing_key.to_string()));
        Ok(())
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: &MessageProperties,
    ) -> Result<PublishOutcome, BusError> {
        validate_publish_exchange(exchange)?;
        validate_routing_key(routing_key)?;
        validate_message(payload, properties)?;
        let payload: Arc<[u8]> = Arc::from(payload);
        let props = Arc::new(properties.clone());
        let (ex, rk): (Arc<str>, Arc<str>) = (Arc::from(exchange), Arc::from(routing_key));
        let mut st = self.state();
        st.check_open(self.conn)?;
        let targets = st.route(exchange, routing_key)?;
        if targets.is_empty() {
            return Ok(PublishOutcome::Unroutable);
        }
        for name in targets {
            let seq = st.id();
            if let Some(q) = st.queues.get_mut(&name) {
                q.ready.push_back(Message {
                    seq,
                    exchange: ex.clone(),
                    routing_key: rk.clone(),
                    payload: payload.clone(),
                    properties: props.clone(),
                    redelivered: false,
                });
            }
            st.dispatch(&name);
        }
        Ok(PublishOutcome::Routed)
    }

    async fn consume(
        &self,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<Box<dyn DeliveryStream>, BusError> {
        validate_name("queue", queue)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.state();
        st.check_open(self.conn)?;
        st.queue_for(queue, self.conn)?;
        let cid = st.id();
        st.consumers.insert(
            cid,
            ConsumerEntry {
                queue: queue.to_string(),
                conn: self.conn,
                prefetch: options.prefetch,
                in_flight: 0,
                tx,
            },
        );
        let q = st.queue_for(queue, self.conn)?;
        q.consumers.push(cid);
        q.had_consumer = true;
        st.dispatch(queue);
        Ok(Box::new(EmbeddedConsumer {
            core: self.core.clone(),
            id: cid,
            conn: self.conn,
            queue: queue.to_string(),
            rx,
            ended: None,
        }))
    }

    async fn get(&self, queue: &str) -> Result<Option<Delivery>, BusError> {
        validate_name("queue", queue)?;
        let mut st = self.state();
        st.check_open(self.conn)?;
        let tag = st.id();
        let q = st.queue_for(queue, self.conn)?;
        let Some(msg) = q.ready.pop_front() else {
            return Ok(None);
        };
        q.unacked.insert(
            tag,
            Unacked {
                msg: msg.clone(),
                consumer: None,
                conn: self.conn,
            },
        );
        drop(st);
        Ok(Some(delivery(&self.core, queue, tag, self.conn, &msg)))
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn health(&self) -> Result<(), BusError> {
        self.state().check_open(self.conn)
    }

    async fn close(&self) -> Result<(), BusError> {
        self.state().close_conn(self.conn);
        Ok(())
    }
}

fn delivery(core: &Arc<Core>, queue: &str, tag: u64, conn: u64, msg: &Message) -> Delivery {
    Delivery::new(
        msg.exchange.to_string(),
        msg.routing_key.to_string(),
        msg.redelivered,
        msg.payload.to_vec(),
        (*msg.properties).clone(),
        Box::new(EmbeddedSettle {
            core: core.clone(),
            queue: queue.to_string(),
            tag,
            conn,
        }),
    )
}

struct EmbeddedSettle {
    core: Arc<Core>,
    queue: String,
    tag: u64,
    conn: u64,
}

#[async_trait]
impl Settle for EmbeddedSettle {
    async fn settle(self: Box<Self>, how: Settlement) -> Result<(), BusError> {
        lock(&self.core).settle(&self.queue, self.tag, self.conn, how)
    }

    fn abandon(self: Box<Self>) {
        // Fails only when the message is requeued or gone already.
        let _ = lock(&self.core).settle(
            &self.queue,
            self.tag,
            self.conn,
            Settlement::Nack { requeue: true },
        );
    }
}

struct EmbeddedConsumer {
    core: Arc<Core>,
    id: u64,
    conn: u64,
    queue: String,
    rx: mpsc::UnboundedReceiver<Event>,
    /// Set once the broker ended the consumer.
    ended: Option<BusError>,
}

#[async_trait]
impl DeliveryStream for EmbeddedConsumer {
    fn queue(&self) -> &str {
        &self.queue
    }

    async fn next(&mut self, timeout: Duration) -> Result<Option<Delivery>, BusError> {
        if let Some(e) = &self.ended {
            return Err(e.clone());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ev = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => return Ok(None),
                Ok(ev) => ev,
            };
            match ev {
                Some(Event::Deliver { tag, msg }) => {
                    // A message requeued meanwhile (connection closed) is not handed out.
                    let live = lock(&self.core)
                        .queues
                        .get(&self.queue)
                        .is_some_and(|q| q.unacked.contains_key(&tag));
                    if live {
                        return Ok(Some(delivery(
                            &self.core,
                            &self.queue,
                            tag,
                            self.conn,
                            &msg,
                        )));
                    }
                }
                Some(Event::End(e)) => {
                    self.ended = Some(e.clone());
                    return Err(e);
                }
                None => {
                    let e = BusError::Unavailable("the consumer was cancelled".to_string());
                    self.ended = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        lock(&self.core).cancel(self.id, &mut self.rx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn contract_suite() {
        let first = EmbeddedMessageBroker::new();
        let second = first.connect();
        crate::amqp_contract::run_suite(
            Arc::new(first),
            Arc::new(move || {
                Box::pin(futures::future::ready(
                    Arc::new(second.connect()) as Arc<dyn MessageBroker>
                ))
            }),
        )
        .await;
    }

    #[tokio::test]
    async fn shared_broker_connects_services() {
        let a = EmbeddedMessageBroker::shared();
        let b = EmbeddedMessageBroker::shared();
        let q = format!("shared-{}", uuid::Uuid::new_v4().simple());
        a.declare_queue(&q, QueueOptions::durable()).await.unwrap();
        b.publish("", &q, b"hi", &MessageProperties::default())
            .await
            .unwrap();
        let d = a.get(&q).await.unwrap().unwrap();
        assert_eq!(d.payload, b"hi");
        d.ack().await.unwrap();
        assert!(a.queues().contains(&q));
        a.delete_queue(&q).await.unwrap();
    }

    #[tokio::test]
    async fn unlimited_prefetch_and_into_stream() {
        use futures::StreamExt;
        let b = EmbeddedMessageBroker::new();
        b.declare_queue("q", QueueOptions::durable()).await.unwrap();
        for i in 0..50 {
            b.publish(
                "",
                "q",
                format!("{i}").as_bytes(),
                &MessageProperties::default(),
            )
            .await
            .unwrap();
        }
        let s = b
            .consume("q", ConsumeOptions { prefetch: 0 })
            .await
            .unwrap();
        // Prefetch 0: everything is handed to the one consumer at once.
        assert_eq!(b.queue_info("q").await.unwrap().unwrap().message_count, 0);
        let mut stream = crate::amqp::into_stream(s);
        for i in 0..50 {
            let d = stream.next().await.unwrap().unwrap();
            assert_eq!(d.payload, format!("{i}").as_bytes());
            d.ack().await.unwrap();
        }
        // Deleting the queue ends the stream after its error.
        b.delete_queue("q").await.unwrap();
        assert!(matches!(
            stream.next().await,
            Some(Err(BusError::NotFound(_)))
        ));
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn dropping_a_connection_closes_it() {
        let a = EmbeddedMessageBroker::new();
        let b = a.connect();
        let q = b
            .declare_queue("", QueueOptions::exclusive())
            .await
            .unwrap()
            .name;
        a.declare_queue("keep", QueueOptions::durable())
            .await
            .unwrap();
        a.publish("", "keep", b"m", &MessageProperties::default())
            .await
            .unwrap();
        let d = b.get("keep").await.unwrap().unwrap();
        drop(b);
        // The exclusive queue went with its connection; the unacked message came back.
        assert_eq!(a.queue_info(&q).await.unwrap(), None);
        assert!(d.ack().await.is_err());
        let again = a.get("keep").await.unwrap().unwrap();
        assert!(again.redelivered);
        again.ack().await.unwrap();
    }
}
