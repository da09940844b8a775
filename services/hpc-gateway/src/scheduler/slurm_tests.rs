//! Tests of the Slurm dialect against outputs shaped like Slurm 22.05's.

use super::*;

const ONELINER: &str = include_str!("fixtures/scontrol_oneliner.txt");

fn by_id(reports: &[JobReport], id: &str) -> JobReport {
    reports
        .iter()
        .find(|r| r.scheduler_id == id)
        .cloned()
        .unwrap_or_else(|| panic!("job {id} missing"))
}

#[test]
fn several_jobs_in_one_output() {
    let reports = Slurm.parse_status(ONELINER).unwrap();
    let ids: Vec<&str> = reports.iter().map(|r| r.scheduler_id.as_str()).collect();
    assert_eq!(
        ids,
        ["101", "102", "103", "104", "105", "106", "107", "108"]
    );
}

#[test]
fn completed_job() {
    let r = by_id(&Slurm.parse_status(ONELINER).unwrap(), "101");
    assert_eq!(r.state, JobState::Completed);
    assert_eq!(r.raw_state, "COMPLETED");
    assert_eq!((r.exit_code, r.signal), (Some(0), None));
    assert_eq!(r.reason, None);
    assert_eq!(r.partition.as_deref(), Some("debug"));
    assert_eq!(r.submit_time.as_deref(), Some("2024-05-02T10:00:00"));
    assert_eq!(r.start_time.as_deref(), Some("2024-05-02T10:00:01"));
    assert_eq!(r.end_time.as_deref(), Some("2024-05-02T10:00:03"));
    assert_eq!(r.stdout_path.as_deref(), Some("/home/hpc/serrano-101.out"));
    assert_eq!(r.stderr_path.as_deref(), Some("/home/hpc/serrano-101.err"));
}

#[test]
fn failed_job_is_not_completed() {
    // the original mapped FAILED to completed
    let r = by_id(&Slurm.parse_status(ONELINER).unwrap(), "102");
    assert_eq!(r.state, JobState::Failed);
    assert_eq!(r.exit_code, Some(3));
    assert_eq!(r.signal, None);
    assert_eq!(r.reason.as_deref(), Some("NonZeroExitCode"));
    // the Command= value has spaces and `--input` must not split it
    assert_eq!(r.stderr_path.as_deref(), Some("/home/hpc/serrano-102.err"));
}

#[test]
fn command_with_spaces_is_one_value() {
    let line = ONELINER.lines().nth(1).unwrap();
    let pairs = split_key_values(line);
    let command = pairs.iter().find(|(k, _)| *k == "Command").unwrap().1;
    assert_eq!(command, "/home/hpc/run job.sh --input /data/in put.csv");
    assert!(
        pairs
            .iter()
            .any(|(k, v)| *k == "ReqB:S:C:T" && *v == "0:0:*:*")
    );
    assert!(
        pairs
            .iter()
            .any(|(k, v)| *k == "TRES" && *v == "cpu=1,mem=512M,node=1,billing=1")
    );
    assert!(pairs.iter().any(|(k, v)| *k == "Power" && v.is_empty()));
}

#[test]
fn cancelled_timeout_oom_pending_running() {
    let reports = Slurm.parse_status(ONELINER).unwrap();
    let r = by_id(&reports, "103");
    assert_eq!(
        (r.state, r.exit_code, r.signal),
        (JobState::Cancelled, Some(0), Some(15))
    );
    assert_eq!(r.reason, None);
    let r = by_id(&reports, "104");
    assert_eq!(
        (r.state, r.reason.as_deref()),
        (JobState::Timeout, Some("TimeLimit"))
    );
    assert_eq!(r.partition.as_deref(), Some("batch"));
    let r = by_id(&reports, "105");
    assert_eq!(
        (r.state, r.raw_state.as_str()),
        (JobState::OutOfMemory, "OUT_OF_MEMORY")
    );
    let r = by_id(&reports, "106");
    assert_eq!(
        (r.state, r.reason.as_deref()),
        (JobState::Queued, Some("Resources"))
    );
    assert_eq!((r.start_time.clone(), r.end_time.clone()), (None, None));
    let r = by_id(&reports, "107");
    assert_eq!(r.state, JobState::Running);
    // a running job's EndTime is only the time limit, not an end
    assert_eq!(r.end_time, None);
}

#[test]
fn unknown_state_is_kept() {
    let r = by_id(&Slurm.parse_status(ONELINER).unwrap(), "108");
    assert_eq!(
        (r.state, r.raw_state.as_str()),
        (JobState::Unknown, "SPECIAL_NEW_STATE")
    );
}

