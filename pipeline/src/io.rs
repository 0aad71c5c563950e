//! The embedded source and sinks: JSONL in (file or stdin), four JSONL files out.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::contract::{Origin, RejectedRecord, ScreenedRecord};
use crate::screener::{Outcome, Screener};
use crate::summary::Summary;

pub const SCREENED_FILE: &str = "screened.jsonl";
pub const MODERATION_FILE: &str = "moderation.jsonl";
pub const REJECTED_FILE: &str = "rejected.jsonl";
/// Rumour signals: posts that ask about, refute or report a rumour (also in screened).
pub const RUMOURS_FILE: &str = "rumours.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("cannot open input {path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error("reading {path} at line {line}: {source}")]
    Read {
        path: String,
        line: usize,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The output files of `vigie screen`.
pub struct JsonlSinks {
    dir: PathBuf,
    screened: BufWriter<File>,
    moderation: BufWriter<File>,
    rumours: BufWriter<File>,
    rejected: BufWriter<File>,
}

impl JsonlSinks {
    pub fn create(dir: &Path) -> Result<Self, IoError> {
        std::fs::create_dir_all(dir).map_err(|source| IoError::Output {
            path: dir.into(),
            source,
        })?;
        let open = |name: &str| {
            let path = dir.join(name);
            File::create(&path)
                .map(BufWriter::new)
                .map_err(|source| IoError::Output { path, source })
        };
        Ok(JsonlSinks {
            dir: dir.into(),
            screened: open(SCREENED_FILE)?,
            moderation: open(MODERATION_FILE)?,
            rumours: open(RUMOURS_FILE)?,
            rejected: open(REJECTED_FILE)?,
        })
    }

    pub fn write_screened(&mut self, record: &ScreenedRecord) -> Result<(), IoError> {
        write_line(&mut self.screened, record, &self.dir.join(SCREENED_FILE))?;
        if record.route.is_flagged() {
            write_line(
                &mut self.moderation,
                record,
                &self.dir.join(MODERATION_FILE),
            )?;
        }
        if record.is_rumour_signal() {
            write_line(&mut self.rumours, record, &self.dir.join(RUMOURS_FILE))?;
        }
        Ok(())
    }

    pub fn write_rejected(&mut self, record: &RejectedRecord) -> Result<(), IoError> {
        write_line(&mut self.rejected, record, &self.dir.join(REJECTED_FILE))
    }

    pub fn finish(mut self) -> Result<(), IoError> {
        for (w, name) in [
            (&mut self.screened, SCREENED_FILE),
            (&mut self.moderation, MODERATION_FILE),
            (&mut self.rumours, RUMOURS_FILE),
            (&mut self.rejected, REJECTED_FILE),
        ] {
            w.flush().map_err(|source| IoError::Output {
                path: self.dir.join(name),
                source,
            })?;
        }
        Ok(())
    }
}

fn write_line<T: Serialize>(w: &mut impl Write, record: &T, path: &Path) -> Result<(), IoError> {
    let to_io = |source| IoError::Output {
        path: path.into(),
        source,
    };
    serde_json::to_writer(&mut *w, record).map_err(|e| to_io(std::io::Error::other(e)))?;
    w.write_all(b"\n").map_err(to_io)
}

/// Screens a JSONL input (`-` for stdin) into `out_dir`, batch by batch.
/// Blank lines are skipped; every other line gives exactly one screened or rejected record.
pub fn screen_jsonl(
    screener: &Screener,
    input: &str,
    out_dir: &Path,
    batch_size: usize,
    mut on_batch: impl FnMut(usize),
) -> Result<Summary, IoError> {
    let reader: Box<dyn Read> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(input).map_err(|source| IoError::Input {
            path: input.into(),
            source,
        })?)
    };
    let mut reader = BufReader::new(reader);
    let mut sinks = JsonlSinks::create(out_dir)?;
    let mut summary = Summary::default();
    let file_name = if input == "-" {
        "<stdin>".to_string()
    } else {
        input.to_string()
    };
    let mut batch: Vec<(Origin, Vec<u8>)> = Vec::with_capacity(batch_size);
    let mut line_no = 0;
    loop {
        let mut line = Vec::new();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| IoError::Read {
                path: file_name.clone(),
                line: line_no + 1,
                source,
            })?;
        if n > 0 {
            line_no += 1;
            // A UTF-8 byte-order mark (editors on Windows write one) is not part of the post.
            if line_no == 1 && line.starts_with(b"\xEF\xBB\xBF") {
                line.drain(..3);
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                batch.push((
                    Origin::Line {
                        file: file_name.clone(),
                        line: line_no,
                    },
                    line,
                ));
            }
        }
        if batch.len() >= batch_size.max(1) || (n == 0 && !batch.is_empty()) {
            let inputs: Vec<(Origin, &[u8])> = batch
                .iter()
                .map(|(o, b)| (o.clone(), b.as_slice()))
                .collect();
            for outcome in screener.process(&inputs) {
                summary.add(&outcome);
                match &outcome {
                    Outcome::Screened(r) => sinks.write_screened(r)?,
                    Outcome::Rejected(r) => sinks.write_rejected(r)?,
                }
            }
            on_batch(batch.len());
            batch.clear();
        }
        if n == 0 {
            break;
        }
    }
    sinks.finish()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_byte_order_mark_does_not_cost_the_first_post() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("posts.jsonl");
        std::fs::write(
            &input,
            "\u{feff}{\"id\":\"1\",\"text\":\"Réunion demain à 9h\"}\n{\"id\":\"2\",\"text\":\"ok merci\",\"channel\":\"message\"}\n",
        )
        .unwrap();
        let mut config = Config::default();
        config.risk.enabled = false;
        let screener = Screener::with_risk(&config, None).unwrap();
        let out = dir.path().join("out");
        let summary = screen_jsonl(&screener, input.to_str().unwrap(), &out, 8, |_| {}).unwrap();
        assert_eq!((summary.screened, summary.rejected), (2, 0));
        let screened = std::fs::read_to_string(out.join(SCREENED_FILE)).unwrap();
        assert!(
            screened.contains(r#""channel":"other""#),
            "no channel reads as other"
        );
    }
}
