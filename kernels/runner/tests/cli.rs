#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `serrano-kernel run` / `list` as an HPC batch job uses them: files in, files out.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_serrano-kernel"))
}

#[test]
fn run_reads_csv_writes_csv_and_binary_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    std::fs::write(&a, "x0,x1,x2\n0,1,2\n2,2,2\n").unwrap();
    std::fs::write(&b, "0,1,1,2\n").unwrap();
    let out = dir.path().join("out.csv");
    let o = bin()
        .args(["run", "dtw", "--mode", "cpu", "--input"])
        .arg(&a)
        .arg("--input")
        .arg(&b)
        .arg("--output")
        .arg(&out)
        .args(["--param", "w=10"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["kernel_mode"], "cpu");
    assert_eq!(report["outputs"][0]["location"], out.display().to_string());
    let text = std::fs::read_to_string(&out).unwrap();
    let values: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
    let want = [
        common::dtw(&[0.0, 1.0, 2.0], &[0.0, 1.0, 1.0, 2.0]),
        common::dtw(&[2.0, 2.0, 2.0], &[0.0, 1.0, 1.0, 2.0]),
    ];
    assert_eq!(values.len(), 2);
    for (g, w) in values.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "{values:?} vs {want:?}");
    }

    // The same through the binary format, read back.
    let out_bin = dir.path().join("out.bin");
    let o = bin()
        .args(["run", "dtw", "--mode", "cpu", "--input"])
        .arg(&a)
        .arg("--output")
        .arg(&out_bin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = serrano_kernels::formats::decode_sniffed(&std::fs::read(&out_bin).unwrap())
        .unwrap()
        .into_f32();
    assert_eq!((table.rows(), table.cols()), (2, 2));
    assert_eq!(table.get(0, 0), Some(0.0));
}

#[test]
fn bad_arguments_fail_with_a_message_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    std::fs::write(&a, "1,2\n3\n").unwrap();
    let out = dir.path().join("o.csv");
    for (args, needle) in [
        (vec!["run", "dtw", "--mode", "cpu"], "line 2"),
        (vec!["run", "dtw", "--mode", "warp"], "--mode"),
        (vec!["run", "nosuch", "--mode", "cpu"], "unknown kernel"),
        (vec!["run", "savgol", "--param", "mode=mirror"], "edge_mode"),
    ] {
        let o = bin()
            .args(&args)
            .arg("--input")
            .arg(&a)
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap();
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = bin()
        .args(["run", "dtw", "--input", "/nonexistent.csv", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.csv"));
}

#[test]
fn list_shows_kernels_modes_and_devices() {
    let o = bin().args(["list", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kernels"].as_array().unwrap().len(), 9);
    let dtw = v["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "dtw")
        .unwrap();
    assert!(dtw["modes"].as_array().unwrap().iter().any(|m| m == "cpu"));
    let o = bin().arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("devices:") && text.contains("savgol"),
        "{text}"
    );
}
