//! The host probe (`Probe.Host`): this machine's own counters, read from procfs and `statvfs`.
//!
//! `/proc/stat` gives the per-CPU times (in clock ticks) and the boot time (`btime`),
//! `/proc/meminfo` the memory figures, `/proc/net/dev` the interface counters (loopback
//! excluded), `statvfs` the root filesystem. The parsers are pure; [`read_host`] does the file
//! system work and runs on the blocking pool.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{
    HostMonitoring, Inventory, MonitoringData, NodeCapacity, NodeInfo, NodeInventory, NodeLabels,
};
use crate::nodes::{CpuTimes, Filesystem, Memory, Network, NodeCounters, NodeMetrics};
use crate::source::{Source, SourceError, Target};

/// Where the host probe reads from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// The procfs mount (a copy of its files in tests).
    pub proc_dir: PathBuf,
    /// The filesystem reported as the node's storage.
    pub filesystem: PathBuf,
    /// `os-release` file giving the OS image (`PRETTY_NAME`).
    pub os_release: PathBuf,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            proc_dir: PathBuf::from("/proc"),
            filesystem: PathBuf::from("/"),
            os_release: PathBuf::from("/etc/os-release"),
        }
    }
}

/// Parsed `/proc/stat`: per-CPU times in seconds and the boot time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcStat {
    pub cpus: BTreeMap<String, CpuTimes>,
    pub boot_time: Option<f64>,
}

/// Parses `/proc/stat` with `ticks_per_second` clock ticks (`USER_HZ`).
pub fn parse_proc_stat(text: &str, ticks_per_second: f64) -> Result<ProcStat, String> {
    let mut stat = ProcStat::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(key) = fields.next() else { continue };
        if key == "btime" {
            let value = fields
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| format!("invalid btime line {line:?}"))?;
            stat.boot_time = Some(value);
            continue;
        }
        // "cpu" alone is the total; "cpu0", "cpu1", ... are the CPUs.
        let Some(label) = key.strip_prefix("cpu").filter(|l| !l.is_empty()) else {
            continue;
        };
        if !label.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let ticks: Vec<f64> = fields
            .map(|v| v.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("invalid cpu line {line:?}"))?;
        // user nice system idle [iowait irq softirq steal [guest guest_nice]]; guest time is
        // already counted in user and nice.
        if ticks.len() < 4 {
            return Err(format!("cpu line with {} fields: {line:?}", ticks.len()));
        }
        let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
        let idle = at(3) + at(4);
        let used = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
        stat.cpus.insert(
            label.to_owned(),
            CpuTimes {
                idle: idle / ticks_per_second,
                used: used / ticks_per_second,
            },
        );
    }
    if stat.cpus.is_empty() {
        return Err("no cpuN lines".to_owned());
    }
    Ok(stat)
}

/// Parses `/proc/meminfo` (values in kB, i.e. KiB).
pub fn parse_meminfo(text: &str) -> Memory {
    let mut memory = Memory::default();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(value) = parts.next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let bytes = match parts.next() {
            Some("kB") => value * 1024.0,
            _ => value,
        };
        let slot = match key.trim() {
            "MemTotal" => &mut memory.total,
            "MemFree" => &mut memory.free,
            "MemAvailable" => &mut memory.available,
            "Buffers" => &mut memory.buffers,
            "Cached" => &mut memory.cached,
            _ => continue,
        };
        *slot = Some(bytes);
    }
    memory
}

/// Parses `/proc/net/dev`, summing every interface but `lo`.
pub fn parse_net_dev(text: &str) -> Result<Network, String> {
    let mut total = Network::default();
    // Two header lines, then "  iface: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame
    // rx_compressed rx_multicast tx_bytes tx_packets tx_errs tx_drop ...".
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let values: Vec<f64> = counters
            .split_whitespace()
            .map(str::parse::<f64>)
            .collect::<Result<_, _>>()
            .map_err(|_| format!("invalid interface line {line:?}"))?;
        if values.len() < 12 {
            return Err(format!("interface line with {} fields", values.len()));
        }
        total.receive_bytes += values[0];
        total.receive_packets += values[1];
        total.receive_errs += values[2];
        total.receive_drop += values[3];
        total.transmit_bytes += values[8];
        total.transmit_packets += values[9];
        total.transmit_errs += values[10];
        total.transmit_drop += values[11];
    }
    Ok(total)
}

/// `PRETTY_NAME` of an os-release file, unquoted.
pub fn parse_os_release(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix("PRETTY_NAME=")?;
        Some(value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The machine architecture in Kubernetes' naming (`amd64`, `arm64`), so that host and
/// Kubernetes inventories compare.
pub fn architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Everything one reading of the host gives.
#[derive(Debug, Clone, PartialEq)]
pub struct HostReading {
    pub hostname: String,
    pub counters: NodeCounters,
    pub kernel_version: String,
    pub os_image: String,
}

fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path)
        .map_err(|err| SourceError::unavailable(format!("cannot read {}: {err}", path.display())))
}

