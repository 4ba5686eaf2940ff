//! EBML variable-length integers: element IDs keep their marker bits, sizes drop them, and an
//! all-ones size means "unknown" (used for live Segments and Clusters).

/// Outcome of reading a VINT from a buffer that may not hold all of it yet.
#[derive(Debug, PartialEq, Eq)]
pub enum Read<T> {
    /// The value and how many bytes it took.
    Done(T, usize),
    NeedMore,
    Invalid,
}

/// Reads an element ID (1–4 bytes, marker kept).
pub fn read_id(buf: &[u8]) -> Read<u32> {
    let Some(&first) = buf.first() else {
        return Read::NeedMore;
    };
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return Read::Invalid;
    }
    if buf.len() < len {
        return Read::NeedMore;
    }
    let id = buf[..len]
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    Read::Done(id, len)
}

/// Reads an element size (1–8 bytes, marker dropped); `None` is the unknown size.
pub fn read_size(buf: &[u8]) -> Read<Option<u64>> {
    let Some(&first) = buf.first() else {
        return Read::NeedMore;
    };
    if first == 0 {
        return Read::Invalid;
    }
    let len = first.leading_zeros() as usize + 1;
    if buf.len() < len {
        return Read::NeedMore;
    }
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let mut value = u64::from(first & mask);
    for b in &buf[1..len] {
        value = (value << 8) | u64::from(*b);
    }
    let all_ones = (1u64 << (7 * len)) - 1;
    Read::Done((value != all_ones).then_some(value), len)
}

/// Appends an element ID.
pub fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a size in the shortest form.
pub fn write_size(out: &mut Vec<u8>, size: u64) {
    let mut len = 1;
    while len < 8 && size >= (1u64 << (7 * len)) - 1 {
        len += 1;
    }
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

/// The 8-byte unknown size.
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// Reads a big-endian unsigned integer element body (0–8 bytes).
pub fn uint(body: &[u8]) -> Option<u64> {
    (body.len() <= 8).then(|| body.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(
            read_id(&[0x1A, 0x45, 0xDF, 0xA3]),
            Read::Done(0x1A45_DFA3, 4)
        );
        assert_eq!(read_id(&[0xA3]), Read::Done(0xA3, 1));
        assert_eq!(read_id(&[0x1A, 0x45]), Read::NeedMore);
        assert_eq!(read_id(&[0x00]), Read::Invalid);
        let mut out = Vec::new();
        write_id(&mut out, 0x1F43_B675);
        write_id(&mut out, 0xE7);
        assert_eq!(out, [0x1F, 0x43, 0xB6, 0x75, 0xE7]);
    }

    #[test]
    fn sizes_round_trip() {
        for n in [
            0u64,
            1,
            126,
            127,
            128,
            16_382,
            16_383,
            1 << 20,
            (1 << 56) - 2,
        ] {
            let mut out = Vec::new();
            write_size(&mut out, n);
            assert_eq!(read_size(&out), Read::Done(Some(n), out.len()), "{n}");
        }
        assert_eq!(read_size(&UNKNOWN_SIZE), Read::Done(None, 8));
        assert_eq!(read_size(&[0xFF]), Read::Done(None, 1));
        assert_eq!(read_size(&[0x40]), Read::NeedMore);
        assert_eq!(read_size(&[0x00]), Read::Invalid);
    }
}
