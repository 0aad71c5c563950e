//! Quantised linear layers for the encoder: int8 activations × int8 weights, 32-bit
//! integer sums, one scale per activation row and one per weight row, with the kernel
//! chosen at run time from what the processor has.
//!
//! Why this shape (measured on the 2-core machines Vigie runs on, see `models/README.md`):
//! - the encoder's time is in its linear layers, and an integer multiply-add does two to
//!   four times the work of an f32 one per instruction;
//! - the weights come from 4-bit blocks (`e5_file`), so 8 bits per weight row loses
//!   nothing that matters (the re-quantisation step is ~1/30 of a 4-bit step), while one
//!   scale per row (not per block) lets a whole row be summed in integers and scaled once;
//! - activations are quantised per token row at run time (dynamic quantisation).
//!
//! Kernels, best first ([`Kernel::detect`]):
//! - [`Kernel::Amx`]: `tdpbusd` on AMX tiles (Sapphire Rapids and later Xeons), 16 rows
//!   by 64 columns per tile on the AVX-512 kernel's packing, 256 times the multiply-adds of
//!   one `vpdpbusd` per instruction; see `amx.rs`;
//! - [`Kernel::Avx512Vnni`]: `vpdpbusd` on 512-bit registers, 4 bytes per lane per
//!   instruction. It multiplies unsigned by signed bytes, so activations are stored as
//!   `q + 128` and the extra `128 · Σ w` is taken off each output (`shift_comp`);
//! - [`Kernel::Avx2`]: `vpmaddwd` on 16-bit copies of the same integers (pairs summed into
//!   32 bits; the weights stay bytes in memory and are widened as they load). The byte sequence `vpmaddubsw → vpmaddwd` would saturate its 16-bit pair
//!   sums with full-range int8 on both sides; the 16-bit form uses the multiply ports the
//!   same number of times per multiply-add and is exact;
//! - [`Kernel::AvxVnni`]: the 256-bit `vpdpbusd` of processors with AVX-VNNI but no
//!   AVX-512, on the AVX-512 kernel's shifted bytes, in the AVX2 kernel's tile;
//! - [`Kernel::Neon`]: `sdot` on aarch64 (the Armv8.2 dot-product extension), signed
//!   bytes on both sides, on the AVX-VNNI kernel's packing; see `neon.rs`;
//! - [`Kernel::Portable`]: plain Rust loops the compiler vectorises for any target.
//!
//! Every kernel computes exactly the same integer sums, so they agree with
//! [`reference_forward`] to float rounding; the tests check each one on random shapes.
//! `VIGIE_KERNELS=portable` (or `neon`, `avx2`, `avxvnni`, `avx512vnni`, `amx`) caps the choice, so the slow paths can be tested
//! on a fast machine.

mod aligned;
mod amx;
pub mod attention;
mod avx2;
mod avx512;
mod avxvnni;
pub mod ceiling;
pub mod elementwise;
mod neon;
mod portable;
mod transpose;

use rayon::prelude::*;

use aligned::AlignedBytes;

/// The environment variable that caps the kernel choice: `portable`, `neon`, `avx2`, `avxvnni`,
/// `avx512vnni`, `amx` or `auto` (the default).
pub const KERNELS_ENV: &str = "VIGIE_KERNELS";

/// The largest input size a layer takes (its 32-bit sums stay exact).
pub const MAX_K: usize = 60_000;

/// Rows handled together by one call of a micro-kernel: their activations are read once
/// per weight load.
const TILE_ROWS: usize = 6;

/// Rows per parallel task (a multiple of [`TILE_ROWS`]): the activations of a task stay in
/// the core's cache while it walks its weight panels.
const BLOCK_ROWS: usize = 48;
const _: () = assert!(BLOCK_ROWS.is_multiple_of(TILE_ROWS) && BLOCK_ROWS.is_multiple_of(amx::ROWS));

/// Tasks per thread at least, when a product has few row blocks: enough that a thread
/// slowed by another tenant does not hold the other one up for long.
const TASKS_PER_THREAD: usize = 4;

