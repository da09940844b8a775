#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `Registry::exec` end to end: every kernel by name with typed parameters, the layouts callers
//! use (a signal down a CSV column, a track as rows of x,y), the outputs named as documented, the
//! implementation reported, and the same answers from every available mode.

use serrano_kernel_core::reference;
use serrano_kernels::{
    KernelError, Matrix, Mode, NamedInput, Params, Registry, RegistryOptions, Table,
};

fn table(rows: usize, cols: usize, f: impl Fn(usize) -> f32) -> Table {
    Table::F32(Matrix::new(rows, cols, (0..rows * cols).map(f).collect()).unwrap())
}

fn noise(i: usize) -> f32 {
    let x = (i as f32 * 12.9898).sin() * 43758.547;
    x - x.floor()
}

fn params(pairs: &[&str]) -> Params {
    Params::from_pairs(pairs.iter().copied()).unwrap()
}

fn f32_out(e: &serrano_kernels::Execution, name: &str) -> Matrix {
    e.outputs
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no output {name}"))
        .1
        .to_f32()
}

fn close(a: &Matrix, b: &Matrix, tol: f32) {
    assert_eq!((a.rows(), a.cols()), (b.rows(), b.cols()));
    for (x, y) in a.data().iter().zip(b.data()) {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()) || (x.is_nan() && y.is_nan()),
            "{x} vs {y}"
        );
    }
}

