//! Building Cypher text safely: labels, relationship types and property names cannot be query
//! parameters, so they are validated and quoted here, never spliced raw from an archive.

use anyhow::{bail, Result};

/// Label, type or property name quoted for Cypher: backticks around it, inner backticks doubled.
pub fn quote(name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 512 || name.chars().any(|c| c.is_control()) {
        bail!("refusing the name {name:?} from the archive: empty, too long or with control characters");
    }
    Ok(format!("`{}`", name.replace('`', "``")))
}

/// `:`A`:`B`` for a label set.
pub fn labels(names: &[String]) -> Result<String> {
    names.iter().map(|l| quote(l).map(|q| format!(":{q}"))).collect()
}

/// The pattern restricting a scan to the scope: `:`Label`` or nothing for the whole database.
pub fn scope(label: Option<&str>) -> Result<String> {
    Ok(match label {
        Some(l) => format!(":{}", quote(l)?),
        None => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_injection_is_inert() {
        assert_eq!(quote("PERSON").unwrap(), "`PERSON`");
        assert_eq!(quote("a`) DETACH DELETE (x").unwrap(), "`a``) DETACH DELETE (x`");
        assert!(quote("").is_err() && quote("a\nb").is_err());
        assert_eq!(labels(&["A".into(), "B C".into()]).unwrap(), ":`A`:`B C`");
        assert_eq!(scope(None).unwrap(), "");
    }
}
