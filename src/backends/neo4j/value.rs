//! Bolt values ↔ JSON, with every type tagged explicitly so nothing passes through a lossy
//! JSON number or an ambiguous string.
//!
//! | Bolt | JSON |
//! |---|---|
//! | null, boolean, string | `null`, `true`/`false`, `"text"` |
//! | integer | `{"int": -3}` (serde_json keeps the whole i64 range exactly) |
//! | float | `{"float": -0.0}`, or `{"float": "NaN" / "Infinity" / "-Infinity"}` |
//! | bytes | `{"bytes": "<base64>"}` |
//! | list, map | `{"list": [...]}`, `{"map": {...}}` |
//! | date, local time, local datetime | `{"date": "2026-11-23"}`, `{"local_time": "12:00:00.000000001"}`, `{"local_datetime": "…T…"}` |
//! | time, datetime (offset) | `{"time": "12:00:00.000000000", "offset_seconds": 7200}`, `{"datetime": "<local>", "offset_seconds": 7200}` |
//! | datetime (zone id) | `{"datetime_zone": "<as Bolt carries it>", "zone": "Europe/Berlin"}` |
//! | duration | `{"duration": [months, days, seconds, nanoseconds]}` |
//! | point | `{"point": {"srid": 7203, "x": 1.0, "y": 2.0}}` (and `"z"` in 3D) |

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset};
use neo4rs::{
    BoltBoolean, BoltBytes, BoltDate, BoltDateTime, BoltDateTimeZoneId, BoltDuration, BoltFloat, BoltInteger, BoltList,
    BoltLocalDateTime, BoltLocalTime, BoltMap, BoltNull, BoltPoint2D, BoltPoint3D, BoltString, BoltTime, BoltType,
};
use serde::de::IntoDeserializer;
use serde_json::{json, Map, Value};

const TIME: &str = "%H:%M:%S%.9f";
const DATE: &str = "%Y-%m-%d";
const DATETIME: &str = "%Y-%m-%dT%H:%M:%S%.9f";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Encodes a property value (or a whole property map) for the archive.
pub fn encode(value: &BoltType) -> Result<Value> {
    Ok(match value {
        BoltType::Null(_) => Value::Null,
        BoltType::Boolean(b) => json!(b.value),
        BoltType::String(s) => json!(s.value),
        BoltType::Integer(i) => json!({ "int": i.value }),
        BoltType::Float(f) => json!({ "float": encode_float(f.value) }),
        BoltType::Bytes(b) => json!({ "bytes": b64().encode(&b.value) }),
        BoltType::List(l) => json!({ "list": l.value.iter().map(encode).collect::<Result<Vec<_>>>()? }),
        BoltType::Map(m) => json!({ "map": encode_map(m)? }),
        BoltType::Date(d) => {
            let date: NaiveDate = d.try_into().map_err(|e| anyhow!("date out of range: {e}"))?;
            json!({ "date": date.format(DATE).to_string() })
        }
        BoltType::LocalTime(t) => json!({ "local_time": NaiveTime::from(t).format(TIME).to_string() }),
        BoltType::Time(t) => {
            let (time, offset): (NaiveTime, FixedOffset) = t.into();
            json!({ "time": time.format(TIME).to_string(), "offset_seconds": offset.local_minus_utc() })
        }
        BoltType::LocalDateTime(t) => {
            let dt: NaiveDateTime = t.try_into().map_err(|e| anyhow!("local datetime out of range: {e}"))?;
            json!({ "local_datetime": dt.format(DATETIME).to_string() })
        }
        BoltType::DateTime(t) => {
            let dt: chrono::DateTime<FixedOffset> = t.try_into().map_err(|e| anyhow!("datetime out of range: {e}"))?;
            json!({ "datetime": dt.naive_local().format(DATETIME).to_string(), "offset_seconds": dt.offset().fix().local_minus_utc() })
        }
        BoltType::DateTimeZoneId(t) => {
            let (dt, zone): (NaiveDateTime, String) =
                t.clone().try_into().map_err(|e| anyhow!("datetime out of range: {e}"))?;
            json!({ "datetime_zone": dt.format(DATETIME).to_string(), "zone": zone })
        }
        BoltType::Duration(d) => {
            // Deserialised as a 4-tuple, neo4rs hands out the raw Bolt fields (months, days,
            // seconds, nanoseconds); every other conversion it offers folds months into seconds.
            let bolt = BoltType::Duration(d.clone());
            let parts: (i64, i64, i64, i64) =
                serde::Deserialize::deserialize(IntoDeserializer::into_deserializer(&bolt))
                    .map_err(|e| anyhow!("unreadable duration: {e}"))?;
            json!({ "duration": [parts.0, parts.1, parts.2, parts.3] })
        }
        BoltType::Point2D(p) => json!({ "point": { "srid": p.sr_id.value, "x": p.x.value, "y": p.y.value } }),
        BoltType::Point3D(p) => {
            json!({ "point": { "srid": p.sr_id.value, "x": p.x.value, "y": p.y.value, "z": p.z.value } })
        }
        other => bail!("a {} cannot be a property value", kind_name(other)),
    })
}