/// A matrix-product kernel. All compute the same integer sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// Plain Rust, any processor.
    Portable,
    /// aarch64 with the dot-product extension (`sdot`). Ordered below the x86-64
    /// kernels only so that a cap names a prefix of this list; no processor has both.
    Neon,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-VNNI (256-bit `vpdpbusd`), AVX2 and FMA.
    AvxVnni,
    /// x86-64 with AVX-512 F, BW and VNNI.
    Avx512Vnni,
    /// x86-64 with AMX-TILE and AMX-INT8 (and AVX-512 VNNI), on Linux.
    Amx,
}

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 6] = [
        Kernel::Portable,
        Kernel::Neon,
        Kernel::Avx2,
        Kernel::AvxVnni,
        Kernel::Avx512Vnni,
        Kernel::Amx,
    ];

    /// The name used in logs, the bench and `VIGIE_KERNELS`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Neon => "neon",
            Kernel::Avx2 => "avx2",
            Kernel::AvxVnni => "avxvnni",
            Kernel::Avx512Vnni => "avx512vnni",
            Kernel::Amx => "amx",
        }
    }

    /// Whether this processor can run the kernel (ignoring `VIGIE_KERNELS`).
    pub fn supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            Kernel::Neon => neon::supported(),
            Kernel::Avx2 => avx2::supported(),
            Kernel::AvxVnni => avxvnni::supported(),
            Kernel::Avx512Vnni => avx512::supported(),
            Kernel::Amx => amx::supported(),
        }
    }

    /// The kernels this process may use: those the processor supports, capped by
    /// `VIGIE_KERNELS`. An unknown value is treated as `portable`, the safe choice.
    pub fn available() -> Vec<Kernel> {
        let cap = match std::env::var(KERNELS_ENV).ok().as_deref().map(str::trim) {
            None | Some("") | Some("auto") => Kernel::Amx,
            Some(name) => Kernel::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .unwrap_or(Kernel::Portable),
        };
        Kernel::ALL
            .into_iter()
            .filter(|&k| k <= cap && k.supported())
            .collect()
    }

    /// The fastest available kernel.
    pub fn detect() -> Kernel {
        Kernel::available()
            .last()
            .copied()
            .unwrap_or(Kernel::Portable)
    }

    /// Whether activations are stored as `q + 128` (the unsigned operand of `vpdpbusd`).
    fn shifts_activations(self) -> bool {
        matches!(self, Kernel::AvxVnni | Kernel::Avx512Vnni | Kernel::Amx)
    }

    /// Rows one call of the kernel's tile takes.
    fn tile_rows(self) -> usize {
        match self {
            Kernel::Amx => amx::ROWS,
            _ => TILE_ROWS,
        }
    }

    /// Output columns per packed weight panel.
    fn panel_cols(self) -> usize {
        match self {
            Kernel::Portable => portable::PANEL,
            Kernel::Neon => neon::PANEL,
            Kernel::Avx2 => avx2::PANEL,
            Kernel::AvxVnni => avxvnni::PANEL,
            Kernel::Avx512Vnni => avx512::PANEL,
            Kernel::Amx => amx::PANEL,
        }
    }
}

/// Weights of one linear layer packed for one kernel.
enum Packed {
    /// Row-major `[n][k]` bytes.
    Rows(Vec<i8>),
    /// Panels of 16 columns, then pairs along `k`: `[panel][k/2][16][2]` (AVX2).
    Pairs16(AlignedBytes),
    /// Panels of 64 (AVX-512) or 16 (AVX-VNNI, NEON) columns, then quads along `k`:
    /// `[panel][k/4][panel][4]`.
    Quads8(AlignedBytes),
}

/// A linear layer `y = x · Wᵀ + b` with int8 weights (one scale per output), packed once
/// for the kernel that runs it.
pub struct QuantizedLinear {
    kernel: Kernel,
    n: usize,
    k: usize,
    /// `k` rounded up to what the kernel steps by (64 for AMX, 4 for VNNI, 2 for AVX2).
    k_padded: usize,
    /// Per output (padded to whole panels with zeros): weight scale, bias, and the
    /// correction for activations stored with a +128 shift.
    scales: Vec<f32>,
    bias: Vec<f32>,
    shift_comp: Vec<i32>,
    packed: Packed,
}

/// Activation rows quantised for one kernel: the integers, one scale per row.
pub struct QuantizedRows {
    values: RowValues,
    scales: Vec<f32>,
    /// Elements from one row to the next.
    stride: usize,
}

