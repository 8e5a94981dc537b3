//! Printing a service's events as they happen, while a command waits on the service:
//! each event once, in `berth events`'s rendering.

use std::collections::HashSet;

use berth_api::{Service, ServiceEvent};
use time::UtcOffset;

use super::events;

pub(crate) struct EventFeed {
    seen: HashSet<String>,
    offset: UtcOffset,
}

impl EventFeed {
    /// A feed that prints nothing of what `service` already shows.
    pub(crate) fn after(service: &Service) -> EventFeed {
        EventFeed {
            seen: service.events.iter().map(|e| e.id.clone()).collect(),
            offset: events::local_offset().unwrap_or(UtcOffset::UTC),
        }
    }

    /// The events not printed before, rendered as `berth events` prints them.
    /// ECS keeps the newest 100 events: every id seen is remembered, so an event is
    /// printed once even as older ones fall off the end.
    pub(super) fn rendered(&mut self, service: &Service) -> String {
        let fresh: Vec<ServiceEvent> = service
            .events
            .iter()
            .filter(|e| self.seen.insert(e.id.clone()))
            .cloned()
            .collect();
        events::render(&fresh, self.offset)
    }

    /// The events not printed before, rendered (indented), oldest first.
    pub(super) fn new_lines(&mut self, service: &Service) -> String {
        self.rendered(service)
            .lines()
            .map(|line| format!("  {line}\n"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, created_at: f64, message: &str) -> ServiceEvent {
        ServiceEvent {
            id: id.to_string(),
            created_at,
            message: message.to_string(),
        }
    }

    #[test]
    fn each_event_is_printed_once_and_old_ones_never() {
        let mut service = Service {
            events: vec![event("a", 1_700_000_000.0, "old")],
            ..Default::default()
        };
        let mut feed = EventFeed {
            offset: UtcOffset::UTC,
            ..EventFeed::after(&service)
        };
        assert_eq!(feed.new_lines(&service), "");
        service
            .events
            .insert(0, event("b", 1_700_000_001.0, "started 1 tasks"));
        assert_eq!(
            feed.new_lines(&service),
            "  2023-11-14 22:13:21 started 1 tasks\n"
        );
        assert_eq!(feed.new_lines(&service), "");
    }
}
