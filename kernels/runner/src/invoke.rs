//! One kernel invocation, the FaaS function contract the RO's drivers call (D6.7 4.2.3.2.4,
//! originals 1.7): a `data_description` in; inputs read from S3, the message broker, local files
//! or the request itself; the kernel run through the registry; results written to S3 / published
//! to the broker queue `kernels_results_{uuid}`; and the timing breakdown the driver turns into a
//! KernelMetrics record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serrano_kernels::formats::{self, Format};
use serrano_kernels::{Execution, KernelError, Matrix, Mode, NamedInput, Params, Registry, Table};
use utoipa::ToSchema;

/// Keys of a data_description that are not kernel parameters.
pub const RESERVED: &[&str] = &[
    "uuid",
    "request_uuid",
    "kernel_name",
    "storage",
    "bucket_id",
    "queue_id",
    "arguments",
    "total_size_MB",
    "mode",
    "faas_endpoint",
    "format",
    "output_format",
    "inputs",
    "output",
    "return_outputs",
    "results",
];

/// Where inputs come from and results go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// Objects `arguments[i]` of bucket `bucket_id`; results to `results_req_{uuid}/{name}.{ext}`.
    S3,
    /// Messages of queue `queue_id` (one per argument); results to queue `kernels_results_{uuid}`.
    Broker,
    /// Local paths in `arguments`; results next to `output` (CLI and HPC jobs; off on servers by default).
    File,
    /// Arrays in `inputs`; results in the response.
    Inline,
}

/// The request: the original's data_description (`bucket_id`, `queue_id`, `arguments`, `storage`,
/// `total_size_MB`, `mode`, `uuid`, kernel parameters such as `w`, `iterations`, `k`) plus
/// optional `inputs` (inline arrays), `format`, `output_format` and `output`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct DataDescription {
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub request_uuid: Option<String>,
    #[serde(default)]
    pub kernel_name: Option<String>,
    #[serde(default)]
    pub storage: Option<Storage>,
    #[serde(default)]
    pub bucket_id: Option<String>,
    #[serde(default)]
    pub queue_id: Option<String>,
    #[serde(default)]
    pub arguments: Vec<String>,
    /// cpu | gpu | opencl | auto (default: the runner's configured default).
    #[serde(default)]
    pub mode: Option<String>,
    /// Input format when names and content do not tell (csv | bin | npy).
    #[serde(default)]
    pub format: Option<String>,
    /// Format of stored results (default csv).
    #[serde(default)]
    pub output_format: Option<String>,
    /// Inline inputs: name → rows of numbers.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub inputs: Option<BTreeMap<String, Vec<Vec<f64>>>>,
    /// Output path (file storage) or object prefix (S3).
    #[serde(default)]
    pub output: Option<String>,
    /// Where results go when not where the inputs came from (e.g. inputs from S3, results to
    /// the broker queue the SDK waits on).
    #[serde(default)]
    pub results: Option<Storage>,
    /// Also return the output arrays in the response.
    #[serde(default)]
    pub return_outputs: bool,
    /// Kernel parameters: every other key.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
}

impl DataDescription {
    /// Accepts the object, or the JSON-encoded string the original driver posts.
    pub fn from_json(body: &[u8]) -> Result<Self, InvokeError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| InvokeError::BadRequest(format!("body is not JSON: {e}")))?;
        let value = match value {
            Value::String(s) => serde_json::from_str(&s).map_err(|e| {
                InvokeError::BadRequest(format!("data_description string is not JSON: {e}"))
            })?,
            other => other,
        };
        if !value.is_object() {
            return Err(InvokeError::BadRequest(
                "data_description must be a JSON object".into(),
            ));
        }
        serde_json::from_value(value)
            .map_err(|e| InvokeError::BadRequest(format!("data_description: {e}")))
    }

    fn kernel_params(&self) -> Params {
        let map = self
            .params
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Params::from_map(map)
    }

    fn storage(&self) -> Storage {
        self.storage.unwrap_or(if self.inputs.is_some() {
            Storage::Inline
        } else if self.queue_id.is_some() && self.bucket_id.is_none() {
            Storage::Broker
        } else {
            Storage::S3
        })
    }
}

