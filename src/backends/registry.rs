//! The registration of backends: `register_backends!` turns the one list in `mod.rs` into the
//! settings group of every backend ([`BackendArgs`], flattened into each command), their
//! restore-only settings, and the iteration over them that the hosts and the pipeline use.

use clap::Args;

/// The restore-only settings of a backend that has none (no argument group of its own, so that
/// several backends can use it).
#[derive(Args, Clone, Debug, Default)]
#[group(skip)]
pub struct NoRestoreArgs {}

/// `name => SettingsGroup, RestoreSettingsGroup;` per backend, in the order their checks and
/// exports start. The name is the backend's folder; the settings group implements [`Backend`].
///
/// [`Backend`]: super::Backend
macro_rules! register_backends {
    ($($module:ident => $settings:ty, $restore:ty;)*) => {
        $(pub mod $module;)*
        register_backends!(@types $($module => $settings, $restore;)*);
    };
    (@types $($module:ident => $settings:ty, $restore:ty;)*) => {
        /// Every registered backend's settings: flags and variables (`Debug` prints them redacted).
        #[derive(clap::Args, Clone, Default)]
        pub struct BackendArgs {
            $(
                #[command(flatten)]
                pub $module: $settings,
            )*
            /// How the deployment's stores link to one another (the consistency check's rules).
            #[command(flatten)]
            pub layout: $crate::consistency::Layout,
            /// The settings that were read from Secrets Manager (their flags), to read again on
            /// rotation.
            #[arg(skip)]
            pub read_from_secrets: Vec<&'static str>,
        }

        /// Every registered backend's restore-only settings.
        #[derive(clap::Args, Clone, Debug, Default)]
        pub struct BackendRestoreArgs {
            $(
                #[command(flatten)]
                pub $module: $restore,
            )*
        }

        impl BackendArgs {
            /// Every registered backend, configured or not, in registration order.
            pub fn all(&self) -> Vec<&dyn $crate::backends::Backend> {
                vec![$(&self.$module),*]
            }

            /// As [`BackendArgs::all`], to fill settings in (secrets).
            pub fn all_mut(&mut self) -> Vec<&mut dyn $crate::backends::Backend> {
                vec![$(&mut self.$module),*]
            }
        }

        /// What each registered backend is, in registration order.
        pub fn descriptors() -> Vec<&'static $crate::backends::Descriptor> {
            vec![$(&$module::DESCRIPTOR),*]
        }
    };
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// A fifth backend as a new one would be written: its own room with a settings group, a
    /// descriptor and an implementation of `Backend` (here a working directory under another
    /// flag), and nothing else but its registration line below.
    mod made_up {
        use crate::backends::descriptor::{Backend, Descriptor, Probe, ProbeFound};
        use crate::backends::workdir::{WorkdirExporter, WorkdirRestorer};
        use crate::backends::{BackendRestoreArgs, Exporter, RestoreMode, Restorer};
        use std::path::PathBuf;

        pub static DESCRIPTOR: Descriptor = Descriptor {
            name: "made-up",
            kind: "kv",
            flag: "--made-up-dir",
            env: "MADE_UP_DIR",
            record_stats: &["files"],
        };

        #[derive(clap::Args, Clone, Default)]
        pub struct MadeUpArgs {
            #[arg(long, env = "MADE_UP_DIR")]
            pub made_up_dir: Option<PathBuf>,
        }

        impl Backend for MadeUpArgs {
            fn descriptor(&self) -> &'static Descriptor {
                &DESCRIPTOR
            }
            fn is_configured(&self) -> bool {
                self.made_up_dir.is_some()
            }
            fn exporter(&self) -> Box<dyn Exporter> {
                Box::new(WorkdirExporter::new(self.made_up_dir.as_ref().expect("configured")))
            }
            fn restorer(&self, mode: RestoreMode, _restore: &BackendRestoreArgs) -> Box<dyn Restorer> {
                Box::new(WorkdirRestorer::new(self.made_up_dir.as_ref().expect("configured"), mode))
            }
            fn probes(&self) -> Vec<Probe> {
                let found = async { Ok(ProbeFound { version: Some("made up".into()), authenticated: false }) };
                vec![Probe { name: "made-up", target: "here".into(), tls: false, run: Box::pin(found) }]
            }
            fn echo(&self, config: &mut serde_json::Map<String, serde_json::Value>) {
                config.insert("made_up_dir".into(), serde_json::json!(self.made_up_dir));
            }
        }
    }

    register_backends!(@types made_up => made_up::MadeUpArgs, super::NoRestoreArgs;);

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        backends: BackendArgs,
    }

    #[tokio::test]
    async fn a_registered_backend_gets_its_flags_and_is_iterated() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nano-graphrag-workdir");
        let cli = Cli::try_parse_from(["ngbak", "--made-up-dir", dir.to_str().unwrap()]).unwrap();
        let configured: Vec<_> = cli.backends.all().into_iter().filter(|b| b.is_configured()).collect();
        assert_eq!(configured.len(), 1);
        assert_eq!(configured[0].descriptor().name, "made-up");
        assert_eq!(
            descriptors().iter().map(|d| d.how_to_configure()).collect::<Vec<_>>(),
            ["pass --made-up-dir / MADE_UP_DIR"]
        );
        let probes = configured[0].probes();
        assert_eq!(probes.len(), 1);
        let found = probes.into_iter().next().unwrap().run.await.unwrap();
        assert_eq!(found.version.as_deref(), Some("made up"));
        let mut echo = serde_json::Map::new();
        configured[0].echo(&mut echo);
        assert_eq!(echo["made_up_dir"], serde_json::json!(dir));
        // The exporter reads the files the flag names.
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let sender = crate::backends::EntrySender::new(tx, "made-up", 1 << 20);
        let manifest = configured[0].exporter().export(&sender).await.unwrap();
        drop(sender);
        let mut entries = 0;
        while rx.recv().await.is_some() {
            entries += 1;
        }
        assert_eq!(manifest.stats["files"], entries);
        assert!(entries > 0);

        // It has no secret settings, so nothing is to be read from Secrets Manager.
        let mut cli = cli;
        assert!(cli.backends.all_mut().into_iter().all(|b| b.secrets().is_empty()));
        assert!(cli.backends.read_from_secrets.is_empty());

        let none = Cli::try_parse_from(["ngbak"]).unwrap();
        assert!(none.backends.all().iter().all(|b| !b.is_configured()));
    }
}
