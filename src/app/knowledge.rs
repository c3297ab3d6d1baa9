//! The `kb` commands: ingest the knowledge base, search it, measure the
//! agent on it (`kb eval`), show its stats.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::wiring::{access, access_filled, KbAccess, Open};
use crate::app::config::{FileConfig, DATA_DIR_ENV};
use crate::knowledge::{live, ChunkKind, IngestInput, KnowledgeBase, KnowledgeConfig, SearchFilter};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// (Re)build the knowledge base from Markdown / text / JSONL files and
    /// folders, and from moderator-approved conversation pairs. Incremental:
    /// unchanged chunks are skipped, changed ones replaced. Without PATHS and
    /// without --conversations it ingests the starter FAQ built into the binary.
    /// While the daemon runs, every `kb` command goes through it, and its
    /// answers follow the ingest at once.
    Ingest {
        /// Files or folders (*.md, *.markdown, *.txt, *.jsonl). Sources are named by
        /// their path relative to the folder given.
        paths: Vec<PathBuf>,
        /// Also ingest the approved question/answer pairs from the database (redacted).
        #[arg(long)]
        conversations: bool,
        /// Remove chunks of sources that are gone (documents when PATHS are given,
        /// conversations with --conversations).
        #[arg(long)]
        prune: bool,
        /// Delete the collection first: needed after changing the embedding model or dimension.
        /// Not while the daemon runs (stop it first).
        #[arg(long)]
        rebuild: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Search the knowledge base and print the best chunks.
    Search {
        /// What a customer would ask.
        query: String,
        /// Print one JSON array of {"source","title","text","score"}.
        #[arg(long)]
        json: bool,
        /// Print at most this many chunks.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Only `doc` or `conversation` chunks.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<ChunkKind>,
        /// Only chunks in this language (`ru`, `en`).
        #[arg(long)]
        language: Option<String>,
        #[command(flatten)]
        location: Location,
    },
    /// Measure the agent on a question set: each line of QUESTIONS is
    /// {"q": "…", "expect": "<source>" | "<source>#<section>" | "escalate"}.
    /// Every question runs through the daemon's retrieval and agent policy
    /// (and the LLM when configured); nothing is stored. Prints recall@1/@3,
    /// MRR, resolved / escalated / wrong, per-question details and the
    /// thresholds in force.
    Eval {
        /// The question set (JSONL) to measure with.
        questions: PathBuf,
        /// Print one JSON object with the figures and a "details" array.
        #[arg(long)]
        json: bool,
        /// First refit the confidence's weights on these questions (the
        /// answerable ones: the expected hit right, every other candidate
        /// wrong) and keep them for this knowledge base; then evaluate. The
        /// figures that follow are no longer a hold-out measurement.
        #[arg(long)]
        learn: bool,
        #[command(flatten)]
        location: Location,
    },
    /// Chunk counts per kind and the index backend in use.
    Stats {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: Location,
    },
}

#[derive(Debug, Args)]
pub struct Location {
    /// Data dir holding the database and the Edge index (default: from the config, else ./data).
    #[arg(long, env = DATA_DIR_ENV)]
    pub data_dir: Option<PathBuf>,
}