/// The timing breakdown of one invocation (the names of the original vAccel log, originals 1.7).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct InvocationMetrics {
    /// Device context set-up (0 when warm).
    pub load_vaccel_libs_ms: f64,
    /// Kernel module compilation/loading (0 when cached).
    pub load_model_libs_ms: f64,
    pub read_input_from_backend_ms: f64,
    pub parse_model_ms: f64,
    pub parse_input_ms: f64,
    pub setup_vaccel_args_ms: f64,
    pub run_kernel_ms: f64,
    /// Encoding the outputs.
    pub output_ms: f64,
    pub push_output_to_backend_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OutputInfo {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    /// `s3://bucket/key`, `amqp:queue`, a file path, or "inline".
    pub location: String,
}

/// The answer of a successful invocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvocationResult {
    pub request_uuid: String,
    pub kernel_name: String,
    /// The implementation that ran: cpu | cuda | opencl.
    pub kernel_mode: String,
    pub device: String,
    pub status: String,
    #[serde(rename = "input_total_size_MB")]
    pub input_total_size_mb: f64,
    pub outputs: Vec<OutputInfo>,
    /// Scalar results (k-means inertia and iterations, ...).
    #[schema(value_type = Object)]
    pub info: serde_json::Map<String, Value>,
    /// Output arrays when asked for (`return_outputs` or inline storage).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<BTreeMap<String, Value>>,
    pub metrics: InvocationMetrics,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("{0}")]
    BadRequest(String),
    /// The kernel task itself failed (a bug): answered 500; its input is not retried.
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    UnknownKernel(String),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// S3 or the broker failed or lacked the data.
    #[error("{0}")]
    Backend(String),
    /// The requested storage is not configured on this runner.
    #[error("{0}")]
    NotConfigured(String),
}

/// Object storage the runner reads inputs from and writes results to.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String>;
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), String>;
}

/// One message taken from an input queue.
#[derive(Debug, Clone)]
pub struct QueueMessage {
    /// The argument it carries (header `argument`/`name` or the message id), if stated.
    pub name: Option<String>,
    pub body: Vec<u8>,
}

/// Input messages held unacknowledged until the invocation's outcome is known, so that a runner
/// that dies mid-invocation loses nothing (the broker redelivers them).
#[async_trait]
pub trait InputReceipt: Send {
    /// `consumed`: acknowledge (results published, or the input itself was bad); otherwise give
    /// the messages back to the queue for another attempt.
    async fn settle(self: Box<Self>, consumed: bool);
}

