//! PBS dialect (Torque, OpenPBS, and Debian's `slurm-wlm-torque` wrappers):
//! `qsub`, `qstat -f`, `qstat -x -f`, `qdel`, `#PBS` directives, and telemetry
//! from `pbsnodes -a`, `qstat -f` and `qstat -Q`.
//!
//! `qstat -f` prints blocks: `Job Id: 123.server` then indented `key = value`
//! lines; a long value continues on lines starting with a tab. The Slurm-backed
//! wrapper differs: `Job Id:\t123`, attributes indented with a tab, every
//! finished job is `C` with no exit status, `mtime` is the start and `ctime` the
//! end. A line is therefore a new attribute when it looks like `key = `, and a
//! continuation otherwise.
//!
//! Exit statuses: 0 is success; above 256 the job was killed by signal
//! (status − 256; SIGTERM is what `qdel` sends, so 271 is cancelled); negative
//! values are the server's own codes, which differ between Torque (`exit_status`:
//! −10 memory, −11 walltime, −12 CPU time) and OpenPBS (`Exit_status`: −26/−27
//! memory, −28/−29 CPU time/walltime).

use std::collections::{BTreeMap, BTreeSet};

use super::slurm::truncate;
use super::{
    JobReport, JobResources, JobState, PartitionTelemetry, Scheduler, SchedulerError,
    SchedulerKind, format_duration, meaningful, parse_error, shell_quote, validate_output_path,
};

/// The PBS dialect (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pbs;

/// One `Job Id:` block (or `pbsnodes` node block) of attributes, in order.
#[derive(Debug, Default)]
struct Block {
    name: String,
    /// `Job Id:` followed by a tab: the slurm-wlm-torque wrapper
    wrapper: bool,
    attrs: Vec<(String, String)>,
}

impl Block {
    fn get(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// `key = value` with a PBS attribute name (`Resource_List.nodes`, `resources_available.ncpus`).
fn split_attr(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(" =")?;
    let key_ok = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
    (key_ok && (value.is_empty() || value.starts_with(' '))).then(|| (key, value.trim()))
}

/// Splits output into blocks. `header` recognises a block's first line and
/// returns its name; lines that are neither headers nor indented end a block.
fn blocks(stdout: &str, header: impl Fn(&str) -> Option<(String, bool)>) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for line in stdout.lines() {
        if let Some((name, wrapper)) = header(line) {
            out.extend(current.take());
            current = Some(Block {
                name,
                wrapper,
                attrs: Vec::new(),
            });
        } else if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            let Some(block) = current.as_mut() else {
                continue;
            };
            match split_attr(line.trim()) {
                Some((k, v)) => block.attrs.push((k.to_owned(), v.to_owned())),
                None => {
                    // continuation of a wrapped value: the tab is not part of it
                    if let Some((_, v)) = block.attrs.last_mut() {
                        v.push_str(line.trim());
                    }
                }
            }
        } else {
            out.extend(current.take());
        }
    }
    out.extend(current);
    out
}

fn job_blocks(stdout: &str) -> Vec<Block> {
    blocks(stdout, |line| {
        let rest = line.strip_prefix("Job Id:")?;
        let id = rest.trim();
        (!id.is_empty()).then(|| (id.to_owned(), rest.starts_with('\t')))
    })
}

/// `HH:MM:SS` (or `MM:SS`, `SS`) in seconds.
fn seconds(value: &str) -> Option<u64> {
    value.trim().split(':').try_fold(0u64, |acc, part| {
        acc.checked_mul(60)?.checked_add(part.parse::<u64>().ok()?)
    })
}

/// Maps a PBS state letter and exit status to a [`JobState`], an exit code and a signal.
pub fn pbs_state(
    letter: &str,
    exit_status: Option<i64>,
    openpbs: bool,
) -> (JobState, Option<i32>, Option<i32>) {
    match letter.trim() {
        "Q" | "H" | "W" | "T" => (JobState::Queued, None, None),
        // E = exiting after having run; S/U suspended; B = array job begun
        "R" | "E" | "S" | "U" | "B" => (JobState::Running, None, None),
        "C" | "F" | "X" => match exit_status {
            // finished, but the server did not say how (the wrappers never do)
            None => (JobState::Unknown, None, None),
            Some(0) => (JobState::Completed, Some(0), None),
            Some(code) if code > 256 => {
                let signal = i32::try_from(code - 256).ok();
                let state = if signal == Some(15) {
                    JobState::Cancelled
                } else {
                    JobState::Failed
                };
                (state, None, signal)
            }
            Some(code) => {
                let state = match (openpbs, code) {
                    (false, -10) | (true, -26 | -27) => JobState::OutOfMemory,
                    (false, -11 | -12) | (true, -28 | -29) => JobState::Timeout,
                    _ => JobState::Failed,
                };
                (state, i32::try_from(code).ok(), None)
            }
        },
        _ => (JobState::Unknown, None, None),
    }
}

