use berth_core::IdSource;

/// Ids from the operating system's random source.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source does not fail on Linux once booted; fall back to the clock
    // rather than panic if it ever does.
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = nanos[i % nanos.len()] ^ (i as u8).wrapping_mul(31);
        }
    }
    bytes
}

impl IdSource for RandomIds {
    fn task_id(&mut self) -> String {
        hex(&random_bytes::<16>())
    }

    fn uuid(&mut self) -> String {
        let mut b = random_bytes::<16>();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    fn deployment_digits(&mut self) -> u64 {
        // 19 digits, like ECS's `ecs-svc/1234567890123456789`.
        1_000_000_000_000_000_000
            + u64::from_le_bytes(random_bytes::<8>()) % 8_000_000_000_000_000_000
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
