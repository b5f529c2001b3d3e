//! Starting the Fargate task: the RunTask request (what to run, where, with which command) and
//! the client that sends it with aws-sdk-ecs.

use super::RunnerConfig;
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, KeyValuePair, LaunchType, NetworkConfiguration,
    TaskOverride,
};

/// One RunTask call: the task definition's container runs `command` with `environment` added to
/// the task definition's own (the functions' settings and secret ARNs).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRequest {
    pub cluster: String,
    pub task_definition: String,
    pub container: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    /// Shows in the ECS console and `list-tasks --started-by` (at most 36 characters).
    pub started_by: String,
}

impl TaskRequest {
    /// The request for `command`, from the settings; fails when they cannot start a task.
    pub fn new(config: &RunnerConfig, command: Vec<String>, started_by: &str) -> Result<Self> {
        let (Some(cluster), Some(task_definition)) = (&config.cluster, &config.task_definition) else {
            bail!(
                "cannot hand the job to Fargate: NGBAK_ECS_CLUSTER and NGBAK_ECS_TASK_DEFINITION must be set \
                 (deploy with EnableContainerTask=true), or set NGBAK_RUNNER=lambda"
            );
        };
        if config.subnets.is_empty() {
            bail!("cannot hand the job to Fargate: NGBAK_ECS_SUBNETS is empty (set TaskSubnetIds or SubnetIds)");
        }
        Ok(Self {
            cluster: cluster.clone(),
            task_definition: task_definition.clone(),
            container: config.container.clone(),
            subnets: config.subnets.clone(),
            security_groups: config.security_groups.clone(),
            assign_public_ip: config.assign_public_ip,
            command,
            environment: vec![("NGBAK_RUNNER".into(), "lambda".into())],
            started_by: started_by.chars().take(36).collect(),
        })
    }
}

/// Starts tasks; returns the task's ARN.
#[async_trait]
pub trait TaskLauncher: Send + Sync {
    async fn run_task(&self, request: &TaskRequest) -> Result<String>;
}

/// The ECS API, through the standard AWS configuration (`AWS_ENDPOINT_URL_ECS` redirects it).
pub struct EcsLauncher {
    client: aws_sdk_ecs::Client,
}

impl EcsLauncher {
    pub async fn from_env() -> Self {
        let shared = crate::net::aws::loader().load().await;
        Self { client: aws_sdk_ecs::Client::new(&shared) }
    }
}

#[async_trait]
impl TaskLauncher for EcsLauncher {
    async fn run_task(&self, r: &TaskRequest) -> Result<String> {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(r.subnets.clone()))
            .set_security_groups((!r.security_groups.is_empty()).then(|| r.security_groups.clone()))
            .assign_public_ip(if r.assign_public_ip { AssignPublicIp::Enabled } else { AssignPublicIp::Disabled })
            .build()
            .context("building the task's network configuration")?;
        let env = r.environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect();
        let container = ContainerOverride::builder()
            .name(&r.container)
            .set_command(Some(r.command.clone()))
            .set_environment(Some(env))
            .build();
        let out = self
            .client
            .run_task()
            .cluster(&r.cluster)
            .task_definition(&r.task_definition)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .started_by(&r.started_by)
            .network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
            .overrides(TaskOverride::builder().container_overrides(container).build())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "ECS RunTask on cluster {} failed: {}; check that the cluster and task definition exist \
                     and that the function's role may ecs:RunTask and iam:PassRole the task's roles",
                    r.cluster,
                    aws_sdk_ecs::error::DisplayErrorContext(&e)
                )
            })?;
        if let Some(f) = out.failures().first() {
            bail!(
                "ECS could not start the task on cluster {}: {} ({}); retry later or check the cluster's capacity",
                r.cluster,
                f.reason().unwrap_or("no reason given"),
                f.detail().or(f.arn()).unwrap_or("")
            );
        }
        out.tasks()
            .first()
            .and_then(|t| t.task_arn())
            .map(str::to_string)
            .context("ECS RunTask answered without a task and without a failure")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> RunnerConfig {
        RunnerConfig::try_parse_from([&["test"], args].concat()).unwrap()
    }

    #[test]
    fn the_request_carries_the_settings_and_never_hands_off_again() {
        let c =
            config(&["--cluster", "c", "--task-definition", "td:3", "--subnets", "s1,s2", "--security-groups", "g"]);
        let r = TaskRequest::new(
            &c,
            vec!["job".into(), "restore".into(), "x".into()],
            "ngbak-restore-with-a-much-longer-name-than-36",
        )
        .unwrap();
        assert_eq!((r.cluster.as_str(), r.task_definition.as_str(), r.container.as_str()), ("c", "td:3", "ngbak"));
        assert_eq!(r.subnets, ["s1", "s2"]);
        assert!(!r.assign_public_ip);
        assert!(r.environment.contains(&("NGBAK_RUNNER".into(), "lambda".into())));
        assert_eq!(r.started_by.len(), 36, "ECS refuses a longer startedBy");
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let e = TaskRequest::new(&config(&[]), vec![], "x").unwrap_err().to_string();
        assert!(e.contains("NGBAK_ECS_CLUSTER") && e.contains("EnableContainerTask=true"), "{e}");
        let e = TaskRequest::new(&config(&["--cluster", "c", "--task-definition", "t"]), vec![], "x").unwrap_err();
        assert!(e.to_string().contains("NGBAK_ECS_SUBNETS"), "{e}");
    }
}