/// Encodes a property map as a JSON object of encoded values.
pub fn encode_map(map: &BoltMap) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    let mut keys: Vec<_> = map.value.keys().collect();
    keys.sort_by(|a, b| a.value.cmp(&b.value));
    for k in keys {
        out.insert(k.value.clone(), encode(&map.value[k]).with_context(|| format!("property {:?}", k.value))?);
    }
    Ok(out)
}

fn encode_float(f: f64) -> Value {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(f)
    }
}

fn kind_name(v: &BoltType) -> &'static str {
    match v {
        BoltType::Node(_) => "node",
        BoltType::Relation(_) | BoltType::UnboundedRelation(_) => "relationship",
        BoltType::Path(_) => "path",
        _ => "value of this type",
    }
}

/// Decodes a value written by [`encode`].
pub fn decode(value: &Value) -> Result<BoltType> {
    Ok(match value {
        Value::Null => BoltType::Null(BoltNull),
        Value::Bool(b) => BoltType::Boolean(BoltBoolean::new(*b)),
        Value::String(s) => BoltType::String(BoltString::new(s)),
        Value::Object(o) => decode_tagged(o)?,
        other => bail!("untagged value {other} in the archive"),
    })
}

/// Decodes an encoded property map into a Bolt map (for query parameters).
pub fn decode_map(map: &Map<String, Value>) -> Result<BoltMap> {
    let mut out = BoltMap::new();
    for (k, v) in map {
        out.put(BoltString::new(k), decode(v).with_context(|| format!("property {k:?}"))?);
    }
    Ok(out)
}

fn str_of<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str> {
    o.get(key).and_then(Value::as_str).ok_or_else(|| anyhow!("missing {key:?}"))
}

fn offset_of(o: &Map<String, Value>) -> Result<FixedOffset> {
    let secs = o.get("offset_seconds").and_then(Value::as_i64).ok_or_else(|| anyhow!("missing offset_seconds"))?;
    FixedOffset::east_opt(secs as i32).ok_or_else(|| anyhow!("offset {secs} s out of range"))
}

