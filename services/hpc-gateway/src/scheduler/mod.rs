//! Batch scheduler dialects (Slurm, PBS/Torque) as pure code.
//!
//! Nothing here performs I/O: a [`Scheduler`] builds shell command lines (every
//! dynamic part quoted with [`shell_quote`]) and parses the stdout of those
//! commands into typed values. The SSH transport runs the commands elsewhere.
//!
//! Compared with the original gateway (originals.md 6.2) the states are honest:
//! a failed job is `failed`, not `completed`; cancelled, timed-out and
//! out-of-memory jobs get their own states instead of killing the watcher, and
//! an unrecognised scheduler word becomes [`JobState::Unknown`] with the raw
//! word kept, never a panic and never a dropped job.

pub mod pbs;
pub mod script;
pub mod slurm;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which batch system an infrastructure runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchedulerKind {
    Slurm,
    Pbs,
}

/// Honest job states, serialised in snake case ("out_of_memory", "node_fail", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    OutOfMemory,
    NodeFail,
    Preempted,
    /// The scheduler said something this module does not know; see `raw_state`.
    Unknown,
}

impl JobState {
    /// True once the job will not change any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running | Self::Unknown)
    }

    /// True only for a job that ran to a successful end.
    pub fn is_success(self) -> bool {
        self == Self::Completed
    }
}

/// Resources of a job, mapped to `#SBATCH` / `#PBS` directives. All optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobResources {
    pub nodes: Option<u32>,
    pub tasks: Option<u32>,
    pub tasks_per_node: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// Memory per node in MiB (Slurm `--mem`; PBS `-l mem` is per job, so it gets `memory_mb * nodes`).
    pub memory_mb: Option<u64>,
    /// minutes
    pub time_limit_minutes: Option<u32>,
    pub partition: Option<String>,
    pub job_name: Option<String>,
}

impl JobResources {
    /// Checks names and limits before they reach a directive line.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let counts = [
            ("nodes", self.nodes),
            ("tasks", self.tasks),
            ("tasks_per_node", self.tasks_per_node),
            ("cpus_per_task", self.cpus_per_task),
            ("time_limit_minutes", self.time_limit_minutes),
        ];
        for (field, value) in counts {
            if value == Some(0) {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        if self.memory_mb == Some(0) {
            return Err(invalid("memory_mb", "must be greater than 0"));
        }
        for (field, value) in [("partition", &self.partition), ("job_name", &self.job_name)] {
            if let Some(value) = value {
                validate_name(field, value)?;
            }
        }
        Ok(())
    }
}

/// Names end up unquoted in directives, so they are restricted to `[A-Za-z0-9._-]`.
fn validate_name(field: &str, value: &str) -> Result<(), SchedulerError> {
    if value.is_empty() || value.len() > 128 {
        return Err(invalid(field, "must be 1 to 128 characters"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(
            field,
            format!("character {c:?} not allowed (only A-Za-z0-9._-)"),
        ));
    }
    if value.starts_with('-') {
        // would read as an option to the scheduler's own parser
        return Err(invalid(field, "must not start with '-'"));
    }
    Ok(())
}

/// Output paths go into directives that neither Slurm nor PBS unquote reliably,
/// so anything a shell or the directive parser could split or expand is refused.
/// `allowed_dollar` lists the only `$NAME` placeholders accepted (PBS's `$PBS_JOBID`).
pub(crate) fn validate_output_path(
    field: &str,
    path: &str,
    allowed_dollar: &[&str],
) -> Result<(), SchedulerError> {
    if path.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '`' | '\\'))
    {
        return Err(invalid(
            field,
            format!("character {c:?} not allowed in a path"),
        ));
    }
    if path.starts_with('-') {
        return Err(invalid(field, "must not start with '-'"));
    }
    let mut rest = path;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos + 1..];
        match allowed_dollar.iter().find(|p| after.starts_with(**p)) {
            Some(p) => rest = &after[p.len()..],
            None => {
                return Err(invalid(
                    field,
                    "'$' only allowed in the scheduler's job id placeholder",
                ));
            }
        }
    }
    Ok(())
}

/// What the scheduler says about one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobReport {
    pub scheduler_id: String,
    pub state: JobState,
    /// the scheduler's own word, e.g. "OUT_OF_MEMORY", "C"
    pub raw_state: String,
    pub exit_code: Option<i32>,
    /// signal that killed it, if any
    pub signal: Option<i32>,
    pub reason: Option<String>,
    pub partition: Option<String>,
    pub submit_time: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub stdout_path: Option<String>,
    pub stderr_path: Option<String>,
}

