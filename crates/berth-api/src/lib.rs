//! The ECS wire types berth speaks (awsJson1_1, botocore's `ecs/2014-11-13` model).
//!
//! Every type here is a compatibility promise: it is what the `aws` CLI, boto3 and
//! Terraform send and read. Field names follow ECS exactly (camelCase); optional
//! fields are skipped when absent so responses look like ECS's own. Request types
//! ignore fields they do not know, since newer clients send more than older ones.
//! Rarely used nested shapes are kept as raw JSON values so they round-trip as sent.

mod actions;
mod cluster;
mod common;
mod container_instance;
pub mod elbv2;
mod error;
pub mod limits;
mod service;
mod service_deployment;
mod task;
mod task_definition;

pub use actions::*;
pub use cluster::*;
pub use common::*;
pub use container_instance::*;
pub use error::*;
pub use service::*;
pub use service_deployment::*;
pub use task::*;
pub use task_definition::*;

/// The `X-Amz-Target` prefix of every ECS action.
pub const ECS_TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";
/// The `X-Amz-Target` prefix of berth's own actions (logs and friends), served on the same endpoint.
pub const BERTH_TARGET_PREFIX: &str = "BerthV1";
/// The content type of every awsJson1_1 request and response.
pub const AWS_JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
