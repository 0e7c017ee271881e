//! The keys this function writes to DynamoDB: bounded whatever a device
//! chose, deterministic across redeliveries, spread over write shards.

/// How many write shards each GSI key has per day. Readers query all of them.
pub const SHARDS: u64 = 4;

/// DynamoDB limits key attributes to 2048 (partition) and 1024 (sort) bytes.
const MAX_KEY_PART_BYTES: usize = 512;

/// A short, stable, non-cryptographic hash (FNV-1a): shards and fingerprints.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Keeps at most `max` bytes of `s` on a char boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// A key part bounded in size; an over-long value keeps a prefix and its hash,
/// so it stays unique and deterministic. The hash is SHA-256 (its first 64
/// bits), not FNV: the values come from devices, and two crafted names must
/// not share a key (one would silence the other).
pub fn bounded_key_part(s: &str) -> String {
    use sha2::{Digest, Sha256};
    if s.len() <= MAX_KEY_PART_BYTES {
        return s.to_owned();
    }
    let digest = Sha256::digest(s.as_bytes());
    format!(
        "{}~{}",
        truncate_str(s, MAX_KEY_PART_BYTES - 17),
        hex64(&digest)
    )
}

/// The first 64 bits of a digest, as 16 hex digits: what keys and
/// pseudonyms keep of a hash.
pub fn hex64(digest: &[u8]) -> String {
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The shard of an event, stable across redeliveries.
pub fn shard_of(event_id: &str) -> u64 {
    fnv1a(event_id.as_bytes()) % SHARDS
}

/// A GSI partition key: `<value>#<UTC day>#<shard>`.
pub fn day_key(value: &str, day: &str, shard: u64) -> String {
    format!("{}#{day}#{shard}", bounded_key_part(value))
}

pub fn entry_key(time_ms: i64, event_id: &str) -> String {
    format!("{:013}#{}", time_ms.max(0), bounded_key_part(event_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_long_key_parts_stay_unique_and_bounded() {
        let a = bounded_key_part(&"x".repeat(5000));
        let b = bounded_key_part(&format!("{}y", "x".repeat(4999)));
        assert!(a.len() <= 512 && b.len() <= 512);
        assert_ne!(a, b);
        let multibyte = bounded_key_part(&"é".repeat(1000));
        assert!(multibyte.len() <= 512);
    }
}
