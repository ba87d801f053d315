//! `hubble-noise suggest`: a draft rule file for the unexpected flows of recordings
//! (PRODUCT.md §7), grouped and written by [`crate::suggest`]. The output passes `check` as is.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::SuggestArgs;
use crate::load;
use crate::pipeline::{Outcome, Pipeline};
use crate::rules::Class;
use crate::source::file;
use crate::suggest::draft::render;
use crate::suggest::group::Groups;

/// Runs `suggest`: prints the rule file on stdout and a summary on stderr.
pub fn run(args: &SuggestArgs) -> anyhow::Result<ExitCode> {
    let loaded = load::config(args.config.config.as_deref())?;
    let classifier = load::classifier(&loaded).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut pipeline = Pipeline::new(&loaded.config);
    let mut groups = Groups::default();
    let mut unreadable = 0u64;
    for path in &args.files {
        let mut reader = file::open(path).with_context(|| format!("{}", path.display()))?;
        file::for_each_response(path, &mut reader, |_, item| {
            let resp = match item {
                Ok(file::Line::Response(r)) => r,
                Ok(file::Line::NotCounted) => return ControlFlow::Continue(()),
                Err(e) => {
                    unreadable += 1;
                    eprintln!("{e}");
                    return ControlFlow::Continue(());
                }
            };
            if let Outcome::Counted { ctx, decision } = pipeline.process(&resp, &classifier) {
                if decision.class == Class::Unexpected {
                    groups.add(&ctx);
                }
            }
            ControlFlow::Continue(())
        })
        .with_context(|| format!("{}: read error", path.display()))?;
    }
    let now = crate::metrics::now_seconds();
    let expires = now + f64::from(args.expires_in_days) * 86_400.0;
    let text = render(groups.by_key, expires);
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if unreadable > 0 {
        eprintln!("suggest: {unreadable} line(s) could not be read");
    }
    Ok(ExitCode::SUCCESS)
}