fn parse_kind(s: &str) -> Result<ChunkKind, String> {
    ChunkKind::parse(s).ok_or_else(|| format!("unknown kind {s:?}: use doc or conversation"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(config: Option<&Path>) -> anyhow::Result<FileConfig> {
    Ok(match config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    })
}

/// Data dir and knowledge config from the flags, the config file and the environment.
fn resolve(location: &Location, config: Option<&Path>) -> anyhow::Result<(PathBuf, KnowledgeConfig)> {
    let file = load(config)?;
    let data_dir = location.data_dir.clone().unwrap_or_else(|| file.resolved_data_dir(&env));
    let mut kc = file.knowledge.resolve(&env).context("Invalid [knowledge] section")?;
    if let Some(p) = &file.parser.account_pattern {
        kc.extra_account_pattern =
            Some(regex::Regex::new(p).with_context(|| format!("Invalid [parser] account_pattern {p:?}"))?);
    }
    Ok((data_dir, kc))
}

pub async fn run(cmd: KbCommand, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        KbCommand::Ingest { paths, conversations, prune, rebuild, location } => {
            let (data_dir, kc) = resolve(&location, config)?;
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("Failed to create the data dir {}", data_dir.display()))?;
            let documents = if !paths.is_empty() {
                Some(crate::knowledge::ingest::collect_files(&paths).context("Failed to read the knowledge files")?)
            } else if !conversations {
                Some(crate::knowledge::starter::sources())
            } else {
                None
            };
            let pairs = if conversations {
                let db = data_dir.join(crate::DATABASE_FILE);
                let store = Store::open(&db).await.with_context(|| format!("Failed to open {}", db.display()))?;
                let pairs = store.approved_pairs().await.context("Failed to read the approved pairs")?;
                store.close().await;
                Some(pairs)
            } else {
                None
            };
            let how = if rebuild { Open::Rebuild } else { Open::Plain };
            let kb = match access(&data_dir, &kc, how).await? {
                KbAccess::Local(kb) => kb,
                KbAccess::Daemon(daemon) => {
                    let request = live::IngestRequest { documents, conversations: pairs, prune };
                    let done = daemon.ingest(&request).await.context("Ingestion through the running daemon failed")?;
                    let optimized =
                        done.optimized_secs.map(|s| format!(", index optimised in {s:.2}s")).unwrap_or_default();
                    println!(
                        "kb ingest: {}{optimized} ({}; through the running daemon, pid {}, which answers from it now)",
                        done.report,
                        done.backend,
                        daemon.pid()
                    );
                    if let Some(c) = done.calibration {
                        print_calibration(&c);
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            };
            let mut bar = ProgressBar::new();
            let report = kb
                .ingest(IngestInput { documents, conversations: pairs }, prune, Some(&mut |d, t| bar.draw(d, t)))
                .await
                .context("Ingestion failed")?;
            bar.finish();
            let optimized = if report.embedded > 0 || report.removed > 0 || report.updated > 0 {
                let t = std::time::Instant::now();
                kb.optimize().await.context("Failed to optimise the index")?;
                format!(", index optimised in {:.2}s", t.elapsed().as_secs_f64())
            } else {
                String::new()
            };
            println!("kb ingest: {report}{optimized} ({})", kb.backend());
            if let Some(c) = kb.calibration() {
                print_calibration(&live::CalibrationSummary::of(&c));
            }
            Ok(ExitCode::SUCCESS)
        }
        KbCommand::Search { query, json, limit, kind, language, location } => {
            let (data_dir, kc) = resolve(&location, config)?;
            let hits = match access(&data_dir, &kc, Open::Plain).await? {
                KbAccess::Local(kb) => {
                    kb.search(&query, &SearchFilter { kind, language, ..Default::default() }, limit).await
                }
                KbAccess::Daemon(daemon) => {
                    daemon.search(&live::SearchRequest { query, kind, language, limit, prefer: false }).await
                }
            }
            .context("Search failed")?;
            if json {
                let arr: Vec<serde_json::Value> = hits
                    .iter()
                    .map(|h| {
                        serde_json::json!({
                            "source": h.source, "title": h.title, "text": h.text, "score": h.score,
                            "confidence": h.confidence, "evidence": h.evidence, "bar": h.bar,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(arr));
            } else if hits.is_empty() {
                println!("no matches");
            } else {
                for (i, h) in hits.iter().enumerate() {
                    let text: String = h.text.chars().take(240).collect();
                    let more = if h.text.chars().count() > 240 { "…" } else { "" };
                    println!(
                        "{}. [score {:.3}, confidence {:.2}, found by {}] {} — {}\n   {}{more}",
                        i + 1,
                        h.score,
                        h.confidence,
                        serde_json::to_value(h.evidence.found_by)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        h.source,
                        h.title,
                        text.replace('\n', " ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        KbCommand::Eval { questions, json, learn, location } => {
            let report = eval(&questions, &location, config, learn).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        KbCommand::Stats { json, location } => {
            let (data_dir, kc) = resolve(&location, config)?;
            let s = access(&data_dir, &kc, Open::Plain).await?.stats().await?;
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!("backend:       {}", s.backend);
                println!("collection:    {}", s.collection);
                println!("doc chunks:    {}", s.doc_chunks);
                println!("conversation:  {}", s.conversation_chunks);
                println!("sources:       {}", s.sources);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a question set through the agent as the daemon would configure it.
/// The agent gets a throwaway database: an evaluation stores no turn and
/// does not touch the daemon's database.
async fn eval(
    questions: &Path,
    location: &Location,
    config: Option<&Path>,
    learn: bool,
) -> anyhow::Result<crate::agent::eval::EvalReport> {
    use crate::agent::{eval, sources::NoOrders, Agent, AgentSettings};
    let text = std::fs::read_to_string(questions)
        .with_context(|| format!("Failed to read the question set {}", questions.display()))?;
    let set = eval::parse_questions(&text).with_context(|| format!("Invalid question set {}", questions.display()))?;
    let file = load(config)?;
    let data_dir = location.data_dir.clone().unwrap_or_else(|| file.resolved_data_dir(&env));
    let settings = AgentSettings::resolve(&file.agent, &env).context("Invalid [agent] settings")?;
    let (_, kc) = resolve(location, config)?;
    let kb = access_filled(&data_dir, &kc, Open::Patient).await?;
    if learn {
        let KbAccess::Local(kb) = &kb else {
            anyhow::bail!(
                "--learn refits the weights kept beside the index, but the running daemon holds it and uses \
                 them: stop the daemon, run `kb eval --learn`, start it again (without --learn the evaluation \
                 runs through the daemon)"
            );
        };
        learn_weights(kb, &set, questions).await?;
    }
    let fallbacks = kb.dense_fallbacks().await;
    let fallbacks_after = |kb: KbAccess| async move { kb.dense_fallbacks().await - fallbacks };
    let searched = match &kb {
        KbAccess::Local(kb) => KbAccess::Local(kb.clone()),
        KbAccess::Daemon(c) => KbAccess::Daemon(c.clone()),
    };
    let retriever = searched.retriever();
    let scratch = tempfile::tempdir().context("Failed to create a scratch directory")?;
    let store =
        Store::open(&scratch.path().join(crate::DATABASE_FILE)).await.context("Failed to open a scratch database")?;
    let agent = Agent::new(settings, std::sync::Arc::from(retriever), std::sync::Arc::new(NoOrders), store.clone())
        .context("Failed to set up the agent")?;
    let mut report = eval::run(&agent, &set).await;
    report.dense_fallbacks = fallbacks_after(kb).await;
    store.close().await;
    Ok(report)
}

fn print_calibration(c: &live::CalibrationSummary) {
    println!(
        "kb ingest: hybrid confidence calibrated with {} on {} pseudo-questions of {} sections; \
         a stored answer is sent from {:.3} (docs/agent.md)",
        c.dense_model, c.questions, c.sections, c.bar
    );
}

/// `kb eval --learn`: the weights refitted on the set's answerable questions.
async fn learn_weights(
    kb: &KnowledgeBase,
    set: &[crate::agent::eval::EvalQuestion],
    file: &Path,
) -> anyhow::Result<()> {
    use crate::domain::Language;
    anyhow::ensure!(
        kb.calibration().is_some(),
        "--learn fits the weights of hybrid search: configure [knowledge.embedding] and run `kb ingest` with it first \
         (lexical search is not calibrated)"
    );
    let mut taught = Vec::new();
    let answerable: Vec<_> = set.iter().filter(|q| q.expect.to_string() != "escalate").collect();
    for q in &answerable {
        let lang = Language::detect(&q.q).unwrap_or(Language::En);
        let right = |source: &str, title: &str| q.expect.matches_chunk(source, title);
        taught.push((q.q.clone(), kb.labelled(&q.q, lang.as_str(), &right).await.context("Search failed")?));
    }
    let candidates: usize = taught.iter().map(|(_, c)| c.len()).sum();
    let from = format!("{} questions of {}", answerable.len(), file.display());
    let c = kb.learn(taught, from).context(
        "nothing to learn from: no answerable question found its expected section among the candidates, \
         or the embedding server did not answer",
    )?;
    eprintln!(
        "kb eval: weights learnt from {} answerable questions ({candidates} candidates; {} questions taught in all); \
         the bar is now {:.3}",
        answerable.len(),
        c.learnt.len(),
        c.bar()
    );
    Ok(())
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
struct ProgressBar {
    enabled: bool,
    drawn: bool,
}

impl ProgressBar {
    fn new() -> Self {
        Self { enabled: std::io::stderr().is_terminal(), drawn: false }
    }

    fn draw(&mut self, done: usize, total: usize) {
        if !self.enabled || total == 0 {
            return;
        }
        let width = 30;
        let filled = done * width / total;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r[{}{}] {done}/{total} chunks", "#".repeat(filled), " ".repeat(width - filled));
        let _ = err.flush();
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