fn decode_tagged(o: &Map<String, Value>) -> Result<BoltType> {
    let tag = o.keys().find(|k| *k != "offset_seconds" && *k != "zone").ok_or_else(|| anyhow!("empty tagged value"))?;
    let v = &o[tag];
    Ok(match tag.as_str() {
        "int" => BoltType::Integer(BoltInteger::new(v.as_i64().ok_or_else(|| anyhow!("bad int {v}"))?)),
        "float" => BoltType::Float(BoltFloat::new(match v {
            Value::String(s) if s == "NaN" => f64::NAN,
            Value::String(s) if s == "Infinity" => f64::INFINITY,
            Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
            _ => v.as_f64().ok_or_else(|| anyhow!("bad float {v}"))?,
        })),
        "bytes" => BoltType::Bytes(BoltBytes::new(b64().decode(v.as_str().unwrap_or_default())?.into())),
        "list" => {
            let mut list = BoltList::new();
            for item in v.as_array().ok_or_else(|| anyhow!("bad list"))? {
                list.push(decode(item)?);
            }
            BoltType::List(list)
        }
        "map" => BoltType::Map(decode_map(v.as_object().ok_or_else(|| anyhow!("bad map"))?)?),
        "date" => BoltType::Date(BoltDate::from(NaiveDate::parse_from_str(str_of(o, "date")?, DATE)?)),
        "local_time" => {
            BoltType::LocalTime(BoltLocalTime::from(NaiveTime::parse_from_str(str_of(o, "local_time")?, TIME)?))
        }
        "time" => BoltType::Time(BoltTime::from((NaiveTime::parse_from_str(str_of(o, "time")?, TIME)?, offset_of(o)?))),
        "local_datetime" => BoltType::LocalDateTime(BoltLocalDateTime::from(NaiveDateTime::parse_from_str(
            str_of(o, "local_datetime")?,
            DATETIME,
        )?)),
        "datetime" => {
            let local = NaiveDateTime::parse_from_str(str_of(o, "datetime")?, DATETIME)?;
            let dt = local.and_local_timezone(offset_of(o)?).single().ok_or_else(|| anyhow!("bad datetime"))?;
            BoltType::DateTime(BoltDateTime::from(dt))
        }
        "datetime_zone" => {
            let dt = NaiveDateTime::parse_from_str(str_of(o, "datetime_zone")?, DATETIME)?;
            BoltType::DateTimeZoneId(BoltDateTimeZoneId::from((dt, str_of(o, "zone")?)))
        }
        "duration" => {
            let p: Vec<i64> = serde_json::from_value(v.clone())?;
            let [months, days, seconds, nanos] = p[..] else { bail!("bad duration {v}") };
            BoltType::Duration(BoltDuration::new(months.into(), days.into(), seconds.into(), nanos.into()))
        }
        "point" => {
            let f = |k: &str| v.get(k).and_then(Value::as_f64).ok_or_else(|| anyhow!("point without {k}"));
            let srid =
                BoltInteger::new(v.get("srid").and_then(Value::as_i64).ok_or_else(|| anyhow!("point without srid"))?);
            match v.get("z") {
                Some(_) => BoltType::Point3D(BoltPoint3D {
                    sr_id: srid,
                    x: BoltFloat::new(f("x")?),
                    y: BoltFloat::new(f("y")?),
                    z: BoltFloat::new(f("z")?),
                }),
                None => BoltType::Point2D(BoltPoint2D {
                    sr_id: srid,
                    x: BoltFloat::new(f("x")?),
                    y: BoltFloat::new(f("y")?),
                }),
            }
        }
        other => bail!("unknown value tag {other:?} in the archive (written by a newer ngbak?)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: BoltType) {
        let encoded = encode(&v).unwrap();
        let text = serde_json::to_string(&encoded).unwrap();
        let back = decode(&serde_json::from_str(&text).unwrap()).unwrap();
        match (&v, &back) {
            (BoltType::Float(a), BoltType::Float(b)) if a.value.is_nan() => assert!(b.value.is_nan()),
            (BoltType::Float(a), BoltType::Float(b)) => assert_eq!(a.value.to_bits(), b.value.to_bits(), "{text}"),
            _ => assert_eq!(v, back, "{text}"),
        }
    }

    #[test]
    fn every_property_type_round_trips_exactly() {
        for i in [i64::MIN, -16, -1, 0, 1, 127, 128, i64::MAX] {
            round_trip(BoltType::Integer(BoltInteger::new(i)));
        }
        for f in [0.0, -0.0, 1.5, f64::MIN_POSITIVE, f64::MAX, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.1 + 0.2] {
            round_trip(BoltType::Float(BoltFloat::new(f)));
        }
        round_trip(BoltType::String(BoltString::new("{\"looks\": \"like json\"} — ü")));
        round_trip(BoltType::Bytes(BoltBytes::new(vec![0u8, 255, 1].into())));
        round_trip(BoltType::Null(BoltNull));
        round_trip(BoltType::Boolean(BoltBoolean::new(false)));
        let date = NaiveDate::from_ymd_opt(1969, 7, 20).unwrap();
        let time = NaiveTime::from_hms_nano_opt(23, 59, 58, 123_456_789).unwrap();
        let offset = FixedOffset::east_opt(-(3 * 3600 + 30 * 60)).unwrap();
        round_trip(BoltType::Date(BoltDate::from(date)));
        round_trip(BoltType::LocalTime(BoltLocalTime::from(time)));
        round_trip(BoltType::Time(BoltTime::from((time, offset))));
        round_trip(BoltType::LocalDateTime(BoltLocalDateTime::from(date.and_time(time))));
        round_trip(BoltType::DateTime(BoltDateTime::from(date.and_time(time).and_local_timezone(offset).unwrap())));
        round_trip(BoltType::DateTimeZoneId(BoltDateTimeZoneId::from((date.and_time(time), "Europe/Berlin"))));
        round_trip(BoltType::Duration(BoltDuration::new(14.into(), (-3).into(), 14706.into(), 7.into())));
        round_trip(BoltType::Point2D(BoltPoint2D {
            sr_id: 4326.into(),
            x: BoltFloat::new(13.4),
            y: BoltFloat::new(52.5),
        }));
        round_trip(BoltType::Point3D(BoltPoint3D {
            sr_id: 9157.into(),
            x: BoltFloat::new(1.0),
            y: BoltFloat::new(-2.0),
            z: BoltFloat::new(0.5),
        }));
        let mut list = BoltList::new();
        list.push(BoltType::Integer(BoltInteger::new(-5)));
        list.push(BoltType::String(BoltString::new("x")));
        round_trip(BoltType::List(list.clone()));
        let mut map = BoltMap::new();
        map.put(BoltString::new("l"), BoltType::List(list));
        round_trip(BoltType::Map(map));
    }
}
