//! Slurm dialect: `sbatch --parsable`, `scontrol -o show job`, `sacct -c`, `scancel`,
//! `#SBATCH` directives and the original gateway's `sinfo`/`squeue` telemetry.
//!
//! Status comes from `scontrol` because it is the one call that gives state,
//! reason, `ExitCode=N:S`, partition, times and output paths together, and on
//! the test cluster (servers.md 7) it keeps finished jobs for `MinJobAge`.
//! `scontrol show job` takes one id, so several ids become a `for` loop in one
//! command line (one SSH round trip). Once a job left `scontrol`, `sacct -c`
//! reads the `jobcomp/filetxt` log, which works without an accounting database.

use std::collections::BTreeMap;

use super::{
    JobReport, JobResources, JobState, PartitionTelemetry, Scheduler, SchedulerError,
    SchedulerKind, format_duration, meaningful, parse_error, shell_quote, validate_output_path,
};

/// Field order of [`Slurm::finished_command`]'s `sacct` call.
const SACCT_FIELDS: &str = "JobID,State,ExitCode,Partition,Start,End";
/// The original's sinfo fields, separated by `|` because `,` can occur inside values.
const SINFO_FORMAT: &str = "%n|%N|%R|%T|%c|%X|%Y|%Z|%m";
/// The original's squeue fields; `%N` (node list) and `%P` (several partitions of a
/// pending job) contain commas, hence `|`.
const SQUEUE_FORMAT: &str = "%A|%C|%D|%e|%H|%I|%J|%L|%m|%N|%P|%T|%Y";

/// The Slurm dialect (stateless).
#[derive(Debug, Clone, Copy, Default)]
pub struct Slurm;

/// Maps a Slurm state word (long `%T`/scontrol form, or squeue's short code) to a [`JobState`].
/// Only the first word counts ("CANCELLED by 0"); sacct's truncation mark `+` is ignored.
pub fn slurm_state(raw: &str) -> JobState {
    let word = raw
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches('+');
    match word.to_ascii_uppercase().as_str() {
        // not started yet: waiting, booting nodes, or put back in the queue
        "PENDING" | "PD" | "CONFIGURING" | "CF" | "REQUEUED" | "RQ" | "REQUEUE_HOLD"
        | "REQUEUE_FED" | "RESV_DEL_HOLD" => JobState::Queued,
        // started and holding an allocation, even while suspended or resizing
        "RUNNING" | "R" | "COMPLETING" | "CG" | "STAGE_OUT" | "SO" | "SUSPENDED" | "S"
        | "RESIZING" | "RS" | "SIGNALING" | "SI" | "STOPPED" | "ST" => JobState::Running,
        "COMPLETED" | "CD" => JobState::Completed,
        "FAILED" | "F" | "BOOT_FAIL" | "BF" | "DEADLINE" | "DL" | "SPECIAL_EXIT" | "SE" => {
            JobState::Failed
        }
        "CANCELLED" | "CA" | "REVOKED" | "RV" => JobState::Cancelled,
        "TIMEOUT" | "TO" => JobState::Timeout,
        "OUT_OF_MEMORY" | "OOM" => JobState::OutOfMemory,
        "NODE_FAIL" | "NF" => JobState::NodeFail,
        "PREEMPTED" | "PR" => JobState::Preempted,
        _ => JobState::Unknown,
    }
}

/// `ExitCode=N:S` → (exit code, signal); signal 0 means "not signalled".
fn parse_exit_code(value: &str) -> (Option<i32>, Option<i32>) {
    let mut parts = value.trim().splitn(2, ':');
    let code = parts.next().and_then(|c| c.parse::<i32>().ok());
    let signal = parts
        .next()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|s| *s != 0);
    (code, signal)
}

