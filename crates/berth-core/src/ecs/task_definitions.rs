use berth_api as api;

use super::{invalid_word, paginate, Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::task_definition_ref;
use crate::model::{EcsWord, TaskDefinitionRecord, TaskDefinitionStatus};
use crate::present;
use crate::spec::ParsedSpec;
use crate::state::{Command, State};

pub fn register_task_definition(
    state: &State,
    mut request: api::RegisterTaskDefinitionRequest,
    ctx: &mut Context,
) -> EcsResult<api::TaskDefinitionResponse> {
    let parsed = crate::validation::task_spec(&request)?;
    super::tasks::check_definition_placement(&request.placement_constraints)?;
    super::tags::check_tags(&request.tags)?;
    // Refused here so the user learns at once; placement checks again, since the
    // operator may change the policy between restarts.
    ctx.policy.check_task_definition(&request)?;
    let revision = state
        .family_revisions
        .get(&request.family)
        .copied()
        .unwrap_or(0)
        + 1;
    let tags = std::mem::take(&mut request.tags);
    let record = TaskDefinitionRecord {
        family: request.family.clone(),
        revision,
        status: TaskDefinitionStatus::Active,
        spec: api::RegisterTaskDefinitionRequest {
            tags: tags.clone(),
            ..request
        },
        registered_at: ctx.now,
        deregistered_at: None,
        parsed: ParsedSpec::new(parsed),
    };
    let response = api::TaskDefinitionResponse {
        task_definition: present::task_definition(ctx.scope, &record),
        tags: Some(tags),
    };
    Ok(Outcome {
        commands: vec![Command::PutTaskDefinition(Box::new(record))],
        response,
    })
}

/// Resolves `family` (latest ACTIVE), `family:revision` or an ARN.
pub fn find_task_definition<'s>(state: &'s State, given: &str) -> Option<&'s TaskDefinitionRecord> {
    match task_definition_ref(given) {
        (family, Some(revision)) => state.definition(&family, revision),
        (family, None) => state.latest_active_definition(&family),
    }
}

pub fn describe_task_definition(
    state: &State,
    request: api::DescribeTaskDefinitionRequest,
    ctx: &mut Context,
) -> EcsResult<api::TaskDefinitionResponse> {
    if request.task_definition.trim().is_empty() {
        return Err(EcsError::client("taskDefinition must not be empty"));
    }
    let record = find_task_definition(state, &request.task_definition)
        .ok_or_else(|| EcsError::client("Unable to describe task definition."))?;
    let include_tags = request.include.iter().any(|i| i == "TAGS");
    Ok(Outcome::read_only(api::TaskDefinitionResponse {
        task_definition: present::task_definition(ctx.scope, record),
        tags: include_tags.then(|| record.spec.tags.clone()),
    }))
}

pub fn deregister_task_definition(
    state: &State,
    request: api::DeregisterTaskDefinitionRequest,
    ctx: &mut Context,
) -> EcsResult<api::TaskDefinitionResponse> {
    let (family, revision) = task_definition_ref(&request.task_definition);
    let revision = revision.ok_or_else(|| {
        EcsError::client(format!(
            "taskDefinition '{}' must name a revision (family:revision or an ARN)",
            request.task_definition
        ))
    })?;
    let record = state
        .definition(&family, revision)
        .ok_or_else(|| EcsError::client("The specified task definition does not exist."))?;
    let mut record = record.clone();
    if record.status == TaskDefinitionStatus::Active {
        record.status = TaskDefinitionStatus::Inactive;
        record.deregistered_at = Some(ctx.now);
    }
    let response = api::TaskDefinitionResponse {
        task_definition: present::task_definition(ctx.scope, &record),
        tags: None,
    };
    Ok(Outcome {
        commands: vec![Command::PutTaskDefinition(Box::new(record))],
        response,
    })
}

/// The most revisions one DeleteTaskDefinitions call may name.
const MAX_DELETED_PER_CALL: usize = 10;

