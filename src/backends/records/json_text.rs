//! JSON strings written fast, byte for byte as serde_json writes them.
//!
//! A Redis backup and the read-back after a restore put every value into a JSON line, and
//! serde_json tests each byte of a string for escaping on its own: on 165 MB of nano-graphrag
//! chunks that was a tenth of the read-back's CPU (perf). Here eight bytes are tested at once and
//! copied whole while none needs escaping. The output must be exactly serde_json's (the content
//! digest hashes these bytes, and older archives were made by serde_json): a property test holds
//! them equal on any string.

/// Appends `s` to `out` as a JSON string, escaped as serde_json escapes: `"` and `\` with a
/// backslash, `\b \f \n \r \t` in short form, other bytes below 0x20 as `\u00xx`; all else as is.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes.get(i..i + 8) {
            // Skip to the first byte that needs escaping, or past the word when none does.
            let flags = escape_flags(u64::from_le_bytes(word.try_into().expect("8 bytes")));
            if flags == 0 {
                i += 8;
                continue;
            }
            i += flags.trailing_zeros() as usize / 8;
        }
        let b = bytes[i];
        if b == b'"' || b == b'\\' || b < 0x20 {
            out.extend_from_slice(&bytes[copied..i]);
            push_escape(out, b);
            copied = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// The high bit of each byte of `word` (little-endian: the first byte is the lowest) that is
/// `"`, `\` or below 0x20. These are the classic exact tests ("has a zero byte", "has a byte
/// less than n"): zero exactly when no byte needs escaping, and the lowest bit set is the first
/// byte that does (a wrong flag can only follow a right one, from the borrow it makes).
fn escape_flags(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    below_space | zero_bytes(word ^ (ONES * u64::from(b'"'))) | zero_bytes(word ^ (ONES * u64::from(b'\\')))
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        push_str(&mut out, s);
        String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
    }

    proptest! {
        /// Any string, and strings dense in the bytes that need escaping (where the eight-byte
        /// test and the byte-by-byte path meet), come out exactly as serde_json writes them.
        #[test]
        fn strings_are_written_exactly_as_serde_json_writes_them(
            any in any::<String>(),
            dense in proptest::collection::vec(
                prop_oneof![Just('"'), Just('\\'), Just('\n'), Just('\u{1f}'), Just('\u{7f}'), Just('a'), any::<char>()],
                0..40,
            ),
        ) {
            let dense: String = dense.into_iter().collect();
            for s in [any.as_str(), dense.as_str()] {
                prop_assert_eq!(ours(s), serde_json::to_string(s).expect("a string serialises"));
            }
        }
    }

    #[test]
    fn every_byte_below_0x80_at_every_position_of_a_word() {
        for b in 0u8..0x80 {
            for at in 0..17 {
                let mut s = "x".repeat(17);
                s.replace_range(at..at + 1, &char::from(b).to_string());
                assert_eq!(ours(&s), serde_json::to_string(&s).expect("a string serialises"), "byte {b:#04x} at {at}");
            }
        }
    }
}