/// Splits one `scontrol -o` record into `Key=Value` pairs. Values may contain
/// spaces (`Command=`, `WorkDir=`, `StdOut=`), so a new pair starts only at a
/// space followed by `Key=` with Key like `[A-Z][A-Za-z0-9:/_]*` (Slurm keys start
/// upper-case; values such as `--opt=1` or `cpu=1,mem=1G` do not split).
pub fn split_key_values(record: &str) -> Vec<(&str, &str)> {
    let bytes = record.as_bytes();
    let mut starts: Vec<(usize, usize)> = Vec::new(); // (key start, '=' position)
    let mut i = 0;
    while i < bytes.len() {
        if (i == 0 || bytes[i - 1] == b' ') && bytes[i].is_ascii_uppercase() {
            let mut j = i + 1;
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b':' | b'/' | b'_'))
            {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'=' {
                starts.push((i, j));
                i = j + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut pairs = Vec::with_capacity(starts.len());
    for (n, &(key_start, eq)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(record.len(), |&(next, _)| next);
        // all indices sit on ASCII bytes, so slicing cannot split a character
        let key = record.get(key_start..eq).unwrap_or("");
        let value = record.get(eq + 1..end).unwrap_or("").trim_end();
        pairs.push((key, value));
    }
    pairs
}

/// Groups `scontrol show job` output into records: a record starts at a line
/// beginning with `JobId=`; indented lines (the multi-line format) continue it.
/// Anything else ("No jobs in the system", warnings, garbage) is skipped.
fn scontrol_records(stdout: &str) -> Vec<String> {
    let mut records = Vec::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if line.starts_with("JobId=") {
            records.extend(current.take());
            current = Some(line.trim().to_owned());
        } else if line.starts_with([' ', '\t']) && !line.trim().is_empty() {
            if let Some(rec) = current.as_mut() {
                rec.push(' ');
                rec.push_str(line.trim());
            }
        } else {
            records.extend(current.take());
        }
    }
    records.extend(current);
    records
}

fn report_from_scontrol(record: &str) -> Option<JobReport> {
    // first occurrence wins, so a stray continuation line cannot override a real field
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in split_key_values(record) {
        fields.entry(key).or_insert(value);
    }
    let id = fields
        .get("JobId")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())?;
    let raw_state = fields.get("JobState").copied().unwrap_or("").trim();
    let mut report = JobReport::new(id, slurm_state(raw_state), raw_state);
    if let Some(exit) = fields.get("ExitCode") {
        (report.exit_code, report.signal) = parse_exit_code(exit);
    }
    let get = |key: &str| fields.get(key).and_then(|v| meaningful(v));
    report.reason = get("Reason");
    report.partition = get("Partition");
    report.submit_time = get("SubmitTime");
    report.start_time = get("StartTime");
    // a pending job shows an estimated EndTime; only a finished one has a real end
    report.end_time = get("EndTime").filter(|_| report.state.is_terminal());
    report.stdout_path = get("StdOut");
    report.stderr_path = get("StdErr");
    Some(report)
}

/// Parses `sacct -P -n -o JobID,State,ExitCode,Partition,Start,End`. Header lines,
/// job steps (`123.batch`) and lines with fewer than three fields are skipped;
/// a job listed twice (requeued) keeps its last row.
pub fn parse_sacct(stdout: &str) -> Vec<JobReport> {
    let mut reports: Vec<JobReport> = Vec::new();
    for line in stdout.lines() {
        let cols: Vec<&str> = line.trim().split('|').collect();
        if cols.len() < 3 {
            continue;
        }
        let id = cols[0].trim();
        if id.is_empty() || id.eq_ignore_ascii_case("jobid") || id.contains('.') {
            continue;
        }
        let raw_state = cols[1].trim();
        let mut report = JobReport::new(id, slurm_state(raw_state), raw_state);
        (report.exit_code, report.signal) = parse_exit_code(cols[2]);
        let col = |n: usize| cols.get(n).and_then(|v| meaningful(v));
        report.partition = col(3);
        report.start_time = col(4);
        report.end_time = col(5);
        match reports
            .iter_mut()
            .find(|r| r.scheduler_id == report.scheduler_id)
        {
            Some(existing) => *existing = report,
            None => reports.push(report),
        }
    }
    reports
}

