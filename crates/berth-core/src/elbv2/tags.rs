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
        Some(Elbv2Ref::Rule { .. }) => {
            let (listener, rule) = super::rules::rule_by_arn(state, arn)?;
            let record = listener.clone();
            let rule_id = rule.map(|r| r.id.clone());
            let tags = match rule {
                Some(rule) => rule.tags.clone(),
                None => listener.default_rule_tags.clone(),
            };
            Ok((
                tags,
                Box::new(move |tags| {
                    let mut record = record.clone();
                    match &rule_id {
                        None => record.default_rule_tags = tags,
                        Some(id) => {
                            if let Some(rule) = record.rules.iter_mut().find(|r| &r.id == id) {
                                rule.tags = tags;
                            }
                        }
                    }
                    Command::PutListener(Box::new(record))
                }),
            ))
        }
        None => Err(Elbv2Error::validation(format!(
            "'{arn}' is not a load balancer, target group, listener or rule ARN"
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
    // Each ARN's tags are read after the changes before it: rules share their
    // listener's record.
    let mut working = state.clone();
    for arn in &request.resource_arns {
        let (mut tags, store) = tagged(&working, arn)?;
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
        let command = store(tags);
        working.apply(command.clone());
        commands.push(command);
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
    let mut working = state.clone();
    for arn in &request.resource_arns {
        let (mut tags, store) = tagged(&working, arn)?;
        tags.retain(|t| !request.tag_keys.contains(&t.key));
        let command = store(tags);
        working.apply(command.clone());
        commands.push(command);
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