#[test]
fn every_kernel_runs_on_the_cpu_by_name_and_matches_the_reference() {
    let r = Registry::cpu_only();
    let run = |k: &str, inputs: Vec<NamedInput>, p: &[&str]| {
        r.exec(k, inputs, &params(p), Mode::Cpu).unwrap()
    };

    let points = table(200, 8, noise);
    let queries = table(5, 8, |i| noise(i + 7777));
    let e = run(
        "knn",
        vec![
            NamedInput::positional(points.clone()),
            NamedInput::positional(queries.clone()),
        ],
        &["k=3"],
    );
    assert_eq!(e.backend.as_str(), "cpu");
    let want = reference::knn::knn(
        &points.to_f32(),
        &queries.to_f32(),
        &serrano_kernel_core::knn::KnnParams::from_params(&params(&["k=3"])).unwrap(),
    )
    .unwrap();
    assert_eq!(e.outputs[0].1, Table::U32(want.indices.clone()));
    close(&f32_out(&e, "distances"), &want.distances, 1e-4);

    let labels = table(200, 1, |i| (i % 3) as f32);
    let e = run(
        "knn",
        vec![
            NamedInput::new("points.csv", points.clone()),
            NamedInput::new("queries.csv", queries),
            NamedInput::new("labels.csv", labels),
        ],
        &["k=5"],
    );
    assert_eq!(e.outputs[0].0, "predictions");
    assert_eq!((e.outputs[0].1.rows(), e.outputs[0].1.cols()), (5, 1));

    let e = run(
        "kmean",
        vec![NamedInput::positional(points.clone())],
        &["cluster_number=4", "seed=7"],
    );
    assert_eq!(e.outputs[0].1.rows(), 200);
    assert_eq!(f32_out(&e, "centroids").rows(), 4);
    assert!(e.info["inertia"].as_f64().unwrap() > 0.0);
    assert!(e.info["iterations"].as_u64().unwrap() >= 1);

    // A signal down a CSV column comes back as a column.
    let signal = table(100, 1, |i| (i as f32 * 0.1).sin() + 0.1 * noise(i));
    let e = run(
        "savitzky_golay",
        vec![NamedInput::positional(signal.clone())],
        &["window=11", "polyorder=3"],
    );
    let got = f32_out(&e, "filtered");
    assert_eq!((got.rows(), got.cols()), (100, 1));
    let want = reference::savgol::savgol(
        &signal.to_f32().reshape(1, 100).unwrap(),
        &serrano_kernel_core::savgol::SavgolParams::from_params(&params(&[
            "window=11",
            "polyorder=3",
        ]))
        .unwrap(),
    )
    .unwrap();
    close(&got.reshape(1, 100).unwrap(), &want, 1e-4);

    let options = Table::F32(Matrix::new(1, 5, vec![100.0, 100.0, 1.0, 0.05, 0.2]).unwrap());
    let e = run("black_scholes", vec![NamedInput::positional(options)], &[]);
    let prices = f32_out(&e, "prices");
    assert!(
        (prices.data()[0] - 10.4506).abs() < 1e-3 && (prices.data()[1] - 5.5735).abs() < 1e-3,
        "{prices:?}"
    );

    // One 2-D track as rows of x,y: states come back as rows of x,y,vx,vy.
    let track = table(50, 2, |i| (i / 2) as f32 + 0.01 * noise(i));
    let e = run(
        "kalman",
        vec![NamedInput::positional(track)],
        &["dims=2", "r=0.1"],
    );
    let states = f32_out(&e, "states");
    assert_eq!((states.rows(), states.cols()), (50, 4));
    assert!(
        (states.get(49, 2).unwrap() - 1.0).abs() < 0.2,
        "vx {:?}",
        states.get(49, 2)
    );

    let e = run(
        "fft",
        vec![NamedInput::positional(table(8, 1, |i| {
            if i == 0 { 1.0 } else { 0.0 }
        }))],
        &[],
    );
    let spec = f32_out(&e, "spectrum");
    assert_eq!((spec.rows(), spec.cols()), (5, 2));
    assert!(
        spec.data()
            .chunks(2)
            .all(|c| (c[0] - 1.0).abs() < 1e-6 && c[1].abs() < 1e-6),
        "{spec:?}"
    );

    let e = run(
        "wavelet",
        vec![NamedInput::positional(table(1, 16, |i| i as f32))],
        &["wavelet=db2", "levels=2", "mode=periodization"],
    );
    let coeffs = f32_out(&e, "coefficients");
    assert_eq!(e.info["coefficient_lengths"], serde_json::json!([4, 4, 8]));
    let e = run(
        "wavelet",
        vec![NamedInput::positional(Table::F32(coeffs))],
        &[
            "wavelet=db2",
            "levels=2",
            "mode=periodization",
            "inverse=true",
            "n=16",
        ],
    );
    close(
        &f32_out(&e, "signal"),
        &table(1, 16, |i| i as f32).to_f32(),
        1e-4,
    );

    let e = run(
        "minmax",
        vec![NamedInput::positional(table(3, 2, |i| i as f32))],
        &[],
    );
    assert_eq!(
        f32_out(&e, "normalized").data(),
        &[0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    );

    let e = run(
        "dtw",
        vec![NamedInput::positional(table(3, 10, noise))],
        &["w=2"],
    );
    let d = f32_out(&e, "distances");
    assert_eq!((d.rows(), d.cols()), (3, 3));
    assert_eq!(d.get(1, 1), Some(0.0));
}

#[test]
fn bad_parameters_and_inputs_are_errors_not_panics() {
    let r = Registry::cpu_only();
    let one = || vec![NamedInput::positional(table(4, 2, noise))];
    for (kernel, p) in [
        ("knn", vec!["k=0"]),
        ("kmeans", vec!["k=99"]),
        ("savgol", vec!["window=4"]),
        ("savgol", vec!["window=301"]),
        ("black_scholes", vec![]),
        ("kalman", vec!["dims=7"]),
        ("wavelet", vec!["wavelet=db99"]),
        ("min_max", vec!["min=2", "max=1"]),
        ("fft", vec!["kind=quaternion"]),
    ] {
        let inputs = if kernel == "knn" {
            vec![one().remove(0), one().remove(0)]
        } else {
            one()
        };
        let err = r.exec(kernel, inputs, &params(&p), Mode::Cpu).unwrap_err();
        assert!(
            matches!(
                err,
                KernelError::InvalidArgument(_) | KernelError::InvalidInput(_)
            ),
            "{kernel} {p:?}: {err:?}"
        );
    }
    let nan = vec![
        NamedInput::positional(Table::F32(Matrix::new(1, 2, vec![f32::NAN, 1.0]).unwrap())),
        NamedInput::positional(table(1, 2, noise)),
    ];
    let err = r
        .exec("knn", nan, &params(&["k=1"]), Mode::Cpu)
        .unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
}

/// Every accelerator mode this machine has gives the CPU's answers (pocl's CPU OpenCL device
/// here; a CUDA GPU where one exists, else a printed skip).
#[test]
fn accelerator_modes_agree_with_the_cpu() {
    let r = Registry::detect(RegistryOptions::default());
    let devices = r.devices();
    let points = table(300, 16, noise);
    let queries = table(7, 16, |i| noise(i + 99));
    let signal = table(2, 200, |i| (i as f32 * 0.05).cos());
    let options = table(64, 5, |i| match i % 5 {
        0 | 1 => 80.0 + 40.0 * noise(i),
        2 => 0.1 + noise(i),
        3 => 0.03,
        _ => 0.1 + 0.4 * noise(i),
    });
    for (mode, backend) in [(Mode::OpenCl, "opencl"), (Mode::Gpu, "cuda")] {
        let info = devices.iter().find(|d| d.backend == backend).unwrap();
        if !info.available {
            eprintln!("SKIPPED {backend}: {}", info.detail);
            continue;
        }
        let cases: Vec<(&str, Vec<Table>, Vec<&str>)> = vec![
            ("knn", vec![points.clone(), queries.clone()], vec!["k=4"]),
            (
                "kmeans",
                vec![points.clone(), table(3, 16, |i| noise(i * 31))],
                vec!["k=3", "max_iter=5"],
            ),
            (
                "savgol",
                vec![signal.clone()],
                vec!["window=21", "polyorder=2"],
            ),
            ("black_scholes", vec![options.clone()], vec![]),
        ];
        for (kernel, inputs, p) in cases {
            let named = |v: &Vec<Table>| {
                v.iter()
                    .cloned()
                    .map(NamedInput::positional)
                    .collect::<Vec<_>>()
            };
            let cpu = r
                .exec(kernel, named(&inputs), &params(&p), Mode::Cpu)
                .unwrap();
            let acc = r.exec(kernel, named(&inputs), &params(&p), mode).unwrap();
            assert_eq!(acc.backend.as_str(), backend, "{kernel}");
            for ((name, a), (_, c)) in acc.outputs.iter().zip(&cpu.outputs) {
                match (a, c) {
                    (Table::U32(a), Table::U32(c)) => {
                        assert_eq!(a, c, "{kernel}.{name} on {backend}")
                    }
                    _ => close(&a.to_f32(), &c.to_f32(), 1e-3),
                }
            }
        }
    }
}
