//! Did the stores hold still while a backup read them? Each backend takes a cheap mark of its
//! state (counts, a write counter, file sizes and times) before the export and after it; when the
//! two differ, the archive may hold a state the deployment never was in (a node whose chunk was
//! written after the chunks were read), and the backup says what moved.

use std::collections::BTreeMap;

/// A backend's state, measured cheaply. `exact` values must be equal at both ends; a `counter`
/// only grows with writes but may be reset to zero by the store (Redis's changes since the last
/// save): a reset followed by no writes is still no writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMark {
    pub exact: BTreeMap<String, String>,
    pub counters: BTreeMap<String, u64>,
}

impl StateMark {
    pub fn exact(mut self, name: &str, value: impl ToString) -> Self {
        self.exact.insert(name.to_string(), value.to_string());
        self
    }

    pub fn counter(mut self, name: &str, value: u64) -> Self {
        self.counters.insert(name.to_string(), value);
        self
    }

    /// What moved between `self` (before) and `after`, one phrase per measure, e.g.
    /// `keys 120 -> 180`; empty when the state held still.
    pub fn moved(&self, after: &StateMark) -> Vec<String> {
        let mut moved = Vec::new();
        let names: std::collections::BTreeSet<&String> = self.exact.keys().chain(after.exact.keys()).collect();
        for name in names {
            let (a, b) = (self.exact.get(name), after.exact.get(name));
            if a != b {
                let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "absent".into());
                moved.push(format!("{name} {} -> {}", show(a), show(b)));
            }
        }
        for (name, before) in &self.counters {
            let Some(&now) = after.counters.get(name) else { continue };
            let writes = if now >= *before { now - before } else { now };
            if writes > 0 {
                moved.push(format!("{name} {before} -> {now}"));
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_counter_reset_without_writes_is_no_move() {
        let before = StateMark::default().exact("keys", 5).counter("writes", 40);
        assert!(before.moved(&StateMark::default().exact("keys", 5).counter("writes", 0)).is_empty());
        assert_eq!(
            before.moved(&StateMark::default().exact("keys", 5).counter("writes", 3)),
            vec!["writes 40 -> 3".to_string()]
        );
    }

    proptest! {
        /// Equal marks never move; any change of an exact value or any growth of a counter does.
        #[test]
        fn moves_are_seen(keys in any::<u64>(), writes in any::<u64>(), other in any::<u64>(), grow in 1u64..1000) {
            let before = StateMark::default().exact("keys", keys).counter("writes", writes);
            prop_assert!(before.moved(&before.clone()).is_empty());
            if other != keys {
                let moved = before.moved(&StateMark::default().exact("keys", other).counter("writes", writes));
                prop_assert_eq!(moved, vec![format!("keys {keys} -> {other}")]);
            }
            let grown = writes.saturating_add(grow);
            if grown != writes {
                let moved = before.moved(&StateMark::default().exact("keys", keys).counter("writes", grown));
                prop_assert_eq!(moved.len(), 1);
            }
        }
    }
}