fn parse_u32(what: &'static str, value: &str, line: &str) -> Result<u32, SchedulerError> {
    value
        .trim()
        .trim_end_matches('+') // sinfo aggregates as "4+"
        .parse()
        .map_err(|_| parse_error(what, format!("bad number {value:?} in {line:?}")))
}

/// Splits a telemetry row on `|`, or on `,` for the original's comma formats
/// (where only the first and last columns are trustworthy).
fn split_row(line: &str, expected: usize) -> Option<Vec<&str>> {
    let cols: Vec<&str> = if line.contains('|') {
        line.split('|').collect()
    } else {
        line.split(',').collect()
    };
    (cols.len() >= expected).then_some(cols)
}

/// Telemetry from sinfo rows (one per node per partition) and squeue rows.
pub fn parse_sinfo_squeue(
    sinfo: &str,
    squeue: &str,
) -> Result<Vec<PartitionTelemetry>, SchedulerError> {
    let mut parts: BTreeMap<String, PartitionTelemetry> = BTreeMap::new();
    for line in sinfo.lines().filter(|l| !l.trim().is_empty()) {
        let cols = split_row(line.trim(), 9)
            .ok_or_else(|| parse_error("sinfo", format!("expected 9 fields in {line:?}")))?;
        let name = cols[2].trim().trim_end_matches('*');
        let state = cols[3].trim();
        let cpus = parse_u32("sinfo", cols[4], line)?;
        let part = parts
            .entry(name.to_owned())
            .or_insert_with(|| PartitionTelemetry::empty(name));
        part.total_nodes += 1;
        part.total_cpus = part.total_cpus.saturating_add(cpus);
        // only a plain "idle" node is free: "idle*" is not responding, "idle~" powered off
        if state.eq_ignore_ascii_case("idle") {
            part.avail_nodes += 1;
        }
    }
    let mut used: BTreeMap<String, u32> = BTreeMap::new();
    for line in squeue.lines().filter(|l| !l.trim().is_empty()) {
        let line = line.trim();
        let cols = split_row(line, 13)
            .ok_or_else(|| parse_error("squeue", format!("expected 13 fields in {line:?}")))?;
        let n = cols.len();
        let cpus = parse_u32("squeue", cols[1], line)?;
        // partition and state counted from the right: the node list before them may hold commas
        let (partitions, state) = if line.contains('|') {
            (cols[10], cols[11])
        } else {
            (cols[n - 3], cols[n - 2])
        };
        let state = slurm_state(state);
        // a pending job may wait in several partitions ("p1,p2"); it is queued in each
        for name in partitions
            .split(',')
            .map(|p| p.trim().trim_end_matches('*'))
            .filter(|p| !p.is_empty())
        {
            let part = parts
                .entry(name.to_owned())
                .or_insert_with(|| PartitionTelemetry::empty(name));
            match state {
                JobState::Running => {
                    part.running_jobs += 1;
                    let total = used.entry(name.to_owned()).or_default();
                    *total = total.saturating_add(cpus);
                }
                JobState::Queued => part.queued_jobs += 1,
                _ => {}
            }
        }
    }
    for (name, part) in parts.iter_mut() {
        part.avail_cpus = part
            .total_cpus
            .saturating_sub(used.get(name).copied().unwrap_or(0));
    }
    Ok(parts.into_values().collect())
}

/// Up to this many watched jobs are queried one by one; more are read from one listing of all
/// jobs (a fork per job and second would load the login node).
pub const PER_JOB_QUERY_LIMIT: usize = 16;

