//! Random identifiers: request ids, resource versions, access keys. All come from the OS-seeded
//! thread RNG; none is a secret except the secret access key.

use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;

/// A request id in the UUID shape AWS uses for `x-amzn-RequestId`.
pub fn request_id() -> String {
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        (u16::from_be_bytes([b[6], b[7]]) & 0x0fff) | 0x4000,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

/// A fresh resource version: opaque, `[a-zA-Z0-9]{1,64}` as the API requires.
pub fn version() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 20)
}

/// An access key id in AWS's shape: a four-letter prefix (`AKIA` long-term, `ASIA` temporary)
/// and sixteen upper-case letters or digits.
pub fn access_key_id(prefix: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A 40-character secret access key.
pub fn secret_access_key() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        let v = version();
        assert!(v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric()));
        let k = access_key_id("AKIA");
        assert_eq!(k.len(), 20);
        assert!(k.starts_with("AKIA"));
        assert_eq!(secret_access_key().len(), 40);
    }
}
