//! Tests of the PBS dialect: Torque and OpenPBS `qstat -f`, the slurm-wlm-torque wrappers.

use super::*;

const TORQUE: &str = include_str!("fixtures/torque_qstat_f.txt");
const OPENPBS: &str = include_str!("fixtures/openpbs_qstat_xf.txt");
const WRAPPER: &str = include_str!("fixtures/wrapper_qstat_f.txt");
const PBSNODES: &str = include_str!("fixtures/torque_pbsnodes.txt");

fn by_id(reports: &[JobReport], id: &str) -> JobReport {
    reports
        .iter()
        .find(|r| r.scheduler_id == id)
        .cloned()
        .unwrap_or_else(|| panic!("job {id} missing"))
}

#[test]
fn torque_blocks() {
    let reports = Pbs.parse_status(TORQUE).unwrap();
    assert_eq!(reports.len(), 6);
    let q = by_id(&reports, "200.torque.example.org");
    assert_eq!((q.state, q.raw_state.as_str()), (JobState::Queued, "Q"));
    assert_eq!(
        q.reason.as_deref(),
        Some("Not Running: Insufficient amount of resource: ncpus")
    );
    assert_eq!(q.partition.as_deref(), Some("batch"));
    assert_eq!((q.start_time, q.end_time), (None, None));
    let r = by_id(&reports, "201.torque.example.org");
    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.end_time, None);
    let ok = by_id(&reports, "202.torque.example.org");
    assert_eq!(
        (ok.state, ok.exit_code, ok.signal),
        (JobState::Completed, Some(0), None)
    );
    assert_eq!(ok.submit_time.as_deref(), Some("Thu May  2 10:00:00 2024"));
    assert_eq!(ok.start_time.as_deref(), Some("Thu May  2 10:00:01 2024"));
    assert_eq!(ok.end_time.as_deref(), Some("Thu May  2 10:00:08 2024"));
    assert_eq!(ok.stdout_path.as_deref(), Some("/home/hpc/serrano-202.out"));
    assert_eq!(ok.stderr_path.as_deref(), Some("/home/hpc/serrano-202.err"));
    let failed = by_id(&reports, "203.torque.example.org");
    assert_eq!(
        (failed.state, failed.exit_code),
        (JobState::Failed, Some(1))
    );
    let timeout = by_id(&reports, "204.torque.example.org");
    assert_eq!(
        (timeout.state, timeout.exit_code),
        (JobState::Timeout, Some(-11))
    );
    let cancelled = by_id(&reports, "205.torque.example.org");
    assert_eq!(
        (cancelled.state, cancelled.exit_code, cancelled.signal),
        (JobState::Cancelled, None, Some(15))
    );
}

#[test]
fn continuation_lines_join_the_value() {
    let blocks = job_blocks(TORQUE);
    let vars = blocks[0].get("Variable_List").unwrap();
    assert!(vars.ends_with("PBS_O_LANG=C.UTF-8,PBS_O_LOGNAME=hpc,PBS_O_PATH=/usr/local/bin:/usr/bin:/bin,PBS_O_SHELL=/bin/bash"), "{vars}");
    // the attribute after the continuation is still an attribute
    assert_eq!(
        blocks[0].get("comment"),
        Some("Not Running: Insufficient amount of resource: ncpus")
    );
}

#[test]
fn openpbs_history() {
    let reports = Pbs.parse_finished(OPENPBS).unwrap();
    let r = by_id(&reports, "300.pbs-server");
    // OpenPBS -29 is walltime; Torque's -11 is not
    assert_eq!((r.state, r.exit_code), (JobState::Timeout, Some(-29)));
    assert_eq!(r.start_time.as_deref(), Some("Thu May  2 10:00:01 2024"));
    assert_eq!(r.end_time.as_deref(), Some("Thu May  2 11:00:04 2024"));
    assert_eq!(r.partition.as_deref(), Some("workq"));
    let r = by_id(&reports, "301.pbs-server");
    assert_eq!((r.state, r.exit_code), (JobState::Failed, Some(-11)));
}

