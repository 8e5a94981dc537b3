use berth_api as api;

use super::{Context, EcsResult, Outcome};
use crate::error::{EcsError, ErrorCode};
use crate::ids::{parse_arn, ResourceRef};
use crate::model::ClusterStatus;
use crate::state::{Command, State};

fn not_found(arn: &str) -> EcsError {
    EcsError::new(
        ErrorCode::ResourceNotFoundException,
        format!("The specified resource was not found: {arn}"),
    )
}

/// The tags of the resource an ARN names, and how to write them back.
fn with_tags(
    state: &State,
    arn: &str,
    change: impl FnOnce(&mut Vec<api::Tag>),
) -> Result<(Vec<api::Tag>, Option<Command>), EcsError> {
    if arn.trim().is_empty() {
        return Err(EcsError::invalid_parameter("resourceArn must not be empty"));
    }
    let reference = parse_arn(arn).ok_or_else(|| {
        EcsError::invalid_parameter(format!("resourceArn '{arn}' is not an ECS ARN"))
    })?;
    match reference {
        ResourceRef::Cluster(name) => {
            let mut cluster = state
                .clusters
                .get(&name)
                .filter(|c| c.status == ClusterStatus::Active)
                .cloned()
                .ok_or_else(|| not_found(arn))?;
            change(&mut cluster.tags);
            Ok((cluster.tags.clone(), Some(Command::PutCluster(cluster))))
        }
        ResourceRef::TaskDefinition {
            family,
            revision: Some(revision),
        } => {
            let mut definition = state
                .definition(&family, revision)
                .cloned()
                .ok_or_else(|| not_found(arn))?;
            change(&mut definition.spec.tags);
            Ok((
                definition.spec.tags.clone(),
                Some(Command::PutTaskDefinition(Box::new(definition))),
            ))
        }
        ResourceRef::Service {
            cluster: Some(cluster),
            name,
        } => {
            let mut service = state
                .service(&cluster, &name)
                .cloned()
                .ok_or_else(|| not_found(arn))?;
            change(&mut service.tags);
            Ok((
                service.tags.clone(),
                Some(Command::PutService(Box::new(service))),
            ))
        }
        ResourceRef::Task { id, .. } => {
            let mut task = state
                .tasks
                .get(&id)
                .map(|task| crate::model::Task::clone(task))
                .ok_or_else(|| not_found(arn))?;
            change(&mut task.tags);
            Ok((task.tags.clone(), Some(Command::PutTask(Box::new(task)))))
        }
        ResourceRef::ContainerInstance { id, .. } => {
            let mut instance = state
                .container_instances
                .get(&id)
                .map(|instance| crate::model::ContainerInstance::clone(instance))
                .ok_or_else(|| not_found(arn))?;
            change(&mut instance.tags);
            Ok((
                instance.tags.clone(),
                Some(Command::PutContainerInstance(instance)),
            ))
        }
        ResourceRef::CapacityProvider(name) => {
            let mut provider = state
                .capacity_providers
                .get(&name)
                .filter(|p| p.status == crate::model::CapacityProviderStatus::Active)
                .cloned()
                .ok_or_else(|| not_found(arn))?;
            change(&mut provider.tags);
            Ok((
                provider.tags.clone(),
                Some(Command::PutCapacityProvider(Box::new(provider))),
            ))
        }
        _ => Err(EcsError::invalid_parameter(format!(
            "resourceArn '{arn}' does not name a taggable resource"
        ))),
    }
}

/// ECS's rules for a resource's tags: at most 50, keys of 1 to 128 characters outside
/// `aws:`, values of at most 256. Checked wherever tags are given.
pub(crate) fn check_tags(tags: &[api::Tag]) -> Result<(), EcsError> {
    if tags.len() > 50 {
        return Err(EcsError::invalid_parameter(
            "tags: a resource can have at most 50 tags",
        ));
    }
    for (i, tag) in tags.iter().enumerate() {
        let key = tag.key.as_deref().unwrap_or_default();
        if key.is_empty() || key.len() > 128 {
            return Err(EcsError::invalid_parameter(format!(
                "tags[{i}].key must be 1 to 128 characters"
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(EcsError::invalid_parameter(format!(
                "tags[{i}].key '{key}' uses the reserved prefix aws:"
            )));
        }
        if tag.value.as_deref().unwrap_or_default().len() > 256 {
            return Err(EcsError::invalid_parameter(format!(
                "tags[{i}].value is longer than 256 characters"
            )));
        }
    }
    Ok(())
}

pub fn tag_resource(
    state: &State,
    request: api::TagResourceRequest,
    _ctx: &mut Context,
) -> EcsResult<api::EmptyResponse> {
    check_tags(&request.tags)?;
    let new_tags = request.tags;
    let (tags, command) = with_tags(state, &request.resource_arn, |tags| {
        for tag in new_tags {
            match tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => tags.push(tag),
            }
        }
    })?;
    check_tags(&tags)?;
    Ok(Outcome {
        commands: command.into_iter().collect(),
        response: api::EmptyResponse {},
    })
}

pub fn untag_resource(
    state: &State,
    request: api::UntagResourceRequest,
    _ctx: &mut Context,
) -> EcsResult<api::EmptyResponse> {
    let keys = request.tag_keys;
    let (_, command) = with_tags(state, &request.resource_arn, |tags| {
        tags.retain(|t| !keys.iter().any(|k| Some(k) == t.key.as_ref()))
    })?;
    Ok(Outcome {
        commands: command.into_iter().collect(),
        response: api::EmptyResponse {},
    })
}

pub fn list_tags_for_resource(
    state: &State,
    request: api::ListTagsForResourceRequest,
    _ctx: &mut Context,
) -> EcsResult<api::ListTagsForResourceResponse> {
    let (tags, _) = with_tags(state, &request.resource_arn, |_| {})?;
    Ok(Outcome::read_only(api::ListTagsForResourceResponse {
        tags,
    }))
}
