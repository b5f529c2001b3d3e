//! The working directory's JSON files, streamed: a top-level object entry by entry, or the array
//! under one of its fields item by item; nothing is held but the entry in hand. Counting (at
//! backup) and the consistency check read the files through these.

use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::io::Read;
use std::marker::PhantomData;

/// Hands each entry of the JSON object `reader` holds to `each`, one at a time.
pub(super) fn each_entry<T: DeserializeOwned>(reader: impl Read, each: &mut dyn FnMut(&str, T)) -> serde_json::Result<()> {
    serde_json::Deserializer::from_reader(reader).deserialize_map(Entries { each, item: PhantomData })
}

/// Hands each element of the array under `field` of the JSON object `reader` holds to `each`
/// (none when the field is absent).
pub(super) fn each_item<T: DeserializeOwned>(
    reader: impl Read,
    field: &'static str,
    each: &mut dyn FnMut(T),
) -> serde_json::Result<()> {
    serde_json::Deserializer::from_reader(reader).deserialize_map(Field { field, each, item: PhantomData })
}

struct Entries<'f, T> {
    each: &'f mut dyn FnMut(&str, T),
    item: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Entries<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let value: T = map.next_value()?;
            (self.each)(&key, value);
        }
        Ok(())
    }
}

struct Field<'f, T> {
    field: &'static str,
    each: &'f mut dyn FnMut(T),
    item: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Field<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a JSON object with an array field {:?}", self.field)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == self.field {
                map.next_value_seed(Items { each: &mut *self.each, item: PhantomData })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Items<'f, T> {
    each: &'f mut dyn FnMut(T),
    item: PhantomData<T>,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Items<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Items<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            (self.each)(item);
        }
        Ok(())
    }
}
