//! Jobs: the request forms `POST /job` accepts, the stored job record, and the pure step that
//! turns a request into a job script and the remote command that submits it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::scheduler::script::{self, ServiceTemplate};
use crate::scheduler::{JobReport, JobResources, JobState, Scheduler, shell_quote};

/// Body of `POST /job`: the original's JobRequest (`services` + `params`), or a user's own
/// batch script (`script`), or the path of a script already on the cluster (`script_path`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    pub infrastructure: String,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Accepted for compatibility: the gateway refreshes every watched job each watch interval.
    #[serde(default)]
    pub watch_period: Option<f64>,
    #[serde(default)]
    pub script: Option<String>,
    #[serde(default)]
    pub script_path: Option<String>,
    #[serde(default)]
    pub resources: JobResources,
}

/// A job as stored and answered (a superset of the original's JobStatus
/// `{id, scheduler_id, infrastructure, status}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub id: Uuid,
    pub infrastructure: String,
    pub scheduler_id: String,
    pub status: JobState,
    /// The scheduler's own state word.
    #[serde(default)]
    pub raw_state: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub services: Vec<String>,
    /// Directory on the cluster holding the job's files (`{id}.sh`, `{id}.out`, `{id}.err`,
    /// `{id}.exit`): the infrastructure's work directory.
    pub job_dir: String,
    pub stdout_path: String,
    pub stderr_path: String,
    pub submitted_at: i64,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    pub updated_at: i64,
    /// Set when a cancel was sent and the scheduler has not confirmed it yet.
    #[serde(default)]
    pub cancel_requested: bool,
    /// The scheduler says the job is over (even where it cannot say how: state `unknown`).
    #[serde(default)]
    pub finished: bool,
}

type Shown = (
    JobState,
    Option<i32>,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

impl Job {
    /// Whether the watcher still has to look at this job.
    pub fn is_watched(&self) -> bool {
        !self.finished && !self.status.is_terminal()
    }

    fn shown(&self) -> Shown {
        (
            self.status,
            self.exit_code,
            self.signal,
            self.reason.clone(),
            self.started_at.clone(),
            self.ended_at.clone(),
            self.finished,
        )
    }

    /// Takes the scheduler's report (`finished`: the scheduler considers the job over); true when
    /// anything the API shows changed.
    pub fn apply(&mut self, report: &JobReport, finished: bool, now: i64) -> bool {
        let before = self.shown();
        self.finished = finished || report.state.is_terminal();
        self.status = report.state;
        self.raw_state.clone_from(&report.raw_state);
        self.exit_code = report.exit_code.or(self.exit_code);
        self.signal = report.signal.or(self.signal);
        if report
            .reason
            .as_deref()
            .is_some_and(|r| !r.is_empty() && r != "None")
        {
            self.reason.clone_from(&report.reason);
        }
        if report.start_time.is_some() {
            self.started_at.clone_from(&report.start_time);
        }
        if report.end_time.is_some() && self.finished {
            self.ended_at.clone_from(&report.end_time);
        }
        let changed = before != self.shown();
        if changed {
            self.updated_at = now;
        }
        changed
    }

    /// The job's script recorded `code` as its exit status: the outcome where the scheduler
    /// reported none.
    pub fn apply_recorded_exit(&mut self, code: i32, now: i64) {
        self.exit_code = Some(code);
        self.status = if code == 0 {
            JobState::Completed
        } else {
            JobState::Failed
        };
        self.finished = true;
        self.updated_at = now;
    }
}

/// A job ready to submit: its script and the one remote command that stores and submits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub services: Vec<String>,
    pub job_dir: String,
    pub stdout_path: String,
    pub stderr_path: String,
    pub script: String,
    /// Reads the script from stdin, keeps it as `{id}.sh` in the work directory, submits it.
    pub command: String,
}

/// Suffix of the file where a job's script records its own exit status.
pub const EXIT_CODE_SUFFIX: &str = ".exit";