impl Scheduler for Slurm {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Slurm
    }

    fn submit_command(&self) -> String {
        "sbatch --parsable".to_owned()
    }

    /// Accepts `12345`, `12345;cluster` (the last such line wins, so warnings
    /// printed before it do not matter) and, leniently, `Submitted batch job 12345`.
    fn parse_submit(&self, stdout: &str) -> Result<String, SchedulerError> {
        for line in stdout.lines().rev().map(str::trim) {
            let id = line.strip_prefix("Submitted batch job ").unwrap_or(line);
            let id = id.split(';').next().unwrap_or("").trim();
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                return Ok(id.to_owned());
            }
        }
        Err(parse_error(
            "sbatch output",
            format!("no job id in {:?}", truncate(stdout)),
        ))
    }

    /// `scontrol show job` takes one id: a few watched jobs are asked for one by one (one
    /// process each); beyond [`PER_JOB_QUERY_LIMIT`] one `scontrol -o show job` lists every job
    /// the controller knows in a single process, and the caller picks its own.
    fn status_command(&self, scheduler_ids: &[String]) -> String {
        if scheduler_ids.is_empty() || scheduler_ids.len() > PER_JOB_QUERY_LIMIT {
            return "scontrol -o show job".to_owned();
        }
        let ids: Vec<String> = scheduler_ids.iter().map(|id| shell_quote(id)).collect();
        format!(
            "for j in {}; do scontrol -o show job \"$j\"; done",
            ids.join(" ")
        )
    }

    /// Every record with a `JobId=`; other lines ("No jobs in the system",
    /// warnings, garbage) are skipped. A record without `JobState=` is Unknown.
    fn parse_status(&self, stdout: &str) -> Result<Vec<JobReport>, SchedulerError> {
        Ok(scontrol_records(stdout)
            .iter()
            .filter_map(|r| report_from_scontrol(r))
            .collect())
    }

    /// `sacct -c` reads the jobcomp log (servers.md 7: no accounting database);
    /// on a cluster with slurmdbd the same flags without `-c` would be richer.
    fn finished_command(&self, scheduler_ids: &[String]) -> Option<String> {
        if scheduler_ids.is_empty() {
            return None;
        }
        Some(format!(
            "sacct -c -X -P -n -o {SACCT_FIELDS} -j {}",
            shell_quote(&scheduler_ids.join(","))
        ))
    }

    fn parse_finished(&self, stdout: &str) -> Result<Vec<JobReport>, SchedulerError> {
        Ok(parse_sacct(stdout))
    }

    fn cancel_command(&self, scheduler_id: &str) -> String {
        format!("scancel {}", shell_quote(scheduler_id))
    }

    fn directives(
        &self,
        r: &JobResources,
        stdout_path: &str,
        stderr_path: &str,
    ) -> Result<String, SchedulerError> {
        r.validate()?;
        // Slurm expands %j etc. itself but never `$VAR` in directives
        validate_output_path("stdout_path", stdout_path, &[])?;
        validate_output_path("stderr_path", stderr_path, &[])?;
        let mut lines: Vec<String> = Vec::new();
        let mut add = |opt: &str, value: Option<String>| {
            if let Some(v) = value {
                lines.push(format!("#SBATCH --{opt}={v}"));
            }
        };
        add("job-name", r.job_name.clone());
        add("partition", r.partition.clone());
        add("nodes", r.nodes.map(|v| v.to_string()));
        add("ntasks", r.tasks.map(|v| v.to_string()));
        add("ntasks-per-node", r.tasks_per_node.map(|v| v.to_string()));
        add("cpus-per-task", r.cpus_per_task.map(|v| v.to_string()));
        add("mem", r.memory_mb.map(|v| format!("{v}M")));
        add(
            "time",
            r.time_limit_minutes.map(|v| format_duration(v, true)),
        );
        add("output", Some(stdout_path.to_owned()));
        add("error", Some(stderr_path.to_owned()));
        Ok(lines.iter().map(|l| format!("{l}\n")).collect())
    }

    fn telemetry_commands(&self) -> Vec<String> {
        vec![
            format!("sinfo -h -o {}", shell_quote(SINFO_FORMAT)),
            format!("squeue -h -o {}", shell_quote(SQUEUE_FORMAT)),
        ]
    }

    fn parse_telemetry(
        &self,
        outputs: &[String],
    ) -> Result<Vec<PartitionTelemetry>, SchedulerError> {
        match outputs {
            [sinfo, squeue] => parse_sinfo_squeue(sinfo, squeue),
            _ => Err(parse_error(
                "telemetry",
                format!("expected 2 outputs, got {}", outputs.len()),
            )),
        }
    }
}

pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
#[path = "slurm_tests.rs"]
mod tests;
