//! ECS account settings: PutAccountSetting, PutAccountSettingDefault, ListAccountSettings,
//! DeleteAccountSetting, and the account default a new cluster takes.
//!
//! berth has one account and its caller is that account's root user, so a request
//! without `principalArn` acts for `arn:aws:iam::ACCOUNT:root`, whose setting is the
//! account default (as in ECS, where the root user's setting is the default of every
//! principal without one of its own). A setting berth honours is acted on
//! (`containerInsights`: a new cluster's default); one it cannot honour is refused by
//! name (the short ARN formats: berth's ARNs are always long); the others are kept and
//! echoed, as they change nothing berth does.

use berth_api as api;

use super::{invalid_word, paginate, parse_word, Context, EcsResult, Outcome};
use crate::error::EcsError;
use crate::ids::ArnScope;
use crate::model::{account_setting_key, AccountSettingRecord, EcsWord, SettingName};
use crate::state::{Command, State};

/// The principal of the account's root user, as berth keeps it.
const ROOT: &str = "root";

/// What a setting may be set to and what it is when nobody set it (ECS's defaults).
fn allowed_values(name: SettingName) -> (&'static [&'static str], &'static str) {
    use SettingName::*;
    match name {
        ServiceLongArnFormat | TaskLongArnFormat | ContainerInstanceLongArnFormat => {
            (&["enabled", "disabled"], "enabled")
        }
        ContainerInsights => (&["enhanced", "enabled", "disabled"], "disabled"),
        TagResourceAuthorization => (&["on", "off"], "on"),
        GuardDutyActivate => (&["on", "off"], "off"),
        FargateTaskRetirementWaitPeriod => (&["0", "7", "14"], "7"),
        DefaultLogDriverMode => (&["blocking", "non-blocking"], "non-blocking"),
        AwsvpcTrunking | DualStackIpv6 | FargateFipsMode | FargateEventWindows => {
            (&["enabled", "disabled"], "disabled")
        }
    }
}

/// The `containerInsights` value a cluster created now takes when its request gives none.
pub fn default_container_insights(state: &State) -> String {
    effective_value(state, ROOT, SettingName::ContainerInsights)
}

/// A new cluster's settings: those given, and the account's `containerInsights` default
/// when they do not name it, as ECS echoes it.
pub fn new_cluster_settings(
    state: &State,
    mut given: Vec<api::ClusterSetting>,
) -> Vec<api::ClusterSetting> {
    let insights = SettingName::ContainerInsights.as_ecs();
    if !given.iter().any(|s| s.name == insights) {
        given.push(api::ClusterSetting {
            name: insights.to_string(),
            value: default_container_insights(state),
        });
    }
    given
}

pub fn put_account_setting(
    _state: &State,
    request: api::PutAccountSettingRequest,
    ctx: &mut Context,
) -> EcsResult<api::AccountSettingResponse> {
    let name = setting_name(&request.name)?;
    let principal = principal(ctx.scope, request.principal_arn.as_deref())?;
    if name == SettingName::FargateTaskRetirementWaitPeriod && principal != ROOT {
        return Err(EcsError::invalid_parameter(format!(
            "fargateTaskRetirementWaitPeriod is set for the root user only ({}), not for principalArn '{}'",
            root_arn(ctx.scope),
            request.principal_arn.unwrap_or_default()
        )));
    }
    put(ctx.scope, name, &request.value, principal)
}

pub fn put_account_setting_default(
    _state: &State,
    request: api::PutAccountSettingDefaultRequest,
    ctx: &mut Context,
) -> EcsResult<api::AccountSettingResponse> {
    let name = setting_name(&request.name)?;
    put(ctx.scope, name, &request.value, ROOT.to_string())
}

fn put(
    scope: &ArnScope,
    name: SettingName,
    value: &str,
    principal: String,
) -> EcsResult<api::AccountSettingResponse> {
    check_writable(name)?;
    let (allowed, _) = allowed_values(name);
    if value.is_empty() {
        return Err(EcsError::invalid_parameter("value is required"));
    }
    if !allowed.contains(&value) {
        return Err(invalid_word(
            &format!("value of {}", name.as_ecs()),
            value,
            allowed.iter().copied(),
        ));
    }
    if is_long_arn_format(name) && value == "disabled" {
        return Err(EcsError::invalid_parameter(format!(
            "{} cannot be disabled: berth always uses the long ARN and resource ID format",
            name.as_ecs()
        )));
    }
    let record = AccountSettingRecord {
        principal,
        name,
        value: value.to_string(),
    };
    Ok(Outcome {
        response: api::AccountSettingResponse {
            setting: shown(scope, &record.principal, name, &record.value),
        },
        commands: vec![Command::PutAccountSetting(record)],
    })
}

