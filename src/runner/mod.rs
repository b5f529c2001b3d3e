//! The container host: the Fargate task a function hands a job to (`ngbak job …`) runs the
//! function's own handler. It sits above the functions (`crate::lambda`); where a job runs is
//! decided below them (`crate::handoff`).

pub mod job;