/// DeleteTaskDefinitions: each named INACTIVE revision becomes DELETE_IN_PROGRESS; the
/// tasks and services that use it keep running, nothing new may start from it. A
/// revision that is not INACTIVE, or does not exist, is reported in `failures`.
pub fn delete_task_definitions(
    state: &State,
    request: api::DeleteTaskDefinitionsRequest,
    ctx: &mut Context,
) -> EcsResult<api::DeleteTaskDefinitionsResponse> {
    if request.task_definitions.is_empty() {
        return Err(EcsError::invalid_parameter(
            "taskDefinitions cannot be empty.",
        ));
    }
    if request.task_definitions.len() > MAX_DELETED_PER_CALL {
        return Err(EcsError::invalid_parameter(format!(
            "taskDefinitions can name at most {MAX_DELETED_PER_CALL} task definitions, got {}",
            request.task_definitions.len()
        )));
    }
    let mut named = Vec::new();
    for given in &request.task_definitions {
        let (family, revision) = task_definition_ref(given);
        let revision = revision.ok_or_else(|| {
            EcsError::client(format!(
                "taskDefinitions: '{given}' must name a revision (family:revision or an ARN)"
            ))
        })?;
        named.push((given, family, revision));
    }
    let mut response = api::DeleteTaskDefinitionsResponse::default();
    let mut commands = Vec::new();
    for (given, family, revision) in named {
        let arn = ctx.scope.task_definition(&family, revision);
        let failure = |reason: &str, detail: String| api::Failure {
            arn: Some(arn.clone()),
            reason: Some(reason.to_string()),
            detail: Some(detail),
        };
        match state.definition(&family, revision) {
            None => response.failures.push(failure(
                "MISSING",
                format!("task definition '{given}' does not exist"),
            )),
            Some(record) => match record.status {
                TaskDefinitionStatus::Active => response.failures.push(failure(
                    "The task definition must be INACTIVE to be deleted",
                    format!("{family}:{revision} is ACTIVE: deregister it first"),
                )),
                TaskDefinitionStatus::Inactive | TaskDefinitionStatus::DeleteInProgress => {
                    let mut deleted = record.clone();
                    deleted.status = TaskDefinitionStatus::DeleteInProgress;
                    response
                        .task_definitions
                        .push(present::task_definition(ctx.scope, &deleted));
                    if deleted != *record {
                        commands.push(Command::PutTaskDefinition(Box::new(deleted)));
                    }
                }
            },
        }
    }
    Ok(Outcome { commands, response })
}

/// The status filter of ListTaskDefinitions and ListTaskDefinitionFamilies: ACTIVE
/// (the default), one of the `allowed` statuses, or ALL (no filter).
fn status_filter(
    status: Option<&str>,
    allowed: &[TaskDefinitionStatus],
) -> Result<Option<TaskDefinitionStatus>, EcsError> {
    match status {
        None => Ok(Some(TaskDefinitionStatus::Active)),
        Some("ALL") => Ok(None),
        Some(given) => TaskDefinitionStatus::from_ecs(given)
            .filter(|s| allowed.contains(s))
            .map(Some)
            .ok_or_else(|| {
                let words = allowed.iter().map(|s| s.as_ecs());
                invalid_word("status", given, words.chain(["ALL"]))
            }),
    }
}

pub fn list_task_definitions(
    state: &State,
    request: api::ListTaskDefinitionsRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListTaskDefinitionsResponse> {
    let status = status_filter(request.status.as_deref(), TaskDefinitionStatus::ALL)?;
    let mut records: Vec<&TaskDefinitionRecord> = state
        .task_definitions
        .values()
        .map(|d| &**d)
        .filter(|d| status.is_none_or(|s| d.status == s))
        .filter(|d| {
            request
                .family_prefix
                .as_deref()
                .is_none_or(|p| d.family == p)
        })
        .collect();
    records.sort_by(|a, b| (&a.family, a.revision).cmp(&(&b.family, b.revision)));
    match request.sort.as_deref() {
        None | Some("ASC") => {}
        Some("DESC") => records.reverse(),
        Some(other) => {
            return Err(EcsError::invalid_parameter(format!(
                "sort '{other}' is invalid: use ASC or DESC"
            )))
        }
    }
    let arns: Vec<String> = records
        .iter()
        .map(|d| ctx.scope.task_definition(&d.family, d.revision))
        .collect();
    let (task_definition_arns, next_token) = paginate(
        &arns,
        request.next_token.as_deref(),
        request.max_results,
        100,
    )?;
    Ok(Outcome::read_only(api::ListTaskDefinitionsResponse {
        task_definition_arns,
        next_token,
    }))
}

pub fn list_task_definition_families(
    state: &State,
    request: api::ListTaskDefinitionFamiliesRequest,
    _ctx: &mut Context,
) -> EcsResult<api::ListTaskDefinitionFamiliesResponse> {
    // A family is ACTIVE or INACTIVE; DELETE_IN_PROGRESS is a revision's status only.
    let status = status_filter(
        request.status.as_deref(),
        &[TaskDefinitionStatus::Active, TaskDefinitionStatus::Inactive],
    )?;
    let mut families: Vec<String> = state
        .family_revisions
        .keys()
        .filter(|family| {
            request
                .family_prefix
                .as_deref()
                .is_none_or(|p| family.starts_with(p))
        })
        .filter(|family| {
            let revisions = state
                .task_definitions
                .values()
                .filter(|d| &d.family == *family);
            match status {
                None => true,
                // A family is ACTIVE while any revision is; INACTIVE when none is.
                Some(TaskDefinitionStatus::Active) => revisions
                    .clone()
                    .any(|d| d.status == TaskDefinitionStatus::Active),
                Some(TaskDefinitionStatus::Inactive) => !revisions
                    .clone()
                    .any(|d| d.status == TaskDefinitionStatus::Active),
                Some(TaskDefinitionStatus::DeleteInProgress) => false,
            }
        })
        .cloned()
        .collect();
    families.sort();
    let (families, next_token) = paginate(
        &families,
        request.next_token.as_deref(),
        request.max_results,
        100,
    )?;
    Ok(Outcome::read_only(
        api::ListTaskDefinitionFamiliesResponse {
            families,
            next_token,
        },
    ))
}