#[test]
fn wrapper_output() {
    let reports = Pbs.parse_status(WRAPPER).unwrap();
    assert_eq!(reports.len(), 3);
    let done = by_id(&reports, "401");
    // the wrappers print C for every finished job and no exit status: unknown, but finished
    assert_eq!(
        (done.state, done.raw_state.as_str(), done.exit_code),
        (JobState::Unknown, "C", None)
    );
    assert!(Pbs.is_finished(&done));
    assert_eq!(done.start_time.as_deref(), Some("Thu May  2 10:00:01 2024"));
    assert_eq!(done.end_time.as_deref(), Some("Thu May  2 10:00:03 2024"));
    let running = by_id(&reports, "402");
    assert_eq!(running.state, JobState::Running);
    assert!(!Pbs.is_finished(&running));
    assert_eq!(by_id(&reports, "403").state, JobState::Queued);
}

#[test]
fn exit_status_mapping() {
    assert_eq!(
        pbs_state("C", Some(265), false),
        (JobState::Failed, None, Some(9))
    );
    assert_eq!(pbs_state("C", Some(-10), false).0, JobState::OutOfMemory);
    assert_eq!(pbs_state("F", Some(-27), true).0, JobState::OutOfMemory);
    assert_eq!(pbs_state("C", Some(-1), false).0, JobState::Failed);
    assert_eq!(
        pbs_state("C", Some(137), false),
        (JobState::Failed, Some(137), None)
    );
    for q in ["Q", "H", "W", "T"] {
        assert_eq!(pbs_state(q, None, false).0, JobState::Queued);
    }
    assert_eq!(pbs_state("E", None, false).0, JobState::Running);
    assert_eq!(pbs_state("M", None, false).0, JobState::Unknown);
    // SIGTERM after the whole walltime was used: the limit killed it, not qdel
    let out = "Job Id: 9.s\n    job_state = C\n    exit_status = 271\n    resources_used.walltime = 00:10:00\n    Resource_List.walltime = 00:10:00\n";
    assert_eq!(Pbs.parse_status(out).unwrap()[0].state, JobState::Timeout);
}

#[test]
fn garbage_is_skipped() {
    assert_eq!(Pbs.parse_status("").unwrap(), vec![]);
    assert_eq!(
        Pbs.parse_status("qstat: Unknown Job Id 7.s\n\u{0}===\n\tjob_state = R\n")
            .unwrap(),
        vec![]
    );
    assert_eq!(
        Pbs.parse_finished("<Data><Job><Job_Id>1.s</Job_Id></Job></Data>")
            .unwrap(),
        vec![]
    );
    let r = Pbs.parse_status("Job Id: 5.s\n    Job_Name = x\n").unwrap();
    assert_eq!(
        (r[0].state, r[0].raw_state.as_str()),
        (JobState::Unknown, "")
    );
    let r = Pbs
        .parse_status("Job Id: 6.s\n    job_state = C\n    exit_status = lots\n")
        .unwrap();
    assert_eq!(r[0].state, JobState::Unknown);
}

#[test]
fn submit_output() {
    assert_eq!(Pbs.parse_submit("123.host\n").unwrap(), "123.host");
    assert_eq!(
        Pbs.parse_submit("  4567.pbs-server.example.org \n")
            .unwrap(),
        "4567.pbs-server.example.org"
    );
    assert_eq!(Pbs.parse_submit("warning: something\n77\n").unwrap(), "77");
    assert_eq!(Pbs.parse_submit("12[].server\n").unwrap(), "12[].server");
    assert!(
        Pbs.parse_submit("qsub: submit error (Bad UID for job execution)\n")
            .is_err()
    );
    assert!(Pbs.parse_submit("").is_err());
    assert!(Pbs.parse_submit("12.\n").is_err());
}

