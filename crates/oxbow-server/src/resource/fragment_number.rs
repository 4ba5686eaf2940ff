//! Fragment numbers. KVS hands out ~47-digit decimal strings, increasing per stream; clients
//! treat them as opaque strings (and compare them as big numbers). Oxbow's are 47 digits:
//! a fixed prefix, the stream's creation time in ms (so numbers of different stream
//! incarnations differ), and the store's per-stream sequence, zero-padded to 20 digits so
//! string order, numeric order and arrival order agree.

const PREFIX: &str = "91343852333181";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentNumber {
    pub stream_creation_ms: i64,
    pub seq: u64,
}

impl FragmentNumber {
    pub fn new(stream_creation_ms: i64, seq: u64) -> Self {
        Self {
            stream_creation_ms,
            seq,
        }
    }

    /// Parses a number this stream handed out; `None` for anything else.
    pub fn parse(s: &str, stream_creation_ms: i64) -> Option<Self> {
        let rest = s.strip_prefix(PREFIX)?;
        if rest.len() != 33 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let creation: i64 = rest[..13].parse().ok()?;
        let seq: u64 = rest[13..].parse().ok()?;
        (creation == stream_creation_ms).then_some(Self {
            stream_creation_ms,
            seq,
        })
    }
}

impl std::fmt::Display for FragmentNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{:013}{:020}", self.stream_creation_ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_order() {
        let a = FragmentNumber::new(1_795_297_817_291, 9).to_string();
        let b = FragmentNumber::new(1_795_297_817_291, 10).to_string();
        assert_eq!(a.len(), 47);
        assert!(a < b, "string order is arrival order");
        assert_eq!(
            FragmentNumber::parse(&b, 1_795_297_817_291).unwrap().seq,
            10
        );
        assert!(
            FragmentNumber::parse(&b, 1).is_none(),
            "another incarnation's number"
        );
        assert!(FragmentNumber::parse("123", 1).is_none());
    }
}
