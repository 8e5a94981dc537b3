//! Listener rules: CreateRule, DescribeRules, ModifyRule, DeleteRule and
//! SetRulePriorities. A listener keeps its rules in its record; its default rule is its
//! default action, listed last as `IsDefault` with priority `default`, and can be
//! neither deleted nor given a priority or conditions.

use berth_api::elbv2 as wire;

use super::actions::{rule_action, rule_conditions};
use super::model::{ListenerRecord, LoadBalancerRecord, Protocol, RuleRecord};
use super::{
    arns, listener_by_arn, page, parse_elbv2_arn, present, resource_tags, Elbv2Error,
    Elbv2ErrorCode, Elbv2Ref, Elbv2Result,
};
use crate::ecs::{Context, Outcome};
use crate::state::{Command, State};

/// The most rules (besides default rules) one load balancer's listeners hold, as in ELBv2.
pub const MAX_RULES_PER_LOAD_BALANCER: usize = 100;

/// A rule an ARN names: its listener, and the rule (None: the default rule).
pub(crate) fn rule_by_arn<'s>(
    state: &'s State,
    arn: &str,
) -> Result<(&'s ListenerRecord, Option<&'s RuleRecord>), Elbv2Error> {
    let not_found = || {
        Elbv2Error::new(
            Elbv2ErrorCode::RuleNotFound,
            format!("Rule '{arn}' not found"),
        )
    };
    let Some(Elbv2Ref::Rule {
        load_balancer_id,
        listener_id,
        id,
    }) = parse_elbv2_arn(arn)
    else {
        return Err(Elbv2Error::validation(format!(
            "'{arn}' is not a valid rule ARN"
        )));
    };
    let listener = state
        .listeners
        .get(&listener_id)
        .filter(|l| l.load_balancer == load_balancer_id)
        .ok_or_else(not_found)?;
    if id == listener.id {
        return Ok((listener, None));
    }
    let rule = listener
        .rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(not_found)?;
    Ok((listener, Some(rule)))
}

fn load_balancer_of<'s>(
    state: &'s State,
    listener: &ListenerRecord,
) -> Result<&'s LoadBalancerRecord, Elbv2Error> {
    state
        .load_balancers
        .get(&listener.load_balancer)
        .ok_or_else(|| {
            Elbv2Error::new(
                Elbv2ErrorCode::ListenerNotFound,
                format!("Listener '{}' not found", listener.id),
            )
        })
}

fn priority(field: &str, given: Option<i64>) -> Result<u32, Elbv2Error> {
    let value = given.ok_or_else(|| Elbv2Error::missing(field))?;
    u32::try_from(value)
        .ok()
        .filter(|p| (1..=50000).contains(p))
        .ok_or_else(|| {
            Elbv2Error::constraint(
                field,
                value,
                "Member must have value greater than or equal to 1 and less than or equal to 50000",
            )
        })
}

fn priority_in_use(priority: u32) -> Elbv2Error {
    Elbv2Error::new(
        Elbv2ErrorCode::PriorityInUse,
        format!("Priority '{priority}' is currently in use"),
    )
}

fn rules_result(
    state: &State,
    ctx: &Context,
    listener: &ListenerRecord,
    rule_ids: &[String],
) -> wire::RulesResult {
    wire::RulesResult {
        rules: rule_ids
            .iter()
            .filter_map(|id| {
                let rule = listener.rules.iter().find(|r| &r.id == id);
                present::rule(state, ctx.scope, listener, rule)
            })
            .collect(),
        next_marker: None,
    }
}

/// The answer and command for a changed listener, described as it will be.
fn store_listener(
    state: &State,
    ctx: &Context,
    listener: ListenerRecord,
    rule_ids: &[String],
) -> Outcome<wire::RulesResult> {
    let mut preview = state.clone();
    preview.apply(Command::PutListener(Box::new(listener.clone())));
    Outcome {
        response: rules_result(&preview, ctx, &listener, rule_ids),
        commands: vec![Command::PutListener(Box::new(listener))],
    }
}