/// The message broker as the runner uses it.
#[async_trait]
pub trait ResultBroker: Send + Sync {
    /// Takes `count` messages from `queue`, waiting up to `timeout` in all; they stay
    /// unacknowledged until the receipt is settled.
    async fn take(
        &self,
        queue: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(Vec<QueueMessage>, Box<dyn InputReceipt>), String>;
    /// Publishes a persistent JSON message to the durable queue `queue` (default exchange).
    async fn publish(&self, queue: &str, body: Vec<u8>) -> Result<(), String>;
}

/// What an invocation needs besides its request.
pub struct Runner {
    pub registry: Arc<Registry>,
    pub s3: Option<Arc<dyn ObjectStore>>,
    pub broker: Option<Arc<dyn ResultBroker>>,
    pub allow_local_files: bool,
    pub default_mode: Mode,
    pub input_wait: Duration,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn table_json(t: &Table) -> Value {
    let rows: Vec<Value> = match t {
        Table::F32(m) => (0..m.rows())
            .map(|r| Value::Array(m.row(r).iter().map(|&v| json_f32(v)).collect()))
            .collect(),
        Table::U32(m) => (0..m.rows())
            .map(|r| Value::Array(m.row(r).iter().map(|&v| v.into()).collect()))
            .collect(),
    };
    Value::Array(rows)
}

/// JSON has no NaN/Inf: they become null.
fn json_f32(v: f32) -> Value {
    serde_json::Number::from_f64(v as f64).map_or(Value::Null, Value::Number)
}

fn inline_table(name: &str, rows: &[Vec<f64>]) -> Result<Table, InvokeError> {
    let cols = rows.first().map_or(0, Vec::len);
    let mut data = Vec::with_capacity(rows.len() * cols);
    for (i, row) in rows.iter().enumerate() {
        if row.len() != cols {
            return Err(InvokeError::BadRequest(format!(
                "inputs.{name}: row {i} has {} values where row 0 has {cols}",
                row.len()
            )));
        }
        data.extend(row.iter().map(|&v| v as f32));
    }
    Ok(Table::F32(Matrix::new(rows.len(), cols, data)?))
}

impl Runner {
    /// Runs `kernel` for `desc`. On failure with a broker configured and a request uuid known,
    /// publishes `{uuid, data: null, error}` to `kernels_results_{uuid}` and `{uuid}` so that a
    /// waiting SDK stops waiting (originals 1.7).
    pub async fn invoke(
        &self,
        kernel: &str,
        desc: DataDescription,
    ) -> Result<InvocationResult, InvokeError> {
        let uuid = desc.uuid.clone().or_else(|| desc.request_uuid.clone());
        let results = desc.results.unwrap_or(desc.storage());
        let mut receipt = None;
        let result = self.invoke_inner(kernel, desc, &mut receipt).await;
        if let (Err(err), Some(uuid), Some(broker)) = (&result, &uuid, &self.broker)
            && results == Storage::Broker
        {
            let body = serde_json::json!({"uuid": uuid, "data": null, "error": err.to_string()});
            let body = body.to_string().into_bytes();
            for queue in [format!("kernels_results_{uuid}"), uuid.clone()] {
                if let Err(e) = broker.publish(&queue, body.clone()).await {
                    tracing::warn!(queue = %queue, error = %e, "could not publish the failure notice");
                }
            }
        }
        if let Some(receipt) = receipt {
            // Bad requests and bad data will not get better on a retry; S3 or broker trouble may.
            let consumed = !matches!(
                result,
                Err(InvokeError::Backend(_) | InvokeError::NotConfigured(_))
            );
            receipt.settle(consumed).await;
        }
        result
    }

