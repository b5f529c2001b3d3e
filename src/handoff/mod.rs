//! Where a job runs: in the Lambda function that received it or, when it would not finish in the
//! time that invocation has left, as an ECS Fargate task running the same binary (`ngbak job …`,
//! hosted by `crate::runner`), which writes the same report, tags and metrics.
//!
//! `decide` is the pure decision, `history` reads the measurements it needs from the store,
//! `ecs` builds and sends the RunTask request, and `launch` joins them for the functions. The
//! functions call down into this room; it knows nothing of them.

pub mod decide;
pub mod ecs;
pub mod history;
mod launch;

pub(crate) use launch::mark_in_task;
pub use launch::{backup, restore, restore_decision};

use clap::Parser;

/// `NGBAK_RUNNER`: who runs a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runner {
    /// Always in the function (a job longer than Lambda's 15 minutes is stopped there).
    Lambda,
    /// Always as a Fargate task.
    Fargate,
    /// In the function when the estimate fits in its remaining time, else as a Fargate task.
    Auto,
}

/// The hand-off settings, read from the environment (the template sets them).
#[derive(Parser, Clone, Debug)]
#[command(name = "ngbak-runner", about = "hand-off settings of the ngbak functions (from the environment)")]
pub struct RunnerConfig {
    /// lambda, fargate or auto.
    #[arg(long, env = "NGBAK_RUNNER", value_enum, default_value = "auto", ignore_case = true)]
    pub runner: Runner,
    /// The estimate is multiplied by this before it is compared with the time left.
    #[arg(long, env = "NGBAK_RUNNER_SAFETY_FACTOR", default_value_t = 1.5)]
    pub safety_factor: f64,
    /// Restore rate (archive MiB per second) assumed until a restore report has measured one.
    #[arg(long, env = "NGBAK_ASSUMED_RESTORE_MIBPS", default_value_t = 10.0)]
    pub assumed_restore_mibps: f64,
    /// ECS cluster of the task (name or ARN); without one, `auto` never hands off.
    #[arg(long, env = "NGBAK_ECS_CLUSTER")]
    pub cluster: Option<String>,
    /// Task definition (family, family:revision or ARN).
    #[arg(long, env = "NGBAK_ECS_TASK_DEFINITION")]
    pub task_definition: Option<String>,
    /// Name of the container in the task definition.
    #[arg(long, env = "NGBAK_ECS_CONTAINER", default_value = "ngbak")]
    pub container: String,
    /// Subnets of the task (comma-separated).
    #[arg(long, env = "NGBAK_ECS_SUBNETS", value_delimiter = ',')]
    pub subnets: Vec<String>,
    /// Security groups of the task (comma-separated).
    #[arg(long, env = "NGBAK_ECS_SECURITY_GROUPS", value_delimiter = ',')]
    pub security_groups: Vec<String>,
    /// Give the task a public IP (public subnets without a NAT gateway need one to reach AWS).
    #[arg(long, env = "NGBAK_ECS_ASSIGN_PUBLIC_IP", default_value = "false", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub assign_public_ip: bool,
}

impl RunnerConfig {
    /// Reads the settings from the environment only.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut config = Self::try_parse_from(["ngbak-runner"])?;
        let keep = |v: &mut Vec<String>| v.retain(|s| !s.trim().is_empty());
        keep(&mut config.subnets);
        keep(&mut config.security_groups);
        config.cluster = crate::config::set(&config.cluster).map(str::to_string);
        config.task_definition = crate::config::set(&config.task_definition).map(str::to_string);
        Ok(config)
    }

    /// Whether a Fargate task can be started at all (cluster and task definition known).
    pub fn can_hand_off(&self) -> bool {
        self.cluster.is_some() && self.task_definition.is_some()
    }
}
