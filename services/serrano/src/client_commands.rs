//! Client subcommands: call the Orchestration API and print tables or JSON.

use std::path::Path;

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use serrano_clients::RoClient;
use serrano_model::{DeploymentRequest, KernelRequest, StoragePolicyRequest};

use crate::cli::{
    AssignmentCommand, ClusterCommand, Command, DeploymentCommand, FaasCommand, Global, Output,
    PolicyCommand,
};
use crate::table;

fn token(global: &Global) -> anyhow::Result<String> {
    if let Some(token) = &global.token {
        return Ok(token.clone());
    }
    let text = std::fs::read_to_string(&global.token_file).with_context(|| {
        format!(
            "no token: pass --token, set SERRANO_TOKEN, or point --token-file at a token ({} not readable)",
            global.token_file.display()
        )
    })?;
    Ok(text.trim().to_owned())
}

fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub async fn run(global: &Global, command: Command) -> anyhow::Result<()> {
    let client = RoClient::new(&global.url, &token(global)?)?;
    let out = global.output;
    match command {
        Command::Up { .. } => unreachable!("handled by cli::run"),
        Command::Deployments(command) => deployments(&client, out, command).await,
        Command::StoragePolicies(command) => policies(&client, out, command).await,
        Command::Clusters(command) => clusters(&client, out, command).await,
        Command::Faas(command) => faas(&client, out, command).await,
        Command::Assignments(command) => assignments(&client, out, command).await,
    }
}

async fn deployments(
    client: &RoClient,
    out: Output,
    command: DeploymentCommand,
) -> anyhow::Result<()> {
    match command {
        DeploymentCommand::Create { file, name } => {
            let text = read(&file)?;
            let is_yaml = matches!(
                file.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            let mut request = if is_yaml {
                DeploymentRequest {
                    name: None,
                    user_token: None,
                    deployment_description: text,
                    deployment_objectives: Vec::new(),
                }
            } else {
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a deployment request", file.display()))?
            };
            if name.is_some() {
                request.name = name;
            }
            let written = client.create_deployment(&request).await?;
            match out {
                Output::Json => json(&written),
                Output::Table => {
                    let uuid = written
                        .deployment_uuid
                        .map(|u| u.to_string())
                        .unwrap_or_default();
                    println!("deployment {uuid} created (revision {})", written.revision);
                    Ok(())
                }
            }
        }
        DeploymentCommand::List => {
            let list = client.list_deployments().await?;
            if out == Output::Json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|d| {
                    vec![
                        d.deployment_uuid.to_string(),
                        d.name.clone(),
                        d.status.name().to_owned(),
                        d.assignments.len().to_string(),
                        table::time(d.updated_at),
                    ]
                })
                .collect::<Vec<_>>();
            table::print(&["UUID", "NAME", "STATUS", "ASSIGNMENTS", "UPDATED"], &rows);
            Ok(())
        }
        DeploymentCommand::Get { uuid } => {
            let (deployment, revision) = client.get_deployment(&uuid).await?;
            if out == Output::Json {
                return json(&deployment);
            }
            table::print(
                &["UUID", "NAME", "STATUS", "REVISION", "CREATED", "UPDATED"],
                &[vec![
                    deployment.deployment_uuid.to_string(),
                    deployment.name.clone(),
                    deployment.status.name().to_owned(),
                    revision.to_string(),
                    table::time(deployment.created_at),
                    table::time(deployment.updated_at),
                ]],
            );
            Ok(())
        }
        DeploymentCommand::Logs { uuid } => {
            let logs = client.deployment_logs(&uuid).await?;
            if out == Output::Json {
                return json(&logs);
            }
            let rows = logs["deployments"]["logs"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| {
                            vec![
                                table::time(e["timestamp"].as_i64().unwrap_or(0)),
                                e["event"].as_str().unwrap_or("").to_owned(),
                            ]
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            table::print(&["TIME", "EVENT"], &rows);
            Ok(())
        }
        DeploymentCommand::Delete { uuid } => {
            let written = client.delete_deployment(&uuid).await?;
            match out {
                Output::Json => json(&written),
                Output::Table => {
                    println!("deployment {uuid} terminated");
                    Ok(())
                }
            }
        }
        DeploymentCommand::Watch { revision } => {
            watch(client, out, "/deployments/watch", revision).await
        }
    }
}

async fn policies(client: &RoClient, out: Output, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Create { file } => {
            let request: StoragePolicyRequest = serde_json::from_str(&read(&file)?)
                .with_context(|| format!("{} is not a storage policy request", file.display()))?;
            let written = client.create_storage_policy(&request).await?;
            match out {
                Output::Json => json(&written),
                Output::Table => {
                    let uuid = written
                        .policy_uuid
                        .map(|u| u.to_string())
                        .unwrap_or_default();
                    println!(
                        "storage policy {uuid} created (revision {})",
                        written.revision
                    );
                    Ok(())
                }
            }
        }
        PolicyCommand::List => {
            let list = client.list_storage_policies().await?;
            if out == Output::Json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|p| {
                    vec![
                        p.policy_uuid.to_string(),
                        p.name.clone(),
                        p.status.name().to_owned(),
                        table::time(p.updated_at),
                    ]
                })
                .collect::<Vec<_>>();
            table::print(&["UUID", "NAME", "STATUS", "UPDATED"], &rows);
            Ok(())
        }
        PolicyCommand::Get { uuid } => {
            let value: serde_json::Value = client
                .get_json(&format!("/storage_policies/{uuid}"))
                .await?;
            let policy = &value["storage_policies"][0];
            if out == Output::Json {
                return json(policy);
            }
            let policy: serrano_model::StoragePolicy = serde_json::from_value(policy.clone())?;
            table::print(
                &[
                    "UUID",
                    "NAME",
                    "STATUS",
                    "DECISION",
                    "GATEWAY ID",
                    "UPDATED",
                ],
                &[vec![
                    policy.policy_uuid.to_string(),
                    policy.name.clone(),
                    policy.status.name().to_owned(),
                    serde_json::to_string(&policy.decision)?,
                    policy.cc_policy_id.to_string(),
                    table::time(policy.updated_at),
                ]],
            );
            Ok(())
        }
        PolicyCommand::Delete { uuid } => {
            let value: serde_json::Value = client
                .delete_json(&format!("/storage_policies/{uuid}"))
                .await?;
            if out == Output::Json {
                return json(&value);
            }
            println!("storage policy {uuid} deleted");
            Ok(())
        }
    }
}