enum RowValues {
    I8(Vec<i8>),
    I16(Vec<i16>),
    /// `q + 128`, for `vpdpbusd`'s unsigned operand.
    U8(Vec<u8>),
}

/// Symmetric int8 quantisation of one row: the integers in `[-127, 127]` and the scale
/// that maps them back (`x ≈ q · scale`). The plain form the reference product uses.
pub fn quantize_row(x: &[f32], out: &mut [i32]) -> f32 {
    let mut bytes = vec![0i8; x.len()];
    let scale = elementwise::quantize_row_i8(x, &mut bytes);
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b as i32;
    }
    scale
}

impl QuantizedLinear {
    /// Quantises and packs `weight` (row-major `[n][k]`, as a PyTorch `Linear` stores it)
    /// and `bias` (`n` values) for `kernel`.
    ///
    /// # Panics
    /// If the slice lengths disagree with `n` and `k`, or `k` exceeds [`MAX_K`] (a
    /// programming error: shapes come from the model file, checked when it is parsed).
    /// A kernel this processor lacks is replaced by the best one below it that it has.
    pub fn new(weight: &[f32], bias: &[f32], n: usize, k: usize, kernel: Kernel) -> Self {
        let kernel = Kernel::ALL
            .into_iter()
            .rev()
            .find(|&k| k <= kernel && k.supported())
            .unwrap_or(Kernel::Portable);
        assert_eq!(weight.len(), n * k, "weight is not [n][k]");
        // 32-bit sums of k products of at most 255·127 cannot overflow below this.
        assert!(k <= MAX_K, "input size {k} above {MAX_K}");
        assert_eq!(bias.len(), n, "bias is not n long");
        let panel = kernel.panel_cols();
        let n_padded = n.div_ceil(panel) * panel;
        let mut q = vec![0i32; k];
        let mut rows = vec![0i8; n * k];
        let mut scales = vec![0.0f32; n_padded];
        let mut shift_comp = vec![0i32; n_padded];
        for (j, row) in weight.chunks_exact(k.max(1)).enumerate().take(n) {
            scales[j] = quantize_row(row, &mut q);
            for (dst, &v) in rows[j * k..(j + 1) * k].iter_mut().zip(&q) {
                *dst = v as i8;
            }
            shift_comp[j] = 128 * q.iter().sum::<i32>();
        }
        let mut padded_bias = bias.to_vec();
        padded_bias.resize(n_padded, 0.0);
        let (k_padded, packed) = match kernel {
            Kernel::Portable => (k, Packed::Rows(rows)),
            Kernel::Avx2 => {
                let kp = k.div_ceil(2) * 2;
                (kp, Packed::Pairs16(pack(&rows, n, k, kp, panel, 2)))
            }
            Kernel::Neon | Kernel::AvxVnni | Kernel::Avx512Vnni => {
                let kp = k.div_ceil(4) * 4;
                (kp, Packed::Quads8(pack(&rows, n, k, kp, panel, 4)))
            }
            Kernel::Amx => {
                let kp = k.div_ceil(amx::K_STEP) * amx::K_STEP;
                (kp, Packed::Quads8(pack(&rows, n, k, kp, panel, 4)))
            }
        };
        if !kernel.shifts_activations() {
            shift_comp.fill(0);
        }
        QuantizedLinear {
            kernel,
            n,
            k,
            k_padded,
            scales,
            bias: padded_bias,
            shift_comp,
            packed,
        }
    }

    /// The kernel the weights are packed for.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Input size.
    pub fn in_features(&self) -> usize {
        self.k
    }

    /// Output size.
    pub fn out_features(&self) -> usize {
        self.n
    }

    /// Bytes held by the packed weights and their per-output vectors.
    pub fn heap_bytes(&self) -> usize {
        let packed = match &self.packed {
            Packed::Rows(v) => v.len(),
            Packed::Quads8(v) | Packed::Pairs16(v) => v.len(),
        };
        packed + 4 * (self.scales.len() + self.bias.len() + self.shift_comp.len())
    }

    /// Quantises `m` rows of `x` (row-major `[m][k]`) the way this layer's kernel reads them.
    pub fn quantize_input(&self, x: &[f32], m: usize) -> QuantizedRows {
        self.quantize_rows(RowsIn::Plain(x), m)
    }

