//! Keeps the console fed while it runs: follows a moderation JSONL file as `vigie screen`
//! (or another writer) appends to it.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::store::Store;
use super::tracker::Embedder;
use crate::contract::ScreenedRecord;

/// Where a followed file has been read up to. Only complete lines are consumed, so a
/// line being written when we look is read whole on the next pass.
pub struct FileFollower {
    path: PathBuf,
    offset: u64,
    line: usize,
}

impl FileFollower {
    pub fn new(path: &Path) -> Self {
        FileFollower { path: path.to_path_buf(), offset: 0, line: 0 }
    }

    /// Records appended since the last call. A file that shrank was rewritten (a new
    /// `vigie screen` run): it is read again from the start; ids already stored are
    /// skipped by the import.
    pub fn poll(&mut self) -> std::io::Result<Vec<ScreenedRecord>> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
            self.line = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.take(len - self.offset).read_to_end(&mut buf)?;
        let complete = buf.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        self.offset += complete as u64;
        let mut records = Vec::new();
        for raw in buf[..complete].split(|b| *b == b'\n') {
            if raw.iter().all(u8::is_ascii_whitespace) {
                if !raw.is_empty() {
                    self.line += 1;
                }
                continue;
            }
            self.line += 1;
            match serde_json::from_slice::<ScreenedRecord>(raw) {
                Ok(r) => records.push(r),
                // The line is not echoed: it is not known to be redacted.
                Err(e) => tracing::warn!(file = %self.path.display(), line = self.line, error = %e, "skipping a line that is not a moderation record"),
            }
        }
        Ok(records)
    }
}

/// Polls `path` every `every` and imports what it finds, until the task is dropped.
pub async fn follow(store: Arc<Store>, embedder: Arc<dyn Embedder>, path: PathBuf, every: Duration) {
    let mut follower = FileFollower::new(&path);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let store = store.clone();
        let embedder = embedder.clone();
        let mut f = std::mem::replace(&mut follower, FileFollower::new(&path));
        let (back, result) = match tokio::task::spawn_blocking(move || {
            let result = f.poll().map_err(|e| e.to_string()).and_then(|records| {
                if records.is_empty() {
                    Ok(None)
                } else {
                    store.import(&records, embedder.as_ref(), "feed", Utc::now()).map(Some).map_err(|e| e.to_string())
                }
            });
            (f, result)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "the feed task failed");
                continue;
            }
        };
        follower = back;
        match result {
            Ok(Some(report)) => tracing::info!(new = report.new, duplicates = report.duplicates, "moderation records imported"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, file = %path.display(), "cannot import moderation records"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record_line(id: &str) -> String {
        format!(
            r#"{{"id":"{id}","lang":{{"code":"fr","confidence":0.9}},"redacted_text":"texte","redactions":[],"risk":null,"route":{{"queue":"privacy-fr","priority":"low","reasons":["privacy"]}},"channel":"forum","processed_at":"2024-05-01T10:00:00Z","vigie_version":"0.1.0"}}"#
        )
    }

    #[test]
    fn reads_complete_lines_once_and_restarts_after_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moderation.jsonl");
        let mut f = FileFollower::new(&path);
        assert!(f.poll().unwrap().is_empty(), "a missing file is not an error");
        let mut file = std::fs::File::create(&path).unwrap();
        write!(file, "{}\nnot json\n{}", record_line("a"), &record_line("b")[..20]).unwrap();
        file.flush().unwrap();
        let got: Vec<String> = f.poll().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(got, ["a"], "the bad line is skipped, the half-written one waits");
        write!(file, "{}\n", &record_line("b")[20..]).unwrap();
        file.flush().unwrap();
        let got: Vec<String> = f.poll().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(got, ["b"]);
        assert!(f.poll().unwrap().is_empty());
        std::fs::write(&path, format!("{}\n", record_line("c"))).unwrap();
        let got: Vec<String> = f.poll().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(got, ["c"], "a shorter file is read from the start");
    }
}
