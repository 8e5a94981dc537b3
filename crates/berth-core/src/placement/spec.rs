//! ECS's placement vocabulary, typed: the one parse of `placementStrategy` and
//! `placementConstraints`, their rules and their defaults.

use std::fmt;

use berth_api as api;

use super::query::{Expression, MAX_EXPRESSION_CHARS};

/// ECS's limit on constraints for one task, its task definition's included.
pub const MAX_CONSTRAINTS: usize = 10;
/// ECS's limit on strategy rules for one task or service.
pub const MAX_STRATEGIES: usize = 5;

/// What `spread` balances over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    InstanceId,
    /// Same effect as `instanceId`: each container instance is its own host.
    Host,
    /// A container instance attribute, such as `ecs.availability-zone`.
    Attribute(String),
}

/// What `binpack` packs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementStrategy {
    /// Fewest tasks of the group per value of the field.
    Spread(SpreadField),
    /// Least remaining amount of the resource.
    Binpack(Resource),
    /// Any fitting instance, by the caller's random draw.
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementConstraint {
    /// At most one task of the group per container instance.
    DistinctInstance,
    /// Only instances that satisfy the expression.
    MemberOf(Expression),
}

/// Whose default strategy applies when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// The service scheduler balances over Availability Zones, then over instances.
    Service,
    /// RunTask places randomly.
    RunTask,
}

impl Scheduler {
    pub fn default_strategies(self) -> Vec<PlacementStrategy> {
        match self {
            Scheduler::Service => vec![
                PlacementStrategy::Spread(SpreadField::Attribute(
                    "ecs.availability-zone".to_string(),
                )),
                PlacementStrategy::Spread(SpreadField::InstanceId),
            ],
            Scheduler::RunTask => vec![PlacementStrategy::Random],
        }
    }
}

/// A refused placement field, worded as ECS's InvalidParameterException names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything placement needs to decide for one group of tasks, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementSpec {
    /// The task definition's constraints, then the request's (or the service's).
    pub constraints: Vec<PlacementConstraint>,
    /// In order: each one decides among the instances the ones before it left tied.
    /// Never empty: the scheduler's default when none was given.
    pub strategies: Vec<PlacementStrategy>,
}

impl PlacementSpec {
    /// The spec for tasks of a definition with `definition` constraints, run with the
    /// request's (or service's) `constraints` and `strategies`.
    pub fn parse(
        definition: &[api::PlacementConstraint],
        constraints: &[api::PlacementConstraint],
        strategies: &[api::PlacementStrategy],
        scheduler: Scheduler,
    ) -> Result<PlacementSpec, SpecError> {
        let mut parsed =
            parse_definition_constraints(definition, "the task definition's placementConstraints")?;
        parsed.extend(parse_constraints(constraints, "placementConstraints")?);
        if parsed.len() > MAX_CONSTRAINTS {
            return Err(SpecError(format!(
                "placementConstraints: a task can have at most {MAX_CONSTRAINTS} placement constraints, its task definition's included; got {} ({} from the task definition)",
                parsed.len(),
                definition.len()
            )));
        }
        let mut strategies = parse_strategies(strategies)?;
        if strategies.is_empty() {
            strategies = scheduler.default_strategies();
        }
        Ok(PlacementSpec {
            constraints: parsed,
            strategies,
        })
    }
}

/// A task definition's `placementConstraints`: `memberOf` only, as ECS takes them.
pub fn parse_definition_constraints(
    given: &[api::PlacementConstraint],
    field: &str,
) -> Result<Vec<PlacementConstraint>, SpecError> {
    if given.len() > MAX_CONSTRAINTS {
        return Err(SpecError(format!(
            "{field} has {} entries, more than the {MAX_CONSTRAINTS} allowed",
            given.len()
        )));
    }
    let parsed = parse_constraints(given, field)?;
    if let Some(i) = parsed
        .iter()
        .position(|c| *c == PlacementConstraint::DistinctInstance)
    {
        return Err(SpecError(format!(
            "{field}[{i}].type 'distinctInstance' cannot be used in a task definition: use memberOf (distinctInstance goes in RunTask or the service)"
        )));
    }
    Ok(parsed)
}