fn report_from_block(block: &Block) -> JobReport {
    let letter = block.get("job_state").unwrap_or("").trim();
    let (exit_raw, openpbs) = match (block.get("Exit_status"), block.get("exit_status")) {
        (Some(v), _) => (Some(v), true),
        (None, v) => (v, false),
    };
    let exit = exit_raw.and_then(|v| v.trim().parse::<i64>().ok());
    let (mut state, exit_code, signal) = pbs_state(letter, exit, openpbs);
    // killed by a signal after using all its walltime: the walltime limit did it
    if signal.is_some() {
        let used = block.get("resources_used.walltime").and_then(seconds);
        let limit = block.get("Resource_List.walltime").and_then(seconds);
        if let (Some(used), Some(limit)) = (used, limit)
            && limit > 0
            && used >= limit
        {
            state = JobState::Timeout;
        }
    }
    let mut report = JobReport::new(block.name.clone(), state, letter);
    report.exit_code = exit_code;
    report.signal = signal;
    let get = |key: &str| block.get(key).and_then(meaningful);
    report.reason = get("comment");
    report.partition = get("queue");
    report.submit_time = get("qtime");
    let finished = matches!(letter, "C" | "F" | "X");
    if block.wrapper {
        report.start_time = get("mtime");
        report.end_time = get("ctime").filter(|_| finished);
    } else {
        report.start_time = get("start_time").or_else(|| get("stime"));
        report.end_time = get("comp_time")
            .or_else(|| get("obittime"))
            .filter(|_| finished);
    }
    // `host:/path`: the path is what the caller can fetch
    let path = |key: &str| {
        get(key).map(|p| match p.split_once(':') {
            Some((host, rest)) if !host.contains('/') => rest.to_owned(),
            _ => p,
        })
    };
    report.stdout_path = path("Output_Path");
    report.stderr_path = path("Error_Path");
    report
}

/// Reports for every `Job Id:` block; other lines are skipped.
pub fn parse_qstat_full(stdout: &str) -> Vec<JobReport> {
    job_blocks(stdout).iter().map(report_from_block).collect()
}

/// CPUs a job asked for: `Resource_List.ncpus`, else `nodes=N:ppn=M` (Torque), else 1.
fn job_cpus(block: &Block) -> u32 {
    if let Some(n) = block
        .get("Resource_List.ncpus")
        .and_then(|v| v.trim().parse().ok())
    {
        return n;
    }
    if let Some(nodes) = block.get("Resource_List.nodes") {
        // "2:ppn=4+1:ppn=2" → 10; a host name instead of a count means one node
        let total: u32 = nodes
            .split('+')
            .map(|spec| {
                let mut parts = spec.split(':');
                let count = parts
                    .next()
                    .and_then(|c| c.trim().parse().ok())
                    .unwrap_or(1u32);
                let ppn = parts
                    .find_map(|p| p.trim().strip_prefix("ppn=")?.parse().ok())
                    .unwrap_or(1u32);
                count.saturating_mul(ppn)
            })
            .fold(0u32, u32::saturating_add);
        if total > 0 {
            return total;
        }
    }
    1
}