#[test]
fn commands_quote_ids() {
    assert_eq!(Pbs.submit_command(), "qsub");
    assert_eq!(
        Pbs.status_command(&["1.s".into(), "2 x".into()]),
        "qstat -f '1.s' '2 x'"
    );
    assert_eq!(Pbs.status_command(&[]), "qstat -f");
    assert_eq!(
        Pbs.finished_command(&["1.s".into()]).as_deref(),
        Some("qstat -x -f '1.s'")
    );
    assert_eq!(Pbs.finished_command(&[]), None);
    assert_eq!(Pbs.cancel_command("1.s;reboot"), "qdel '1.s;reboot'");
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
        partition: Some("batch".into()),
        job_name: Some("serrano-kalman".into()),
    };
    let d = Pbs
        .directives(&r, "/home/hpc/$PBS_JOBID.out", "/home/hpc/$PBS_JOBID.err")
        .unwrap();
    assert_eq!(
        d,
        "#PBS -N serrano-kalman\n#PBS -q batch\n#PBS -l nodes=2:ppn=8\n#PBS -l walltime=26:03:00\n\
         #PBS -l mem=8192mb\n#PBS -o /home/hpc/$PBS_JOBID.out\n#PBS -e /home/hpc/$PBS_JOBID.err\n"
    );
    let spread = JobResources {
        nodes: Some(3),
        tasks: Some(8),
        ..Default::default()
    };
    assert!(
        Pbs.directives(&spread, "o", "e")
            .unwrap()
            .starts_with("#PBS -l nodes=3:ppn=3\n")
    );
    let only_nodes = JobResources {
        nodes: Some(2),
        ..Default::default()
    };
    assert!(
        Pbs.directives(&only_nodes, "o", "e")
            .unwrap()
            .starts_with("#PBS -l nodes=2\n")
    );
    assert_eq!(
        Pbs.directives(&JobResources::default(), "o", "e").unwrap(),
        "#PBS -o o\n#PBS -e e\n"
    );
    assert!(Pbs.directives(&r, "/tmp/$HOME", "e").is_err());
    assert!(Pbs.directives(&r, "o", "/tmp/x\ny").is_err());
}

#[test]
fn telemetry_per_queue() {
    let gpu_job = "Job Id: 210.torque.example.org\n    job_state = R\n    queue = gpu\n    Resource_List.nodes = 1:ppn=6\n\n";
    let qstat = format!("{TORQUE}{gpu_job}");
    let queues = "Queue              Max   Tot   Ena   Str   Que   Run   Hld   Wat   Trn   Ext T   Cpt\n\
                  ----------------   ---   ---   ---   ---   ---   ---   ---   ---   ---   --- -   ---\n\
                  batch                0     6   yes   yes     1     1     0     0     0     0 E     4\n\
                  gpu                  0     1   yes   yes     0     1     0     0     0     0 E     0\n";
    let t = Pbs
        .parse_telemetry(&[PBSNODES.to_owned(), qstat, queues.to_owned()])
        .unwrap();
    let batch = PartitionTelemetry {
        name: "batch".into(),
        total_nodes: 3,
        avail_nodes: 1,
        total_cpus: 24,
        avail_cpus: 16,
        running_jobs: 1,
        queued_jobs: 1,
    };
    let gpu = PartitionTelemetry {
        name: "gpu".into(),
        total_nodes: 1,
        avail_nodes: 1,
        total_cpus: 16,
        avail_cpus: 10,
        running_jobs: 1,
        queued_jobs: 0,
    };
    assert_eq!(t, vec![batch, gpu]);
}

#[test]
fn telemetry_wrapper_and_errors() {
    // the wrapper's pbsnodes: no queue information, so the node serves every queue
    let nodes = "vm\n    state = free\n    np = 4\n    properties = \n    ntype = cluster\n    status = rectime=1,state=free,slurmstate=idle,ncpus=4\n\n";
    let t = Pbs
        .parse_telemetry(&[nodes.to_owned(), WRAPPER.to_owned()])
        .unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].name.as_str(), t[0].total_cpus, t[0].avail_cpus),
        ("debug", 4, 2)
    );
    assert_eq!(
        (t[0].running_jobs, t[0].queued_jobs, t[0].avail_nodes),
        (1, 1, 1)
    );
    let t = Pbs
        .parse_telemetry(&[nodes.to_owned(), String::new()])
        .unwrap();
    assert_eq!(t[0].name, "all");
    assert!(
        Pbs.parse_telemetry(&[
            "n1\n    state = free\n    np = many\n".to_owned(),
            String::new()
        ])
        .is_err()
    );
    assert!(Pbs.parse_telemetry(&[String::new()]).is_err());
    assert_eq!(
        Pbs.telemetry_commands(),
        ["pbsnodes -a", "qstat -f", "qstat -Q"]
    );
}