    /// Applies `map` to each of the `m` rows of `x` in place (with the row's index), then
    /// quantises the row in the same task while it is in cache. The encoder's GELU takes the 1,536-wide rows between
    /// the two feed-forward layers this way: as separate passes, GELU and quantisation each
    /// streamed every row through memory once more (an eighth of an int8 pass).
    ///
    /// # Panics
    /// If `x` is not `m` rows long.
    pub fn quantize_input_mapped(
        &self,
        x: &mut [f32],
        m: usize,
        map: &(dyn Fn(usize, &mut [f32]) + Sync),
    ) -> QuantizedRows {
        assert_eq!(x.len(), m * self.k, "input is not [m][k]");
        self.quantize_rows(RowsIn::Mapped(x, map), m)
    }

    fn quantize_rows(&self, x: RowsIn<'_>, m: usize) -> QuantizedRows {
        let stride = self.k_padded;
        let mut scales = vec![0.0f32; m];
        let values = match self.kernel {
            // Padding bytes meet zero weights.
            Kernel::Portable | Kernel::Neon => {
                let mut v = vec![0i8; m * stride];
                fill_rows(
                    x,
                    self.k,
                    &mut v,
                    &mut scales,
                    stride,
                    elementwise::quantize_row_i8,
                );
                RowValues::I8(v)
            }
            Kernel::Avx2 => {
                let mut v = vec![0i16; m * stride];
                fill_rows(
                    x,
                    self.k,
                    &mut v,
                    &mut scales,
                    stride,
                    elementwise::quantize_row_i16,
                );
                RowValues::I16(v)
            }
            Kernel::AvxVnni | Kernel::Avx512Vnni | Kernel::Amx => {
                // Padding bytes meet zero weights; 128 (a zero activation) keeps them inert.
                let mut v = vec![128u8; m * stride];
                fill_rows(
                    x,
                    self.k,
                    &mut v,
                    &mut scales,
                    stride,
                    elementwise::quantize_row_shifted_u8,
                );
                RowValues::U8(v)
            }
        };
        QuantizedRows {
            values,
            scales,
            stride,
        }
    }

    /// [`forward_to_vec`](Self::forward_to_vec) on rows already quantised for this layer
    /// (by [`quantize_input`](Self::quantize_input) or
    /// [`quantize_input_mapped`](Self::quantize_input_mapped)).
    ///
    /// # Panics
    /// If `rows` holds fewer than `m` rows or was quantised for another input size.
    pub fn forward_rows_to_vec(&self, rows: &QuantizedRows, m: usize) -> Vec<f32> {
        assert_eq!(
            rows.stride, self.k_padded,
            "rows quantised for another layer"
        );
        assert!(rows.scales.len() >= m, "fewer than m quantised rows");
        let len = m * self.n;
        let mut out = Vec::with_capacity(len);
        if m > 0 {
            self.forward_quantized(rows, m, OutPtr(out.as_mut_ptr()));
        }
        // SAFETY: `forward_quantized` wrote all `m · n` elements, each tile its region.
        unsafe { out.set_len(len) };
        out
    }

