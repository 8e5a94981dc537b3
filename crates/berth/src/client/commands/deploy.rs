//! `berth deploy SERVICE --image CONTAINER=IMAGE --env CONTAINER:KEY=VALUE`: a new
//! revision of the service's current task definition, every field kept but the named
//! containers' images and environment variables, registered and rolled out with
//! UpdateService, then followed live (see [`rollout`](super::rollout)). Reading the
//! flags and changing the definition are pure functions.

use anyhow::{anyhow, bail};
use berth_api::{
    DescribeTaskDefinitionRequest, KeyValuePair, RegisterTaskDefinitionRequest, ServiceResponse,
    TaskDefinitionResponse, UpdateServiceRequest,
};

use super::apply::registered_as_request;
use super::event_feed::EventFeed;
use super::rollout::{self, primary_deployment};
use super::{require_service, task_definition_name};
use crate::client::ApiClient;

/// `--image CONTAINER=IMAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageChange {
    pub container: String,
    pub image: String,
}

/// `--env CONTAINER:KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvChange {
    pub container: String,
    pub key: String,
    pub value: String,
}

/// Reads `--image CONTAINER=IMAGE`.
pub(crate) fn parse_image(flag: &str) -> Result<ImageChange, String> {
    match flag.split_once('=') {
        Some((container, image)) if !container.is_empty() && !image.is_empty() => Ok(ImageChange {
            container: container.to_string(),
            image: image.to_string(),
        }),
        _ => Err(format!(
            "--image '{flag}': expected CONTAINER=IMAGE, e.g. web=berth/nginx:latest"
        )),
    }
}

/// Reads `--env CONTAINER:KEY=VALUE` (the value may be empty, never the key).
pub(crate) fn parse_env(flag: &str) -> Result<EnvChange, String> {
    let parsed = flag.split_once(':').and_then(|(container, setting)| {
        let (key, value) = setting.split_once('=')?;
        (!container.is_empty() && !key.is_empty()).then(|| EnvChange {
            container: container.to_string(),
            key: key.to_string(),
            value: value.to_string(),
        })
    });
    parsed.ok_or_else(|| {
        format!("--env '{flag}': expected CONTAINER:KEY=VALUE, e.g. web:LOG_LEVEL=debug")
    })
}

/// `definition` with the changes made, and the words for each; `None` when every
/// image and variable already is as asked. A container the definition does not have
/// is refused, naming those it has.
pub(crate) fn changed_definition(
    definition: &RegisterTaskDefinitionRequest,
    images: &[ImageChange],
    envs: &[EnvChange],
) -> anyhow::Result<Option<(RegisterTaskDefinitionRequest, Vec<String>)>> {
    let names: Vec<&str> = definition
        .container_definitions
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect();
    let asked = images
        .iter()
        .map(|i| (&i.container, "--image"))
        .chain(envs.iter().map(|e| (&e.container, "--env")));
    for (container, flag) in asked {
        if !names.contains(&container.as_str()) {
            bail!(
                "{flag}: task definition {} has no container '{container}' (its containers: {})",
                definition.family,
                names.join(", ")
            );
        }
    }
    let mut changed = definition.clone();
    let mut changes = Vec::new();
    for container in &mut changed.container_definitions {
        let name = container.name.clone().unwrap_or_default();
        for wanted in images.iter().filter(|i| i.container == name) {
            if container.image.as_deref() != Some(wanted.image.as_str()) {
                changes.push(format!(
                    "{name} image {} -> {}",
                    container.image.as_deref().unwrap_or("(none)"),
                    wanted.image
                ));
                container.image = Some(wanted.image.clone());
            }
        }
        for wanted in envs.iter().filter(|e| e.container == name) {
            let environment = container.environment.get_or_insert_with(Vec::new);
            let existing = environment
                .iter_mut()
                .find(|pair| pair.name.as_deref() == Some(wanted.key.as_str()));
            match existing {
                Some(pair) if pair.value.as_deref().unwrap_or_default() == wanted.value => {}
                Some(pair) => {
                    changes.push(format!("{name} env {} changed", wanted.key));
                    pair.value = Some(wanted.value.clone());
                }
                None => {
                    changes.push(format!("{name} env {} added", wanted.key));
                    environment.push(KeyValuePair {
                        name: Some(wanted.key.clone()),
                        value: Some(wanted.value.clone()),
                    });
                }
            }
        }
    }
    Ok((!changes.is_empty()).then_some((changed, changes)))
}

