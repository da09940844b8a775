//! Job scripts: typed service parameters, validation, and rendering.
//!
//! The original gateway interpolated request values straight into a Jinja
//! template (originals.md 6.2), so a parameter could run code on the cluster.
//! Here every value is validated against its [`ParamSpec`], then exported as
//! `export NAME='value'` through [`shell_quote`]: the body only ever reads
//! `"$NAME"`, so values are data, never code.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{JobResources, Scheduler, SchedulerError, invalid, shell_quote};

/// Type and limits of one service parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParamSpec {
    Integer {
        min: Option<i64>,
        max: Option<i64>,
        default: Option<i64>,
    },
    Float {
        min: Option<f64>,
        max: Option<f64>,
        default: Option<f64>,
    },
    /// `pattern`: the allowed characters as a simple class, e.g. `A-Za-z0-9_./-`
    /// (ranges `a-z`, a `-` first or last is literal); none: any text without NUL.
    String {
        pattern: Option<String>,
        default: Option<String>,
    },
    /// Any non-empty text without control characters.
    Path { default: Option<String> },
    /// Exported as `1` / `0`, the original's flag convention.
    Boolean { default: Option<bool> },
}

/// A catalogue entry: a named service (e.g. "kalman") = a script body template plus typed parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceTemplate {
    pub name: String,
    pub description: String,
    pub params: BTreeMap<String, ParamSpec>,
    /// shell body run after the exports; refers to params as "$NAME" (upper-cased param name) only
    pub body: String,
    #[serde(default)]
    pub resources: JobResources,
}

/// Environment names a parameter must not overwrite: the shell's, the loader's
/// and the scheduler's own.
fn reserved(upper: &str) -> bool {
    const NAMES: &[&str] = &[
        "PATH",
        "HOME",
        "IFS",
        "ENV",
        "SHELL",
        "USER",
        "PWD",
        "OLDPWD",
        "PS4",
        "TMPDIR",
        "CDPATH",
        "GLOBIGNORE",
    ];
    const PREFIXES: &[&str] = &[
        "BASH", "LD_", "SLURM", "PBS_", "SBATCH_", "OMPI_", "PMI", "MPI_",
    ];
    NAMES.contains(&upper) || PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// A parameter name becomes an environment variable, so it must be `[a-z][a-z0-9_]*`.
fn check_param_name(name: &str) -> Result<String, SchedulerError> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64;
    if !ok {
        return Err(invalid(name, "parameter names must match [a-z][a-z0-9_]*"));
    }
    let upper = name.to_ascii_uppercase();
    if reserved(&upper) {
        return Err(invalid(
            name,
            format!("{upper} is a reserved environment variable"),
        ));
    }
    Ok(upper)
}

/// `A-Za-z0-9_./-` → inclusive char ranges.
fn char_class(pattern: &str) -> Vec<(char, char)> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            out.push((chars[i], chars[i + 2]));
            i += 3;
        } else {
            out.push((chars[i], chars[i]));
            i += 1;
        }
    }
    out
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    v: T,
    min: Option<T>,
    max: Option<T>,
) -> Result<(), SchedulerError> {
    if let Some(min) = min.filter(|m| v < *m) {
        return Err(invalid(name, format!("{v} is below the minimum {min}")));
    }
    if let Some(max) = max.filter(|m| v > *m) {
        return Err(invalid(name, format!("{v} is above the maximum {max}")));
    }
    Ok(())
}