/// Telemetry from `pbsnodes -a`, `qstat -f` and optionally `qstat -Q`.
///
/// PBS has no node → queue map everywhere: a node belongs to the queue named by
/// its `queue` attribute (OpenPBS) or by one of its `properties` (the Torque
/// convention); a node with neither serves every queue. With no queue known at
/// all, the nodes are reported as one partition named `all`.
pub fn parse_pbs_telemetry(
    pbsnodes: &str,
    qstat: &str,
    queues: Option<&str>,
) -> Result<Vec<PartitionTelemetry>, SchedulerError> {
    let nodes = blocks(pbsnodes, |line| {
        let name = line.trim_end();
        let header = !name.is_empty() && !line.starts_with([' ', '\t']) && !name.contains(' ');
        header.then(|| (name.to_owned(), false))
    });
    // a column-0 line without attributes (a warning, garbage) is not a node
    let nodes: Vec<Block> = nodes
        .into_iter()
        .filter(|n| n.get("state").is_some())
        .collect();
    let jobs = job_blocks(qstat);
    let mut names: BTreeSet<String> = BTreeSet::new();
    for line in queues.unwrap_or("").lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !first.is_empty()
            && first != "Queue"
            && !first.starts_with('-')
            && !first.starts_with("server")
        {
            names.insert(first.to_owned());
        }
    }
    names.extend(
        jobs.iter()
            .filter_map(|j| j.get("queue"))
            .map(|q| q.trim().to_owned()),
    );
    names.extend(
        nodes
            .iter()
            .filter_map(|n| n.get("queue"))
            .map(|q| q.trim().to_owned()),
    );
    names.retain(|n| !n.is_empty());
    if names.is_empty() {
        names.insert("all".to_owned());
    }
    let mut parts: BTreeMap<String, PartitionTelemetry> = names
        .iter()
        .map(|n| (n.clone(), PartitionTelemetry::empty(n)))
        .collect();
    for node in &nodes {
        let cpus_raw = node
            .get("np")
            .or_else(|| node.get("resources_available.ncpus"))
            .or_else(|| node.get("pcpus"))
            .unwrap_or("0");
        let cpus: u32 = cpus_raw.trim().parse().map_err(|_| {
            parse_error(
                "pbsnodes",
                format!("bad cpu count {cpus_raw:?} for node {}", node.name),
            )
        })?;
        let state = node.get("state").unwrap_or("").trim();
        let free = state == "free";
        let mut member: Vec<String> = match node.get("queue") {
            Some(q) => vec![q.trim().to_owned()],
            None => node
                .get("properties")
                .unwrap_or("")
                .split([',', ' '])
                .filter(|p| names.contains(*p))
                .map(str::to_owned)
                .collect(),
        };
        if member.is_empty() {
            member = names.iter().cloned().collect();
        }
        for name in member {
            if let Some(p) = parts.get_mut(&name) {
                p.total_nodes += 1;
                p.total_cpus = p.total_cpus.saturating_add(cpus);
                p.avail_nodes += u32::from(free);
            }
        }
    }
    let mut used: BTreeMap<String, u32> = BTreeMap::new();
    for job in &jobs {
        let Some(queue) = job.get("queue").map(str::trim) else {
            continue;
        };
        let Some(part) = parts.get_mut(queue) else {
            continue;
        };
        match pbs_state(job.get("job_state").unwrap_or(""), None, false).0 {
            JobState::Running => {
                part.running_jobs += 1;
                let cpus = used.entry(queue.to_owned()).or_default();
                *cpus = cpus.saturating_add(job_cpus(job));
            }
            JobState::Queued => part.queued_jobs += 1,
            _ => {}
        }
    }
    for (name, part) in parts.iter_mut() {
        part.avail_cpus = part
            .total_cpus
            .saturating_sub(used.get(name).copied().unwrap_or(0));
    }
    Ok(parts.into_values().collect())
}

/// `123`, `123.server`, `123[].server` (array) — the shapes `qsub` prints.
fn looks_like_job_id(s: &str) -> bool {
    let (num, rest) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let rest = rest.strip_prefix('[').map_or(Some(rest), |r| {
        r.split_once(']')
            .filter(|(idx, _)| idx.bytes().all(|b| b.is_ascii_digit()))
            .map(|(_, after)| after)
    });
    let Some(rest) = rest else { return false };
    !num.is_empty()
        && (rest.is_empty()
            || rest.strip_prefix('.').is_some_and(|host| {
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            }))
}