async fn clusters(client: &RoClient, out: Output, command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::List { active } => {
            let list = client.list_clusters(active.as_deref()).await?;
            if out == Output::Json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|c| {
                    let seen = c
                        .last_seen
                        .parse()
                        .map(table::time)
                        .unwrap_or_else(|_| c.last_seen.clone());
                    vec![
                        c.cluster_uuid.to_string(),
                        format!("{:?}", c.cluster_type).to_lowercase(),
                        seen,
                    ]
                })
                .collect::<Vec<_>>();
            table::print(&["UUID", "TYPE", "LAST SEEN"], &rows);
            Ok(())
        }
        ClusterCommand::Get { uuid } => {
            let cluster: serrano_model::Cluster =
                client.get_json(&format!("/clusters/{uuid}")).await?;
            if out == Output::Json {
                return json(&cluster);
            }
            table::print(
                &["UUID", "TYPE", "INFO"],
                &[vec![
                    cluster.cluster_uuid.to_string(),
                    format!("{:?}", cluster.cluster_type).to_lowercase(),
                    serde_json::to_string(&cluster.info)?,
                ]],
            );
            Ok(())
        }
        ClusterCommand::Watch { revision } => watch(client, out, "/clusters/watch", revision).await,
    }
}

async fn faas(client: &RoClient, out: Output, command: FaasCommand) -> anyhow::Result<()> {
    match command {
        FaasCommand::List => {
            let value: serde_json::Value = client.get_json("/kernel").await?;
            if out == Output::Json {
                return json(&value["kernels"]);
            }
            let kernels: Vec<KernelRequest> = serde_json::from_value(value["kernels"].clone())?;
            let rows = kernels
                .iter()
                .map(|k| {
                    vec![
                        k.request_uuid.to_string(),
                        format!("{:?}", k.kind),
                        k.kernel_name.clone(),
                        k.status.name().to_owned(),
                        table::time(k.updated_at),
                    ]
                })
                .collect::<Vec<_>>();
            table::print(&["REQUEST", "KIND", "KERNEL", "STATUS", "UPDATED"], &rows);
            Ok(())
        }
        FaasCommand::Get { uuid } => {
            let value: serde_json::Value = client.get_json(&format!("/faas/{uuid}")).await?;
            if out == Output::Json {
                return json(&value);
            }
            let text = |key: &str| match &value[key] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".to_owned(),
                other => other.to_string(),
            };
            table::print(
                &["REQUEST", "KERNEL", "STATUS", "CLUSTER", "UPDATED"],
                &[vec![
                    text("request_uuid"),
                    text("kernel_name"),
                    text("status_str"),
                    text("cluster_uuid"),
                    table::time(value["updated_at"].as_i64().unwrap_or(0)),
                ]],
            );
            Ok(())
        }
    }
}

async fn assignments(
    client: &RoClient,
    out: Output,
    command: AssignmentCommand,
) -> anyhow::Result<()> {
    match command {
        AssignmentCommand::List { cluster } => {
            let list = client.list_assignments(cluster.as_ref()).await?;
            if out == Output::Json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|a| {
                    vec![
                        a.uuid.to_string(),
                        format!("{:?}", a.kind),
                        a.cluster_uuid.to_string(),
                        a.deployment_uuid.to_string(),
                        a.status.name().to_owned(),
                        a.bundles.len().to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            table::print(
                &["UUID", "KIND", "CLUSTER", "DEPLOYMENT", "STATUS", "BUNDLES"],
                &rows,
            );
            Ok(())
        }
        AssignmentCommand::Watch { cluster, revision } => {
            watch(
                client,
                out,
                &format!("/assignments/watch/{cluster}"),
                revision,
            )
            .await
        }
    }
}

async fn watch(
    client: &RoClient,
    out: Output,
    path: &str,
    revision: Option<i64>,
) -> anyhow::Result<()> {
    let mut lines = client.watch(path, revision).await?;
    if out == Output::Table {
        table::print(&["TYPE", "REVISION", "KEY"], &[]);
    }
    while let Some(line) = lines.next().await {
        let line = line?;
        match out {
            Output::Json => println!("{}", serde_json::to_string(&line)?),
            Output::Table => println!(
                "{:<6}  {:<8}  {}",
                line.event_type,
                line.revision.map(|r| r.to_string()).unwrap_or_default(),
                line.key.clone().unwrap_or_else(|| line
                    .error
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default())
            ),
        }
        if line.event_type == "ERROR" {
            anyhow::bail!("watch ended with an error");
        }
    }
    Ok(())
}
