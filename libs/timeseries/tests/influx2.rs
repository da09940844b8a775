//! The InfluxDB 2 adapter. No InfluxDB 2 server installs here (notes/servers.md), so:
//! - bucket creation, writes and Flux queries run against a recorded-response server (axum) that
//!   keeps every request, checks the exact Flux text and answers annotated CSV in the format of
//!   the InfluxDB 2 documentation ("Annotated CSV");
//! - writes also run against the real VictoriaMetrics (`SERRANO_TEST_VICTORIAMETRICS_URL`),
//!   which accepts `/api/v2/write`, read back through its export API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serrano_timeseries::{FieldValue, InfluxDb2, Point, Query, TimeSeriesStore, TsError, now_ns};

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: String,
    authorization: String,
    body: String,
}

/// What the fake server answers to `/api/v2/query`.
#[derive(Clone)]
struct Scripted {
    status: StatusCode,
    body: String,
}

#[derive(Clone)]
struct Fake {
    log: Arc<Mutex<Vec<Recorded>>>,
    query_answer: Arc<Mutex<Scripted>>,
    buckets: Arc<Mutex<Vec<String>>>,
}

async fn handle(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body = String::from_utf8_lossy(&body).into_owned();
    fake.log.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone().unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: body.clone(),
    });
    let json = |status: StatusCode, value: serde_json::Value| {
        (
            status,
            [("content-type", "application/json")],
            value.to_string(),
        )
            .into_response()
    };
    match (method, path.as_str()) {
        (Method::GET, "/api/v2/buckets") => {
            let known = fake.buckets.lock().unwrap().clone();
            let wanted = query
                .unwrap_or_default()
                .split('&')
                .find_map(|kv| kv.strip_prefix("name=").map(str::to_owned))
                .unwrap_or_default();
            let list: Vec<serde_json::Value> = known
                .iter()
                .filter(|b| **b == wanted)
                .map(|b| {
                    // The shape of the InfluxDB 2 API reference (GET /api/v2/buckets).
                    serde_json::json!({
                        "id": "b000000000000001", "orgID": "0123456789abcdef", "type": "user",
                        "name": b, "retentionRules": [{"type": "expire", "everySeconds": 0,
                        "shardGroupDurationSeconds": 604800}],
                        "createdAt": "2023-11-30T14:00:00Z", "updatedAt": "2023-11-30T14:00:00Z",
                        "labels": []
                    })
                })
                .collect();
            json(StatusCode::OK, serde_json::json!({ "buckets": list }))
        }
        (Method::GET, "/api/v2/orgs") => json(
            StatusCode::OK,
            serde_json::json!({"orgs": [{"id": "0123456789abcdef", "name": "serrano"}]}),
        ),
        (Method::POST, "/api/v2/buckets") => {
            let request: serde_json::Value = serde_json::from_str(&body).unwrap();
            fake.buckets
                .lock()
                .unwrap()
                .push(request["name"].as_str().unwrap().to_owned());
            json(
                StatusCode::CREATED,
                serde_json::json!({"id": "b0000000000000002"}),
            )
        }
        (Method::POST, "/api/v2/write") => StatusCode::NO_CONTENT.into_response(),
        (Method::POST, "/api/v2/query") => {
            let answer = fake.query_answer.lock().unwrap().clone();
            (
                answer.status,
                [("content-type", "text/csv; charset=utf-8")],
                answer.body,
            )
                .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_fake() -> (String, Fake) {
    let fake = Fake {
        log: Arc::default(),
        query_answer: Arc::new(Mutex::new(Scripted {
            status: StatusCode::OK,
            body: String::new(),
        })),
        buckets: Arc::default(),
    };
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn point(tags: &[(&str, &str)], fields: Vec<(&str, FieldValue)>, t: i64) -> Point {
    Point {
        measurement: "pods".into(),
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        time_ns: t,
    }
}

#[tokio::test]
async fn first_write_creates_the_bucket_once() {
    let (url, fake) = start_fake().await;
    let store = InfluxDb2::new(&url, "serrano", "tok3n").unwrap();
    let p = point(
        &[("name", "web 1"), ("namespace", "default")],
        vec![
            ("cpu_usage", FieldValue::Int(188_567)),
            ("phase", FieldValue::Str("Run \"x\"".into())),
        ],
        1_701_355_804_520_099_000,
    );
    store
        .write("cluster-1", std::slice::from_ref(&p))
        .await
        .unwrap();
    store.write("cluster-1", &[p]).await.unwrap();
    store.flush().await.unwrap();

    let log = fake.log.lock().unwrap().clone();
    let calls: Vec<(Method, &str)> = log
        .iter()
        .map(|r| (r.method.clone(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        vec![
            (Method::GET, "/api/v2/buckets"),
            (Method::GET, "/api/v2/orgs"),
            (Method::POST, "/api/v2/buckets"),
            (Method::POST, "/api/v2/write"),
            (Method::POST, "/api/v2/write"),
        ],
        "the bucket is looked up and created once"
    );
    assert!(log.iter().all(|r| r.authorization == "Token tok3n"));
    assert!(log[0].query.contains("name=cluster-1") && log[0].query.contains("org=serrano"));
    let created: serde_json::Value = serde_json::from_str(&log[2].body).unwrap();
    assert_eq!(created["orgID"], "0123456789abcdef");
    assert_eq!(created["name"], "cluster-1");
    assert_eq!(log[3].query, "bucket=cluster-1&org=serrano&precision=ns");
    assert_eq!(
        log[3].body,
        "pods,name=web\\ 1,namespace=default cpu_usage=188567i,phase=\"Run \\\"x\\\"\" 1701355804520099000\n"
    );

    // An existing bucket is found, not created.
    let store = InfluxDb2::new(&url, "serrano", "tok3n").unwrap();
    fake.log.lock().unwrap().clear();
    store
        .write(
            "cluster-1",
            &[point(&[], vec![("v", FieldValue::Bool(true))], 1)],
        )
        .await
        .unwrap();
    let paths: Vec<String> = fake
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, vec!["/api/v2/buckets", "/api/v2/write"]);

    // A point line protocol cannot carry is refused before anything is sent.
    fake.log.lock().unwrap().clear();
    let bad = point(&[("name", "a\nb")], vec![("v", FieldValue::Float(1.0))], 1);
    assert!(matches!(
        store.write("cluster-1", &[bad]).await,
        Err(TsError::Invalid(_))
    ));
    assert!(fake.log.lock().unwrap().is_empty());
}

/// Two tables as InfluxDB 2 answers them (CRLF line ends): a long field of one pod, a string
/// field of another; quoted cells with `""` and a backslash.
fn answer() -> String {
    r#"#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string,string,string,string
#default,_result,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,name,namespace
,,0,2023-11-30T14:00:00Z,2023-11-30T15:00:00Z,2023-11-30T14:42:34.149451Z,188567,cpu_usage,pods,"we""b","ns\""x"
,,0,2023-11-30T14:00:00Z,2023-11-30T15:00:00Z,2023-11-30T14:43:04.101261Z,163545,cpu_usage,pods,"we""b","ns\""x"

#group,false,false,true,true,false,false,true,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string,string,string
#default,_result,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,name,namespace
,,1,2023-11-30T14:00:00Z,2023-11-30T15:00:00Z,2023-11-30T14:42:34Z,Running,phase,pods,a,"ns\""x"

"#
    .replace('\n', "\r\n")
}

#[tokio::test]
async fn queries_are_flux_with_escaped_literals_and_csv_becomes_rows() {
    let (url, fake) = start_fake().await;
    fake.query_answer.lock().unwrap().body = answer();
    let store = InfluxDb2::new(&url, "serrano", "tok3n").unwrap();
    let query = Query {
        bucket: "cluster\"1".into(),
        measurement: "pods".into(),
        tags: vec![
            ("namespace".into(), "ns\\\"x".into()),
            ("name".into(), "a\n\") or true or (r.x == \"${y}".into()),
        ],
        fields: vec!["cpu_usage".into(), "phase".into()],
        start_ns: 1_701_352_800_000_000_000,
        stop_ns: 1_701_356_400_000_000_000,
        limit: None,
    };
    let rows = store.query(&query).await.unwrap();

    let log = fake.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/api/v2/query");
    assert_eq!(log[0].query, "org=serrano");
    assert_eq!(log[0].authorization, "Token tok3n");
    let request: serde_json::Value = serde_json::from_str(&log[0].body).unwrap();
    assert_eq!(request["type"], "flux");
    assert_eq!(
        request["dialect"]["annotations"],
        serde_json::json!(["datatype", "group", "default"])
    );
    let expected_flux = r#"from(bucket: "cluster\"1")
  |> range(start: time(v: 1701352800000000000), stop: time(v: 1701356400000000000))
  |> filter(fn: (r) => r._measurement == "pods")
  |> filter(fn: (r) => r["namespace"] == "ns\\\"x")
  |> filter(fn: (r) => r["name"] == "a\n\") or true or (r.x == \"\${y}")
  |> filter(fn: (r) => r._field == "cpu_usage" or r._field == "phase")
"#;
    assert_eq!(request["query"].as_str().unwrap(), expected_flux);

    // Sorted by (tags, field, time), typed as the CSV says.
    type Got = (Vec<(String, String)>, String, FieldValue, i64);
    let got: Vec<Got> = rows
        .into_iter()
        .map(|r| (r.tags, r.field, r.value, r.time_ns))
        .collect();
    let tags = |name: &str| {
        vec![
            ("name".to_owned(), name.to_owned()),
            ("namespace".to_owned(), "ns\\\"x".to_owned()),
        ]
    };
    assert_eq!(
        got,
        vec![
            (
                tags("a"),
                "phase".into(),
                FieldValue::Str("Running".into()),
                1_701_355_354_000_000_000
            ),
            (
                tags("we\"b"),
                "cpu_usage".into(),
                FieldValue::Int(188_567),
                1_701_355_354_149_451_000
            ),
            (
                tags("we\"b"),
                "cpu_usage".into(),
                FieldValue::Int(163_545),
                1_701_355_384_101_261_000
            ),
        ]
    );

    // A limit goes into the Flux text (per table) and cuts the sorted rows.
    fake.log.lock().unwrap().clear();
    let limited = Query {
        limit: Some(1),
        ..query.clone()
    };
    let rows = store.query(&limited).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].field, "phase");
    let request: serde_json::Value =
        serde_json::from_str(&fake.log.lock().unwrap()[0].body).unwrap();
    assert!(
        request["query"]
            .as_str()
            .unwrap()
            .ends_with("  |> limit(n: 1)\n")
    );
}

#[tokio::test]
async fn query_failures_map_to_errors() {
    let (url, fake) = start_fake().await;
    let store = InfluxDb2::new(&url, "serrano", "").unwrap();
    let query = Query {
        bucket: "b".into(),
        measurement: "m".into(),
        start_ns: 0,
        stop_ns: 10,
        ..Query::default()
    };
    let answer = |status: StatusCode, body: &str| {
        *fake.query_answer.lock().unwrap() = Scripted {
            status,
            body: body.into(),
        };
    };
    answer(
        StatusCode::NOT_FOUND,
        r#"{"code":"not found","message":"failed to initialize execute state: could not find bucket \"b\""}"#,
    );
    assert!(
        store.query(&query).await.unwrap().is_empty(),
        "unknown bucket = no rows"
    );
    answer(
        StatusCode::BAD_REQUEST,
        r#"{"code":"invalid","message":"compilation failed"}"#,
    );
    assert!(
        matches!(store.query(&query).await, Err(TsError::Invalid(m)) if m.contains("compilation failed"))
    );
    answer(
        StatusCode::UNAUTHORIZED,
        r#"{"code":"unauthorized","message":"unauthorized access"}"#,
    );
    assert!(matches!(
        store.query(&query).await,
        Err(TsError::Unavailable(_))
    ));
    answer(
        StatusCode::OK,
        "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,\"panic: runtime error\",\n",
    );
    assert!(
        matches!(store.query(&query).await, Err(TsError::Invalid(m)) if m.contains("runtime error"))
    );
    answer(
        StatusCode::OK,
        "#datatype,string,long,dateTime:RFC3339,double,string,string\n,result,table,_time,_value,_field,_measurement\n,,0,not-a-time,1,f,m\n",
    );
    assert!(matches!(
        store.query(&query).await,
        Err(TsError::Unavailable(_))
    ));
    // No Authorization header without a token.
    assert!(
        fake.log
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.authorization.is_empty())
    );

    // Empty windows ask nothing.
    fake.log.lock().unwrap().clear();
    let empty = Query {
        stop_ns: 0,
        ..query.clone()
    };
    assert!(store.query(&empty).await.unwrap().is_empty());
    assert!(fake.log.lock().unwrap().is_empty());

    // Nobody listening.
    let down = InfluxDb2::new("http://127.0.0.1:9", "serrano", "t").unwrap();
    assert!(matches!(
        down.query(&query).await,
        Err(TsError::Unavailable(_))
    ));
    let p = point(&[], vec![("v", FieldValue::Float(1.0))], 1);
    assert!(matches!(
        down.write("b", &[p]).await,
        Err(TsError::Unavailable(_))
    ));
}

#[tokio::test]
async fn writes_reach_victoriametrics_through_its_v2_write_endpoint() {
    let url = match std::env::var("SERRANO_TEST_VICTORIAMETRICS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var("SERRANO_REQUIRE_REAL_SERVERS").as_deref() != Ok("1"),
                "SERRANO_TEST_VICTORIAMETRICS_URL is not set but SERRANO_REQUIRE_REAL_SERVERS=1"
            );
            println!("skipped: SERRANO_TEST_VICTORIAMETRICS_URL is not set");
            return;
        }
    };
    // VictoriaMetrics has no buckets API: write straight away.
    let store = InfluxDb2::new(&url, "serrano", "any")
        .unwrap()
        .create_buckets(false);
    let t = (now_ns() - 60_000_000_000) / 1_000_000 * 1_000_000;
    let marker = format!("influx2-{}-{}", std::process::id(), now_ns());
    let p = point(
        &[("name", marker.as_str())],
        vec![
            ("restarts", FieldValue::Int(3)),
            ("cpu_usage", FieldValue::Float(0.25)),
        ],
        t,
    );
    store.write("cluster-x", &[p]).await.unwrap();

    let http = reqwest::Client::new();
    http.get(format!("{url}/internal/force_flush"))
        .send()
        .await
        .unwrap();
    let selector = format!("{{__name__=~\"pods_(restarts|cpu_usage)\", name=\"{marker}\"}}");
    let export = http
        .get(format!("{url}/api/v1/export"))
        .query(&[("match[]", selector.as_str()), ("start", "0")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut got: Vec<(String, f64, i64)> = export
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["metric"]["__name__"].as_str().unwrap().to_owned(),
                v["values"][0].as_f64().unwrap(),
                v["timestamps"][0].as_i64().unwrap(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let t_ms = t / 1_000_000;
    assert_eq!(
        got,
        vec![
            ("pods_cpu_usage".into(), 0.25, t_ms),
            ("pods_restarts".into(), 3.0, t_ms),
        ]
    );
}