    async fn invoke_inner(
        &self,
        kernel: &str,
        desc: DataDescription,
        receipt: &mut Option<Box<dyn InputReceipt>>,
    ) -> Result<InvocationResult, InvokeError> {
        let total = Instant::now();
        let mut metrics = InvocationMetrics::default();
        let name = serrano_kernels::KernelName::parse(kernel)
            .ok_or_else(|| InvokeError::UnknownKernel(format!("unknown kernel '{kernel}'")))?;
        let mode = match &desc.mode {
            Some(m) => Mode::parse(m).ok_or_else(|| {
                InvokeError::BadRequest(format!("mode '{m}' is not cpu, gpu, opencl or auto"))
            })?,
            None => self.default_mode,
        };
        let in_format = match &desc.format {
            Some(f) => Some(
                Format::parse(f)
                    .ok_or_else(|| InvokeError::BadRequest(format!("unknown format '{f}'")))?,
            ),
            None => None,
        };
        let out_format = match &desc.output_format {
            Some(f) => Format::parse(f)
                .ok_or_else(|| InvokeError::BadRequest(format!("unknown output_format '{f}'")))?,
            None => Format::Csv,
        };
        let uuid = desc
            .uuid
            .clone()
            .or_else(|| desc.request_uuid.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        check_uuid(&uuid)?;
        let storage = desc.storage();
        let results = desc.results.unwrap_or(storage);
        if results == Storage::File && !self.allow_local_files {
            return Err(InvokeError::BadRequest(
                "storage file is disabled on this runner".into(),
            ));
        }
        let params = desc.kernel_params();

        // Read.
        let t = Instant::now();
        let raw: Vec<(Option<String>, Vec<u8>)> = match storage {
            Storage::Inline => Vec::new(),
            Storage::S3 => {
                let s3 = self.s3.as_ref().ok_or_else(|| {
                    InvokeError::NotConfigured("no S3 endpoint is configured".into())
                })?;
                let bucket = desc
                    .bucket_id
                    .as_deref()
                    .ok_or_else(|| InvokeError::BadRequest("storage s3 needs bucket_id".into()))?;
                if desc.arguments.is_empty() {
                    return Err(InvokeError::BadRequest(
                        "arguments: name at least one object".into(),
                    ));
                }
                let mut out = Vec::new();
                for key in &desc.arguments {
                    let bytes = s3.get(bucket, key).await.map_err(|e| {
                        InvokeError::Backend(format!("reading s3://{bucket}/{key}: {e}"))
                    })?;
                    out.push((Some(key.clone()), bytes));
                }
                out
            }
            Storage::Broker => {
                let broker = self.broker.as_ref().ok_or_else(|| {
                    InvokeError::NotConfigured("no message broker is configured".into())
                })?;
                let queue = desc.queue_id.as_deref().ok_or_else(|| {
                    InvokeError::BadRequest("storage broker needs queue_id".into())
                })?;
                let count = desc.arguments.len().max(1);
                let (messages, taken) = broker
                    .take(queue, count, self.input_wait)
                    .await
                    .map_err(|e| InvokeError::Backend(format!("reading queue {queue}: {e}")))?;
                *receipt = Some(taken);
                // Unnamed messages carry the arguments in order.
                messages
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| (m.name.or_else(|| desc.arguments.get(i).cloned()), m.body))
                    .collect()
            }
            Storage::File => {
                if !self.allow_local_files {
                    return Err(InvokeError::BadRequest(
                        "storage file is disabled on this runner".into(),
                    ));
                }
                let mut out = Vec::new();
                for path in &desc.arguments {
                    let bytes = tokio::fs::read(path)
                        .await
                        .map_err(|e| InvokeError::Backend(format!("reading {path}: {e}")))?;
                    out.push((Some(path.clone()), bytes));
                }
                out
            }
        };
        metrics.read_input_from_backend_ms = ms(t);
        let input_bytes: usize = raw.iter().map(|(_, b)| b.len()).sum();

        // Parse (CPU work: off the async workers). Inline inputs are named by the caller, so a
        // name the kernel does not have is a mistake, not a position.
        let t = Instant::now();
        let inline = desc.inputs.clone();
        if let Some(inline) = &inline
            && let Some(bad) = inline
                .keys()
                .find(|k| !name.inputs().iter().any(|i| i.name.eq_ignore_ascii_case(k)))
        {
            let known: Vec<&str> = name.inputs().iter().map(|i| i.name).collect();
            return Err(InvokeError::BadRequest(format!(
                "inputs.{bad}: {} has no such input (inputs: {})",
                name.as_str(),
                known.join(", ")
            )));
        }
        let inputs = tokio::task::spawn_blocking(move || parse_inputs(inline, raw, in_format))
            .await
            .map_err(task_failed)??;
        metrics.parse_input_ms = ms(t);
        let input_total_size_mb = if input_bytes > 0 {
            input_bytes as f64 / 1e6
        } else {
            inputs.iter().map(|i| i.table.byte_len()).sum::<usize>() as f64 / 1e6
        };

        // Load the accelerator module of this kernel (built once per process, then cached) and
        // run it, both compute-bound: one trip off the async workers.
        let bytes: usize = inputs.iter().map(|i| i.table.byte_len()).sum();
        let registry = self.registry.clone();
        let (load_ms, execution): (f64, Execution) = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            registry.prepare(name.as_str(), mode, bytes)?;
            let load_ms = ms(t);
            registry
                .exec(name.as_str(), inputs, &params, mode)
                .map(|e| (load_ms, e))
        })
        .await
        .map_err(task_failed)??;
        metrics.load_model_libs_ms = load_ms;
        metrics.run_kernel_ms = execution.run_kernel_ms;