    /// `y = x · Wᵀ + b` for `m` rows of `x` (`[m][k]`), written to `out` (`[m][n]`).
    ///
    /// # Panics
    /// If `x` or `out` is not `m` rows long.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) {
        assert_eq!(x.len(), m * self.k, "input is not [m][k]");
        assert_eq!(out.len(), m * self.n, "output is not [m][n]");
        if m == 0 {
            return;
        }
        let rows = self.quantize_input(x, m);
        self.forward_quantized(&rows, m, OutPtr(out.as_mut_ptr()));
    }

    /// [`forward`](Self::forward) into a new vector that is never cleared first: every
    /// element is written by exactly one tile (the random-shape test starts from NaN to
    /// show it). Zeroing the output took a twentieth of an int8 pass.
    ///
    /// # Panics
    /// If `x` is not `m` rows long.
    pub fn forward_to_vec(&self, x: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "input is not [m][k]");
        self.forward_rows_to_vec(&self.quantize_input(x, m), m)
    }

    /// `out` points at `m · n` writable floats, each written exactly once here.
    fn forward_quantized(&self, rows: &QuantizedRows, m: usize, out_ptr: OutPtr) {
        let panel = self.kernel.panel_cols();
        let panels = self.n.div_ceil(panel);
        if panels == 0 {
            return;
        }
        let tile_rows = self.kernel.tile_rows();
        let block = BLOCK_ROWS.min(m.div_ceil(tile_rows) * tile_rows);
        let blocks = m.div_ceil(block);
        // A task is a block of rows and a run of panels, and within it every tile of one
        // panel before the next: the panel stays in L1 while the block's rows pass by it,
        // and the task's outputs fill whole rows of a small region. Walking all the rows
        // of one panel first (as this did before) stored each row's 64 sums a page apart
        // and cost a tenth of a layer's time in stores that missed the caches. A few
        // blocks (a single post) are split further by panel, so both cores still work.
        let groups = panels.min((TASKS_PER_THREAD * rayon::current_num_threads()).div_ceil(blocks));
        let panels_per_group = panels.div_ceil(groups.max(1));
        let groups = panels.div_ceil(panels_per_group);
        (0..blocks * groups).into_par_iter().for_each(|task| {
            if self.kernel == Kernel::Amx {
                amx::configure();
            }
            let (b, g) = (task / groups, task % groups);
            let row0 = b * block;
            let rows_here = block.min(m - row0);
            let first = g * panels_per_group;
            for p in first..panels.min(first + panels_per_group) {
                let cols = panel.min(self.n - p * panel);
                let mut r = 0;
                while r < rows_here {
                    let tile = Tile {
                        row: row0 + r,
                        rows: tile_rows.min(rows_here - r),
                        panel: p,
                        cols,
                    };
                    // SAFETY: each (rows, panel) region of `out` is written by exactly one
                    // task, and `tile` lies inside `out` (row < m, p·panel + cols ≤ n).
                    unsafe { self.run_tile(rows, &tile, out_ptr) };
                    r += tile.rows;
                }
            }
        });
    }

    /// # Safety
    /// `tile` must lie inside the `[m][n]` output behind `out`, and no other thread may
    /// write that region meanwhile.
    unsafe fn run_tile(&self, rows: &QuantizedRows, tile: &Tile, out: OutPtr) {
        let panel = self.kernel.panel_cols();
        let col0 = tile.panel * panel;
        let ctx = Epilogue {
            row_scales: &rows.scales[tile.row..tile.row + tile.rows],
            scales: &self.scales[col0..col0 + panel],
            bias: &self.bias[col0..col0 + panel],
            shift_comp: &self.shift_comp[col0..col0 + panel],
            out: out.0.add(tile.row * self.n + col0),
            out_stride: self.n,
            cols: tile.cols,
        };
        match (&self.packed, &rows.values) {
            (Packed::Rows(w), RowValues::I8(a)) => portable::tile(
                &a[tile.row * rows.stride..],
                rows.stride,
                tile.rows,
                &w[col0 * self.k..],
                self.k,
                &ctx,
            ),
            (Packed::Quads8(w), RowValues::I8(a)) => neon::tile(
                &a[tile.row * rows.stride..],
                rows.stride,
                tile.rows,
                &w[tile.panel * panel * self.k_padded..],
                self.k_padded / 4,
                &ctx,
            ),
            (Packed::Pairs16(w), RowValues::I16(a)) => avx2::tile(
                &a[tile.row * rows.stride..],
                rows.stride,
                tile.rows,
                &w[tile.panel * panel * self.k_padded..],
                self.k_padded / 2,
                &ctx,
            ),
            (Packed::Quads8(w), RowValues::U8(a)) if self.kernel == Kernel::Amx => {
                let a = &a[tile.row * rows.stride..];
                let w = &w[tile.panel * panel * self.k_padded..];
                if tile.rows == amx::ROWS {
                    amx::tile(a, rows.stride, w, self.k_padded / amx::K_STEP, &ctx);
                } else {
                    // Rows that do not fill an AMX tile: the same packing and sums on the
                    // AVX-512 kernel, six rows at a time.
                    for r0 in (0..tile.rows).step_by(TILE_ROWS) {
                        let part = Epilogue {
                            row_scales: &ctx.row_scales[r0..],
                            out: ctx.out.add(r0 * ctx.out_stride),
                            ..ctx
                        };
                        let rows_here = TILE_ROWS.min(tile.rows - r0);
                        avx512::tile(
                            &a[r0 * rows.stride..],
                            rows.stride,
                            rows_here,
                            w,
                            self.k_padded / 4,
                            &part,
                        );
                    }
                }
            }
            (Packed::Quads8(w), RowValues::U8(a)) => {
                let tile_fn = match self.kernel {
                    Kernel::AvxVnni => avxvnni::tile,
                    _ => avx512::tile,
                };
                tile_fn(
                    &a[tile.row * rows.stride..],
                    rows.stride,
                    tile.rows,
                    &w[tile.panel * panel * self.k_padded..],
                    self.k_padded / 4,
                    &ctx,
                )
            }
            _ => unreachable!("activations are quantised by the layer that reads them"),
        }
    }

    /// The same product computed plainly from the quantised integers: what every kernel
    /// must reproduce (tests only need it, but the bench reports against it too).
    pub fn reference_forward(&self, x: &[f32], m: usize) -> Vec<f32> {
        let mut q = vec![0i32; self.k];
        let weights = self.unpacked_weights();
        let mut out = vec![0.0f32; m * self.n];
        for (i, row) in x.chunks_exact(self.k.max(1)).take(m).enumerate() {
            let scale = quantize_row(row, &mut q);
            for j in 0..self.n {
                let w = &weights[j * self.k..(j + 1) * self.k];
                let sum: i32 = q.iter().zip(w).map(|(&a, &b)| a * b as i32).sum();
                out[i * self.n + j] = sum as f32 * (scale * self.scales[j]) + self.bias[j];
            }
        }
        out
    }

    /// The int8 weights back in row-major `[n][k]` order, from whichever packing.
    fn unpacked_weights(&self) -> Vec<i8> {
        let (panel, k, kp) = (self.kernel.panel_cols(), self.k, self.k_padded);
        let mut w = vec![0i8; self.n * k];
        for j in 0..self.n {
            for i in 0..k {
                w[j * k + i] = match &self.packed {
                    Packed::Rows(v) => v[j * k + i],
                    Packed::Pairs16(v) => v[packed_index(j, i, kp, panel, 2)],
                    Packed::Quads8(v) => v[packed_index(j, i, kp, panel, 4)],
                };
            }
        }
        w
    }
}

