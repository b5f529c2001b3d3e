//! Qdrant points ↔ archive records, exactly: ids (integer or UUID), every named dense, sparse
//! and multi-dense vector as base64 little-endian f32 (compact, and bit-exact where JSON numbers
//! would not be), and the payload as JSON.

use anyhow::{anyhow, bail, Result};
use base64::Engine;
use qdrant_client::qdrant::{
    point_id::PointIdOptions, value::Kind, vector, vector_output, vectors, vectors_output, DenseVector, ListValue,
    MultiDenseVector, NamedVectors, PointId, PointStruct, RetrievedPoint, SparseVector, Struct, Value, Vector, Vectors,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value as Json};
use std::collections::{BTreeMap, HashMap};

/// One point, as one NDJSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    pub id: PointKey,
    /// Vectors by name; the unnamed (default) vector is under "".
    #[serde(default)]
    pub vectors: BTreeMap<String, VectorRecord>,
    #[serde(default)]
    pub payload: Map<String, Json>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointKey {
    Num(u64),
    Uuid(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VectorRecord {
    Dense { dense: String },
    Sparse { indices: Vec<u32>, values: String },
    Multi { multi: Vec<String> },
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn pack(values: &[f32]) -> String {
    b64().encode(values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
}

fn unpack(text: &str) -> Result<Vec<f32>> {
    let bytes = b64().decode(text)?;
    if bytes.len() % 4 != 0 {
        bail!("a packed vector of {} bytes is not a list of f32", bytes.len());
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

pub fn key_of(id: &PointId) -> Result<PointKey> {
    match &id.point_id_options {
        Some(PointIdOptions::Num(n)) => Ok(PointKey::Num(*n)),
        Some(PointIdOptions::Uuid(u)) => Ok(PointKey::Uuid(u.clone())),
        None => bail!("a point without an id"),
    }
}

pub fn id_of(key: &PointKey) -> PointId {
    PointId {
        point_id_options: Some(match key {
            PointKey::Num(n) => PointIdOptions::Num(*n),
            PointKey::Uuid(u) => PointIdOptions::Uuid(u.clone()),
        }),
    }
}

/// A point as scroll returns it → its archive record.
pub fn record_of(point: &RetrievedPoint) -> Result<PointRecord> {
    let id = key_of(point.id.as_ref().ok_or_else(|| anyhow!("a point without an id"))?)?;
    let mut vectors = BTreeMap::new();
    match point.vectors.as_ref().and_then(|v| v.vectors_options.as_ref()) {
        Some(vectors_output::VectorsOptions::Vector(v)) => {
            vectors.insert(String::new(), vector_record(v)?);
        }
        Some(vectors_output::VectorsOptions::Vectors(named)) => {
            for (name, v) in &named.vectors {
                vectors.insert(name.clone(), vector_record(v)?);
            }
        }
        None => {}
    }
    let payload = point.payload.iter().map(|(k, v)| Ok((k.clone(), json_of(v)?))).collect::<Result<_>>()?;
    Ok(PointRecord { id, vectors, payload })
}

#[allow(deprecated)] // older servers fill the deprecated `data`/`indices` fields instead of `vector`
fn vector_record(v: &qdrant_client::qdrant::VectorOutput) -> Result<VectorRecord> {
    Ok(match &v.vector {
        Some(vector_output::Vector::Dense(d)) => VectorRecord::Dense { dense: pack(&d.data) },
        Some(vector_output::Vector::Sparse(s)) => {
            VectorRecord::Sparse { indices: s.indices.clone(), values: pack(&s.values) }
        }
        Some(vector_output::Vector::MultiDense(m)) => {
            VectorRecord::Multi { multi: m.vectors.iter().map(|d| pack(&d.data)).collect() }
        }
        None => match (&v.indices, v.vectors_count) {
            (Some(ix), _) => VectorRecord::Sparse { indices: ix.data.clone(), values: pack(&v.data) },
            (None, Some(n)) if n > 0 => {
                let dim = v.data.len() / n as usize;
                VectorRecord::Multi { multi: v.data.chunks(dim.max(1)).map(pack).collect() }
            }
            _ => VectorRecord::Dense { dense: pack(&v.data) },
        },
    })
}

/// An archive record → the point to upsert.
pub fn point_of(record: &PointRecord) -> Result<PointStruct> {
    let vector_of = |r: &VectorRecord| -> Result<Vector> {
        let v = match r {
            VectorRecord::Dense { dense } => vector::Vector::Dense(DenseVector { data: unpack(dense)? }),
            VectorRecord::Sparse { indices, values } => {
                vector::Vector::Sparse(SparseVector { indices: indices.clone(), values: unpack(values)? })
            }
            VectorRecord::Multi { multi } => vector::Vector::MultiDense(MultiDenseVector {
                vectors: multi.iter().map(|m| Ok(DenseVector { data: unpack(m)? })).collect::<Result<_>>()?,
            }),
        };
        Ok(Vector { vector: Some(v), ..Default::default() })
    };
    let vectors = match record.vectors.get("") {
        Some(only) if record.vectors.len() == 1 => {
            Some(Vectors { vectors_options: Some(vectors::VectorsOptions::Vector(vector_of(only)?)) })
        }
        _ if record.vectors.is_empty() => None,
        _ => {
            let named: HashMap<String, Vector> =
                record.vectors.iter().map(|(name, v)| Ok((name.clone(), vector_of(v)?))).collect::<Result<_>>()?;
            Some(Vectors { vectors_options: Some(vectors::VectorsOptions::Vectors(NamedVectors { vectors: named })) })
        }
    };
    let payload = record.payload.iter().map(|(k, v)| Ok((k.clone(), value_of(v)?))).collect::<Result<_>>()?;
    Ok(PointStruct { id: Some(id_of(&record.id)), payload, vectors })
}

/// A payload value → JSON (integers stay integers, doubles stay doubles).
pub fn json_of(v: &Value) -> Result<Json> {
    Ok(match &v.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::IntegerValue(i)) => Json::Number((*i).into()),
        Some(Kind::DoubleValue(d)) => {
            Json::Number(Number::from_f64(*d).ok_or_else(|| anyhow!("payload holds a non-finite number {d}"))?)
        }
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(l)) => Json::Array(l.values.iter().map(json_of).collect::<Result<_>>()?),
        Some(Kind::StructValue(s)) => {
            Json::Object(s.fields.iter().map(|(k, v)| Ok((k.clone(), json_of(v)?))).collect::<Result<_>>()?)
        }
    })
}

/// JSON → a payload value.
pub fn value_of(v: &Json) -> Result<Value> {
    let kind = match v {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) if n.is_i64() => Kind::IntegerValue(n.as_i64().expect("checked")),
        Json::Number(n) => Kind::DoubleValue(n.as_f64().ok_or_else(|| anyhow!("number {n} out of range"))?),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue { values: items.iter().map(value_of).collect::<Result<_>>()? }),
        Json::Object(m) => Kind::StructValue(Struct {
            fields: m.iter().map(|(k, v)| Ok((k.clone(), value_of(v)?))).collect::<Result<_>>()?,
        }),
    };
    Ok(Value { kind: Some(kind) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_vectors_are_bit_exact() {
        let v = [0.1f32, -0.0, f32::MIN_POSITIVE, 3.4028235e38, 1.0 / 3.0];
        let back = unpack(&pack(&v)).unwrap();
        assert_eq!(
            v.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
            back.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
        );
        assert!(unpack("AAA=").is_err());
    }

    #[test]
    fn records_round_trip_to_points_and_json() {
        let record = PointRecord {
            id: PointKey::Uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c26".into()),
            vectors: BTreeMap::from([
                ("dense".into(), VectorRecord::Dense { dense: pack(&[0.5, -1.25]) }),
                ("sparse".into(), VectorRecord::Sparse { indices: vec![3, 17], values: pack(&[0.25, 2.0]) }),
            ]),
            payload: serde_json::from_str(
                r#"{"entity_name": "ADA", "n": 3, "score": 2.0, "tags": ["a", null], "m": {"x": 1}}"#,
            )
            .unwrap(),
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<PointRecord>(&line).unwrap(), record);
        let point = point_of(&record).unwrap();
        assert_eq!(point.payload["n"].kind, Some(Kind::IntegerValue(3)));
        assert_eq!(point.payload["score"].kind, Some(Kind::DoubleValue(2.0)));
        let back: Map<String, Json> = point.payload.iter().map(|(k, v)| (k.clone(), json_of(v).unwrap())).collect();
        assert_eq!(back, record.payload);
    }
}
