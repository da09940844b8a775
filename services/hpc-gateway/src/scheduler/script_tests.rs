//! Tests of parameter validation, script rendering and the original's request resolution.

use serde_json::json;

use super::*;
use crate::scheduler::{SchedulerKind, scheduler_for};

fn map(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn template() -> ServiceTemplate {
    let params = [
        (
            "count",
            ParamSpec::Integer {
                min: Some(1),
                max: Some(10),
                default: None,
            },
        ),
        (
            "ratio",
            ParamSpec::Float {
                min: Some(0.0),
                max: Some(1.0),
                default: Some(0.5),
            },
        ),
        (
            "label",
            ParamSpec::String {
                pattern: Some("A-Za-z0-9_./-".into()),
                default: Some("x".into()),
            },
        ),
        (
            "note",
            ParamSpec::String {
                pattern: None,
                default: Some(String::new()),
            },
        ),
        (
            "input",
            ParamSpec::Path {
                default: Some("/data/in".into()),
            },
        ),
        (
            "verbose",
            ParamSpec::Boolean {
                default: Some(false),
            },
        ),
    ];
    ServiceTemplate {
        name: "demo".into(),
        description: "demo".into(),
        params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        body: "echo \"$NOTE\"".into(),
        resources: JobResources::default(),
    }
}

fn err_field(r: Result<BTreeMap<String, String>, SchedulerError>) -> (String, String) {
    match r {
        Err(SchedulerError::Invalid { field, detail }) => (field, detail),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn valid_params_and_defaults() {
    let v = validate_params(
        &template(),
        &map(json!({"count": 3, "verbose": true, "ratio": null})),
    )
    .unwrap();
    assert_eq!(v["count"], "3");
    assert_eq!(v["ratio"], "0.5");
    assert_eq!(v["label"], "x");
    assert_eq!(v["note"], "");
    assert_eq!(v["input"], "/data/in");
    assert_eq!(v["verbose"], "1");
}

#[test]
fn each_error_names_the_param() {
    let t = template();
    let (f, d) = err_field(validate_params(&t, &map(json!({"count": 1, "bogus": 1}))));
    assert_eq!((f.as_str(), d.contains("unknown")), ("bogus", true));
    let (f, d) = err_field(validate_params(&t, &map(json!({"count": "3"}))));
    assert_eq!((f.as_str(), d.contains("integer")), ("count", true));
    let (f, d) = err_field(validate_params(&t, &map(json!({"count": 2.5}))));
    assert_eq!((f.as_str(), d.contains("integer")), ("count", true));
    let (f, d) = err_field(validate_params(&t, &map(json!({"count": 11}))));
    assert_eq!((f.as_str(), d.contains("maximum")), ("count", true));
    let (f, d) = err_field(validate_params(&t, &map(json!({"count": 0}))));
    assert_eq!((f.as_str(), d.contains("minimum")), ("count", true));
    let (f, d) = err_field(validate_params(&t, &map(json!({}))));
    assert_eq!((f.as_str(), d.contains("required")), ("count", true));
    let (f, _) = err_field(validate_params(&t, &map(json!({"count": 1, "ratio": 1.5}))));
    assert_eq!(f, "ratio");
    let (f, d) = err_field(validate_params(
        &t,
        &map(json!({"count": 1, "label": "a b"})),
    ));
    assert_eq!((f.as_str(), d.contains("' '")), ("label", true));
    let (f, _) = err_field(validate_params(
        &t,
        &map(json!({"count": 1, "input": "/a\nb"})),
    ));
    assert_eq!(f, "input");
    let (f, _) = err_field(validate_params(&t, &map(json!({"count": 1, "input": ""}))));
    assert_eq!(f, "input");
    let (f, _) = err_field(validate_params(&t, &map(json!({"count": 1, "verbose": 1}))));
    assert_eq!(f, "verbose");
}

#[test]
fn bad_param_names_are_refused() {
    let mut t = template();
    t.params.insert(
        "path".into(),
        ParamSpec::Path {
            default: Some("/x".into()),
        },
    );
    assert_eq!(
        err_field(validate_params(&t, &map(json!({"count": 1})))).0,
        "path"
    );
    let mut t = template();
    t.params.insert(
        "Bad-Name".into(),
        ParamSpec::Boolean {
            default: Some(true),
        },
    );
    assert_eq!(
        err_field(validate_params(&t, &map(json!({"count": 1})))).0,
        "Bad-Name"
    );
}

const HOSTILE: &str = "it's $(rm -rf /) `reboot` \"x\"\nsecond line; exit 1";

fn render(kind: SchedulerKind) -> String {
    let t = template();
    let v = validate_params(&t, &map(json!({"count": 2, "note": HOSTILE}))).unwrap();
    let res = JobResources {
        job_name: Some("demo".into()),
        ..Default::default()
    };
    render_script(
        scheduler_for(kind).as_ref(),
        &res,
        "out.log",
        "err.log",
        &v,
        &t.body,
    )
    .unwrap()
}

#[test]
fn rendered_script_layout() {
    let s = render(SchedulerKind::Slurm);
    let expected = "#!/bin/bash\n#SBATCH --job-name=demo\n#SBATCH --output=out.log\n#SBATCH --error=err.log\n\
                    set -euo pipefail\nexport COUNT='2'\nexport INPUT='/data/in'\nexport LABEL='x'\n\
                    export NOTE='it'\\''s $(rm -rf /) `reboot` \"x\"\nsecond line; exit 1'\n\
                    export RATIO='0.5'\nexport VERBOSE='0'\necho \"$NOTE\"\n";
    assert_eq!(s, expected);
    assert!(render(SchedulerKind::Pbs).starts_with(
        "#!/bin/bash\n#PBS -N demo\n#PBS -o out.log\n#PBS -e err.log\nset -euo pipefail\n"
    ));
}

#[test]
fn hostile_value_is_inert_in_bash() {
    let bash = std::path::Path::new("/bin/bash");
    if !bash.exists() {
        return; // nothing to check against
    }
    let script = render(SchedulerKind::Slurm);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.sh");
    std::fs::write(&file, &script).unwrap();
    let syntax = std::process::Command::new(bash)
        .arg("-n")
        .arg(&file)
        .status()
        .unwrap();
    assert!(syntax.success());
    // run it for real: the body echoes the value, which must come out verbatim
    let out = std::process::Command::new(bash)
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{HOSTILE}\n"));
}

#[test]
fn render_rejects_bad_input() {
    let slurm = scheduler_for(SchedulerKind::Slurm);
    let mut v = BTreeMap::new();
    v.insert("ld_preload".to_owned(), "/evil.so".to_owned());
    assert!(
        render_script(
            slurm.as_ref(),
            &JobResources::default(),
            "o",
            "e",
            &v,
            "true"
        )
        .is_err()
    );
    let bad_res = JobResources {
        partition: Some("a b".into()),
        ..Default::default()
    };
    assert!(render_script(slurm.as_ref(), &bad_res, "o", "e", &BTreeMap::new(), "true").is_err());
    assert!(
        render_script(
            slurm.as_ref(),
            &JobResources::default(),
            "o u t",
            "e",
            &BTreeMap::new(),
            "true"
        )
        .is_err()
    );
}

#[test]
fn catalogue_has_the_original_services() {
    let cat = builtin_catalogue();
    let names: Vec<&str> = cat.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "kalman",
            "fft",
            "min_max",
            "savitzky_golay",
            "black_scholes",
            "wavelet",
            "kmean",
            "knn"
        ]
    );
    for t in &cat {
        // every entry validates with only the required input, and renders with bash-valid syntax
        let v = validate_params(t, &map(json!({"read_input_data": "/Init_Data/x"}))).unwrap();
        assert_eq!(v["num_mpi_procs"], "4");
        assert_eq!(v["root_dir"], "~/serrano");
        let script = render_script(
            scheduler_for(SchedulerKind::Slurm).as_ref(),
            &t.resources,
            "o",
            "e",
            &v,
            &t.body,
        )
        .unwrap();
        assert!(script.contains("#SBATCH --time=01:00:00\n"));
        assert!(script.contains("\"$EXE\""));
    }
    let kalman = &cat[0];
    assert_eq!(
        kalman.params["kalman_r"],
        ParamSpec::Float {
            min: Some(0.0),
            max: None,
            default: Some(200.0)
        }
    );
    // a catalogue entry round-trips through JSON (the lead loads more from configuration)
    let back: ServiceTemplate =
        serde_json::from_value(serde_json::to_value(kalman).unwrap()).unwrap();
    assert_eq!(&back, kalman);
}

#[test]
fn original_request_filters() {
    let services = vec!["fft".to_owned(), "kalman".to_owned()];
    let params = map(
        json!({"read_input_data": "/in", "kalman": {"r": 10}, "kmean": {"cluster_number": 3}, "icase": -1, "filter": {"fft": 0}}),
    );
    let (t, v) = resolve_original_request(&services, &params).unwrap();
    assert_eq!(t.name, "kalman+fft");
    assert_eq!(v["icase"], "1");
    assert_eq!(
        (v["filter_kalman"].as_str(), v["filter_fft"].as_str()),
        ("1", "1")
    );
    assert_eq!(
        (v["filter_min_max"].as_str(), v["filter_wavelet"].as_str()),
        ("0", "0")
    );
    assert_eq!(v["kalman_r"], "10");
    assert!(!v.contains_key("kmean_cluster_number"));
    // defaults: kalman r is 200 when omitted
    let (_, v) =
        resolve_original_request(&["kalman".into()], &map(json!({"read_input_data": "/in"})))
            .unwrap();
    assert_eq!(v["kalman_r"], "200");
}

#[test]
fn original_request_kmean_knn_and_mix() {
    let p = map(json!({"read_input_data": "/in", "kmean": {"cluster_number": 4}}));
    let (t, v) = resolve_original_request(&["kmean".into()], &p).unwrap();
    assert_eq!((t.name.as_str(), v["icase"].as_str()), ("kmean", "2"));
    assert_eq!(
        (
            v["kmean_cluster_number"].as_str(),
            v["kmean_epsilon_criteria"].as_str()
        ),
        ("4", "0.00001")
    );
    let (_, v) =
        resolve_original_request(&["knn".into()], &map(json!({"read_input_data": "/in"}))).unwrap();
    assert_eq!(
        (v["icase"].as_str(), v["knn_k_nearest_neighbor"].as_str()),
        ("3", "7")
    );
    let mix = resolve_original_request(&["kalman".into(), "knn".into()], &p);
    assert!(matches!(mix, Err(SchedulerError::Invalid { field, .. }) if field == "services"));
    let mix = resolve_original_request(&["kmean".into(), "knn".into()], &p);
    assert!(mix.is_err());
    assert!(resolve_original_request(&[], &p).is_err());
    assert!(resolve_original_request(&["nope".into()], &p).is_err());
    let missing = resolve_original_request(&["knn".into()], &serde_json::Map::new());
    assert!(
        matches!(missing, Err(SchedulerError::Invalid { field, .. }) if field == "read_input_data")
    );
    let bad = resolve_original_request(
        &["kmean".into()],
        &map(json!({"read_input_data": "/in", "kmean": 3})),
    );
    assert!(matches!(bad, Err(SchedulerError::Invalid { field, .. }) if field == "kmean"));
    let bad = resolve_original_request(
        &["kmean".into()],
        &map(json!({"read_input_data": "/in", "kmean": {"cluster_number": 0}})),
    );
    assert!(
        matches!(bad, Err(SchedulerError::Invalid { field, .. }) if field == "kmean_cluster_number")
    );
}
