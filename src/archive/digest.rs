//! Order-independent content digests: what a backend exported, summed record by record, so that
//! a restore can read the restored state back in any order and prove it is the same.
//!
//! Each record is put in its canonical form (one JSON line, written by the backend's `canonical`
//! function; FORMAT.md lists them), hashed with SHA-256, and the hash is added into four 64-bit
//! lanes modulo 2^64. Addition keeps duplicates (a multiset, unlike XOR) and needs no memory
//! beyond the 32-byte sum, whatever the number of records.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The sum of the records' hashes and their number.
#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "DigestText", try_from = "DigestText")]
pub struct ContentDigest {
    lanes: [u64; 4],
    pub records: u64,
}

impl ContentDigest {
    /// Adds one record, given in its canonical bytes.
    pub fn add(&mut self, canonical: &[u8]) {
        let hash = Sha256::digest(canonical);
        for (lane, chunk) in self.lanes.iter_mut().zip(hash.chunks_exact(8)) {
            *lane = lane.wrapping_add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        self.records += 1;
    }

    /// Adds a record that serialises to its canonical JSON form.
    pub fn add_json<T: Serialize + ?Sized>(&mut self, record: &T) {
        self.add(&serde_json::to_vec(record).expect("records serialise"));
    }

    /// Adds another digest's records (digests of parts add up to the digest of the whole).
    pub fn merge(&mut self, other: &ContentDigest) {
        for (a, b) in self.lanes.iter_mut().zip(other.lanes) {
            *a = a.wrapping_add(b);
        }
        self.records += other.records;
    }

    pub fn hex(&self) -> String {
        self.lanes.iter().map(|l| format!("{l:016x}")).collect()
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} records)", self.hex(), self.records)
    }
}

/// The manifest's form: `{"sum": "<64 hex digits>", "records": N}`.
#[derive(Serialize, Deserialize)]
struct DigestText {
    sum: String,
    records: u64,
}

impl From<ContentDigest> for DigestText {
    fn from(d: ContentDigest) -> Self {
        DigestText { sum: d.hex(), records: d.records }
    }
}

impl TryFrom<DigestText> for ContentDigest {
    type Error = String;
    fn try_from(t: DigestText) -> Result<Self, String> {
        if t.sum.len() != 64 || !t.sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("a content digest must be 64 hex digits, not {:?}", t.sum));
        }
        let mut lanes = [0u64; 4];
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = u64::from_str_radix(&t.sum[i * 16..(i + 1) * 16], 16).map_err(|e| e.to_string())?;
        }
        Ok(ContentDigest { lanes, records: t.records })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_but_every_record_and_duplicate_does() {
        let mut a = ContentDigest::default();
        let mut b = ContentDigest::default();
        for r in ["x", "y", "y"] {
            a.add(r.as_bytes());
        }
        for r in ["y", "x", "y"] {
            b.add(r.as_bytes());
        }
        assert_eq!(a, b);
        b.add(b"y");
        assert_ne!(a, b);
        let mut c = ContentDigest::default();
        for r in ["x", "y"] {
            c.add(r.as_bytes());
        }
        assert_ne!(a.hex(), c.hex(), "a duplicate must change the sum");
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<ContentDigest>(&text).unwrap(), a);
        assert!(serde_json::from_str::<ContentDigest>(r#"{"sum":"zz","records":1}"#).is_err());
    }
}