/// Builds the submission of `request` as job `id` under `work_dir`. Errors are the client's.
pub fn prepare(
    id: Uuid,
    request: &JobRequest,
    work_dir: &str,
    scheduler: &dyn Scheduler,
    catalogue: &[ServiceTemplate],
) -> Result<Submission, String> {
    let forms = [
        !request.services.is_empty(),
        request.script.is_some(),
        request.script_path.is_some(),
    ];
    if forms.iter().filter(|f| **f).count() != 1 {
        return Err(
            "give exactly one of services (with params), script, or script_path".to_owned(),
        );
    }
    let job_dir = work_dir.trim_end_matches('/').to_owned();
    // Relative to the work directory, where the submission runs.
    let (stdout_name, stderr_name) = (format!("{id}.out"), format!("{id}.err"));
    let (body, params, mut resources, services) = if !request.services.is_empty() {
        let (template, params) = resolve_services(&request.services, &request.params, catalogue)?;
        (
            template.body.clone(),
            params,
            template.resources.clone(),
            request.services.clone(),
        )
    } else if let Some(user_script) = &request.script {
        if user_script.trim().is_empty() {
            return Err("script: empty".to_owned());
        }
        if !request.params.is_empty() {
            return Err("params: only with services".to_owned());
        }
        // Our header carries the interpreter and the directives; the user's shebang would be a
        // second one in the middle of the file.
        let body = match user_script.strip_prefix("#!") {
            Some(rest) => rest
                .split_once('\n')
                .map(|(_, body)| body)
                .unwrap_or("")
                .to_owned(),
            None => user_script.clone(),
        };
        (
            body,
            Default::default(),
            JobResources::default(),
            Vec::new(),
        )
    } else {
        let path = request.script_path.as_deref().unwrap_or_default();
        if path.is_empty() || path.contains(['\n', '\0']) {
            return Err("script_path: a path on the cluster".to_owned());
        }
        (
            format!("bash {}\n", shell_quote(path)),
            Default::default(),
            JobResources::default(),
            Vec::new(),
        )
    };
    let body = format!("{}{body}", exit_code_trap(&job_dir, &id));
    // Request resources override the template's, field by field.
    merge_resources(&mut resources, &request.resources);
    if resources.job_name.is_none() {
        resources.job_name = Some(format!("serrano-{}", id.simple()));
    }
    let script = script::render_script(
        scheduler,
        &resources,
        &stdout_name,
        &stderr_name,
        &params,
        &body,
    )
    .map_err(|err| err.to_string())?;
    let quoted_dir = shell_quote(&job_dir);
    // One login shell and the submit command: the directory exists after the first job, and
    // bash builtins (read, printf) store the script, so a submission forks no cat or mkdir.
    let command = format!(
        "{{ cd {quoted_dir} 2>/dev/null || {{ mkdir -p {quoted_dir} && cd {quoted_dir}; }}; }} \
         && {{ IFS= read -r -d '' script || true; }} && printf '%s' \"$script\" > {id}.sh \
         && {} {id}.sh",
        scheduler.submit_command()
    );
    Ok(Submission {
        services,
        stdout_path: format!("{job_dir}/{stdout_name}"),
        stderr_path: format!("{job_dir}/{stderr_name}"),
        job_dir,
        script,
        command,
    })
}

/// The shell expression of `job_dir` on the cluster (relative ones are under the login
/// directory, which is where both the submission and `$HOME` point).
fn remote_dir_expression(job_dir: &str) -> String {
    if job_dir.starts_with('/') {
        shell_quote(job_dir)
    } else {
        format!("\"$HOME\"/{}", shell_quote(job_dir))
    }
}

/// First line of every job body: the script records its exit status next to its outputs, so
/// the outcome is known even where the scheduler does not report it (PBS front ends that show
/// every finished job as `C`). A job killed by a signal leaves no file: its outcome stays as the
/// scheduler reported it.
fn exit_code_trap(job_dir: &str, id: &Uuid) -> String {
    let target = format!("{}/{id}{EXIT_CODE_SUFFIX}", remote_dir_expression(job_dir));
    // The trap text is single-quoted, so the target's own quotes are escaped for it.
    format!(
        "trap {} EXIT\n",
        shell_quote(&format!("echo $? > {target}"))
    )
}

/// Command printing the recorded exit status of a job (empty output when there is none).
pub fn read_exit_code_command(job: &Job) -> String {
    format!(
        "cat {}/{}{EXIT_CODE_SUFFIX} 2>/dev/null || true",
        remote_dir_expression(&job.job_dir),
        job.id
    )
}

