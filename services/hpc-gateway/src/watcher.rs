//! The job watcher: every interval, ONE batched scheduler query per infrastructure for all of
//! its unfinished jobs (plus one accounting query for jobs the live query no longer knows), and
//! the changes written back with compare-and-swap. Jobs live in the datastore, so after a
//! gateway restart the watcher simply finds them again by scheduler id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serrano_datastore::{TypedCas, Versioned};

use crate::infrastructure::Infrastructure;
use crate::jobs::Job;
use crate::scheduler::{JobReport, JobState, scheduler_for};
use crate::{Gateway, unix_now};

/// Runs until `shutdown` fires.
pub async fn run(
    gateway: Arc<Gateway>,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(err) = refresh(&gateway).await {
            tracing::warn!(error = %err, "job refresh failed");
        }
    }
}

/// One refresh of every unfinished job.
pub async fn refresh(gateway: &Gateway) -> Result<(), String> {
    let jobs = gateway.jobs.list().await.map_err(|err| err.to_string())?;
    let mut by_infrastructure: HashMap<String, Vec<Versioned<Job>>> = HashMap::new();
    for job in jobs.into_iter().filter(|j| j.value.is_watched()) {
        by_infrastructure
            .entry(job.value.infrastructure.clone())
            .or_default()
            .push(job);
    }
    let refreshes = by_infrastructure
        .into_iter()
        .map(|(name, jobs)| async move {
            if let Err(err) = refresh_infrastructure(gateway, &name, jobs).await {
                tracing::warn!(infrastructure = %name, error = %err, "status query failed");
            }
        });
    futures::future::join_all(refreshes).await;
    Ok(())
}

async fn refresh_infrastructure(
    gateway: &Gateway,
    name: &str,
    jobs: Vec<Versioned<Job>>,
) -> Result<(), String> {
    let Some(infra) = gateway
        .infrastructures
        .get(name)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let infra = infra.value;
    let scheduler = scheduler_for(infra.scheduler);
    let ids: Vec<String> = jobs.iter().map(|j| j.value.scheduler_id.clone()).collect();
    let live = gateway
        .ssh
        .run(&infra, &scheduler.status_command(&ids), None)
        .await
        .map_err(|e| e.to_string())?;
    let mut reports: HashMap<String, JobReport> = scheduler
        .parse_status(&live.stdout)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| (r.scheduler_id.clone(), r))
        .collect();
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !reports.contains_key(*id))
        .cloned()
        .collect();
    if !missing.is_empty()
        && let Some(command) = scheduler.finished_command(&missing)
    {
        match gateway.ssh.run(&infra, &command, None).await {
            Ok(output) => match scheduler.parse_finished(&output.stdout) {
                Ok(finished) => {
                    reports.extend(finished.into_iter().map(|r| (r.scheduler_id.clone(), r)))
                }
                Err(err) => tracing::debug!(error = %err, "accounting output not understood"),
            },
            Err(err) => tracing::debug!(error = %err, "accounting query failed"),
        }
    }
    // "Missing" only means gone when the query demonstrably worked: a controller that is down
    // also answers with no jobs.
    let query_worked = live.success() || !reports.is_empty();
    for job in jobs {
        if let Some(report) = reports.get(&job.value.scheduler_id) {
            let finished = scheduler.is_finished(report);
            // Finished, but the scheduler cannot say how: the script's own record decides.
            let recorded = if finished && report.state == JobState::Unknown {
                recorded_exit_code(gateway, &infra, &job.value).await
            } else {
                None
            };
            store_report(gateway, job, report, finished, recorded).await?;
        } else if query_worked
            && unix_now().saturating_sub(job.value.submitted_at) > FORGOTTEN_AFTER_SECS
        {
            // Neither the live query nor accounting knows the job any more (a scheduler that
            // keeps no finished jobs): its own exit record settles it, or it ends `unknown`.
            let recorded = recorded_exit_code(gateway, &infra, &job.value).await;
            let mut report = JobReport::new(job.value.scheduler_id.clone(), JobState::Unknown, "");
            if recorded.is_none() {
                report.reason = Some(
                    "the scheduler no longer knows this job and it recorded no exit status"
                        .to_owned(),
                );
            }
            store_report(gateway, job, &report, true, recorded).await?;
        }
    }
    Ok(())
}

/// How long a job may be missing from every scheduler query before it counts as gone (new jobs
/// are visible at once; the margin covers a controller restart).
const FORGOTTEN_AFTER_SECS: i64 = 120;

async fn recorded_exit_code(gateway: &Gateway, infra: &Infrastructure, job: &Job) -> Option<i32> {
    let command = crate::jobs::read_exit_code_command(job);
    let output = gateway.ssh.run(infra, &command, None).await.ok()?;
    output.stdout.trim().parse().ok()
}

async fn store_report(
    gateway: &Gateway,
    mut job: Versioned<Job>,
    report: &JobReport,
    finished: bool,
    recorded_exit: Option<i32>,
) -> Result<(), String> {
    let id = job.value.id.to_string();
    for _ in 0..4 {
        let now = unix_now();
        let mut changed = job.value.apply(report, finished, now);
        if let Some(code) = recorded_exit {
            job.value.apply_recorded_exit(code, now);
            changed = true;
        }
        if !changed {
            return Ok(());
        }
        match gateway
            .jobs
            .update(&id, &job.value, job.mod_revision)
            .await
            .map_err(|e| e.to_string())?
        {
            TypedCas::Written(_) => {
                tracing::info!(job = %id, state = ?job.value.status, "job state changed");
                return Ok(());
            }
            TypedCas::Conflict(Some(current)) => job = current,
            TypedCas::Conflict(None) => return Ok(()),
        }
    }
    Ok(())
}