pub fn create_rule(
    state: &State,
    request: wire::CreateRuleRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::RulesResult> {
    let listener = listener_by_arn(state, &request.listener_arn)?;
    let load_balancer = load_balancer_of(state, listener)?;
    if listener.protocol != Protocol::Http {
        return Err(Elbv2Error::invalid_configuration(format!(
            "Listener '{}' is a {} listener: rules are for HTTP listeners of application load balancers",
            request.listener_arn,
            listener.protocol.as_elbv2()
        )));
    }
    let priority = priority("priority", request.priority)?;
    let conditions = rule_conditions(&request.conditions)?;
    let action = rule_action(
        state,
        load_balancer,
        listener.protocol,
        "actions",
        &request.actions,
    )?;
    let tags = resource_tags(request.tags)?;
    if listener.rules.iter().any(|r| r.priority == priority) {
        return Err(priority_in_use(priority));
    }
    let rules_of_load_balancer: usize = state
        .listeners
        .values()
        .filter(|l| l.load_balancer == load_balancer.id)
        .map(|l| l.rules.len())
        .sum();
    if rules_of_load_balancer >= MAX_RULES_PER_LOAD_BALANCER {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::TooManyRules,
            format!(
                "Load balancer '{}' already has {MAX_RULES_PER_LOAD_BALANCER} rules, the most it can have",
                load_balancer.name
            ),
        ));
    }
    let rule = RuleRecord {
        id: arns::new_resource_id(ctx.ids),
        priority,
        conditions,
        action,
        tags,
    };
    let ids = [rule.id.clone()];
    let mut record = listener.clone();
    record.rules.push(rule);
    Ok(store_listener(state, ctx, record, &ids))
}

/// A listener's rules by priority, the default rule last.
fn rules_in_order(listener: &ListenerRecord) -> Vec<Option<&RuleRecord>> {
    let mut rules: Vec<&RuleRecord> = listener.rules.iter().collect();
    rules.sort_by_key(|r| r.priority);
    rules.into_iter().map(Some).chain([None]).collect()
}

