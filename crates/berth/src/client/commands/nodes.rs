//! `berth nodes`: every container instance with its status, its agent's connection,
//! what is reserved and free on it, and how many tasks it runs. Fetching is separate
//! from drawing: [`render`] is a pure function of the API's answers.

use berth_api::{
    ContainerInstance, DescribeContainerInstancesRequest, DescribeContainerInstancesResponse,
    ListContainerInstancesRequest, ListContainerInstancesResponse,
};

use super::name_from_arn;
use super::ps::list_clusters;
use crate::client::ApiClient;

/// DescribeContainerInstances takes at most this many instances per call.
const DESCRIBE_BATCH: usize = 100;

pub async fn run(client: &ApiClient, all: bool) -> anyhow::Result<()> {
    let clusters = if all {
        list_clusters(client).await?
    } else {
        vec![client.cluster.clone()]
    };
    let mut rows = Vec::new();
    for cluster in clusters {
        for instance in instances(client, &cluster).await? {
            rows.push((cluster.clone(), instance));
        }
    }
    print!("{}", render(&rows));
    Ok(())
}

async fn instances(client: &ApiClient, cluster: &str) -> anyhow::Result<Vec<ContainerInstance>> {
    let mut arns = Vec::new();
    let mut next_token = None;
    loop {
        let request = ListContainerInstancesRequest {
            cluster: Some(cluster.to_string()),
            next_token: next_token.take(),
            ..Default::default()
        };
        let response: ListContainerInstancesResponse =
            client.ecs("ListContainerInstances", &request).await?;
        arns.extend(response.container_instance_arns);
        match response.next_token {
            Some(token) => next_token = Some(token),
            None => break,
        }
    }
    let mut found = Vec::with_capacity(arns.len());
    for batch in arns.chunks(DESCRIBE_BATCH) {
        let request = DescribeContainerInstancesRequest {
            cluster: Some(cluster.to_string()),
            container_instances: batch.to_vec(),
            include: vec![],
        };
        let response: DescribeContainerInstancesResponse =
            client.ecs("DescribeContainerInstances", &request).await?;
        found.extend(response.container_instances);
    }
    Ok(found)
}

fn integer(resources: &[berth_api::Resource], name: &str) -> i64 {
    resources
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .and_then(|r| r.integer_value)
        .unwrap_or(0)
}

fn attribute<'a>(instance: &'a ContainerInstance, name: &str) -> &'a str {
    instance
        .attributes
        .iter()
        .find(|a| a.name == name)
        .and_then(|a| a.value.as_deref())
        .unwrap_or("-")
}