        // Encode (CPU work: off the async workers) and push.
        let t = Instant::now();
        let want_data =
            desc.return_outputs || results == Storage::Inline || results == Storage::Broker;
        let encode_files = matches!(results, Storage::S3 | Storage::File);
        let (execution, data, encoded) = tokio::task::spawn_blocking(move || {
            let data: Option<BTreeMap<String, Value>> = want_data.then(|| {
                execution
                    .outputs
                    .iter()
                    .map(|(n, t)| (n.clone(), table_json(t)))
                    .collect()
            });
            let encoded: Vec<(String, Vec<u8>, usize, usize)> = if encode_files {
                execution
                    .outputs
                    .iter()
                    .map(|(n, t)| {
                        (
                            n.clone(),
                            formats::encode(t, out_format),
                            t.rows(),
                            t.cols(),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (execution, data, encoded)
        })
        .await
        .map_err(task_failed)?;
        metrics.output_ms = ms(t);

        let t = Instant::now();
        let mut outputs = Vec::new();
        match results {
            Storage::S3 => {
                let s3 = self.s3.as_ref().ok_or_else(|| {
                    InvokeError::NotConfigured("no S3 endpoint is configured".into())
                })?;
                let bucket = desc.bucket_id.as_deref().ok_or_else(|| {
                    InvokeError::BadRequest("results to s3 need bucket_id".into())
                })?;
                let prefix = desc
                    .output
                    .clone()
                    .unwrap_or_else(|| format!("results_req_{uuid}"));
                for (name, body, rows, cols) in encoded {
                    let key = format!("{prefix}/{name}.{}", out_format.extension());
                    s3.put(bucket, &key, body, out_format.content_type())
                        .await
                        .map_err(|e| {
                            InvokeError::Backend(format!("writing s3://{bucket}/{key}: {e}"))
                        })?;
                    outputs.push(OutputInfo {
                        name,
                        rows,
                        cols,
                        location: format!("s3://{bucket}/{key}"),
                    });
                }
            }
            Storage::File => {
                let base = desc.output.clone().ok_or_else(|| {
                    InvokeError::BadRequest("storage file needs output (a path)".into())
                })?;
                for (i, (name, body, rows, cols)) in encoded.into_iter().enumerate() {
                    let path = output_path(&base, &name, i == 0, out_format);
                    tokio::fs::write(&path, body)
                        .await
                        .map_err(|e| InvokeError::Backend(format!("writing {path}: {e}")))?;
                    outputs.push(OutputInfo {
                        name,
                        rows,
                        cols,
                        location: path,
                    });
                }
            }
            Storage::Broker => {
                let broker = self.broker.as_ref().ok_or_else(|| {
                    InvokeError::NotConfigured("no message broker is configured".into())
                })?;
                let queue = format!("kernels_results_{uuid}");
                let message = serde_json::json!({
                    "uuid": uuid,
                    "kernel_name": execution.kernel.as_str(),
                    "kernel_mode": execution.backend.as_str(),
                    "info": execution.info,
                    "data": data,
                });
                broker
                    .publish(&queue, message.to_string().into_bytes())
                    .await
                    .map_err(|e| InvokeError::Backend(format!("publishing to {queue}: {e}")))?;
                for (name, t) in &execution.outputs {
                    outputs.push(OutputInfo {
                        name: name.clone(),
                        rows: t.rows(),
                        cols: t.cols(),
                        location: format!("amqp:{queue}"),
                    });
                }
            }
            Storage::Inline => {
                for (name, t) in &execution.outputs {
                    outputs.push(OutputInfo {
                        name: name.clone(),
                        rows: t.rows(),
                        cols: t.cols(),
                        location: "inline".into(),
                    });
                }
            }
        }
        metrics.push_output_to_backend_ms = ms(t);
        metrics.total_ms = ms(total);
        Ok(InvocationResult {
            request_uuid: uuid,
            kernel_name: execution.kernel.as_str().into(),
            kernel_mode: execution.backend.as_str().into(),
            device: execution.device,
            status: "completed".into(),
            input_total_size_mb,
            outputs,
            info: execution.info,
            data: if desc.return_outputs || results == Storage::Inline {
                data
            } else {
                None
            },
            metrics,
        })
    }
}

fn task_failed(e: tokio::task::JoinError) -> InvokeError {
    InvokeError::Internal(format!("kernel task failed: {e}"))
}

/// Decodes the inline and fetched inputs (format by `in_format`, the name's extension, or content).
fn parse_inputs(
    inline: Option<BTreeMap<String, Vec<Vec<f64>>>>,
    raw: Vec<(Option<String>, Vec<u8>)>,
    in_format: Option<Format>,
) -> Result<Vec<NamedInput>, InvokeError> {
    let mut inputs = Vec::new();
    for (name, rows) in inline.unwrap_or_default() {
        let table = inline_table(&name, &rows)?;
        inputs.push(NamedInput::new(name, table));
    }
    for (name, bytes) in raw {
        let format = in_format
            .or_else(|| name.as_deref().and_then(Format::from_name))
            .unwrap_or_else(|| Format::sniff(&bytes));
        let table = formats::decode(&bytes, format).map_err(|e| {
            InvokeError::Kernel(KernelError::Format(format!(
                "{}: {e}",
                name.as_deref().unwrap_or("input")
            )))
        })?;
        inputs.push(NamedInput { name, table });
    }
    Ok(inputs)
}

/// A request uuid names queues and objects: 1 to 200 of `[A-Za-z0-9_.:-]`.
fn check_uuid(uuid: &str) -> Result<(), InvokeError> {
    let ok = !uuid.is_empty()
        && uuid.len() <= 200
        && uuid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InvokeError::BadRequest(format!(
            "uuid '{}' must be 1 to 200 letters, digits or _ . : -",
            uuid.chars().take(64).collect::<String>()
        )))
    }
}

/// The primary output goes to `base`; the others to `base` with `.{name}` before the extension.
pub fn output_path(base: &str, name: &str, primary: bool, format: Format) -> String {
    if primary {
        return base.to_string();
    }
    match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() && !stem.ends_with('/') => {
            format!("{stem}.{name}.{}", format.extension())
        }
        _ => format!("{base}.{name}.{}", format.extension()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_parses_with_params_separated() {
        // D6.7 4.2.3.2.4, the bundle's data_description of the k-means example.
        let body = br#"{"queue_id": "3a047bd2", "bucket_id": "3a047bd2", "arguments": ["position", "labels"],
            "storage": "broker", "total_size_MB": 7.35, "mode": "gpu", "w": 200, "iterations": 2,
            "uuid": "1465c479-03d7-4123-8329-fac9fa580256"}"#;
        let d = DataDescription::from_json(body).unwrap();
        assert_eq!(d.storage(), Storage::Broker);
        assert_eq!(d.arguments, vec!["position", "labels"]);
        let p = d.kernel_params();
        assert_eq!(p.usize(&["w"]).unwrap(), Some(200));
        assert_eq!(p.usize(&["iterations"]).unwrap(), Some(2));
        assert_eq!(p.f64(&["total_size_MB"]).unwrap(), None);
        // The original driver posts the description as a JSON-encoded string.
        let s = serde_json::to_vec(&String::from_utf8_lossy(body)).unwrap();
        assert_eq!(DataDescription::from_json(&s).unwrap().uuid, d.uuid);
        assert!(DataDescription::from_json(b"[1]").is_err());
        assert!(DataDescription::from_json(b"{").is_err());
        assert!(DataDescription::from_json(br#"{"storage": "ftp"}"#).is_err());
    }

    #[test]
    fn output_paths() {
        assert_eq!(
            output_path("out/r.csv", "labels", true, Format::Csv),
            "out/r.csv"
        );
        assert_eq!(
            output_path("out/r.csv", "centroids", false, Format::Csv),
            "out/r.centroids.csv"
        );
        assert_eq!(output_path("r", "d", false, Format::Binary), "r.d.bin");
    }

    #[test]
    fn ragged_inline_rows_are_rejected() {
        let e = inline_table("x", &[vec![1.0, 2.0], vec![3.0]]).unwrap_err();
        assert!(e.to_string().contains("row 1"), "{e}");
    }
}