/// Reads the host now (blocking: file reads and `statvfs`).
pub fn read_host(config: &HostConfig) -> Result<HostReading, SourceError> {
    let proc_dir = &config.proc_dir;
    let ticks = rustix::param::clock_ticks_per_second();
    // USER_HZ is 100 on every Linux build; a zero would be a broken auxv, never divide by it.
    let ticks = if ticks == 0 { 100.0 } else { ticks as f64 };
    let stat = parse_proc_stat(&read(&proc_dir.join("stat"))?, ticks)
        .map_err(|err| SourceError::unavailable(format!("/proc/stat: {err}")))?;
    let memory = parse_meminfo(&read(&proc_dir.join("meminfo"))?);
    let network = parse_net_dev(&read(&proc_dir.join("net/dev"))?)
        .map_err(|err| SourceError::unavailable(format!("/proc/net/dev: {err}")))?;
    let vfs = rustix::fs::statvfs(&config.filesystem).map_err(|err| {
        SourceError::unavailable(format!("statvfs {}: {err}", config.filesystem.display()))
    })?;
    let block = vfs.f_frsize as f64;
    let filesystem = Filesystem {
        size: vfs.f_blocks as f64 * block,
        free: vfs.f_bfree as f64 * block,
        avail: vfs.f_bavail as f64 * block,
    };
    let hostname = read(&proc_dir.join("sys/kernel/hostname"))?
        .trim()
        .to_owned();
    let kernel_version = read(&proc_dir.join("sys/kernel/osrelease"))?
        .trim()
        .to_owned();
    // Not every image has an os-release file: "Linux" is then the honest answer.
    let os_image = std::fs::read_to_string(&config.os_release)
        .ok()
        .and_then(|text| parse_os_release(&text))
        .unwrap_or_else(|| "Linux".to_owned());
    Ok(HostReading {
        hostname,
        counters: NodeCounters {
            boot_time_seconds: stat.boot_time,
            running_pods: None,
            cpus: stat.cpus,
            memory,
            filesystem: Some(filesystem),
            network: Some(network),
        },
        kernel_version,
        os_image,
    })
}

impl HostReading {
    pub fn metrics(&self, timestamp: i64) -> NodeMetrics {
        self.counters
            .clone()
            .into_metrics(&self.hostname, timestamp)
    }

    /// The inventory entry of this host: a worker with no accelerators.
    pub fn inventory(&self) -> NodeInventory {
        let memory = self.counters.memory.total.unwrap_or(0.0);
        let storage = self.counters.filesystem.map_or(0.0, |fs| fs.size);
        NodeInventory {
            node_name: self.hostname.clone(),
            node_role: "worker".to_owned(),
            node_labels: NodeLabels::default(),
            node_capacity: NodeCapacity {
                cpu: self.counters.cpus.len() as f64,
                memory: format!("{memory:.0}"),
                total_gpu: 0,
                total_fpga: 0,
                node_storage: format!("{storage:.0}"),
            },
            node_info: NodeInfo {
                architecture: architecture().to_owned(),
                kernel_version: self.kernel_version.clone(),
                os_image: self.os_image.clone(),
                operating_system: "linux".to_owned(),
            },
        }
    }
}

/// The host probe's source.
pub struct HostSource {
    config: HostConfig,
}

impl HostSource {
    pub fn new(config: HostConfig) -> Self {
        Self { config }
    }

