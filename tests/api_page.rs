//! The operator page in a real browser: Debian's headless Chromium, driven by Selenium
//! (tests/browser/operator_page.py), clicks through backup → verify → dry run → restore →
//! download against `ngbak serve` on a directory store and a nano-graphrag working directory.
//! The screenshots stay in tests/output/operator-page/.

mod common;

use common::*;
use std::path::Path;

fn same_tree(a: &Path, b: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.sort();
        v
    };
    assert_eq!(names(a), names(b));
    for name in names(a) {
        assert_eq!(std::fs::read(a.join(&name)).unwrap(), std::fs::read(b.join(&name)).unwrap(), "{name:?}");
    }
}

#[test]
fn the_page_backs_up_verifies_restores_and_downloads_in_chromium() {
    let work = tempfile::tempdir().unwrap();
    let workdir = work.path().join("workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    for file in std::fs::read_dir(sample_workdir()).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), workdir.join(file.file_name())).unwrap();
    }
    let store = work.path().join("store");
    let served = Served::start_with(store.to_str().unwrap(), &["--kv-dir", workdir.to_str().unwrap()]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshots = root.join("tests/output/operator-page");
    let downloads = work.path().join("downloads");
    std::fs::create_dir_all(&screenshots).unwrap();
    std::fs::create_dir_all(&downloads).unwrap();
    let python = root.join(".tools/browser/bin/python");
    assert!(python.exists(), "{} is missing: tests/servers/install.sh installs Selenium", python.display());
    let out = std::process::Command::new(python)
        .arg(root.join("tests/browser/operator_page.py"))
        .env("NGBAK_PAGE_URL", format!("{}/?token={TOKEN}", served.base))
        .env("NGBAK_SCREENSHOTS", &screenshots)
        .env("NGBAK_DOWNLOADS", &downloads)
        .output()
        .expect("running the browser test");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed (screenshots in {}):\n{said}", screenshots.display());

    // The file the browser downloaded is the stored archive, byte for byte.
    let archives: Vec<_> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".ngbak") && !n.starts_with("pre-restore_"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let downloaded = std::fs::read(downloads.join(&archives[0])).expect("the downloaded archive");
    assert_eq!(downloaded, std::fs::read(store.join(&archives[0])).unwrap());
    // The restore the page ran left the working directory as it was backed up.
    same_tree(&sample_workdir(), &workdir);
    // It took a safety backup first.
    assert!(std::fs::read_dir(&store).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with("pre-restore_")));
}
