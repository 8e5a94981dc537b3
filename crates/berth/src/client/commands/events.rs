//! `berth events SERVICE [-f]`: the service's events, oldest first, dated in local time;
//! with `-f`, then each new one as it happens, until interrupted.

use std::io::Write;
use std::time::Duration;

use berth_api::ServiceEvent;
use time::{OffsetDateTime, UtcOffset};

use super::event_feed::EventFeed;
use super::require_service;
use crate::client::ApiClient;

/// How often a followed service is asked for its events.
const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(client: &ApiClient, service: &str, follow: bool) -> anyhow::Result<()> {
    let found = require_service(client, service).await?;
    let offset = local_offset().unwrap_or(UtcOffset::UTC);
    print!("{}", render(&found.events, offset));
    if !follow {
        return Ok(());
    }
    let mut feed = EventFeed::after(&found);
    let follow = async {
        loop {
            tokio::time::sleep(FOLLOW_INTERVAL).await;
            let found = require_service(client, service).await?;
            print!("{}", feed.rendered(&found));
            std::io::stdout().flush()?;
        }
    };
    tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// The machine's UTC offset, as `date +%z` reports it (honouring `TZ`). `time`'s own
/// lookup refuses to answer once the process has several threads, as ours does.
pub(super) fn local_offset() -> Option<UtcOffset> {
    let output = std::process::Command::new("date")
        .arg("+%z")
        .output()
        .ok()?;
    parse_offset(String::from_utf8_lossy(&output.stdout).trim())
}

/// `+0200` / `-0530` -> the offset.
fn parse_offset(text: &str) -> Option<UtcOffset> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i8 = digits[..2].parse().ok()?;
    let minutes: i8 = digits[2..].parse().ok()?;
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

/// `YYYY-MM-DD HH:MM:SS message` per event, oldest first (ECS lists them newest first).
pub(super) fn render(events: &[ServiceEvent], offset: UtcOffset) -> String {
    // Reversed first, so events of one instant keep their order under the stable sort.
    let mut events: Vec<&ServiceEvent> = events.iter().rev().collect();
    events.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
    events
        .iter()
        .map(|event| format!("{} {}\n", clock(event.created_at, offset), event.message))
        .collect()
}

pub(super) fn clock(epoch_seconds: f64, offset: UtcOffset) -> String {
    let at = OffsetDateTime::from_unix_timestamp(epoch_seconds.floor() as i64)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(created_at: f64, message: &str) -> ServiceEvent {
        ServiceEvent {
            id: String::new(),
            created_at,
            message: message.to_string(),
        }
    }

    #[test]
    fn events_read_oldest_first_in_the_given_offset() {
        // 2023-11-14T22:13:20Z
        let events = [
            event(
                1_700_000_060.9,
                "(service member) has reached a steady state.",
            ),
            event(
                1_700_000_000.0,
                "(service member) has started 1 tasks: (task abc).",
            ),
        ];
        let text = render(&events, UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(
            text,
            "2023-11-15 00:13:20 (service member) has started 1 tasks: (task abc).\n2023-11-15 00:14:20 (service member) has reached a steady state.\n"
        );
        assert_eq!(render(&[], UtcOffset::UTC), "");
    }

    #[test]
    fn offsets_are_read_from_date() {
        assert_eq!(parse_offset("+0200"), UtcOffset::from_hms(2, 0, 0).ok());
        assert_eq!(parse_offset("-0530"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_offset("+0000"), Some(UtcOffset::UTC));
        assert_eq!(parse_offset("UTC"), None);
        assert_eq!(parse_offset(""), None);
    }
}