#[test]
fn no_jobs_and_garbage() {
    assert_eq!(
        Slurm.parse_status("No jobs in the system\n").unwrap(),
        vec![]
    );
    assert_eq!(Slurm.parse_status("").unwrap(), vec![]);
    // garbage lines are skipped, never a panic; the valid record around them survives
    let out = "\u{0}\u{7f}garbage ===\n=\nJobId=\nJobId=5 JobState=RUNNING\n  ünïcode JobState=\n ExitCode=x:y\n";
    let reports = Slurm.parse_status(out).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].scheduler_id, "5");
    assert_eq!(reports[0].state, JobState::Running);
    assert_eq!(reports[0].exit_code, None);
    // a record without JobState is reported, not dropped
    let r = Slurm.parse_status("JobId=9 JobName=x\n").unwrap();
    assert_eq!(
        (r[0].state, r[0].raw_state.as_str()),
        (JobState::Unknown, "")
    );
}

#[test]
fn multi_line_format_also_parses() {
    let out = "JobId=77 JobName=wrap\n   UserId=hpc(1000) GroupId=hpc(1000)\n   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)\n   ExitCode=1:0\n   Partition=debug\n\nJobId=78 JobName=b\n   JobState=NODE_FAIL Reason=NodeDown\n   ExitCode=0:9\n";
    let reports = Slurm.parse_status(out).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        (reports[0].state, reports[0].exit_code),
        (JobState::Failed, Some(1))
    );
    assert_eq!(reports[0].partition.as_deref(), Some("debug"));
    assert_eq!(
        (reports[1].state, reports[1].signal),
        (JobState::NodeFail, Some(9))
    );
}

#[test]
fn state_words() {
    assert_eq!(slurm_state("CANCELLED by 0"), JobState::Cancelled);
    assert_eq!(slurm_state("CANCELLED+"), JobState::Cancelled);
    assert_eq!(slurm_state("PREEMPTED"), JobState::Preempted);
    assert_eq!(slurm_state("BOOT_FAIL"), JobState::Failed);
    assert_eq!(slurm_state("DEADLINE"), JobState::Failed);
    assert_eq!(slurm_state("COMPLETING"), JobState::Running);
    assert_eq!(slurm_state("CONFIGURING"), JobState::Queued);
    assert_eq!(slurm_state("SUSPENDED"), JobState::Running);
    assert_eq!(slurm_state(""), JobState::Unknown);
}

#[test]
fn submit_output() {
    assert_eq!(Slurm.parse_submit("12345\n").unwrap(), "12345");
    assert_eq!(Slurm.parse_submit("12345;cluster\n").unwrap(), "12345");
    let warned = "sbatch: warning: can't honor --ntasks-per-node set to 128\n4242;local\n";
    assert_eq!(Slurm.parse_submit(warned).unwrap(), "4242");
    assert_eq!(Slurm.parse_submit("Submitted batch job 7\n").unwrap(), "7");
    assert!(matches!(
        Slurm.parse_submit("sbatch: error: Batch job submission failed\n"),
        Err(SchedulerError::Parse { .. })
    ));
    assert!(Slurm.parse_submit("").is_err());
}

#[test]
fn commands_quote_ids() {
    assert_eq!(Slurm.submit_command(), "sbatch --parsable");
    assert_eq!(
        Slurm.status_command(&["1".into(), "2;rm -rf /".into()]),
        "for j in '1' '2;rm -rf /'; do scontrol -o show job \"$j\"; done"
    );
    assert_eq!(Slurm.status_command(&[]), "scontrol -o show job");
    // Many watched jobs: one process lists them all instead of one fork per job.
    let many: Vec<String> = (0..=PER_JOB_QUERY_LIMIT).map(|i| i.to_string()).collect();
    assert_eq!(Slurm.status_command(&many), "scontrol -o show job");
    assert_eq!(
        Slurm.finished_command(&["1".into(), "2".into()]).unwrap(),
        "sacct -c -X -P -n -o JobID,State,ExitCode,Partition,Start,End -j '1,2'"
    );
    assert_eq!(Slurm.finished_command(&[]), None);
    assert_eq!(Slurm.cancel_command("5'x"), "scancel '5'\\''x'");
}

#[test]
fn sacct_pipe_output() {
    let out = "JobID|State|ExitCode|Partition|Start|End\n101|COMPLETED|0:0|debug|2024-05-02T10:00:01|2024-05-02T10:00:03\n101.batch|COMPLETED|0:0||2024-05-02T10:00:01|2024-05-02T10:00:03\n102|FAILED|3:0|debug|2024-05-02T10:01:01|2024-05-02T10:01:05\n103|CANCELLED by 1000|0:15|debug|None|2024-05-02T10:02:09\nnot a row\n102|TIMEOUT|0:0|debug|2024-05-02T11:01:01|2024-05-02T12:01:05\n";
    let reports = Slurm.parse_finished(out).unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(
        (reports[0].state, reports[0].exit_code),
        (JobState::Completed, Some(0))
    );
    // requeued job: last row wins
    assert_eq!(
        (reports[1].scheduler_id.as_str(), reports[1].state),
        ("102", JobState::Timeout)
    );
    assert_eq!(
        (reports[2].state, reports[2].signal),
        (JobState::Cancelled, Some(15))
    );
    assert_eq!(reports[2].start_time, None);
    assert_eq!(reports[2].end_time.as_deref(), Some("2024-05-02T10:02:09"));
}