/// One line per container instance, under a header; a note when there are none.
pub(super) fn render(rows: &[(String, ContainerInstance)]) -> String {
    if rows.is_empty() {
        return "no container instances\n".to_string();
    }
    let mut table: Vec<[String; 9]> = vec![[
        "CLUSTER".into(),
        "INSTANCE".into(),
        "HOST".into(),
        "ZONE".into(),
        "STATUS".into(),
        "AGENT".into(),
        "CPU USED/TOTAL".into(),
        "MEMORY USED/TOTAL".into(),
        "TASKS".into(),
    ]];
    for (cluster, instance) in rows {
        let cpu = integer(&instance.registered_resources, "CPU");
        let memory = integer(&instance.registered_resources, "MEMORY");
        let free_cpu = integer(&instance.remaining_resources, "CPU");
        let free_memory = integer(&instance.remaining_resources, "MEMORY");
        let id = name_from_arn(&instance.container_instance_arn);
        table.push([
            cluster.clone(),
            id.get(..12).unwrap_or(id).to_string(),
            instance.ec2_instance_id.clone(),
            attribute(instance, "ecs.availability-zone").to_string(),
            instance.status.clone(),
            if instance.agent_connected {
                "connected".into()
            } else {
                "disconnected".into()
            },
            format!("{}/{}", cpu - free_cpu, cpu),
            format!("{}/{} MiB", memory - free_memory, memory),
            match instance.pending_tasks_count {
                0 => instance.running_tasks_count.to_string(),
                pending => format!("{} (+{pending} pending)", instance.running_tasks_count),
            },
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|column| table.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `berth drain NODE`: sets a container instance DRAINING (or ACTIVE again with
/// `--undo`). NODE is its id, a unique prefix of it, or its host name.
pub async fn drain(client: &ApiClient, node: &str, undo: bool) -> anyhow::Result<()> {
    let found = instances(client, &client.cluster).await?;
    let matching: Vec<&ContainerInstance> = found
        .iter()
        .filter(|i| {
            let id = name_from_arn(&i.container_instance_arn);
            id == node || i.ec2_instance_id == node || (node.len() >= 4 && id.starts_with(node))
        })
        .collect();
    let instance = match matching.as_slice() {
        [one] => *one,
        [] => anyhow::bail!(
            "no container instance '{node}' in cluster '{}' (see berth nodes)",
            client.cluster
        ),
        _ => anyhow::bail!(
            "'{node}' names {} container instances in cluster '{}': give more of the id",
            matching.len(),
            client.cluster
        ),
    };
    let status = if undo { "ACTIVE" } else { "DRAINING" };
    let request = berth_api::UpdateContainerInstancesStateRequest {
        cluster: Some(client.cluster.clone()),
        container_instances: vec![instance.container_instance_arn.clone()],
        status: status.to_string(),
    };
    let response: berth_api::UpdateContainerInstancesStateResponse = client
        .ecs("UpdateContainerInstancesState", &request)
        .await?;
    let Some(updated) = response.container_instances.first() else {
        anyhow::bail!("container instance '{node}' is gone");
    };
    let id = name_from_arn(&updated.container_instance_arn);
    if undo {
        println!(
            "{id} ({}) is ACTIVE: it takes new tasks",
            updated.ec2_instance_id
        );
    } else {
        println!(
            "{id} ({}) is DRAINING: its service tasks move to other instances, {} running now",
            updated.ec2_instance_id, updated.running_tasks_count
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::{Attribute, Resource};

    fn resource(name: &str, value: i64) -> Resource {
        Resource {
            name: Some(name.into()),
            resource_type: Some("INTEGER".into()),
            integer_value: Some(value),
            ..Default::default()
        }
    }

    fn instance(id: &str, connected: bool, free_cpu: i64, running: i64) -> ContainerInstance {
        ContainerInstance {
            container_instance_arn: format!(
                "arn:aws:ecs:us-east-1:000000000000:container-instance/default/{id}"
            ),
            ec2_instance_id: format!("host-{id}"),
            status: "ACTIVE".into(),
            agent_connected: connected,
            registered_resources: vec![resource("CPU", 2048), resource("MEMORY", 4096)],
            remaining_resources: vec![resource("CPU", free_cpu), resource("MEMORY", 3072)],
            running_tasks_count: running,
            attributes: vec![Attribute {
                name: "ecs.availability-zone".into(),
                value: Some("zone-a".into()),
                target_type: None,
                target_id: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn each_instance_shows_its_agent_resources_and_tasks_under_a_header() {
        let rows = vec![
            (
                "default".to_string(),
                instance("0123456789abcdef0123", true, 1536, 2),
            ),
            ("default".to_string(), instance("feedface", false, 2048, 0)),
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("CLUSTER"), "{text}");
        assert!(lines[0].contains("AGENT") && lines[0].contains("MEMORY USED/TOTAL"));
        let first: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            first,
            [
                "default",
                "0123456789ab",
                "host-0123456789abcdef0123",
                "zone-a",
                "ACTIVE",
                "connected",
                "512/2048",
                "1024/4096",
                "MiB",
                "2"
            ]
        );
        assert!(lines[2].contains("disconnected"), "{text}");
        assert!(lines[2].contains(" 0/2048"), "{text}");
    }

    #[test]
    fn no_instances_says_so() {
        assert_eq!(render(&[]), "no container instances\n");
    }
}