pub async fn run(
    client: &ApiClient,
    service: &str,
    images: &[String],
    envs: &[String],
    wait: bool,
) -> anyhow::Result<()> {
    let images = images
        .iter()
        .map(|flag| parse_image(flag))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!(e))?;
    let envs = envs
        .iter()
        .map(|flag| parse_env(flag))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!(e))?;
    if images.is_empty() && envs.is_empty() {
        bail!("nothing to deploy: give --image CONTAINER=IMAGE or --env CONTAINER:KEY=VALUE");
    }
    let current = require_service(client, service).await?;
    let request = DescribeTaskDefinitionRequest {
        task_definition: current.task_definition.clone(),
        include: vec!["TAGS".to_string()],
    };
    let described: TaskDefinitionResponse = client.ecs("DescribeTaskDefinition", &request).await?;
    let from = task_definition_name(&described.task_definition.task_definition_arn).to_string();
    let mut definition = registered_as_request(&described.task_definition)?;
    definition.tags = described.tags.unwrap_or_default();
    let Some((definition, changes)) = changed_definition(&definition, &images, &envs)? else {
        println!("service {service}: {from} already runs that; nothing to deploy");
        return Ok(());
    };
    berth_core::validate_task_definition(&definition)
        .map_err(|e| anyhow!("the new revision of {from}: {e}"))?;

    let registered: TaskDefinitionResponse =
        client.ecs("RegisterTaskDefinition", &definition).await?;
    let arn = registered.task_definition.task_definition_arn;
    let to = task_definition_name(&arn);
    println!("task definition {to} registered ({})", changes.join(", "));

    let feed = EventFeed::after(&current);
    let update = UpdateServiceRequest {
        cluster: Some(client.cluster.clone()),
        service: service.to_string(),
        task_definition: Some(arn.clone()),
        ..Default::default()
    };
    let updated: ServiceResponse = client.ecs("UpdateService", &update).await?;
    let Some(deployment) = primary_deployment(&updated.service) else {
        bail!("service '{service}' has no PRIMARY deployment after UpdateService");
    };
    println!("service {service} deploying {from} -> {to} (deployment {deployment})");
    if !wait {
        return Ok(());
    }
    rollout::follow(client, service, &deployment, feed).await?;
    println!("service {service} deployed {to}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use berth_api::ContainerDefinition;

    use super::*;

    #[test]
    fn image_flags_are_read_and_malformed_ones_named() {
        assert_eq!(
            parse_image("web=berth/nginx:1.27").unwrap(),
            ImageChange {
                container: "web".to_string(),
                image: "berth/nginx:1.27".to_string()
            }
        );
        for bad in ["web", "=berth/nginx", "web=", ""] {
            let error = parse_image(bad).unwrap_err();
            assert!(error.starts_with("--image '"), "{error}");
            assert!(error.contains("CONTAINER=IMAGE"), "{error}");
        }
    }

    #[test]
    fn env_flags_are_read_and_malformed_ones_named() {
        assert_eq!(
            parse_env("web:URL=http://x:80/?a=b").unwrap(),
            EnvChange {
                container: "web".to_string(),
                key: "URL".to_string(),
                value: "http://x:80/?a=b".to_string()
            }
        );
        assert_eq!(parse_env("web:EMPTY=").unwrap().value, "");
        for bad in ["web", "web:KEY", ":KEY=v", "web:=v", "KEY=v"] {
            let error = parse_env(bad).unwrap_err();
            assert!(error.starts_with("--env '"), "{bad}: {error}");
            assert!(error.contains("CONTAINER:KEY=VALUE"), "{error}");
        }
    }

    fn definition() -> RegisterTaskDefinitionRequest {
        let container = |name: &str, image: &str| ContainerDefinition {
            name: Some(name.to_string()),
            image: Some(image.to_string()),
            memory: Some(16),
            environment: Some(vec![KeyValuePair {
                name: Some("MODE".to_string()),
                value: Some("blue".to_string()),
            }]),
            ..Default::default()
        };
        RegisterTaskDefinitionRequest {
            family: "member".to_string(),
            container_definitions: vec![
                container("web", "berth/nginx:latest"),
                container("sidecar", "berth/busybox:latest"),
            ],
            cpu: Some("256".to_string()),
            ..Default::default()
        }
    }

    fn image(container: &str, image: &str) -> ImageChange {
        parse_image(&format!("{container}={image}")).unwrap()
    }

    #[test]
    fn only_the_named_containers_change_and_everything_else_is_kept() {
        let envs = [
            parse_env("web:MODE=green").unwrap(),
            parse_env("web:LEVEL=debug").unwrap(),
        ];
        let (changed, changes) =
            changed_definition(&definition(), &[image("web", "berth/busybox:1")], &envs)
                .unwrap()
                .expect("a change");
        assert_eq!(
            changes,
            [
                "web image berth/nginx:latest -> berth/busybox:1",
                "web env MODE changed",
                "web env LEVEL added"
            ]
        );
        let mut expected = definition();
        let web = &mut expected.container_definitions[0];
        web.image = Some("berth/busybox:1".to_string());
        web.environment = Some(vec![
            KeyValuePair {
                name: Some("MODE".to_string()),
                value: Some("green".to_string()),
            },
            KeyValuePair {
                name: Some("LEVEL".to_string()),
                value: Some("debug".to_string()),
            },
        ]);
        assert_eq!(
            serde_json::to_value(&changed).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
    }

    #[test]
    fn asking_for_what_is_there_changes_nothing() {
        let same = changed_definition(
            &definition(),
            &[image("web", "berth/nginx:latest")],
            &[parse_env("sidecar:MODE=blue").unwrap()],
        )
        .unwrap();
        assert!(same.is_none(), "{same:?}");
    }

    #[test]
    fn a_container_not_in_the_definition_is_refused_naming_those_there() {
        let error = changed_definition(&definition(), &[image("api", "x")], &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "--image: task definition member has no container 'api' (its containers: web, sidecar)"
        );
        let error = changed_definition(&definition(), &[], &[parse_env("db:K=v").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--env: "), "{error}");
    }
}
