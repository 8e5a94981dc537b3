//! `berth delete lb NAME`: the load balancer's listeners, then the load balancer, then
//! its target groups (ELBv2 lets a target group forward for one load balancer only, so
//! none is another's), each named as it goes. Target groups of no load balancer stay.

use anyhow::{anyhow, bail};

use crate::client::{is_elbv2_error, ApiClient, XmlElement};

pub async fn run(client: &ApiClient, name: &str) -> anyhow::Result<()> {
    let found = match elbv2(
        client,
        "DescribeLoadBalancers",
        vec![("Names.member.1", name.to_string())],
    )
    .await
    {
        Ok(root) => root,
        Err(error) if is_elbv2_error(&error, "LoadBalancerNotFound") => {
            bail!("load balancer '{name}' not found")
        }
        Err(error) => return Err(error),
    };
    let Some(arn) = found
        .members(&["LoadBalancers"])
        .first()
        .and_then(|lb| lb.text_at(&["LoadBalancerArn"]))
        .map(str::to_string)
    else {
        bail!("load balancer '{name}' not found");
    };

    // Decided before anything is deleted: deleting the balancer detaches its groups.
    let groups = elbv2(
        client,
        "DescribeTargetGroups",
        vec![("LoadBalancerArn", arn.clone())],
    )
    .await?;
    let only_ours: Vec<(String, String)> = groups
        .members(&["TargetGroups"])
        .into_iter()
        .filter(|group| {
            group
                .members(&["LoadBalancerArns"])
                .iter()
                .all(|lb| lb.text.trim() == arn)
        })
        .filter_map(|group| {
            Some((
                group.text_at(&["TargetGroupName"])?.to_string(),
                group.text_at(&["TargetGroupArn"])?.to_string(),
            ))
        })
        .collect();

    listeners_and_balancer(client, name, &arn).await?;

    let mut kept = Vec::new();
    for (group_name, group_arn) in only_ours {
        match elbv2(
            client,
            "DeleteTargetGroup",
            vec![("TargetGroupArn", group_arn)],
        )
        .await
        {
            Ok(_) => println!("target group {group_name} deleted"),
            Err(error) => kept.push(format!("{group_name} ({error})")),
        }
    }
    if !kept.is_empty() {
        bail!(
            "load balancer {name} deleted, but not its target groups {}",
            kept.join(", ")
        );
    }
    Ok(())
}

/// Deletes the load balancer's listeners (their rules go with them), then it, each
/// named as it goes.
pub(super) async fn listeners_and_balancer(
    client: &ApiClient,
    name: &str,
    arn: &str,
) -> anyhow::Result<()> {
    let listeners = elbv2(
        client,
        "DescribeListeners",
        vec![("LoadBalancerArn", arn.to_string())],
    )
    .await?;
    for listener in listeners.members(&["Listeners"]) {
        let Some(listener_arn) = listener.text_at(&["ListenerArn"]) else {
            continue;
        };
        elbv2(
            client,
            "DeleteListener",
            vec![("ListenerArn", listener_arn.to_string())],
        )
        .await?;
        println!(
            "listener {} {} of load balancer {name} deleted",
            listener.text_at(&["Protocol"]).unwrap_or_default(),
            listener.text_at(&["Port"]).unwrap_or_default()
        );
    }
    elbv2(
        client,
        "DeleteLoadBalancer",
        vec![("LoadBalancerArn", arn.to_string())],
    )
    .await?;
    println!("load balancer {name} deleted");
    Ok(())
}

/// One ELBv2 call, answered as its `<{action}Result>` element.
pub(super) async fn elbv2(
    client: &ApiClient,
    action: &str,
    params: Vec<(&str, String)>,
) -> anyhow::Result<XmlElement> {
    let params = params
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
    let text = client.elbv2(action, params).await?;
    let mut root = XmlElement::parse(&text)
        .map_err(|e| anyhow!("berth's answer to {action} is not XML: {e:#}"))?;
    let result = format!("{action}Result");
    match root.children.iter().position(|c| c.name == result) {
        Some(at) => Ok(root.children.swap_remove(at)),
        None => bail!("berth's answer to {action} has no {result}"),
    }
}
