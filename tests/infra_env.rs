//! Every ngbak variable the SAM template sets is one the binaries read (a misspelt name would be
//! ignored in silence, e.g. a trust setting that never takes effect).

use std::collections::BTreeSet;

fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("NGBAK_") {
        let name: String =
            text[i..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect();
        out.insert(name);
    }
    out
}

fn source_text(dir: &std::path::Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_text(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_template_sets_only_variables_ngbak_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let template = std::fs::read_to_string(root.join("infra/template.yaml")).unwrap();
    let mut source = String::new();
    source_text(&root.join("src"), &mut source);
    let read: BTreeSet<String> = names(&source).into_iter().filter(|n| source.contains(&format!("\"{n}\""))).collect();
    let set: BTreeSet<String> = template
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| {
            let key = l.trim_start().trim_start_matches("- Name: ");
            names(key.split(':').next().unwrap_or(""))
        })
        .collect();
    assert!(
        set.contains("NGBAK_TRUSTED_KMS_KEYS") && set.len() > 20,
        "the template's variables were not found: {set:?}"
    );
    let unknown: Vec<&String> = set.difference(&read).collect();
    assert!(unknown.is_empty(), "the template sets variables ngbak never reads: {unknown:?}");
}