impl JobReport {
    /// A report with only the id and state filled in.
    pub fn new(
        scheduler_id: impl Into<String>,
        state: JobState,
        raw_state: impl Into<String>,
    ) -> Self {
        Self {
            scheduler_id: scheduler_id.into(),
            state,
            raw_state: raw_state.into(),
            exit_code: None,
            signal: None,
            reason: None,
            partition: None,
            submit_time: None,
            start_time: None,
            end_time: None,
            stdout_path: None,
            stderr_path: None,
        }
    }
}

/// Per-partition (per-queue) load of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartitionTelemetry {
    pub name: String,
    pub total_nodes: u32,
    pub avail_nodes: u32,
    pub total_cpus: u32,
    pub avail_cpus: u32,
    pub running_jobs: u32,
    pub queued_jobs: u32,
}

impl PartitionTelemetry {
    pub(crate) fn empty(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            total_nodes: 0,
            avail_nodes: 0,
            total_cpus: 0,
            avail_cpus: 0,
            running_jobs: 0,
            queued_jobs: 0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchedulerError {
    #[error("cannot parse {what}: {detail}")]
    Parse { what: &'static str, detail: String },
    #[error("invalid {field}: {detail}")]
    Invalid { field: String, detail: String },
}

pub(crate) fn invalid(field: &str, detail: impl Into<String>) -> SchedulerError {
    SchedulerError::Invalid {
        field: field.to_owned(),
        detail: detail.into(),
    }
}

pub(crate) fn parse_error(what: &'static str, detail: impl Into<String>) -> SchedulerError {
    SchedulerError::Parse {
        what,
        detail: detail.into(),
    }
}

/// One scheduler dialect: commands to run (as single shell command lines, every
/// dynamic part shell-quoted) and parsers of their stdout.
///
/// Status and cancel commands may exit non-zero and write to stderr when some
/// ids are unknown to the scheduler (`Invalid job id specified`,
/// `qstat: Unknown Job Id`); callers should parse stdout whatever the exit
/// status and treat ids absent from the result as gone.
pub trait Scheduler: Send + Sync {
    fn kind(&self) -> SchedulerKind;
    /// Submission reading the script from stdin (the caller pipes the script into it).
    fn submit_command(&self) -> String;
    /// Scheduler id from the submit command's stdout.
    fn parse_submit(&self, stdout: &str) -> Result<String, SchedulerError>;
    /// ONE command that reports all the given jobs (no ids: every job the scheduler knows).
    fn status_command(&self, scheduler_ids: &[String]) -> String;
    /// Reports for the jobs found in the output (jobs the scheduler no longer knows are absent).
    fn parse_status(&self, stdout: &str) -> Result<Vec<JobReport>, SchedulerError>;
    /// Fallback for ids absent from `status_command`; None if there is none (or no ids).
    fn finished_command(&self, scheduler_ids: &[String]) -> Option<String>;
    fn parse_finished(&self, stdout: &str) -> Result<Vec<JobReport>, SchedulerError>;
    fn cancel_command(&self, scheduler_id: &str) -> String;
    /// Directive lines for the resources plus output file directives (newline-terminated).
    fn directives(
        &self,
        resources: &JobResources,
        stdout_path: &str,
        stderr_path: &str,
    ) -> Result<String, SchedulerError>;
    /// Commands whose outputs, in this order, feed `parse_telemetry`.
    fn telemetry_commands(&self) -> Vec<String>;
    /// Per-partition totals; jobs are counted in their own partition.
    fn parse_telemetry(
        &self,
        outputs: &[String],
    ) -> Result<Vec<PartitionTelemetry>, SchedulerError>;
    /// Whether a watcher can stop polling this job. Usually `state.is_terminal()`, but
    /// PBS can say "finished" (C/F/X) without saying how (no exit status, as the
    /// slurm-wlm-torque wrappers do): such a report is `Unknown` yet finished.
    fn is_finished(&self, report: &JobReport) -> bool {
        report.state.is_terminal()
    }
}

/// The dialect for a scheduler kind.
pub fn scheduler_for(kind: SchedulerKind) -> Box<dyn Scheduler> {
    match kind {
        SchedulerKind::Slurm => Box::new(slurm::Slurm),
        SchedulerKind::Pbs => Box::new(pbs::Pbs),
    }
}

/// Quotes one word for a POSIX shell (single quotes; `'` becomes `'\''`); the
/// empty string becomes `''`. Inside single quotes nothing is special, so
/// `$(...)`, backticks and newlines stay inert.
pub fn shell_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// `minutes` as `[D-]HH:MM:SS` (Slurm's and PBS's walltime syntax; PBS wants no days).
pub(crate) fn format_duration(minutes: u32, with_days: bool) -> String {
    let (hours, mins) = (minutes / 60, minutes % 60);
    if with_days && hours >= 24 {
        format!("{}-{:02}:{:02}:00", hours / 24, hours % 24, mins)
    } else {
        format!("{hours:02}:{mins:02}:00")
    }
}

/// Values that mean "no value" in scheduler output.
pub(crate) fn meaningful(value: &str) -> Option<String> {
    let v = value.trim();
    match v {
        "" | "None" | "(null)" | "Unknown" | "N/A" | "n/a" => None,
        _ => Some(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_is_inert() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("abc"), "'abc'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn states_terminal_and_success() {
        assert!(!JobState::Queued.is_terminal());
        assert!(!JobState::Running.is_terminal());
        assert!(!JobState::Unknown.is_terminal());
        assert!(JobState::Failed.is_terminal());
        assert!(JobState::Timeout.is_terminal());
        assert!(JobState::Completed.is_success());
        assert!(!JobState::Failed.is_success());
        assert_eq!(
            serde_json::to_string(&JobState::OutOfMemory).unwrap(),
            "\"out_of_memory\""
        );
        assert_eq!(
            serde_json::to_string(&JobState::NodeFail).unwrap(),
            "\"node_fail\""
        );
        assert_eq!(
            serde_json::to_string(&SchedulerKind::Pbs).unwrap(),
            "\"pbs\""
        );
    }

    #[test]
    fn resources_are_validated() {
        let ok = JobResources {
            job_name: Some("kalman-1.x_y".into()),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let bad = JobResources {
            job_name: Some("a b".into()),
            ..Default::default()
        };
        assert!(
            matches!(bad.validate(), Err(SchedulerError::Invalid { field, .. }) if field == "job_name")
        );
        let bad = JobResources {
            partition: Some("x;rm".into()),
            ..Default::default()
        };
        assert!(
            matches!(bad.validate(), Err(SchedulerError::Invalid { field, .. }) if field == "partition")
        );
        let bad = JobResources {
            nodes: Some(0),
            ..Default::default()
        };
        assert!(
            matches!(bad.validate(), Err(SchedulerError::Invalid { field, .. }) if field == "nodes")
        );
        let bad = JobResources {
            memory_mb: Some(0),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(serde_json::from_str::<JobResources>(r#"{"gpus": 1}"#).is_err());
    }

    #[test]
    fn output_paths_are_validated() {
        assert!(validate_output_path("stdout_path", "/home/u/job-%j.out", &[]).is_ok());
        assert!(validate_output_path("stdout_path", "/o/$PBS_JOBID.out", &["PBS_JOBID"]).is_ok());
        for bad in ["", "/a b", "/a\nb", "/a'b", "/$HOME/x", "/a\0b", "-o"] {
            assert!(
                validate_output_path("stdout_path", bad, &["PBS_JOBID"]).is_err(),
                "{bad:?}"
            );
        }
    }

    /// Parsers see whatever a remote shell prints: random mixes of their own
    /// tokens, multi-byte characters and huge numbers must never panic.
    #[test]
    fn parsers_never_panic() {
        const TOKENS: &[&str] = &[
            "JobId=",
            "Job Id:",
            "JobState=",
            "ExitCode=",
            "9:",
            "-1",
            "\t",
            " ",
            "    ",
            " = ",
            "=",
            "|",
            ",",
            "\n",
            "é",
            "日本",
            "C",
            "R",
            "exit_status",
            "Exit_status",
            "271",
            "99999999999999999999",
            "state",
            "free",
            "np",
            "ppn=",
            ":",
            "[",
            "]",
            ".",
            "*",
            "idle",
            "RUNNING",
            "PENDING",
            "walltime",
            "Resource_List.",
        ];
        let mut seed: u64 = 0x5eed;
        for _ in 0..3000 {
            let mut input = String::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                input.push_str(TOKENS[(seed >> 33) as usize % TOKENS.len()]);
            }
            seed = seed.wrapping_add(7);
            for kind in [SchedulerKind::Slurm, SchedulerKind::Pbs] {
                let s = scheduler_for(kind);
                let _ = s.parse_submit(&input);
                let _ = s.parse_status(&input);
                let _ = s.parse_finished(&input);
                let _ = s.parse_telemetry(&[input.clone(), input.clone()]);
                let _ = s.parse_telemetry(&[input.clone(), input.clone(), input.clone()]);
                let _ = s.directives(&JobResources::default(), &input, "e");
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(90, true), "01:30:00");
        assert_eq!(format_duration(1563, true), "1-02:03:00");
        assert_eq!(format_duration(1563, false), "26:03:00");
    }
}