    async fn read(&self, timeout: Duration) -> Result<HostReading, SourceError> {
        let config = self.config.clone();
        let task = tokio::task::spawn_blocking(move || read_host(&config));
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(reading)) => reading,
            Ok(Err(join)) => Err(SourceError::unavailable(format!(
                "reading the host failed: {join}"
            ))),
            Err(_) => Err(SourceError::unavailable(format!(
                "reading the host took more than {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

#[async_trait]
impl Source for HostSource {
    async fn inventory(&self, timeout: Duration) -> Result<Inventory, SourceError> {
        let reading = self.read(timeout).await?;
        Ok(Inventory::Nodes {
            nodes: vec![reading.inventory()],
        })
    }

    async fn monitor(
        &self,
        timeout: Duration,
        target: Target,
    ) -> Result<MonitoringData, SourceError> {
        // A host runs no applications the probe knows of: `applications` is empty.
        if !target.resources() {
            return Ok(MonitoringData::Host(HostMonitoring { nodes: None }));
        }
        let reading = self.read(timeout).await?;
        Ok(MonitoringData::Host(HostMonitoring {
            nodes: Some(vec![reading.metrics(crate::unix_now())]),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const STAT: &str = "cpu  2255 34 2290 22625563 6290 127 456 0 0 0\n\
        cpu0 1132 34 1441 11311718 3675 127 438 5 7 0\n\
        cpu1 1123 0 849 11313845 2614 0 18 0 0 0\n\
        intr 114930548 113199788 3 0 5 263 0 4 [...]\n\
        ctxt 1990473\n\
        btime 1062191376\n\
        processes 2915\n";

    #[test]
    fn proc_stat_gives_seconds_per_cpu_and_boot_time() {
        let stat = parse_proc_stat(STAT, 100.0).unwrap();
        assert_eq!(stat.boot_time, Some(1_062_191_376.0));
        assert_eq!(stat.cpus.len(), 2);
        let cpu0 = stat.cpus["0"];
        // idle + iowait; user + nice + system + irq + softirq + steal (guest excluded).
        assert!((cpu0.idle - (11_311_718.0 + 3675.0) / 100.0).abs() < 1e-6);
        assert!((cpu0.used - (1132.0 + 34.0 + 1441.0 + 127.0 + 438.0 + 5.0) / 100.0).abs() < 1e-6);
        // Old kernels have only four fields.
        let stat = parse_proc_stat("cpu0 1 2 3 4\n", 1.0).unwrap();
        assert_eq!(
            stat.cpus["0"],
            CpuTimes {
                idle: 4.0,
                used: 6.0
            }
        );
        assert!(parse_proc_stat("cpu0 1 2\n", 100.0).is_err());
        assert!(parse_proc_stat("cpu0 1 x 3 4\n", 100.0).is_err());
        assert!(parse_proc_stat("btime\ncpu0 1 2 3 4\n", 100.0).is_err());
        assert!(parse_proc_stat("intr 1\n", 100.0).is_err());
    }

    #[test]
    fn meminfo_in_bytes() {
        let memory = parse_meminfo(
            "MemTotal:        8136112 kB\nMemFree:          393936 kB\nMemAvailable:    6592540 kB\n\
             Buffers:          102964 kB\nCached:          5898960 kB\nSwapCached:            0 kB\n\
             HugePages_Total:       0\nbroken line\n",
        );
        assert_eq!(memory.total, Some(8_136_112.0 * 1024.0));
        assert_eq!(memory.free, Some(393_936.0 * 1024.0));
        assert_eq!(memory.available, Some(6_592_540.0 * 1024.0));
        assert_eq!(memory.buffers, Some(102_964.0 * 1024.0));
        assert_eq!(memory.cached, Some(5_898_960.0 * 1024.0));
    }

    #[test]
    fn net_dev_sums_all_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n  \
            eth0: 200 2 1 3 0 0 0 0 300 4 5 6 0 0 0 0\n\
            wlan0:50 1 0 0 0 0 0 0 70 1 0 1 0 0 0 0\n";
        let net = parse_net_dev(text).unwrap();
        assert_eq!(net.receive_bytes, 250.0);
        assert_eq!(net.receive_packets, 3.0);
        assert_eq!(net.receive_errs, 1.0);
        assert_eq!(net.receive_drop, 3.0);
        assert_eq!(net.transmit_bytes, 370.0);
        assert_eq!(net.transmit_packets, 5.0);
        assert_eq!(net.transmit_errs, 5.0);
        assert_eq!(net.transmit_drop, 7.0);
        assert!(parse_net_dev("h\nh\neth0: 1 2 3\n").is_err());
        assert!(parse_net_dev("h\nh\neth0: 1 2 3 x 0 0 0 0 0 0 0 0\n").is_err());
    }

    #[test]
    fn os_release_pretty_name() {
        assert_eq!(
            parse_os_release("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
                .as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(parse_os_release("NAME=x\n"), None);
    }

    #[test]
    fn reads_this_machine() {
        let reading = read_host(&HostConfig::default()).unwrap();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let processors = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        assert_eq!(reading.counters.cpus.len(), processors);
        let total = reading.counters.memory.total.unwrap();
        assert!(total > 64.0 * 1024.0 * 1024.0, "MemTotal {total}");
        assert!(reading.counters.memory.available.unwrap() <= total);
        let fs = reading.counters.filesystem.unwrap();
        assert!(fs.size > 0.0 && fs.free <= fs.size && fs.avail <= fs.free);
        let boot = reading.counters.boot_time_seconds.unwrap();
        assert!(boot > 1.0e9 && boot < crate::unix_now() as f64);
        assert!(!reading.hostname.is_empty());
        assert!(!reading.kernel_version.is_empty());
        let metrics = reading.metrics(7);
        assert_eq!(metrics.node_name, reading.hostname);
        assert_eq!(metrics.cpu["node_cpus"], processors as f64);
        let inventory = reading.inventory();
        assert_eq!(inventory.node_capacity.cpu, processors as f64);
        assert_eq!(inventory.node_capacity.memory, format!("{total:.0}"));
    }
}