/// Where weight `[j][i]` sits in a panel packing with `group` consecutive `k` per lane.
fn packed_index(j: usize, i: usize, k_padded: usize, panel: usize, group: usize) -> usize {
    let (p, c) = (j / panel, j % panel);
    p * panel * k_padded + (i / group) * panel * group + c * group + i % group
}

/// Packs row-major `[n][k]` weights into panels of `panel` columns with `group`
/// consecutive `k` values per column; padding (columns past `n`, `k` past `k`) is zero.
/// A step of `k` is 32 (AVX2), 64 (AVX-VNNI) or 256 (AVX-512) bytes of a panel, so with
/// the buffer on a line boundary no vector load of weights straddles two lines.
fn pack(
    rows: &[i8],
    n: usize,
    k: usize,
    k_padded: usize,
    panel: usize,
    group: usize,
) -> AlignedBytes {
    let mut out = AlignedBytes::zeroed(n.div_ceil(panel) * panel * k_padded);
    for j in 0..n {
        for i in 0..k {
            out[packed_index(j, i, k_padded, panel, group)] = rows[j * k + i];
        }
    }
    out
}

/// Rows to quantise: as they are, or changed in place first.
enum RowsIn<'a> {
    Plain(&'a [f32]),
    Mapped(&'a mut [f32], &'a (dyn Fn(usize, &mut [f32]) + Sync)),
}

fn fill_rows<T: Send>(
    rows: RowsIn<'_>,
    k: usize,
    values: &mut [T],
    scales: &mut [f32],
    stride: usize,
    quantize: fn(&[f32], &mut [T]) -> f32,
) {
    let out = values
        .par_chunks_mut(stride.max(1))
        .zip(scales.par_iter_mut());
    match rows {
        RowsIn::Plain(x) => out
            .zip(x.par_chunks(k.max(1)))
            .with_min_len(8)
            .for_each(|((dst, scale), row)| *scale = quantize(row, dst)),
        RowsIn::Mapped(x, map) => out
            .zip(x.par_chunks_mut(k.max(1)))
            .enumerate()
            .with_min_len(8)
            .for_each(|(i, ((dst, scale), row))| {
                map(i, row);
                *scale = quantize(row, dst)
            }),
    }
}