impl Scheduler for Pbs {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Pbs
    }

    fn submit_command(&self) -> String {
        "qsub".to_owned()
    }

    /// The last line shaped like a job id (warnings may precede it).
    fn parse_submit(&self, stdout: &str) -> Result<String, SchedulerError> {
        stdout
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| looks_like_job_id(l))
            .map(str::to_owned)
            .ok_or_else(|| {
                parse_error(
                    "qsub output",
                    format!("no job id in {:?}", truncate(stdout)),
                )
            })
    }

    fn status_command(&self, scheduler_ids: &[String]) -> String {
        let ids: Vec<String> = scheduler_ids.iter().map(|id| shell_quote(id)).collect();
        format!("qstat -f {}", ids.join(" ")).trim_end().to_owned()
    }

    fn parse_status(&self, stdout: &str) -> Result<Vec<JobReport>, SchedulerError> {
        Ok(parse_qstat_full(stdout))
    }

    /// OpenPBS's history (`-x`). Torque reads `-x` as XML output, which
    /// `parse_finished` does not understand (no job blocks: an empty list); there
    /// `qstat -f` already shows completed jobs for `keep_completed`.
    fn finished_command(&self, scheduler_ids: &[String]) -> Option<String> {
        if scheduler_ids.is_empty() {
            return None;
        }
        let ids: Vec<String> = scheduler_ids.iter().map(|id| shell_quote(id)).collect();
        Some(format!("qstat -x -f {}", ids.join(" ")))
    }

    fn parse_finished(&self, stdout: &str) -> Result<Vec<JobReport>, SchedulerError> {
        Ok(parse_qstat_full(stdout))
    }

    fn cancel_command(&self, scheduler_id: &str) -> String {
        format!("qdel {}", shell_quote(scheduler_id))
    }

    fn directives(
        &self,
        r: &JobResources,
        stdout_path: &str,
        stderr_path: &str,
    ) -> Result<String, SchedulerError> {
        r.validate()?;
        validate_output_path("stdout_path", stdout_path, &["PBS_JOBID"])?;
        validate_output_path("stderr_path", stderr_path, &["PBS_JOBID"])?;
        let mut lines: Vec<String> = Vec::new();
        if let Some(name) = &r.job_name {
            lines.push(format!("-N {name}"));
        }
        if let Some(queue) = &r.partition {
            lines.push(format!("-q {queue}"));
        }
        // ppn = processors per node: tasks per node (given, or spread over the nodes) × cpus per task
        let per_node_tasks = r
            .tasks_per_node
            .or_else(|| r.tasks.map(|t| t.div_ceil(r.nodes.unwrap_or(1))));
        let ppn = match (per_node_tasks, r.cpus_per_task) {
            (None, None) => None,
            (t, c) => Some(t.unwrap_or(1).saturating_mul(c.unwrap_or(1))),
        };
        match (r.nodes, ppn) {
            (None, None) => {}
            (nodes, None) => lines.push(format!("-l nodes={}", nodes.unwrap_or(1))),
            (nodes, Some(ppn)) => lines.push(format!("-l nodes={}:ppn={ppn}", nodes.unwrap_or(1))),
        }
        if let Some(minutes) = r.time_limit_minutes {
            lines.push(format!("-l walltime={}", format_duration(minutes, false)));
        }
        if let Some(mb) = r.memory_mb {
            // JobResources memory is per node; PBS `mem` is for the whole job
            lines.push(format!(
                "-l mem={}mb",
                mb.saturating_mul(u64::from(r.nodes.unwrap_or(1)))
            ));
        }
        lines.push(format!("-o {stdout_path}"));
        lines.push(format!("-e {stderr_path}"));
        Ok(lines.iter().map(|l| format!("#PBS {l}\n")).collect())
    }

    fn telemetry_commands(&self) -> Vec<String> {
        vec![
            "pbsnodes -a".to_owned(),
            "qstat -f".to_owned(),
            "qstat -Q".to_owned(),
        ]
    }

    /// Outputs of `pbsnodes -a`, `qstat -f` and, optionally, `qstat -Q`.
    fn parse_telemetry(
        &self,
        outputs: &[String],
    ) -> Result<Vec<PartitionTelemetry>, SchedulerError> {
        match outputs {
            [nodes, jobs] => parse_pbs_telemetry(nodes, jobs, None),
            [nodes, jobs, queues] => parse_pbs_telemetry(nodes, jobs, Some(queues)),
            _ => Err(parse_error(
                "telemetry",
                format!("expected 2 or 3 outputs, got {}", outputs.len()),
            )),
        }
    }

    /// C/F/X is final even when no exit status says how it ended.
    fn is_finished(&self, report: &JobReport) -> bool {
        report.state.is_terminal() || matches!(report.raw_state.as_str(), "C" | "F" | "X")
    }
}

#[cfg(test)]
#[path = "pbs_tests.rs"]
mod tests;
