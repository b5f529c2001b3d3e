//! What a consistency check found, per rule, for people (a table) and for programs (JSON).

use serde::Serialize;

/// One rule's outcome: how many links hold, how many break, and the first broken ones by name.
#[derive(Debug, Serialize)]
pub struct RuleOutcome {
    pub rule: &'static str,
    pub description: &'static str,
    /// `false` when the stores the rule needs are not there (see `not_checked`).
    pub checked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    pub holds: u64,
    pub broken: u64,
    /// The first [`super::NAMED`] broken links, named.
    pub first_broken: Vec<String>,
}

impl RuleOutcome {
    pub(super) fn new(rule: &'static str, description: &'static str) -> Self {
        RuleOutcome {
            rule,
            description,
            checked: true,
            not_checked: None,
            holds: 0,
            broken: 0,
            first_broken: Vec::new(),
        }
    }

    /// Counts one link; `name` is called only for a broken one that is still to be named.
    pub(super) fn link(&mut self, holds: bool, name: impl FnOnce() -> String) {
        if holds {
            self.holds += 1;
            return;
        }
        self.broken += 1;
        if self.first_broken.len() < super::NAMED {
            self.first_broken.push(name());
        }
    }

    pub(super) fn not_checked(&mut self, why: &str) {
        self.checked = false;
        self.not_checked = Some(why.to_string());
    }
}

/// Every rule's outcome. `consistent` means no checked rule found a broken link; `checked` that at
/// least one rule could be checked.
#[derive(Debug, Default, Serialize)]
pub struct ConsistencyReport {
    pub consistent: bool,
    pub checked: bool,
    pub rules: Vec<RuleOutcome>,
}

impl ConsistencyReport {
    /// The rules' counts without the names (what a manifest records).
    pub fn counts(&self) -> Vec<crate::archive::RuleCounts> {
        let count = |r: &RuleOutcome| crate::archive::RuleCounts {
            rule: r.rule.to_string(),
            checked: r.checked,
            holds: r.holds,
            broken: r.broken,
        };
        self.rules.iter().map(count).collect()
    }
}

/// The human-readable report.
pub fn render(report: &ConsistencyReport) -> String {
    let mut s = String::new();
    for r in &report.rules {
        match &r.not_checked {
            Some(why) => s += &format!("-    {:<24} not checked: {why}\n", r.rule),
            None => {
                let status = if r.broken == 0 { "ok  " } else { "FAIL" };
                s += &format!("{status} {:<24} {} hold, {} broken: {}\n", r.rule, r.holds, r.broken, r.description);
                for name in &r.first_broken {
                    s += &format!("       {name}\n");
                }
                if r.broken as usize > r.first_broken.len() {
                    s += &format!("       … and {} more\n", r.broken as usize - r.first_broken.len());
                }
            }
        }
    }
    s += match (report.checked, report.consistent) {
        (false, _) => "no rule could be checked: configure the graph, the vectors and the key-value store\n",
        (true, true) => "consistent: every checked link holds\n",
        (true, false) => "INCONSISTENT: see the broken links above\n",
    };
    s
}