/// A block of output: `rows` rows from `row`, the columns of one weight panel.
struct Tile {
    row: usize,
    rows: usize,
    panel: usize,
    cols: usize,
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint regions of the output (see `forward_quantized`).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// What turns a tile's integer sums into outputs:
/// `y[r][c] = (sum − shift_comp[c]) · row_scales[r] · scales[c] + bias[c]`.
/// Per-column slices are a whole panel long (zero past `n`); only `cols` are stored.
struct Epilogue<'a> {
    row_scales: &'a [f32],
    scales: &'a [f32],
    bias: &'a [f32],
    shift_comp: &'a [i32],
    out: *mut f32,
    out_stride: usize,
    cols: usize,
}

impl Epilogue<'_> {
    /// Stores one row of a tile from its sums (the portable path, and partial panels).
    ///
    /// # Safety
    /// `out` must be valid for `cols` values at row `r`.
    unsafe fn store_row(&self, r: usize, sums: &[i32]) {
        let row_scale = self.row_scales[r];
        let dst = self.out.add(r * self.out_stride);
        let columns = sums
            .iter()
            .zip(self.shift_comp)
            .zip(self.scales.iter().zip(self.bias))
            .take(self.cols);
        for (c, ((&sum, &comp), (&scale, &bias))) in columns.enumerate() {
            dst.add(c)
                .write((sum - comp) as f32 * (row_scale * scale) + bias);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    fn random(len: usize, rng: &mut XorShift, spread: f32) -> Vec<f32> {
        rng.vec(len, spread)
    }

    /// Every available kernel against the plain integer product, on odd and even shapes
    /// (rows not a multiple of the tile, columns not a multiple of the panel, `k` not a
    /// multiple of the kernel's step).
    #[test]
    fn every_kernel_matches_the_reference_on_random_shapes() {
        let mut rng = XorShift::new(7);
        let shapes = [
            (1, 1, 1),
            (1, 3, 5),
            (7, 17, 3),
            (6, 64, 4),
            (13, 65, 33),
            (27, 130, 97),
            (100, 48, 384),
            (5, 200, 1536),
            // Several row blocks and panels; with 16-column panels the runs of panels are
            // of unequal length.
            (150, 333, 37),
        ];
        let kernels = Kernel::available();
        assert!(kernels.contains(&Kernel::Portable));
        for kernel in kernels {
            for &(m, n, k) in &shapes {
                let w = random(n * k, &mut rng, 0.5);
                let b = random(n, &mut rng, 1.0);
                let x = random(m * k, &mut rng, 3.0);
                let layer = QuantizedLinear::new(&w, &b, n, k, kernel);
                let want = layer.reference_forward(&x, m);
                let mut got = vec![f32::NAN; m * n];
                layer.forward(&x, m, &mut got);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "{} m={m} n={n} k={k} at {i}: {g} vs {w}",
                        kernel.name()
                    );
                }
                // Into a vector never cleared: the same values, bit for bit.
                let fresh = layer.forward_to_vec(&x, m);
                assert_eq!(fresh.len(), m * n);
                assert!(
                    fresh
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{} m={m} n={n} k={k}: forward_to_vec differs",
                    kernel.name()
                );
                // A row map applied while quantising: the same as mapping first.
                // (negated, plus the row's index, so that the index is checked too)
                let map =
                    |i: usize, row: &mut [f32]| row.iter_mut().for_each(|v| *v = i as f32 - *v);
                let mut mapped_in = x.clone();
                let rows = layer.quantize_input_mapped(&mut mapped_in, m, &map);
                let mapped = layer.forward_rows_to_vec(&rows, m);
                let negated: Vec<f32> = x
                    .chunks(k.max(1))
                    .enumerate()
                    .flat_map(|(i, row)| row.iter().map(move |v| i as f32 - v))
                    .collect();
                assert_eq!(mapped_in, negated, "the map is applied in place");
                let want = layer.forward_to_vec(&negated, m);
                assert!(
                    mapped
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{} m={m} n={n} k={k}: mapped quantisation differs",
                    kernel.name()
                );
            }
        }
    }

    /// Kernels that read the same packing and quantised rows compute the same integer
    /// sums and the same epilogue, so their outputs agree bit for bit: AMX against AVX-512
    /// VNNI (16-row tiles, the rows left over, partial panels, `k` padded to 64), and the
    /// two VNNI widths against each other.
    #[test]
    fn kernels_on_the_same_integers_agree_bit_for_bit() {
        let mut rng = XorShift::new(13);
        let available = Kernel::available();
        let pairs = [
            (Kernel::Amx, Kernel::Avx512Vnni),
            (Kernel::Avx512Vnni, Kernel::AvxVnni),
        ];
        for (a, b) in pairs {
            if !(available.contains(&a) && available.contains(&b)) {
                continue;
            }
            for &(m, n, k) in &[(16, 64, 64), (35, 130, 97), (100, 384, 384), (48, 70, 1536)] {
                let w = random(n * k, &mut rng, 0.5);
                let bias = random(n, &mut rng, 1.0);
                let x = random(m * k, &mut rng, 3.0);
                let out =
                    |kernel| QuantizedLinear::new(&w, &bias, n, k, kernel).forward_to_vec(&x, m);
                let (got, want) = (out(a), out(b));
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(g, w)| g.to_bits() == w.to_bits()),
                    "{} and {} differ at m={m} n={n} k={k}",
                    a.name(),
                    b.name()
                );
            }
        }
    }

    /// The quantised product stays close to the f32 one: what makes it usable at all.
    #[test]
    fn quantised_product_is_close_to_f32() {
        let mut rng = XorShift::new(11);
        let (m, n, k) = (9, 40, 384);
        let w = random(n * k, &mut rng, 0.1);
        let b = random(n, &mut rng, 0.1);
        let x = random(m * k, &mut rng, 2.0);
        let layer = QuantizedLinear::new(&w, &b, n, k, Kernel::detect());
        let mut got = vec![0.0; m * n];
        layer.forward(&x, m, &mut got);
        let (mut err2, mut norm2) = (0.0f64, 0.0f64);
        for i in 0..m {
            for j in 0..n {
                let exact: f32 = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum::<f32>() + b[j];
                err2 += ((got[i * n + j] - exact) as f64).powi(2);
                norm2 += (exact as f64).powi(2);
            }
        }
        // Half a step of error on each of k products, random in sign: ~0.5 % of the
        // output's size here; 1 % leaves room for the draw without hiding a wrong scale.
        let relative = (err2 / norm2).sqrt();
        assert!(relative < 0.01, "relative RMS error {relative}");
    }

    #[test]
    fn zero_and_empty_inputs() {
        let layer = QuantizedLinear::new(&[0.5, -0.5], &[1.0, 2.0], 2, 1, Kernel::detect());
        let mut out = vec![0.0; 2];
        layer.forward(&[0.0], 1, &mut out);
        assert_eq!(out, vec![1.0, 2.0], "a zero row gives the bias");
        layer.forward(&[], 0, &mut []);
    }

    #[test]
    fn quantize_row_rounds_to_nearest_even() {
        let mut q = [0i32; 4];
        let scale = quantize_row(&[1.0, -1.0, 0.5, 0.00393], &mut q);
        assert_eq!(q, [127, -127, 64, 0]);
        assert!((scale - 1.0 / 127.0).abs() < 1e-9);
    }

    #[test]
    fn the_environment_caps_the_choice() {
        // Only reads the variable: the cap itself is exercised by CI running the kernel
        // tests under VIGIE_KERNELS=portable.
        let available = Kernel::available();
        let forced = std::env::var(KERNELS_ENV).ok();
        if forced.as_deref() == Some("portable") {
            assert_eq!(available, vec![Kernel::Portable]);
        }
        if let Some(cap) = Kernel::ALL
            .into_iter()
            .find(|k| Some(k.name()) == forced.as_deref())
        {
            assert!(
                Kernel::detect() <= cap,
                "{:?} above the cap {cap:?}",
                Kernel::detect()
            );
            if cap.supported() {
                assert_eq!(
                    Kernel::detect(),
                    cap,
                    "the cap is used when the processor has it"
                );
            }
        }
        assert_eq!(Kernel::detect(), *available.last().unwrap());
    }
}
