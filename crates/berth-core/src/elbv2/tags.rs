use berth_api::elbv2 as wire;

use super::model::ResourceTag;
use super::{
    listener_by_arn, load_balancer_by_arn, parse_elbv2_arn, present, resource_tags,
    target_group_by_arn, Elbv2Error, Elbv2ErrorCode, Elbv2Ref, Elbv2Result, MAX_TAGS,
};
use crate::ecs::{Context, Outcome};
use crate::state::{Command, State};

/// Makes the command that stores a resource with new tags.
type StoreTags = Box<dyn Fn(Vec<ResourceTag>) -> Command>;

/// The tags of the resource an ARN names, and how to store changed ones.
fn tagged(state: &State, arn: &str) -> Result<(Vec<ResourceTag>, StoreTags), Elbv2Error> {
    match parse_elbv2_arn(arn) {
        Some(Elbv2Ref::LoadBalancer { .. }) => {
            let record = load_balancer_by_arn(state, arn)?.clone();
            Ok((
                record.tags.clone(),
                Box::new(move |tags| {
                    let mut record = record.clone();
                    record.tags = tags;
                    Command::PutLoadBalancer(Box::new(record))
                }),
            ))
        }
        Some(Elbv2Ref::TargetGroup { .. }) => {
            let record = target_group_by_arn(state, arn)?.clone();
            Ok((
                record.tags.clone(),
                Box::new(move |tags| {
                    let mut record = record.clone();
                    record.tags = tags;
                    Command::PutTargetGroup(Box::new(record))
                }),
            ))
        }
        Some(Elbv2Ref::Listener { .. }) => {
            let record = listener_by_arn(state, arn)?.clone();
            Ok((
                record.tags.clone(),
                Box::new(move |tags| {
                    let mut record = record.clone();
                    record.tags = tags;
                    Command::PutListener(Box::new(record))
                }),
            ))
        }
        None => Err(Elbv2Error::validation(format!(
            "'{arn}' is not a load balancer, target group or listener ARN"
        ))),
    }
}

pub fn add_tags(
    state: &State,
    request: wire::AddTagsRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let added = resource_tags(request.tags)?;
    if added.is_empty() {
        return Err(Elbv2Error::missing("tags"));
    }
    let mut commands = Vec::new();
    for arn in &request.resource_arns {
        let (mut tags, store) = tagged(state, arn)?;
        for tag in &added {
            match tags.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value.clone(),
                None => tags.push(tag.clone()),
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(Elbv2Error::new(
                Elbv2ErrorCode::TooManyTags,
                format!(
                    "'{arn}' would carry {} tags; the limit is {MAX_TAGS}",
                    tags.len()
                ),
            ));
        }
        commands.push(store(tags));
    }
    Ok(Outcome {
        commands,
        response: wire::EmptyResult,
    })
}

pub fn remove_tags(
    state: &State,
    request: wire::RemoveTagsRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let mut commands = Vec::new();
    for arn in &request.resource_arns {
        let (mut tags, store) = tagged(state, arn)?;
        tags.retain(|t| !request.tag_keys.contains(&t.key));
        commands.push(store(tags));
    }
    Ok(Outcome {
        commands,
        response: wire::EmptyResult,
    })
}

pub fn describe_tags(
    state: &State,
    request: wire::DescribeTagsRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::TagsResult> {
    let tag_descriptions = request
        .resource_arns
        .iter()
        .map(|arn| {
            let (tags, _) = tagged(state, arn)?;
            Ok(wire::TagDescription {
                resource_arn: arn.clone(),
                tags: present::tags(&tags),
            })
        })
        .collect::<Result<_, Elbv2Error>>()?;
    Ok(Outcome::read_only(wire::TagsResult { tag_descriptions }))
}