#[test]
fn full_directives() {
    let r = JobResources {
        nodes: Some(2),
        tasks: Some(8),
        tasks_per_node: Some(4),
        cpus_per_task: Some(2),
        memory_mb: Some(4096),
        time_limit_minutes: Some(1563),
        partition: Some("debug".into()),
        job_name: Some("serrano-kalman".into()),
    };
    let d = Slurm
        .directives(&r, "/home/hpc/out-%j.log", "/home/hpc/err-%j.log")
        .unwrap();
    assert_eq!(
        d,
        "#SBATCH --job-name=serrano-kalman\n#SBATCH --partition=debug\n#SBATCH --nodes=2\n#SBATCH --ntasks=8\n\
         #SBATCH --ntasks-per-node=4\n#SBATCH --cpus-per-task=2\n#SBATCH --mem=4096M\n#SBATCH --time=1-02:03:00\n\
         #SBATCH --output=/home/hpc/out-%j.log\n#SBATCH --error=/home/hpc/err-%j.log\n"
    );
    let minimal = Slurm
        .directives(&JobResources::default(), "o", "e")
        .unwrap();
    assert_eq!(minimal, "#SBATCH --output=o\n#SBATCH --error=e\n");
    assert!(Slurm.directives(&r, "/tmp/$PBS_JOBID", "e").is_err());
    assert!(Slurm.directives(&r, "/tmp/a b", "e").is_err());
}

const SINFO: &str = "vm1|vm1|debug|idle|4|1|4|1|7000\nvm2|vm2|debug|mixed|4|1|4|1|7000\nvm3|vm3|debug|idle*|4|1|4|1|7000\ngpu1|gpu1|gpu|allocated|8|2|4|1|64000\ngpu2|gpu2|gpu|idle|8|2|4|1|64000\n";
const SQUEUE: &str = "201|2|1|2024-05-02T11:00:00|0|0|1|59:00|512M|vm2|debug|RUNNING|vm2\n\
                      202|8|1|2024-05-02T11:00:00|0|0|1|59:00|512M|gpu1|gpu|RUNNING|gpu1\n\
                      203|4|1|N/A|0|0|1|1:00:00|512M||gpu|PENDING|(null)\n\
                      204|1|1|N/A|0|0|1|1:00:00|512M||gpu|PENDING|(null)\n\
                      205|1|1|N/A|0|0|1|1:00:00|512M||debug,gpu|PENDING|(null)\n";

#[test]
fn telemetry_counts_jobs_in_their_own_partition() {
    let t = Slurm
        .parse_telemetry(&[SINFO.to_owned(), SQUEUE.to_owned()])
        .unwrap();
    let debug = PartitionTelemetry {
        name: "debug".into(),
        total_nodes: 3,
        avail_nodes: 1,
        total_cpus: 12,
        avail_cpus: 10,
        running_jobs: 1,
        queued_jobs: 1,
    };
    let gpu = PartitionTelemetry {
        name: "gpu".into(),
        total_nodes: 2,
        avail_nodes: 1,
        total_cpus: 16,
        avail_cpus: 8,
        running_jobs: 1,
        queued_jobs: 3,
    };
    assert_eq!(t, vec![debug, gpu]);
}

#[test]
fn telemetry_comma_format_and_errors() {
    // the original's comma format; the node list `n[1-2],n4` has commas of its own
    let sinfo = "n1,n1,batch*,idle,2,1,2,1,1000\nn2,n2,batch*,allocated,2,1,2,1,1000\n";
    let squeue = "9,2,2,N/A,0,0,1,5:00,1G,n[1-2],n4,batch,RUNNING,(null)\n";
    let t = Slurm
        .parse_telemetry(&[sinfo.to_owned(), squeue.to_owned()])
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].name.as_str(), t[0].running_jobs, t[0].avail_cpus),
        ("batch", 1, 2)
    );
    assert!(Slurm.parse_telemetry(&[SINFO.to_owned()]).is_err());
    assert!(
        Slurm
            .parse_telemetry(&["a|b\n".to_owned(), String::new()])
            .is_err()
    );
    assert!(
        Slurm
            .parse_telemetry(&["a|b|c|idle|x|1|1|1|1\n".to_owned(), String::new()])
            .is_err()
    );
    assert_eq!(
        Slurm
            .parse_telemetry(&[String::new(), String::new()])
            .unwrap(),
        vec![]
    );
    assert_eq!(
        Slurm.telemetry_commands(),
        [
            "sinfo -h -o '%n|%N|%R|%T|%c|%X|%Y|%Z|%m'",
            "squeue -h -o '%A|%C|%D|%e|%H|%I|%J|%L|%m|%N|%P|%T|%Y'"
        ]
    );
}