/// Checks one value against its spec and renders it as the exported text.
fn check_value(name: &str, spec: &ParamSpec, value: &Value) -> Result<String, SchedulerError> {
    match spec {
        ParamSpec::Integer { min, max, .. } => {
            let v = value
                .as_i64()
                .ok_or_else(|| invalid(name, format!("expected an integer, got {value}")))?;
            check_range(name, v, *min, *max)?;
            Ok(v.to_string())
        }
        ParamSpec::Float { min, max, .. } => {
            let v = value
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| invalid(name, format!("expected a number, got {value}")))?;
            check_range(name, v, *min, *max)?;
            Ok(v.to_string())
        }
        ParamSpec::String { pattern, .. } => {
            let v = value
                .as_str()
                .ok_or_else(|| invalid(name, format!("expected a string, got {value}")))?;
            if v.contains('\0') {
                return Err(invalid(name, "NUL characters are not allowed"));
            }
            if let Some(pattern) = pattern {
                let class = char_class(pattern);
                if let Some(c) = v
                    .chars()
                    .find(|c| !class.iter().any(|(lo, hi)| lo <= c && c <= hi))
                {
                    return Err(invalid(
                        name,
                        format!("character {c:?} not allowed (allowed: {pattern})"),
                    ));
                }
            }
            Ok(v.to_owned())
        }
        ParamSpec::Path { .. } => {
            let v = value
                .as_str()
                .ok_or_else(|| invalid(name, format!("expected a path string, got {value}")))?;
            if v.is_empty() {
                return Err(invalid(name, "path must not be empty"));
            }
            if v.chars().any(char::is_control) {
                return Err(invalid(
                    name,
                    "control characters are not allowed in a path",
                ));
            }
            Ok(v.to_owned())
        }
        ParamSpec::Boolean { .. } => match value {
            Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_owned()),
            _ => Err(invalid(
                name,
                format!("expected true or false, got {value}"),
            )),
        },
    }
}

fn default_of(spec: &ParamSpec) -> Option<Value> {
    match spec {
        ParamSpec::Integer { default, .. } => default.map(Value::from),
        ParamSpec::Float { default, .. } => default.map(Value::from),
        ParamSpec::String { default, .. } | ParamSpec::Path { default } => {
            default.clone().map(Value::from)
        }
        ParamSpec::Boolean { default } => default.map(Value::from),
    }
}