/// `placementConstraints` as given in a request; `field` names the list in messages.
pub fn parse_constraints(
    given: &[api::PlacementConstraint],
    field: &str,
) -> Result<Vec<PlacementConstraint>, SpecError> {
    if given.len() > MAX_CONSTRAINTS {
        return Err(SpecError(format!(
            "{field} has {} entries, more than the {MAX_CONSTRAINTS} allowed",
            given.len()
        )));
    }
    given
        .iter()
        .enumerate()
        .map(|(i, c)| parse_constraint(c).map_err(|e| SpecError(format!("{field}[{i}].{e}"))))
        .collect()
}

fn parse_constraint(given: &api::PlacementConstraint) -> Result<PlacementConstraint, String> {
    let expression = given.expression.as_deref().filter(|e| !e.trim().is_empty());
    match given.constraint_type.as_deref() {
        Some("distinctInstance") => match expression {
            None => Ok(PlacementConstraint::DistinctInstance),
            Some(e) => Err(format!(
                "expression '{e}' cannot be given for type distinctInstance"
            )),
        },
        Some("memberOf") => {
            let Some(text) = expression else {
                return Err("expression is required for type memberOf".to_string());
            };
            if text.chars().count() > MAX_EXPRESSION_CHARS {
                return Err(format!(
                    "expression is longer than {MAX_EXPRESSION_CHARS} characters"
                ));
            }
            Expression::parse(text)
                .map(PlacementConstraint::MemberOf)
                .map_err(|e| format!("expression '{text}' is invalid: {e}"))
        }
        other => Err(format!(
            "type '{}' is invalid: use distinctInstance or memberOf",
            other.unwrap_or_default()
        )),
    }
}

/// `placementStrategy` as given; at most `MAX_STRATEGIES` rules.
pub fn parse_strategies(
    given: &[api::PlacementStrategy],
) -> Result<Vec<PlacementStrategy>, SpecError> {
    if given.len() > MAX_STRATEGIES {
        return Err(SpecError(format!(
            "placementStrategy has {} entries, more than the {MAX_STRATEGIES} allowed",
            given.len()
        )));
    }
    given
        .iter()
        .enumerate()
        .map(|(i, s)| {
            parse_strategy(s).map_err(|e| SpecError(format!("placementStrategy[{i}].{e}")))
        })
        .collect()
}

fn parse_strategy(given: &api::PlacementStrategy) -> Result<PlacementStrategy, String> {
    let field = given.field.as_deref().filter(|f| !f.is_empty());
    match given.strategy_type.as_deref() {
        Some("random") => match field {
            None => Ok(PlacementStrategy::Random),
            Some(f) => Err(format!("field '{f}' cannot be given for type random")),
        },
        Some("spread") => match field {
            None => Err(
                "field is required for type spread: use instanceId, host or attribute:NAME"
                    .to_string(),
            ),
            Some(f) if f.eq_ignore_ascii_case("instanceId") => {
                Ok(PlacementStrategy::Spread(SpreadField::InstanceId))
            }
            Some(f) if f.eq_ignore_ascii_case("host") => {
                Ok(PlacementStrategy::Spread(SpreadField::Host))
            }
            Some(f) => match f.strip_prefix("attribute:") {
                Some(name) if !name.trim().is_empty() => Ok(PlacementStrategy::Spread(
                    SpreadField::Attribute(name.to_string()),
                )),
                _ => Err(format!(
                    "field '{f}' is invalid for type spread: use instanceId, host or attribute:NAME"
                )),
            },
        },
        Some("binpack") => match field {
            Some(f) if f.eq_ignore_ascii_case("cpu") => {
                Ok(PlacementStrategy::Binpack(Resource::Cpu))
            }
            Some(f) if f.eq_ignore_ascii_case("memory") => {
                Ok(PlacementStrategy::Binpack(Resource::Memory))
            }
            None => Err("field is required for type binpack: use cpu or memory".to_string()),
            Some(f) => Err(format!(
                "field '{f}' is invalid for type binpack: use cpu or memory"
            )),
        },
        other => Err(format!(
            "type '{}' is invalid: use random, spread or binpack",
            other.unwrap_or_default()
        )),
    }
}