pub fn describe_rules(
    state: &State,
    request: wire::DescribeRulesRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::RulesResult> {
    let chosen: Vec<(&ListenerRecord, Option<&RuleRecord>)> =
        match (&request.listener_arn, request.rule_arns.is_empty()) {
            (Some(_), false) => {
                return Err(Elbv2Error::validation(
                    "Listener ARN and rule ARNs cannot be specified at the same time",
                ))
            }
            (None, true) => {
                return Err(Elbv2Error::validation(
                    "You must specify either listener ARN or rule ARNs",
                ))
            }
            (Some(arn), true) => {
                let listener = listener_by_arn(state, arn)?;
                rules_in_order(listener)
                    .into_iter()
                    .map(|rule| (listener, rule))
                    .collect()
            }
            (None, false) => request
                .rule_arns
                .iter()
                .map(|arn| rule_by_arn(state, arn))
                .collect::<Result<_, _>>()?,
        };
    let (chosen, next_marker) = page(chosen, request.marker.as_deref(), request.page_size)?;
    Ok(Outcome::read_only(wire::RulesResult {
        rules: chosen
            .into_iter()
            .filter_map(|(listener, rule)| present::rule(state, ctx.scope, listener, rule))
            .collect(),
        next_marker,
    }))
}

/// Replaces a rule's conditions or actions (what is not sent stays). The default rule
/// takes new actions (its listener's default action) but no conditions.
pub fn modify_rule(
    state: &State,
    request: wire::ModifyRuleRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::RulesResult> {
    let (listener, rule) = rule_by_arn(state, &request.rule_arn)?;
    let load_balancer = load_balancer_of(state, listener)?;
    let action = request
        .actions
        .as_deref()
        .map(|actions| rule_action(state, load_balancer, listener.protocol, "actions", actions))
        .transpose()?;
    let mut record = listener.clone();
    let id = match rule {
        None => {
            if request.conditions.is_some() {
                return Err(Elbv2Error::new(
                    Elbv2ErrorCode::OperationNotPermitted,
                    format!(
                        "Rule '{}' is a default rule: it cannot have conditions",
                        request.rule_arn
                    ),
                ));
            }
            if let Some(action) = action {
                record.default_action = action;
            }
            record.id.clone()
        }
        Some(rule) => {
            let conditions = request
                .conditions
                .as_deref()
                .map(rule_conditions)
                .transpose()?;
            if let Some(stored) = record.rules.iter_mut().find(|r| r.id == rule.id) {
                if let Some(conditions) = conditions {
                    stored.conditions = conditions;
                }
                if let Some(action) = action {
                    stored.action = action;
                }
            }
            rule.id.clone()
        }
    };
    let mut outcome = store_listener(state, ctx, record.clone(), &[id]);
    if &record == listener {
        outcome.commands.clear();
    }
    Ok(outcome)
}

pub fn delete_rule(
    state: &State,
    request: wire::DeleteRuleRequest,
    _ctx: &mut Context,
) -> Elbv2Result<wire::EmptyResult> {
    let (listener, rule) = rule_by_arn(state, &request.rule_arn)?;
    let Some(rule) = rule else {
        return Err(Elbv2Error::new(
            Elbv2ErrorCode::OperationNotPermitted,
            format!(
                "Rule '{}' is a default rule and cannot be deleted",
                request.rule_arn
            ),
        ));
    };
    let mut record = listener.clone();
    record.rules.retain(|r| r.id != rule.id);
    Ok(Outcome {
        commands: vec![Command::PutListener(Box::new(record))],
        response: wire::EmptyResult,
    })
}

/// Gives rules new priorities, all at once: the priorities must be unique on each
/// listener once every change is made, so two rules may swap theirs.
pub fn set_rule_priorities(
    state: &State,
    request: wire::SetRulePrioritiesRequest,
    ctx: &mut Context,
) -> Elbv2Result<wire::RulesResult> {
    if request.rule_priorities.is_empty() {
        return Err(Elbv2Error::missing("rulePriorities"));
    }
    let mut changed: std::collections::BTreeMap<String, ListenerRecord> = Default::default();
    let mut order: Vec<(String, String)> = Vec::new();
    for (index, pair) in request.rule_priorities.iter().enumerate() {
        let at = format!("rulePriorities.member.{}", index + 1);
        let arn = pair
            .rule_arn
            .as_deref()
            .ok_or_else(|| Elbv2Error::missing(&format!("{at}.ruleArn")))?;
        let new_priority = priority(&format!("{at}.priority"), pair.priority)?;
        let (listener, rule) = rule_by_arn(state, arn)?;
        let Some(rule) = rule else {
            return Err(Elbv2Error::new(
                Elbv2ErrorCode::OperationNotPermitted,
                format!("Rule '{arn}' is a default rule: its priority cannot be changed"),
            ));
        };
        let record = changed
            .entry(listener.id.clone())
            .or_insert_with(|| listener.clone());
        if let Some(stored) = record.rules.iter_mut().find(|r| r.id == rule.id) {
            stored.priority = new_priority;
        }
        order.push((listener.id.clone(), rule.id.clone()));
    }
    for record in changed.values() {
        let mut priorities: Vec<u32> = record.rules.iter().map(|r| r.priority).collect();
        priorities.sort_unstable();
        if let Some(pair) = priorities.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(priority_in_use(pair[0]));
        }
    }
    let mut preview = state.clone();
    let commands: Vec<Command> = changed
        .values()
        .map(|record| Command::PutListener(Box::new(record.clone())))
        .collect();
    for command in &commands {
        preview.apply(command.clone());
    }
    let rules = order
        .iter()
        .filter_map(|(listener_id, rule_id)| {
            let listener = preview.listeners.get(listener_id)?;
            let rule = listener.rules.iter().find(|r| &r.id == rule_id)?;
            present::rule(&preview, ctx.scope, listener, Some(rule))
        })
        .collect();
    Ok(Outcome {
        commands,
        response: wire::RulesResult {
            rules,
            next_marker: None,
        },
    })
}