fn resolve_services(
    services: &[String],
    params: &Map<String, Value>,
    catalogue: &[ServiceTemplate],
) -> Result<(ServiceTemplate, std::collections::BTreeMap<String, String>), String> {
    if let [single] = services
        && let Some(template) = catalogue.iter().find(|t| &t.name == single)
        && !script::builtin_catalogue()
            .iter()
            .any(|b| &b.name == single)
    {
        // A configured catalogue entry of its own.
        let values = script::validate_params(template, params).map_err(|err| err.to_string())?;
        return Ok((template.clone(), values));
    }
    script::resolve_original_request(services, params).map_err(|err| err.to_string())
}

fn merge_resources(base: &mut JobResources, over: &JobResources) {
    macro_rules! take {
        ($($field:ident),*) => { $( if over.$field.is_some() { base.$field.clone_from(&over.$field); } )* };
    }
    take!(
        nodes,
        tasks,
        tasks_per_node,
        cpus_per_task,
        memory_mb,
        time_limit_minutes,
        partition,
        job_name
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{SchedulerKind, scheduler_for};

    fn request(script: &str) -> JobRequest {
        serde_json::from_value(serde_json::json!({"infrastructure": "c", "script": script}))
            .unwrap()
    }

    #[test]
    fn a_user_script_is_stored_and_submitted_by_path() {
        let id = Uuid::parse_str("fdf45855-1299-47f1-8ea6-98be8d89030b").unwrap();
        let slurm = scheduler_for(SchedulerKind::Slurm);
        let submission = prepare(
            id,
            &request("#!/bin/sh\necho hi\n"),
            "jobs",
            slurm.as_ref(),
            &[],
        )
        .unwrap();
        assert_eq!(submission.job_dir, "jobs");
        assert_eq!(
            submission.command,
            format!(
                "{{ cd 'jobs' 2>/dev/null || {{ mkdir -p 'jobs' && cd 'jobs'; }}; }} && \
                 {{ IFS= read -r -d '' script || true; }} && printf '%s' \"$script\" > {id}.sh && \
                 sbatch --parsable {id}.sh"
            )
        );
        assert!(submission.script.starts_with("#!/bin/bash\n"));
        assert!(!submission.script.contains("#!/bin/sh"));
        assert!(submission.script.contains("echo hi"));
        assert!(submission.script.contains(&format!(
            "trap 'echo $? > \"$HOME\"/'\\''jobs'\\''/{id}.exit' EXIT"
        )));
        assert!(
            submission.script.contains(&format!("--output={id}.out")),
            "{}",
            submission.script
        );
        assert_eq!(submission.stdout_path, format!("jobs/{id}.out"));
        assert_eq!(submission.stderr_path, format!("jobs/{id}.err"));
    }

    #[test]
    fn exactly_one_form_of_job_is_accepted() {
        let slurm = scheduler_for(SchedulerKind::Slurm);
        let both: JobRequest = serde_json::from_value(
            serde_json::json!({"infrastructure": "c", "script": "true", "script_path": "/x.sh"}),
        )
        .unwrap();
        assert!(
            prepare(Uuid::new_v4(), &both, "w", slurm.as_ref(), &[])
                .unwrap_err()
                .contains("exactly one")
        );
        let none: JobRequest =
            serde_json::from_value(serde_json::json!({"infrastructure": "c"})).unwrap();
        assert!(prepare(Uuid::new_v4(), &none, "w", slurm.as_ref(), &[]).is_err());
        assert!(
            prepare(Uuid::new_v4(), &request("  \n"), "w", slurm.as_ref(), &[])
                .unwrap_err()
                .contains("empty")
        );
    }

    #[test]
    fn the_recorded_exit_status_decides_where_the_scheduler_cannot() {
        let mut job = Job {
            id: Uuid::new_v4(),
            infrastructure: "c".into(),
            scheduler_id: "7".into(),
            status: JobState::Running,
            raw_state: "R".into(),
            exit_code: None,
            signal: None,
            reason: None,
            services: vec![],
            job_dir: "w/x".into(),
            stdout_path: "w/x/stdout.log".into(),
            stderr_path: "w/x/stderr.log".into(),
            submitted_at: 1,
            started_at: None,
            ended_at: None,
            updated_at: 1,
            cancel_requested: false,
            finished: false,
        };
        let report = JobReport::new("7", JobState::Unknown, "C");
        assert!(job.apply(&report, true, 2));
        assert!(job.finished && !job.is_watched());
        job.apply_recorded_exit(4, 3);
        assert_eq!(job.status, JobState::Failed);
        assert_eq!(job.exit_code, Some(4));
    }
}