pub fn delete_account_setting(
    state: &State,
    request: api::DeleteAccountSettingRequest,
    ctx: &mut Context,
) -> EcsResult<api::AccountSettingResponse> {
    let name = setting_name(&request.name)?;
    let principal = principal(ctx.scope, request.principal_arn.as_deref())?;
    check_writable(name)?;
    let key = account_setting_key(&principal, name);
    // The setting deleted; when the principal had none, the one it has (nothing changes).
    let (value, commands) = match state.account_settings.get(&key) {
        Some(record) => (
            record.value.clone(),
            vec![Command::RemoveAccountSetting(key)],
        ),
        None => (effective_value(state, &principal, name), vec![]),
    };
    Ok(Outcome {
        response: api::AccountSettingResponse {
            setting: shown(ctx.scope, &principal, name, &value),
        },
        commands,
    })
}

/// ListAccountSettings: the principal's own settings, or with `effectiveSettings` every
/// setting as it applies to the principal (its own, else the account default, else
/// ECS's default); filtered by `name` and `value`, by name, 10 a page.
pub fn list_account_settings(
    state: &State,
    request: api::ListAccountSettingsRequest,
    ctx: &mut Context,
) -> EcsResult<api::ListAccountSettingsResponse> {
    let name = request.name.as_deref().map(setting_name).transpose()?;
    if request.value.is_some() && name.is_none() {
        return Err(EcsError::invalid_parameter(
            "value can be given only with name",
        ));
    }
    let principal = principal(ctx.scope, request.principal_arn.as_deref())?;
    let mut settings: Vec<api::AccountSetting> = SettingName::ALL
        .iter()
        .copied()
        .filter(|n| name.is_none_or(|wanted| wanted == *n))
        .filter_map(|n| {
            let value = if request.effective_settings {
                Some(effective_value(state, &principal, n))
            } else {
                own_value(state, &principal, n)
            }?;
            Some(shown(ctx.scope, &principal, n, &value))
        })
        .filter(|s| request.value.as_ref().is_none_or(|v| *v == s.value))
        .collect();
    settings.sort_by(|a, b| a.name.cmp(&b.name));
    let (settings, next_token) = paginate(
        &settings,
        request.next_token.as_deref(),
        request.max_results,
        10,
    )?;
    Ok(Outcome::read_only(api::ListAccountSettingsResponse {
        settings,
        next_token,
    }))
}

fn own_value(state: &State, principal: &str, name: SettingName) -> Option<String> {
    state
        .account_settings
        .get(&account_setting_key(principal, name))
        .map(|record| record.value.clone())
}

/// The principal's own value, else the account default (the root user's), else ECS's.
fn effective_value(state: &State, principal: &str, name: SettingName) -> String {
    own_value(state, principal, name)
        .or_else(|| own_value(state, ROOT, name))
        .unwrap_or_else(|| allowed_values(name).1.to_string())
}

fn shown(scope: &ArnScope, principal: &str, name: SettingName, value: &str) -> api::AccountSetting {
    api::AccountSetting {
        name: name.as_ecs().to_string(),
        value: value.to_string(),
        principal_arn: format!("arn:aws:iam::{}:{principal}", scope.account_id),
        setting_type: if name == SettingName::GuardDutyActivate {
            "aws_managed"
        } else {
            "user"
        }
        .to_string(),
    }
}

fn setting_name(given: &str) -> Result<SettingName, EcsError> {
    if given.is_empty() {
        return Err(EcsError::invalid_parameter("name is required"));
    }
    parse_word("name", given)
}

fn is_long_arn_format(name: SettingName) -> bool {
    matches!(
        name,
        SettingName::ServiceLongArnFormat
            | SettingName::TaskLongArnFormat
            | SettingName::ContainerInstanceLongArnFormat
    )
}

/// guardDutyActivate is read-only in ECS (GuardDuty manages it); berth has no GuardDuty.
fn check_writable(name: SettingName) -> Result<(), EcsError> {
    if name == SettingName::GuardDutyActivate {
        return Err(EcsError::invalid_parameter(
            "guardDutyActivate is read-only: it is managed for the account (berth has no GuardDuty runtime monitoring)",
        ));
    }
    Ok(())
}

fn root_arn(scope: &ArnScope) -> String {
    format!("arn:aws:iam::{}:{ROOT}", scope.account_id)
}

/// The principal a request names, as kept (`root`, `user/NAME`, `role/NAME`): the caller
/// (the root user) when absent; otherwise an IAM ARN of berth's account.
fn principal(scope: &ArnScope, given: Option<&str>) -> Result<String, EcsError> {
    let Some(arn) = given else {
        return Ok(ROOT.to_string());
    };
    let prefix = format!("arn:aws:iam::{}:", scope.account_id);
    let resource = arn.strip_prefix(&prefix).unwrap_or("");
    let is_named = |kind: &str| {
        resource
            .strip_prefix(kind)
            .is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
    };
    if resource == ROOT || is_named("user/") || is_named("role/") {
        Ok(resource.to_string())
    } else {
        Err(EcsError::invalid_parameter(format!(
            "principalArn '{arn}' is invalid: use {}, or a user or role of account {} ({prefix}user/NAME, {prefix}role/NAME)",
            root_arn(scope),
            scope.account_id
        )))
    }
}