/// Validated parameter values: every given param must be declared, typed right and in range;
/// missing ones (or `null`) take the default or are an error naming the param. Defaults are
/// checked like given values, so a bad catalogue entry is caught too.
pub fn validate_params(
    template: &ServiceTemplate,
    given: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, String>, SchedulerError> {
    if let Some(unknown) = given.keys().find(|k| !template.params.contains_key(*k)) {
        return Err(invalid(
            unknown,
            format!("unknown parameter for service {}", template.name),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, spec) in &template.params {
        check_param_name(name)?;
        let value = match given
            .get(name)
            .filter(|v| !v.is_null())
            .cloned()
            .or_else(|| default_of(spec))
        {
            Some(v) => v,
            None => return Err(invalid(name, "required parameter missing")),
        };
        out.insert(name.clone(), check_value(name, spec, &value)?);
    }
    Ok(out)
}

/// The full script: `#!/bin/bash`, the scheduler's directives, `set -euo pipefail`,
/// one `export NAME=<shell_quote(value)>` per param, then the body.
pub fn render_script(
    scheduler: &dyn Scheduler,
    resources: &JobResources,
    stdout_path: &str,
    stderr_path: &str,
    params: &BTreeMap<String, String>,
    body: &str,
) -> Result<String, SchedulerError> {
    let mut script = String::from("#!/bin/bash\n");
    // directives must come before the first command or the scheduler ignores them
    script.push_str(&scheduler.directives(resources, stdout_path, stderr_path)?);
    script.push_str("set -euo pipefail\n");
    for (name, value) in params {
        let upper = check_param_name(name)?;
        if value.contains('\0') {
            return Err(invalid(name, "NUL characters are not allowed"));
        }
        script.push_str(&format!("export {upper}={}\n", shell_quote(value)));
    }
    if body.contains('\0') {
        return Err(invalid("body", "NUL characters are not allowed"));
    }
    script.push_str(body);
    if !script.ends_with('\n') {
        script.push('\n');
    }
    Ok(script)
}

/// The original's filter services, in the order of its `filter` flags.
pub const FILTER_SERVICES: [&str; 6] = [
    "kalman",
    "fft",
    "min_max",
    "savitzky_golay",
    "black_scholes",
    "wavelet",
];

/// Body reconstructed from the original `exe.sh.j2` (originals.md 6.2): load the
/// modules, then run the kernel for icase −1 (clear binaries), 0 (CSV → binary),
/// the requested case, and 0 with packing 1 (binary → CSV) when `csv_output` is 1.
/// The notes do not record the kernel's full argv: it gets the case and the packing
/// flag, everything else through the exported variables.
const ORIGINAL_BODY: &str = r#"# a leading "~/" in ROOT_DIR means the home directory (prefix replacement, no eval)
ROOT_DIR="${ROOT_DIR/#\~/$HOME}"
cd "$ROOT_DIR"
if command -v module >/dev/null 2>&1; then
    set +u  # environment-module scripts read unset variables
    module load cmake/3.21.5 gcc/11.2.0 openmpi/4.1.1 fftw/3.3.10
    set -u
fi
run_case() {
    mpirun --mca pml ob1 --mca btl tcp,self --bind-to core -n "$NUM_MPI_PROCS" "$EXE" "$1" "$2"
}
run_case -1 0
run_case 0 0
run_case "$ICASE" 0
if [ "$CSV_OUTPUT" = 1 ]; then
    run_case 0 1
fi
"#;

fn int(default: i64, min: Option<i64>, max: Option<i64>) -> ParamSpec {
    ParamSpec::Integer {
        min,
        max,
        default: Some(default),
    }
}

/// A value the request cannot change (min = max = default).
fn fixed(value: i64) -> ParamSpec {
    int(value, Some(value), Some(value))
}

fn path(default: Option<&str>) -> ParamSpec {
    ParamSpec::Path {
        default: default.map(str::to_owned),
    }
}

/// Parameters every original service takes (JobRequestParams defaults, originals.md 6.1).
/// `root_dir` was `${HOME}/serrano`; `~/serrano` keeps the meaning without expanding data.
fn common_params() -> BTreeMap<String, ParamSpec> {
    let entries = [
        ("ideko_kernel", int(1, Some(0), None)),
        ("inbestme_kernel", int(0, Some(0), None)),
        ("csv_output", int(1, Some(0), Some(1))),
        ("benchmark_state", int(0, Some(0), None)),
        ("num_mpi_procs", int(4, Some(1), None)),
        ("num_thread", int(1, Some(1), None)),
        ("perforation_stride", int(1, Some(1), None)),
        ("precision_scenario", int(1, Some(0), None)),
        ("num_numa", int(8, Some(1), None)),
        ("num_core_numa", int(16, Some(1), None)),
        ("root_dir", path(Some("~/serrano"))),
        ("workspace", path(Some("/data"))),
        ("profiling_workspace", path(Some("/profile"))),
        ("read_input_data", path(None)),
        (
            "input_data_double",
            path(Some("/Input_Data/Double_Data_Type/signalFilter")),
        ),
        (
            "input_data_float",
            path(Some("/Input_Data/Float_Data_Type/signalFilter")),
        ),
        (
            "inference_knn_path",
            path(Some("/Init_Data/inference_data_position/")),
        ),
        (
            "clustering_label_path",
            path(Some("/Output_Data/KMean/KMean_cluster.csv")),
        ),
        ("exe", path(Some("build/SERRANO"))),
    ];
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// Parameters of one service, flattened as `<service>_<param>` (the original nested them:
/// `kalman: {r}`, `kmean: {cluster_number, epsilon_criteria}`, `knn: {...}`).
fn service_params(service: &str) -> Vec<(String, ParamSpec)> {
    let float = |default: f64, min: f64| ParamSpec::Float {
        min: Some(min),
        max: None,
        default: Some(default),
    };
    let list = match service {
        // 10 in the original's spec, 200 when omitted in its code: the code is what ran
        "kalman" => vec![("r", float(200.0, 0.0))],
        "kmean" => vec![
            ("cluster_number", int(2, Some(1), None)),
            ("epsilon_criteria", float(1e-5, 0.0)),
        ],
        "knn" => vec![
            ("cluster_number", int(2, Some(1), None)),
            ("k_nearest_neighbor", int(7, Some(1), None)),
        ],
        _ => vec![],
    };
    list.into_iter()
        .map(|(k, v)| (format!("{service}_{k}"), v))
        .collect()
}

/// The template for a set of services that may share a job (checked by the caller).
fn template_for(services: &[&str], icase: i64) -> ServiceTemplate {
    let mut params = common_params();
    params.insert("icase".to_owned(), fixed(icase));
    for filter in FILTER_SERVICES {
        params.insert(
            format!("filter_{filter}"),
            fixed(i64::from(services.contains(&filter))),
        );
    }
    for service in services {
        params.extend(service_params(service));
    }
    ServiceTemplate {
        name: services.join("+"),
        description: format!("SERRANO kernel: {} (icase {icase})", services.join(", ")),
        params,
        body: ORIGINAL_BODY.to_owned(),
        resources: JobResources {
            // the original's -N 1, -t 0-01:00, --cpus-per-task=1; its --ntasks-per-node=128
            // only fits its own cluster, so it is left to the configuration
            nodes: Some(1),
            cpus_per_task: Some(1),
            time_limit_minutes: Some(60),
            ..JobResources::default()
        },
    }
}

/// The built-in catalogue of the original's services.
pub fn builtin_catalogue() -> Vec<ServiceTemplate> {
    let mut out: Vec<ServiceTemplate> = FILTER_SERVICES
        .iter()
        .map(|s| template_for(&[*s], 1))
        .collect();
    out.push(template_for(&["kmean"], 2));
    out.push(template_for(&["knn"], 3));
    out
}

/// The original's JobRequest: several filter services may combine (one job, icase 1, filter
/// flags), kmean and knn are alone; mixing → Invalid. Nested service objects (`"kalman":
/// {"r": 10}`) are flattened to `kalman_r`; objects for services not requested are ignored and
/// so are `icase` and `filter`, which the original also derived from `services`.
pub fn resolve_original_request(
    services: &[String],
    params: &serde_json::Map<String, Value>,
) -> Result<(ServiceTemplate, BTreeMap<String, String>), SchedulerError> {
    if services.is_empty() {
        return Err(invalid("services", "at least one service is required"));
    }
    let known = |s: &str| FILTER_SERVICES.contains(&s) || s == "kmean" || s == "knn";
    if let Some(bad) = services.iter().find(|s| !known(s)) {
        return Err(invalid("services", format!("unknown service {bad:?}")));
    }
    // canonical order and no duplicates, so equal requests give equal templates
    let mut chosen: Vec<&str> = FILTER_SERVICES
        .iter()
        .copied()
        .filter(|f| services.iter().any(|s| s == f))
        .collect();
    let icase = if chosen.len()
        == services
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    {
        1
    } else if services.iter().all(|s| s == "kmean") {
        chosen = vec!["kmean"];
        2
    } else if services.iter().all(|s| s == "knn") {
        chosen = vec!["knn"];
        3
    } else {
        return Err(invalid(
            "services",
            "cannot mix filter services, kmean and knn in one job",
        ));
    };
    let template = template_for(&chosen, icase);
    let mut flat = serde_json::Map::new();
    for (key, value) in params {
        if key == "icase" || key == "filter" {
            continue;
        }
        if known(key) {
            let Value::Object(inner) = value else {
                return Err(invalid(key, "expected an object of service parameters"));
            };
            if chosen.contains(&key.as_str()) {
                for (k, v) in inner {
                    flat.insert(format!("{key}_{k}"), v.clone());
                }
            }
            continue;
        }
        flat.insert(key.clone(), value.clone());
    }
    let values = validate_params(&template, &flat)?;
    Ok((template, values))
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
