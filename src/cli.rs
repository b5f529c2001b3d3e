//! The `ngbak` command line: thin glue over the library.

use crate::authenticity::Provenance;
use crate::config::{set, BackendArgs, RestoreArgs, StoreArgs, TuningArgs};
use crate::id::BackupId;
use crate::pipeline::retention::{self, KeepPolicy};
use crate::pipeline::{backup, catalog, cleanup, import, restore};
use anyhow::Result;
use clap::{Parser, Subcommand};
use serde::Serialize;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "ngbak", version, about = "Back up and restore a GraphRAG deployment as one streaming .ngbak archive", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub net: crate::net::NetArgs,
    #[command(flatten)]
    pub auth: crate::authenticity::AuthArgs,
    /// Seconds the job may run (container tasks: set it below the task's stop timeout budget);
    /// then it stops cleanly, as on SIGTERM. Locks are never claimed past it.
    #[arg(long, env = "NGBAK_MAX_DURATION", global = true)]
    pub max_duration: Option<u64>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Back up every configured backend into one archive.
    Backup {
        /// Backup id (default snapshot_<UTC time>); [A-Za-z0-9_-] only.
        #[arg(long)]
        id: Option<BackupId>,
        /// Only these configured backends (comma-separated).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        #[command(flatten)]
        backends: BackendArgs,
        #[command(flatten)]
        tuning: TuningArgs,
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Verify a backup, then restore it into the configured backends.
    Restore {
        id: BackupId,
        #[command(flatten)]
        backends: BackendArgs,
        #[command(flatten)]
        restore: RestoreArgs,
        #[arg(long)]
        json: bool,
    },
    /// List the backups in the store, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a backup's manifest.
    Inspect {
        id: BackupId,
        #[arg(long)]
        json: bool,
    },
    /// Read a whole backup and check it against its sidecar, entry by entry; or, with --file, a
    /// standalone archive (a path or an https URL) against its own manifest, without a store.
    Verify {
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        id: Option<BackupId>,
        /// A standalone .ngbak archive: a file, or an http(s) URL such as one from `ngbak presign`.
        #[arg(long)]
        file: Option<String>,
        /// The whole file's expected SHA-256 (e.g. from the backup's sidecar or `ngbak list --json`);
        /// without it, every entry and the structure are checked, not the file as a whole.
        #[arg(long, requires = "file")]
        sha256: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Verify a standalone archive, then store it with its sidecar so that it can be listed,
    /// verified and restored like any backup. SOURCE: a file, an http(s) URL, or the id of an
    /// archive put into the store by hand (only its sidecar is written then).
    Import {
        source: String,
        /// The backup id the archive must hold (its id is written inside it and cannot change).
        #[arg(long)]
        id: Option<BackupId>,
        /// The whole file's expected SHA-256.
        #[arg(long)]
        sha256: Option<String>,
        /// The archive's original sidecar (`<id>.manifest.json`, with its signature
        /// `<id>.manifest.json.minisig` beside it): kept as it is, and its signature checked
        /// against the trusted keys (which require it).
        #[arg(long)]
        sidecar: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Abort pending uploads and remove expired locks left by runs that were killed (never what a
    /// live run holds).
    Cleanup {
        /// Only uploads started at least this many seconds ago are aborted.
        #[arg(long, default_value_t = 3600)]
        older_than: u64,
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Delete a backup (archive and sidecar together).
    Delete { id: BackupId },
    /// Delete the backups a retention policy does not keep (never the newest one that verifies,
    /// nor one under an S3 Object Lock).
    Prune {
        #[command(flatten)]
        policy: KeepPolicy,
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Connect to every configured backend and the store; report version, TLS, auth (exit 1 if
    /// any is unreachable).
    Check {
        #[command(flatten)]
        backends: BackendArgs,
        #[arg(long)]
        json: bool,
    },
    /// Check that the graph, the vectors and the key-value store of the configured GraphRAG
    /// deployment agree (exit 3 when a link is broken): a nano-graphrag working directory
    /// (--kv-dir), or the live stores (Redis, a Bolt graph, Qdrant) together. With --store, the
    /// report is also kept there as consistency-report.json.
    Consistency {
        /// Check this backup in the store instead of the live stores: its archive is read (and
        /// proved intact) once per pass, streaming; nothing is restored.
        #[arg(long)]
        backup: Option<BackupId>,
        #[command(flatten)]
        backends: BackendArgs,
        #[arg(long)]
        json: bool,
    },
    /// Run a job a Lambda function handed off, as that function would (the Fargate task's command).
    #[command(subcommand, hide = true)]
    Job(crate::runner::job::Job),
    /// Make a key pair for signing backups, in minisign's formats: the secret key file (mode 0600;
    /// protected by NGBAK_SIGNING_KEY_PASSWORD when that is set) and the public key file. Prints
    /// the public key, which `--trusted-key` and `minisign -V -P` take.
    Keygen {
        /// Where the secret key goes (never overwritten).
        #[arg(long, default_value = "ngbak.key")]
        secret_key: std::path::PathBuf,
        /// Where the public key goes (never overwritten).
        #[arg(long, default_value = "ngbak.pub")]
        public_key: std::path::PathBuf,
        /// Make nothing: print the minisign public key of this AWS KMS signing key (for
        /// `--trusted-key` and `minisign -V -P`).
        #[arg(long)]
        kms_key: Option<String>,
    },
    /// Re-wrap an encrypted backup's key to new recipients (--encrypt-to): only the age header
    /// is rewritten, the body's bytes stay; the sidecar is sealed to them and signed again.
    Rekey {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<BackupId>,
        /// Every encrypted backup in the store that the identity opens.
        #[arg(long)]
        all: bool,
        /// Check that each opens and say what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Serve the operator API (/api/v1) and page (/) over HTTP: start backups, verifies and
    /// restores as jobs and follow them, list, download, upload and delete backups. A bearer token
    /// guards it (NGBAK_API_TOKEN, or one generated and printed with the page's address).
    Serve {
        #[command(flatten)]
        serve: crate::api::serve::ServeArgs,
    },
    /// Print a time-limited download URL for a backup's archive.
    Presign {
        id: BackupId,
        /// Seconds the URL stays valid: 1 to 604800 (7 days), what S3 accepts.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
        expires: u64,
    },
}

/// How long a job that writes may take, after a stop was asked for, to finish its own clean-up
/// (abort the upload, remove temporary data, report, release the lock) before it is abandoned.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Runs the CLI. On SIGINT/SIGTERM (or `--max-duration`), a command that only reads stops at
/// once; one that writes stops at its own safe points and cleans up, within [`STOP_GRACE`].
pub async fn run(cli: Cli) -> Result<()> {
    let reads_only = matches!(
        cli.command,
        Command::List { .. }
            | Command::Inspect { .. }
            | Command::Verify { .. }
            | Command::Check { .. }
            | Command::Consistency { .. }
            | Command::Presign { .. }
    );
    cli.net.apply()?;
    if let Command::Serve { serve } = cli.command {
        // A server, not a job: each job it runs has a stop state of its own.
        let config = crate::lambda::FunctionConfig::for_serve(
            cli.store,
            serve.backends.clone(),
            serve.tuning.clone(),
            serve.restore.clone(),
            cli.net,
            cli.auth,
        )?;
        return crate::api::serve::serve(serve, config).await;
    }
    let max_duration = cli.max_duration.map(Duration::from_secs);
    let _job = crate::stop::begin_job(max_duration, "the job (--max-duration)");
    if reads_only {
        crate::stop::or_stop(execute(cli, max_duration)).await
    } else {
        crate::stop::finish_or_abandon(execute(cli, max_duration), STOP_GRACE).await
    }
}

async fn execute(cli: Cli, max_duration: Option<Duration>) -> Result<()> {
    if let Command::Verify { file: Some(file), sha256, json, .. } = &cli.command {
        let source = import::ArchiveSource::parse(file)?;
        let store = if source.needs_store() { Some(cli.store.open().await?) } else { None };
        let source = source.resolve(store.as_deref())?;
        let trust = cli.auth.trust().await?;
        let (sidecar, report) =
            import::verify_file(&source, sha256.as_deref(), store.as_deref(), &trust.identities).await?;
        if trust.require_encrypted && sidecar.encryption.is_none() {
            let message =
                format!("{} is not encrypted, and encryption is required (--require-encrypted)", report.source);
            return Err(crate::failure::FailureKind::IntegrityError.marked(message).into());
        }
        if trust.is_required() && !cli.auth.allow_unsigned {
            // A file alone carries no signature (that is beside the sidecar in the store).
            eprintln!(
                "ngbak: {} is intact, but a file alone carries no signature: `ngbak import` it with --sidecar (its \
                 signature beside it) to check who wrote it",
                report.source
            );
        }
        return emit(*json, &report, || standalone_line("is intact", &report));
    }
    if let Command::Consistency { backup, backends, json } = &cli.command {
        // The store is optional here: when given, the report is kept in it as well.
        let store = match (set(&cli.store.store), backup) {
            (Some(_), _) | (None, Some(_)) => Some(cli.store.open().await?),
            (None, None) => None,
        };
        return consistency(backends, backup.as_ref(), store.as_deref(), *json).await;
    }
    if let Command::Keygen { secret_key, public_key, kms_key } = &cli.command {
        if let Some(key) = kms_key {
            let kms = crate::authenticity::KmsKey::connect(key).await?;
            println!("KMS key {key}: key id {}", crate::authenticity::key_id(kms.keynum()));
            println!("public key: {}", kms.public_base64());
            return Ok(());
        }
        return keygen(secret_key, public_key, set(&cli.auth.signing_key_password));
    }
    let store = cli.store.open().await?;
    let auth = cli.auth.clone();
    match cli.command {
        Command::Backup { id, only, mut backends, tuning, json } => {
            crate::secrets::resolve(&mut backends).await?;
            crate::stop::or_stop(crate::check::preflight(store.as_ref(), &backends, &only)).await?;
            let keys = auth.keys().await?;
            let mut options = tuning.backup_options(&backends, &store.url(), &keys);
            options.id = id;
            options.progress = !json;
            let summary = backup::run_backup(store, backends.exporters(&only)?, options).await?;
            emit(json, &summary, || {
                let mut s = format!(
                    "backup {} stored: {} ({} bytes, sha256 {})\n",
                    summary.backup_id, summary.archive_key, summary.size, summary.sha256
                );
                for (name, b) in &summary.backends {
                    s += &format!("  {name}: {}\n", stats_line(&b.stats));
                }
                if let Some(key) = &summary.signed_by {
                    s += &format!("  signed by key {key} ({})\n", summary.backup_id.signature_key());
                }
                if let Some(to) = &summary.encrypted_to {
                    s += &format!("  encrypted to {}\n", to.join(", "));
                }
                if let Some(c) = &summary.consistency {
                    s += &format!("  consistency: {}\n", c.line());
                }
                s
            })
        }
        Command::Restore { id, mut backends, restore: args, json } => {
            crate::secrets::resolve(&mut backends).await?;
            let keys = auth.keys().await?;
            if !args.dry_run {
                crate::stop::or_stop(crate::check::preflight(store.as_ref(), &backends, &args.only)).await?;
            }
            // One restore at a time per store, CLI and functions alike (the functions' lock).
            let lock = if args.dry_run {
                None
            } else {
                let holder =
                    format!("ngbak restore {id} on {} (pid {})", crate::telemetry::host_name(), std::process::id());
                match crate::store::lock::acquire_or_take_over(
                    store.clone(),
                    crate::store::lock::RESTORE_LOCK,
                    &holder,
                    crate::store::lock::LEASE,
                    args.force,
                )
                .await?
                {
                    Ok(lock) => Some(lock),
                    Err(held) => {
                        let message = format!(
                            "another restore is running in {} ({}, lock expires {}); wait for it to finish, or \
                             take over a lock left by a killed run with --force",
                            store.url(),
                            held.holder,
                            held.expires_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "unknown".into())
                        );
                        return Err(crate::failure::FailureKind::LockHeld.marked(message).into());
                    }
                }
            };
            let started_at = chrono::Utc::now();
            let result = restore::run_restore(
                store.as_ref(),
                &id,
                backends.restorers(&args),
                &args.options(&store, &backends, &keys),
            )
            .await;
            let archive_there = store.head(&id.archive_key()).await.ok().flatten().is_some();
            if !args.dry_run && archive_there {
                // The same report object the restore function writes, also when the restore failed.
                let doc = restore::outcome_document(&id, &result, started_at, "cli");
                let written = store.put(&id.report_key(), bytes::Bytes::from(serde_json::to_vec_pretty(&doc)?)).await;
                if let Err(e) = written {
                    tracing::warn!("could not write the restore report {}: {e:#}", id.report_key());
                } else if result.is_err() {
                    eprintln!("ngbak: the restore's report is {} in {}", id.report_key(), store.url());
                }
                if json && result.is_err() {
                    println!("{doc}");
                }
            }
            if let Some(lock) = lock {
                lock.release().await.ok();
            }
            let report = result?;
            emit(json, &report, || {
                let verb = if report.dry_run { "would restore" } else { "restored" };
                let mut s =
                    format!("backup {} verified (sha256 {}); {verb}:\n", report.backup_id, report.archive_sha256);
                if let Some(signature) = &report.signature {
                    s += &format!("  signature: {}\n", signature.line());
                }
                for (name, b) in &report.backends {
                    let counts = if report.dry_run { &b.expected } else { &b.restored };
                    let check = match (b.verified, &b.digest_found) {
                        (Some(true), Some(d)) => format!(" — read back: {} records equal to the archive", d.records),
                        (Some(false), _) => " — read back: DIFFERENT from the archive".to_string(),
                        _ if report.dry_run => String::new(),
                        _ => " — not read back".to_string(),
                    };
                    s += &format!("  {name} → {}: {}{check}\n", b.target, stats_line(counts));
                }
                for (name, why) in &report.skipped {
                    s += &format!("  {name}: skipped ({why})\n");
                }
                if let Some(links) = &report.consistency {
                    let when = if links.predicted { "as this restore would leave them" } else { "after the restore" };
                    s += &match (&links.warning, &links.not_checked) {
                        (Some(warning), _) => format!("WARNING: {warning}\n"),
                        (None, Some(why)) => format!("links {when}: not checked ({why})\n"),
                        (None, None) => format!("links {when}: every checked link holds\n"),
                    };
                }
                if let Some(safety) = &report.safety_backup {
                    s += &format!(
                        "safety backup of what was overwritten: {safety} (roll back: {})\n",
                        restore::rollback_command(safety)
                    );
                }
                s
            })
        }
        Command::List { json } => {
            // One listing of the store serves the backups and the leftovers.
            let objects = store.list("").await?;
            let backups = catalog::list_backups_in(store.as_ref(), &objects, &auth.trust().await?).await?;
            emit(json, &backups, || {
                let mut s = format!(
                    "{:<48} {:<21} {:>12}  {:<9} {:<12} {:<17} counts\n",
                    "ID", "CREATED (UTC)", "BYTES", "STATUS", "CONSISTENCY", "SIGNED BY"
                );
                for b in &backups {
                    let consistency = match &b.consistency {
                        Some(c) if c.consistent && c.rules.iter().any(|r| r.checked) => "consistent",
                        Some(c) if c.consistent => "held still",
                        Some(_) => "INCONSISTENT",
                        None => "-",
                    };
                    let signer = match &b.signature {
                        Some(Provenance::Verified { key_id }) => key_id.to_string(),
                        Some(Provenance::NotChecked { key_id }) => format!("{key_id}?"),
                        Some(Provenance::Refused { .. }) => "REFUSED".into(),
                        Some(_) => "unsigned".into(),
                        None => "-".into(),
                    };
                    s += &format!(
                        "{:<48} {:<21} {:>12}  {:<9} {:<12} {:<17} {}\n",
                        b.backup_id.as_str(),
                        b.created_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default(),
                        b.size.map(|n| n.to_string()).unwrap_or_default(),
                        b.status,
                        consistency,
                        signer,
                        match (&b.reason, &b.encrypted_to) {
                            (Some(why), _) => format!("{} [{why}]", stats_line(&b.stats)),
                            (None, Some(_)) if b.stats.is_empty() => "(encrypted: counts sealed)".to_string(),
                            (None, _) => stats_line(&b.stats),
                        }
                    );
                    if let Some(c) = b.consistency.as_ref().filter(|c| !c.consistent) {
                        s += &format!("    {}\n", c.line());
                    }
                    if let Some(refused @ Provenance::Refused { .. }) = &b.signature {
                        s += &format!("    signature {}\n", refused.line());
                    }
                }
                s
            })?;
            if !json {
                let leftovers = cleanup::find_in(store.as_ref(), &objects, Duration::from_secs(3600)).await?;
                print!("{}", leftovers_text(&leftovers));
            }
            Ok(())
        }
        Command::Inspect { id, json } => {
            let (mut shown, signature) = catalog::inspect(store.as_ref(), &id, &auth.trust().await?).await?;
            shown["signature"] = serde_json::to_value(&signature)?;
            if json {
                println!("{}", serde_json::to_string(&shown)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&shown)?);
                println!("signature: {}", signature.line());
            }
            Ok(())
        }
        Command::Verify { id, json, .. } => {
            let id = id.expect("clap requires an id without --file");
            let (_, report) = restore::verify(store.as_ref(), &id, &auth.trust().await?).await?;
            emit(json, &report, || match report.checked {
                "ciphertext" => format!(
                    "backup {} is encrypted; its ciphertext is intact: {} bytes, sha256 {}; {} (pass --identity to \
                     check every entry)\n",
                    report.backup_id,
                    report.archive_bytes,
                    report.archive_sha256,
                    report.signature.line()
                ),
                _ => format!(
                    "backup {} is intact: {} entries, {} bytes, sha256 {}; {}\n",
                    report.backup_id,
                    report.entries,
                    report.archive_bytes,
                    report.archive_sha256,
                    report.signature.line()
                ),
            })
        }
        Command::Import { source, id, sha256, sidecar, json } => {
            let source = import::ArchiveSource::parse(&source)?;
            let keys = auth.keys().await?;
            let report =
                import::import(&store, &source, id.as_ref(), sha256.as_deref(), sidecar.as_deref(), &keys).await?;
            emit(json, &report, || standalone_line("was verified and imported", &report))
        }
        Command::Keygen { .. } => unreachable!("keygen returns before the store is opened"),
        Command::Serve { .. } => unreachable!("serve returns before the job starts"),
        Command::Rekey { id, all: _, dry_run, json } => {
            let keys = auth.keys().await?;
            if keys.encryption.recipients.passphrase.is_some() {
                anyhow::bail!("rekey re-wraps to age recipients (--encrypt-to age1…), not to a passphrase");
            }
            let to = keys.encryption.recipients.keys.clone();
            let reports = match id {
                Some(id) => vec![crate::pipeline::rekey::rekey(&store, &id, &to, &keys, dry_run).await?],
                None => crate::pipeline::rekey::rekey_all(&store, &to, &keys, dry_run).await?,
            };
            emit(json, &reports, || {
                let verb = if dry_run { "would re-wrap" } else { "re-wrapped" };
                let mut s = String::new();
                for r in &reports {
                    s += &format!(
                        "{}: {verb} from {} to {} ({} body bytes unchanged); sha256 {}\n",
                        r.backup_id,
                        r.from.join(", "),
                        r.to.join(", "),
                        r.body_bytes,
                        r.archive_sha256
                    );
                }
                if reports.is_empty() {
                    s += "no encrypted backup to re-wrap\n";
                }
                s
            })
        }
        Command::Cleanup { older_than, dry_run, json } => {
            let report = cleanup::cleanup(store.as_ref(), Duration::from_secs(older_than), dry_run).await?;
            emit(json, &report, || {
                let verb = if report.dry_run { "would abort" } else { "aborted" };
                let mut s = String::new();
                for u in &report.aborted_uploads {
                    s += &format!("{verb} pending upload {} (started {})\n", u.key, when(u.started));
                }
                let verb = if report.dry_run { "would remove" } else { "removed" };
                for l in &report.removed_locks {
                    s += &format!(
                        "{verb} expired lock {} (held by {}, expired {})\n",
                        l.key,
                        l.holder,
                        when(l.expires_at)
                    );
                }
                if report.aborted_uploads.is_empty() && report.removed_locks.is_empty() {
                    s += "nothing to clean up\n";
                }
                if !report.kept.is_empty() {
                    s += "left alone:\n";
                    s += &leftovers_text(&report.kept);
                }
                s
            })
        }
        Command::Delete { id } => {
            catalog::delete_backup(store.as_ref(), &id).await?;
            println!("deleted backup {id}");
            Ok(())
        }
        Command::Prune { policy, dry_run, json } => {
            let report = retention::prune(store.as_ref(), &policy, dry_run, &auth.trust().await?).await?;
            emit(json, &report, || {
                let mut s = String::new();
                for d in &report.decisions {
                    let verb = match (d.keep, report.dry_run) {
                        (true, _) => "keep  ",
                        (false, true) => "would delete",
                        (false, false) => "deleted",
                    };
                    s += &format!("{verb} {}  {}\n", d.backup_id, d.reasons.join(", "));
                }
                s
            })
        }
        Command::Check { mut backends, json } => {
            crate::secrets::resolve(&mut backends).await?;
            let report = crate::check::run(store.as_ref(), &backends).await;
            emit(json, &report, || crate::check::render(&report))?;
            let failed = report.checks.iter().filter(|c| !c.ok).count();
            anyhow::ensure!(failed == 0, "{failed} of {} checks failed (see above)", report.checks.len());
            Ok(())
        }
        Command::Consistency { .. } => unreachable!("handled above: it needs no store"),
        Command::Job(job) => crate::runner::job::run(job, max_duration).await,
        Command::Presign { id, expires } => {
            println!("{}", store.presign_get(&id.archive_key(), Duration::from_secs(expires)).await?);
            Ok(())
        }
    }
}

/// `ngbak consistency`: the rules over the configured deployment, printed; an error (exit 3)
/// when a link is broken.
/// The report object `ngbak consistency` keeps in the store (the latest check's).
pub const CONSISTENCY_REPORT_KEY: &str = "consistency-report.json";

async fn consistency(
    backends: &BackendArgs,
    backup: Option<&BackupId>,
    store: Option<&dyn crate::store::ObjectStore>,
    json: bool,
) -> Result<()> {
    let mut backends = backends.clone();
    let layout = &backends.layout.clone();
    let parts: Vec<Box<dyn crate::consistency::Deployment + '_>> = match (backup, store) {
        (Some(id), Some(store)) => {
            let sidecar = restore::load_sidecar(store, id).await?;
            let readers = backends.archived_facts(&[]);
            vec![Box::new(crate::pipeline::archived_links::ArchiveDeployment::new(store, sidecar, readers))]
        }
        _ => {
            crate::secrets::resolve(&mut backends).await?;
            backends.deployments(&[])
        }
    };
    if parts.is_empty() {
        anyhow::bail!(
            "no deployment to check: pass --kv-dir (a nano-graphrag working directory), or the live stores: \
             --redis-url, --neo4j-uri, --qdrant-url"
        );
    }
    let mut deployment = crate::consistency::Combined(parts);
    let report = crate::consistency::check(&mut deployment, layout).await?;
    if let Some(store) = store {
        let doc = serde_json::json!({ "checked_at": chrono::Utc::now(), "backup_id": backup, "report": &report });
        store.put(CONSISTENCY_REPORT_KEY, bytes::Bytes::from(serde_json::to_vec_pretty(&doc)?)).await?;
    }
    emit(json, &report, || crate::consistency::render(&report))?;
    report.into_result()?;
    Ok(())
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| "at an unknown time".into())
}

/// Pending uploads and locks, for `list` and `cleanup`.
fn leftovers_text(l: &cleanup::Leftovers) -> String {
    let mut s = String::new();
    if !l.pending_uploads.is_empty() {
        s += "pending uploads (not backups; `ngbak cleanup` aborts those no run holds):\n";
        for p in &l.pending_uploads {
            let note = p
                .kept_because
                .as_deref()
                .map(|w| format!(" — {w}"))
                .unwrap_or_else(|| " — left by a run that stopped".into());
            s += &format!("  {} started {}{note}\n", p.upload.key, when(p.upload.started));
        }
    }
    if !l.locks.is_empty() {
        s += "locks:\n";
        for k in &l.locks {
            let state = if k.expired { "EXPIRED (stale; `ngbak cleanup` removes it)" } else { "held" };
            s += &format!("  {} {state} by {} until {}\n", k.key, k.holder, when(k.expires_at));
        }
    }
    s
}

/// `ngbak keygen`: both files written new (an existing file is never replaced), the secret one
/// readable by its owner only.
fn keygen(secret_path: &std::path::Path, public_path: &std::path::Path, password: Option<&str>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let made = crate::authenticity::generate(password)?;
    for (path, text, mode) in [(secret_path, &made.secret_file, 0o600), (public_path, &made.public_file, 0o644)] {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
                anyhow::anyhow!("cannot create {}: {e} (keygen never replaces a key file)", path.display())
            })?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    let protected = if password.is_some() { ", protected by NGBAK_SIGNING_KEY_PASSWORD" } else { "" };
    println!("key {} made{protected}", made.id);
    println!(
        "secret key: {} (sign with --signing-key, or NGBAK_SIGNING_KEY_FILE; keep it secret)",
        secret_path.display()
    );
    println!("public key: {} = {}", public_path.display(), made.public_base64);
    println!("trust it with --trusted-key {} (or NGBAK_TRUSTED_KEYS)", made.public_base64);
    Ok(())
}

fn standalone_line(what: &str, r: &import::StandaloneReport) -> String {
    let mut s = format!(
        "archive {} (backup {}) {what}: {} entries checked against its manifest, {} bytes, sha256 {}{}\n",
        r.source,
        r.backup_id,
        r.entries,
        r.archive_bytes,
        r.archive_sha256,
        if r.whole_file_checked { " (as expected)" } else { " (pass --sha256 to check the whole file too)" }
    );
    if let Some(to) = &r.imported_to {
        s += &format!("stored as {to}; restore it with `ngbak restore {}`\n", r.backup_id);
    }
    if let Some(signature) = &r.signature {
        s += &format!("signature: {}\n", signature.line());
    }
    if let Some(key) = &r.signed_by {
        s += &format!("the sidecar written was signed by key {key}\n");
    }
    s
}

fn stats_line(stats: &std::collections::BTreeMap<String, u64>) -> String {
    stats.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// Prints JSON (one document) or the human text.
fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        print!("{}", human());
    }
    // Before any error line on stderr, so the two read in order when both go to one place.
    std::io::Write::flush(&mut std::io::stdout())?;
    Ok(())
}
