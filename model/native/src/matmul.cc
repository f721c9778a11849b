// Float32 matmul for nemo's native addon: AVX-512 / AVX2+FMA (or plain vectors) through GCC's
// vector extensions, on a small persistent thread pool.
//
// Two kernels:
//  - GEMV-style streaming for M <= 8 rows (14 with AVX-512: decode, short prompts): B's columns
//    are cut into chunks (192, or 256 for wide B), each streamed once for all rows with every
//    row's accumulators in registers over the whole K (more rows than registers allow: row
//    passes over each panel while it is in cache). Memory-bound: threads split the chunks. A B
//    used more than once is given in packB's layout (strips of NR columns, [K][NR]): sequential.
//  - GEMM for larger M (prefill, training), in the manner of BLIS: units of (balanced) row blocks x NCU
//    columns; per K block of KC the unit packs A into MR-row micro-panels and B into NR-column
//    strips (or reads packB's strips directly), then an MR x NR micro-kernel (6 x 16 AVX2,
//    12 x 32 AVX-512) runs on both from cache.
// Epilogue: bias, then relu or tanh-GELU (act 2, the engine's MLP). The fused inference ops
// (residual LayerNorm, decode attention) are in ops.cc and share the thread pool (parallelFor).
// Determinism: the work units, the K blocking and each element's FMA order depend only on the
// shapes; threads just pick whole units. So results are bit-identical for any thread count.
#include "matmul.h"
#include "simd.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NEMO_PAUSE() _mm_pause()
#else
#define NEMO_PAUSE() std::this_thread::yield()
#endif

namespace nemo {
namespace {
using namespace simd;

#if NEMO_VL == 16
#define NEMO_MR 12
const char* const ISA = "avx512";
#elif NEMO_VL == 8
#define NEMO_MR 6
const char* const ISA = "avx2";
#else
#define NEMO_MR 4
const char* const ISA = "generic";
#endif
constexpr int REGS = VL == 16 ? 32 : 16;  // vector registers
constexpr int MR = NEMO_MR;

inline vf relu(vf v) { return v > 0 ? v : vf{}; }
// tanh-GELU in its sigmoid form: x * sigmoid(2 * sqrt(2/pi) * (x + 0.044715 x^3)) (the engine's).
inline vf gelu(vf x) {
  const vf z = 1.5957691216057308f * (x + 0.044715f * x * x * x);
  const vf y = x / (1.0f + expVec(-z));
  return x == x ? y : x;  // NaN stays NaN
}
inline vf activate(vf v, int act) { return act == 1 ? relu(v) : act == 2 ? gelu(v) : v; }

constexpr int NR = 2 * VL;     // GEMM micro-tile columns (and packB's strip width)
#ifndef NEMO_KC
#define NEMO_KC (NEMO_VL == 16 ? 384 : 256)
#endif
// At most this many rows: streaming kernel (2 x rows accumulators + 3 fit AVX-512's 32 registers
// at 14: short prompts stream the weights once too).
#if NEMO_VL == 16
constexpr int GEMV_MAX_M = 14;
#else
constexpr int GEMV_MAX_M = 8;
#endif
// Below this many multiply-adds (~20-40 us on one core) a matmul runs on the calling thread only:
// handing out units would cost more than it saves (and a worker thread preempted by another
// process would make the caller wait).
constexpr int64_t SMALL_MACS = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Thread pool: workers spin (then yield) ~SPIN_US after a job, then sleep on a condition variable. One job at
// a time; a caller that finds the pool busy (another isolate) runs its job alone.

struct Pool {
  std::vector<std::thread> workers;
  int size = 1;  // threads including the caller
  std::atomic<uint64_t> gen{0};  // even: job published; odd: being replaced
  std::atomic<int> active{0};
  std::atomic<int> sleepers{0};
  std::atomic<bool> stop{false};
  std::mutex m;
  std::condition_variable cv;
  std::mutex submit;
  UnitFn fn = nullptr;
  const void* ctx = nullptr;
  int64_t units = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
};

constexpr int SPIN_US = 300;

Pool* pool() {
  // Never freed: detached workers may still wait on it while the process exits.
  static Pool* p = new Pool();
  return p;
}

void runUnits(Pool* p) {
  const int64_t units = p->units;
  for (;;) {
    const int64_t u = p->next.fetch_add(1);
    if (u >= units) break;
    p->fn(p->ctx, u);
    p->done.fetch_add(1, std::memory_order_release);
  }
}

void workerLoop(Pool* p, uint64_t seen) {
  for (;;) {
    uint64_t g = 0;
    bool have = false;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0;; i++) {
      if (p->stop.load()) return;
      g = p->gen.load();
      if (g != seen && !(g & 1)) {
        have = true;
        break;
      }
      // Pause at first; then yield, so that a worker sharing a core with the caller (the other
      // core busy with another process) does not take the caller's time.
      if (i < 256) NEMO_PAUSE();
      else std::this_thread::yield();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(SPIN_US)) break;
    }
    if (!have) {
      std::unique_lock<std::mutex> lk(p->m);
      p->sleepers.fetch_add(1);
      p->cv.wait(lk, [&] {
        g = p->gen.load();
        return p->stop.load() || (g != seen && !(g & 1));
      });
      p->sleepers.fetch_sub(1);
      if (p->stop.load()) return;
    }
    p->active.fetch_add(1);
    if (p->gen.load() == g) runUnits(p);
    p->active.fetch_sub(1);
    seen = g;
  }
}

void stopWorkers(Pool* p) {
  {
    std::lock_guard<std::mutex> lk(p->m);
    p->stop.store(true);
  }
  p->cv.notify_all();
  for (auto& t : p->workers) t.join();
  p->workers.clear();
  p->stop.store(false);
}

void startWorkers(Pool* p, int n) {
  p->size = std::max(1, n);
  const uint64_t g = p->gen.load();
  for (int i = 1; i < p->size; i++) p->workers.emplace_back(workerLoop, p, g);
}

}  // namespace

void parallelFor(int64_t units, UnitFn fn, const void* ctx, bool small) {
  Pool* p = pool();
  if (units <= 1 || small || p->size <= 1 || !p->submit.try_lock()) {
    for (int64_t u = 0; u < units; u++) fn(ctx, u);
    return;
  }
  const uint64_t g = p->gen.load();
  p->gen.store(g + 1);
  while (p->active.load() != 0) NEMO_PAUSE();
  p->fn = fn;
  p->ctx = ctx;
  p->units = units;
  p->next.store(0);
  p->done.store(0);
  p->gen.store(g + 2);
  if (p->sleepers.load() > 0) {
    { std::lock_guard<std::mutex> lk(p->m); }
    p->cv.notify_all();
  }
  runUnits(p);
  for (int i = 0; p->done.load(std::memory_order_acquire) < units; i++) {
    if (i < 1024) NEMO_PAUSE();
    else std::this_thread::yield();
  }
  p->submit.unlock();
}

namespace {

// ---------------------------------------------------------------------------------------------
// GEMV-style kernel (M <= GEMV_MAX_M). A is given k-major ([K][M]) per batch entry.
//
// Units of work are column chunks of GEMV_CW. Within a chunk, panels of NV vectors, narrow enough
// that every row's accumulators stay in registers for the whole K; each panel streams its rows of
// B once. More rows than fit the registers (PASS_MAX) are done in row passes over each panel while
// it is in cache. Every output element is one FMA chain in k order, whatever R, the panel width,
// the passes, the packing or the thread count. packB's layout: strips of PW (= the GEMM's NR)
// columns, each [K][PW] contiguous (zero-padded to PW), strips in column order — so a panel reads
// one sequential stream per strip it touches, and the GEMM reads a strip's K block as its packed
// B panel.

// Chunk width for wide B; narrow B (N < 8192) uses 192 (4 chunks of a 768-column weight, for
// balance). Long runs of consecutive strips per thread stream better than short chunks.
constexpr int GEMV_CW = 256;
constexpr int GEMV_CW_NARROW = 192;
constexpr int PW = NR;                   // packed strip width
constexpr int VPS = PW / VL;             // vectors per strip
// A panel over a single strip (AVX2: every panel at 5-7 rows; at fewer rows only a chunk's last
// one or two vectors when they start a strip) prefetches its strip this many lines (k) ahead:
// one sequential stream per thread is too few for the hardware prefetcher alone. Panels over 2-4
// strips stream well without.
constexpr int AHEAD_LINES = 64;
// Rows in one pass: 14 on AVX-512 (every row count the streaming kernel takes); 7 with 16
// registers (7 x 2 accumulators, one B vector and a broadcast: GCC reads the other B vector as a
// memory operand of each FMA), so 8 rows take two passes. One pass reads B once for all its rows.
#if NEMO_VL == 16
constexpr int PASS_MAX = 14;
#define NEMO_PASS_ROWS                                                                                              \
  NEMO_CASE(1) NEMO_CASE(2) NEMO_CASE(3) NEMO_CASE(4) NEMO_CASE(5) NEMO_CASE(6) NEMO_CASE(7) NEMO_CASE(8) NEMO_CASE(9) \
      NEMO_CASE(10) NEMO_CASE(11) NEMO_CASE(12) NEMO_CASE(13) NEMO_CASE(14)
#else
constexpr int PASS_MAX = 7;
#define NEMO_PASS_ROWS NEMO_CASE(1) NEMO_CASE(2) NEMO_CASE(3) NEMO_CASE(4) NEMO_CASE(5) NEMO_CASE(6) NEMO_CASE(7)
#endif
// (NEMO_PASS_ROWS: a switch's cases for 1..PASS_MAX rows, with the NEMO_CASE of the switch.)
// Vectors per panel for R rows: R x NV accumulators, the NV B vectors and a broadcast fit the
// registers. With 16 registers, 3-4 rows take 3 vectors (12 accumulators rather than 8, and 1.5
// strips' streams rather than one).
// Panels need not start on a strip.
template <int R>
constexpr int panelVectors() {
  if constexpr (VL == 16) {
    constexpr int n = 16 / R >= 16 ? 16 : 16 / R >= 8 ? 8 : 16 / R >= 4 ? 4 : 16 / R >= 2 ? 2 : 1;
    return n < VPS ? VPS : n;
  } else {
    return R == 1 ? 8 : R == 2 ? 4 : R <= 4 ? 3 : 2;
  }
}
// Row passes (more rows than PASS_MAX): passes of at most MP_ROWS rows over panels of MP_NV
// vectors, with gemvPanel's prefetch countdown.
constexpr int MP_ROWS = 4;
constexpr int MP_NV = panelVectors<MP_ROWS>();

struct GemvCtx {
  const MatMulArgs* x;
  const float* ap;   // packed A: batchA entries of [M][K]
  int64_t apStride;  // 0 when A is broadcast
  int64_t chunks;    // column chunks per batch entry
  int cw;            // chunk width (depends on N only)
};

// The panel's vector v is vector v0 + v of the strip at b: B(k, v) = b + ((v0 + v) / VPS) *
// stripStride + k * ldb + ((v0 + v) % VPS) * VL. Plain [K, N]: stripStride = PW, ldb = N.
// Packed: stripStride = K * PW, ldb = PW (and padded: full loads OK up to the strip's end).
// pf (row passes over packed B): this pass's share of the next panel to prefetch, one row (cache
// line) of each of its pfStrips strips every pfEvery k, so that DRAM stays busy while the passes
// over this panel compute from cache.
// (v0 is a template parameter, so that each vector's address stays a strip base plus a constant.)
template <int R, int NV, int v0>
void gemvPanel(const float* a, int64_t lda, int64_t K, const float* b, int64_t ldb, int64_t stripStride, bool padded,
               int ncols, float* out, int64_t ldo, const float* bias, int act, const float* pf, int pfEvery, int pfStrips) {
  constexpr int W = NV * VL;
  vf acc[R][NV];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = vf{};
  if (padded || ncols == W) {
    const float* bs[NV];
    for (int v = 0; v < NV; v++) bs[v] = b + ((v0 + v) / VPS) * stripStride + ((v0 + v) % VPS) * VL;
    // A panel of one strip (AVX2, see AHEAD_LINES; packed B, no row-pass prefetch): the same k
    // steps as the loop below, plus the prefetch AHEAD_LINES ahead. A loop of its own with a
    // constant line stride, under `if constexpr`: otherwise GCC keeps other panels' accumulators
    // on the stack.
    bool streamed = false;
    if constexpr (VL == 8 && NV <= VPS && v0 == 0) {
      if (padded && ldb == PW && !pf) {
        streamed = true;
        const float* p0 = bs[0];
        for (int64_t k = 0; k < K; k++, p0 += PW) {
          __builtin_prefetch(p0 + AHEAD_LINES * PW, 0, 3);
          vf bv[NV];
          for (int v = 0; v < NV; v++) bv[v] = load(p0 + v * VL);
          for (int r = 0; r < R; r++) {
            const vf av = bcastp(a + k * lda + r);
            for (int v = 0; v < NV; v++) acc[r][v] += av * bv[v];
          }
        }
      }
    }
    // A countdown, not k % pfEvery: a division per k costs more than the k step's multiply-adds.
    int until = 0;
    const float* pfp = pf;
    if (!streamed) for (int64_t k = 0; k < K; k++) {
      if (pf && --until < 0) {
        for (int st = 0; st < pfStrips; st++) __builtin_prefetch(pfp + st * stripStride, 0, 3);
        pfp += PW;
        until = pfEvery - 1;
      }
      vf bv[NV];
      for (int v = 0; v < NV; v++) {
        bv[v] = load(bs[v] + k * ldb);
        if constexpr (R * NV + NV + 1 <= REGS) inRegister(bv[v]);
      }
      for (int r = 0; r < R; r++) {
        const vf av = bcastp(a + k * lda + r);
        for (int v = 0; v < NV; v++) acc[r][v] += av * bv[v];
      }
    }
  } else {
    // Unpacked ragged edge (stripStride == PW: a row's columns are contiguous).
    alignas(64) float tmp[W];
    std::memset(tmp, 0, sizeof tmp);
    for (int64_t k = 0; k < K; k++) {
      std::memcpy(tmp, b + v0 * VL + k * ldb, ncols * sizeof(float));
      vf bv[NV];
      for (int v = 0; v < NV; v++) bv[v] = load(tmp + v * VL);
      for (int r = 0; r < R; r++) {
        const vf av = bcastp(a + k * lda + r);
        for (int v = 0; v < NV; v++) acc[r][v] += av * bv[v];
      }
    }
  }
  // Leave the registers once, through a local tile (see micro below).
  alignas(64) float tile[R][W];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) store(tile[r] + v * VL, acc[r][v]);
  alignas(64) float bb[W];
  if (bias) {
    std::memset(bb, 0, sizeof bb);
    std::memcpy(bb, bias, ncols * sizeof(float));
  }
  for (int r = 0; r < R; r++) {
    alignas(64) float row[W];
    for (int v = 0; v < NV; v++) {
      vf y = load(tile[r] + v * VL);
      if (bias) y += load(bb + v * VL);
      y = activate(y, act);
      store(row + v * VL, y);
    }
    std::memcpy(out + r * ldo, row, ncols * sizeof(float));
  }
}

// One panel of NV vectors starting at vector v of the chunk at b (out and bias at the chunk's first
// column too). pf: see gemvPanel.
template <int R, int NV>
void gemvPanelAt(int v, const float* a, int64_t lda, int64_t K, const float* b, int64_t ldb, int64_t stripStride,
                 bool padded, int ncols, float* out, int64_t ldo, const float* bias, int act, const float* pf = nullptr,
                 int pfEvery = 1, int pfStrips = 0) {
  const int c0 = v * VL;
  const float* sb = b + (v / VPS) * stripStride;
  const int w = std::min(NV * VL, ncols - c0);
  float* o = out + c0;
  const float* bi = bias ? bias + c0 : nullptr;
  static_assert(VPS == 2, "a panel starts at vector 0 or 1 of a strip");
  if (v % VPS == 0) gemvPanel<R, NV, 0>(a, lda, K, sb, ldb, stripStride, padded, w, o, ldo, bi, act, pf, pfEvery, pfStrips);
  else gemvPanel<R, NV, 1>(a, lda, K, sb, ldb, stripStride, padded, w, o, ldo, bi, act, pf, pfEvery, pfStrips);
}

// The strips holding vectors [v, v + n) of the chunk at b, for prefetching: first strip, count.
inline int stripsOf(int v, int n, const float* b, int64_t stripStride, const float** first) {
  *first = b + (v / VPS) * stripStride;
  return (v + n - 1) / VPS - v / VPS + 1;
}

// One chunk in one pass (R <= PASS_MAX rows): panels of panelVectors<R>(), then the rest.
template <int R>
void gemvChunk(const float* a, int64_t lda, int64_t K, const float* b, int64_t ldb, int64_t stripStride, bool padded, int ncols,
               float* out, int64_t ldo, const float* bias, int act) {
  constexpr int NV = panelVectors<R>();
  const int nvec = (ncols + VL - 1) / VL;
  int v = 0;
  // No prefetch of the next panel here (the row passes have one): it slows B that is in cache.
  for (; v + NV <= nvec; v += NV) gemvPanelAt<R, NV>(v, a, lda, K, b, ldb, stripStride, padded, ncols, out, ldo, bias, act);
  for (; v + 2 <= nvec; v += 2) gemvPanelAt<R, 2>(v, a, lda, K, b, ldb, stripStride, padded, ncols, out, ldo, bias, act);
  if (v < nvec) gemvPanelAt<R, 1>(v, a, lda, K, b, ldb, stripStride, padded, ncols, out, ldo, bias, act);
}

// One pass of R <= MP_ROWS rows over a panel of nv <= MP_NV vectors (the row-pass path).
template <int R>
void gemvPassRows(int nv, int v, const float* a, int64_t lda, int64_t K, const float* b, int64_t ldb, int64_t stripStride,
                  bool padded, int ncols, float* out, int64_t ldo, const float* bias, int act, const float* pf, int pfEvery,
                  int pfStrips) {
  static_assert(MP_NV <= 4, "the cases below");
#define NEMO_CASE(n)                                                                                                      \
  case n:                                                                                                                 \
    if constexpr (n <= MP_NV)                                                                                             \
      gemvPanelAt<R, n>(v, a, lda, K, b, ldb, stripStride, padded, ncols, out, ldo, bias, act, pf, pfEvery, pfStrips); \
    break;
  switch (nv) { NEMO_CASE(1) NEMO_CASE(2) NEMO_CASE(3) NEMO_CASE(4) default: break; }
#undef NEMO_CASE
}

void gemvPass(int R, int nv, int v, const float* a, int64_t lda, int64_t K, const float* b, int64_t ldb, int64_t stripStride,
              bool padded, int ncols, float* out, int64_t ldo, const float* bias, int act, const float* pf, int pfEvery,
              int pfStrips) {
  static_assert(MP_ROWS == 4, "the cases below");
#define NEMO_CASE(r) \
  case r: gemvPassRows<r>(nv, v, a, lda, K, b, ldb, stripStride, padded, ncols, out, ldo, bias, act, pf, pfEvery, pfStrips); break;
  switch (R) { NEMO_CASE(1) NEMO_CASE(2) NEMO_CASE(3) NEMO_CASE(4) default: break; }
#undef NEMO_CASE
}

void gemvUnit(const void* ctxp, int64_t unit) {
  const GemvCtx& c = *static_cast<const GemvCtx*>(ctxp);
  const MatMulArgs& x = *c.x;
  const int64_t bi = unit / c.chunks;
  const int64_t n0 = (unit % c.chunks) * c.cw;
  const int ncols = static_cast<int>(std::min<int64_t>(c.cw, x.N - n0));
  const float* a = c.ap + bi * c.apStride;
  const float* B = x.b + bi * x.strideB;
  float* o = x.out + bi * x.M * x.N + n0;
  const float* bias = x.bias ? x.bias + n0 : nullptr;
  const float* b;
  int64_t ldb, stripStride;
  bool padded;
  thread_local std::vector<float> chunkBuf;
  if (x.packedB) {
    b = B + n0 * x.K;  // whole strips precede this chunk (chunk widths are multiples of PW)
    ldb = PW;
    stripStride = x.K * PW;
    padded = true;
  } else if (x.transB) {
    // Gather the chunk in the packed layout (same arithmetic as the other paths).
    const int strips = (ncols + PW - 1) / PW;
    chunkBuf.assign(static_cast<size_t>(x.K * PW * strips), 0.0f);
    for (int j = 0; j < ncols; j++) {
      const float* src = B + (n0 + j) * x.K;
      float* dst = chunkBuf.data() + (j / PW) * x.K * PW + (j % PW);
      for (int64_t k = 0; k < x.K; k++) dst[k * PW] = src[k];
    }
    b = chunkBuf.data();
    ldb = PW;
    stripStride = x.K * PW;
    padded = true;
  } else {
    b = B + n0;
    ldb = x.N;
    stripStride = PW;
    padded = false;
  }
  if (x.M > PASS_MAX) {
    // Row passes of balanced sizes over each panel while it is in cache; each pass also prefetches
    // its share of the next panel (a line of each of its strips every `passes` k), so that DRAM
    // stays busy while the passes compute.
    const int M = static_cast<int>(x.M);
    const int passes = (M + MP_ROWS - 1) / MP_ROWS;
    const int nvec = (ncols + VL - 1) / VL;
    const int64_t share = (x.K + passes - 1) / passes;
    for (int v = 0; v < nvec; v += MP_NV) {
      const int nv = std::min(MP_NV, nvec - v);
      const int next = std::min(MP_NV, nvec - v - nv);
      const float* pfBase = nullptr;
      const int pfStrips = padded && next > 0 ? stripsOf(v + nv, next, b, stripStride, &pfBase) : 0;
      int r0 = 0;
      for (int pi = 0; pi < passes; pi++) {
        const int rows = M / passes + (pi < M % passes ? 1 : 0);
        const float* pf = pfBase && pi * share < x.K ? pfBase + pi * share * PW : nullptr;
        gemvPass(rows, nv, v, a + r0, x.M, x.K, b, ldb, stripStride, padded, ncols, o + r0 * x.N, x.N, bias, x.act, pf,
                 passes, pfStrips);
        r0 += rows;
      }
    }
    return;
  }
  switch (x.M) {
#define NEMO_CASE(n) \
  case n: gemvChunk<n>(a, x.M, x.K, b, ldb, stripStride, padded, ncols, o, x.N, bias, x.act); break;
    NEMO_PASS_ROWS
#undef NEMO_CASE
    default: break;
  }
}

void gemv(const MatMulArgs& x) {
  // A k-major, [K][M] (it is tiny; transA's layout already): the rows' values for one k share a
  // cache line, one sequential stream instead of M (M rows of K = 3072 would spill L1).
  const int64_t batchA = x.strideA ? x.batch : 1;
  thread_local std::vector<float> packed;
  const float* ap = x.a;
  int64_t apStride = x.strideA;
  if (!x.transA && x.M > 1) {
    packed.resize(static_cast<size_t>(batchA * x.M * x.K));
    for (int64_t bi = 0; bi < batchA; bi++) {
      const float* src = x.a + bi * x.strideA;
      float* dst = packed.data() + bi * x.M * x.K;
      for (int64_t k = 0; k < x.K; k++)
        for (int64_t r = 0; r < x.M; r++) dst[k * x.M + r] = src[r * x.K + k];
    }
    ap = packed.data();
    apStride = x.strideA ? x.M * x.K : 0;
  }
  GemvCtx c;
  c.x = &x;
  c.ap = ap;
  c.apStride = apStride;
  c.cw = x.N >= 8192 ? GEMV_CW : GEMV_CW_NARROW;
  c.chunks = (x.N + c.cw - 1) / c.cw;
  // Streaming is bound by reading B, not by the multiply-adds: a B float read from memory costs
  // about what 8 multiply-adds do.
  const bool small = x.batch * (x.M + 8) * x.K * x.N < SMALL_MACS;
  parallelFor(x.batch * c.chunks, gemvUnit, &c, small);
}

// ---------------------------------------------------------------------------------------------
// GEMM (M > GEMV_MAX_M), in the manner of BLIS. Work units: (batch entry, row block of at most MC_MAX rows, NCU columns).
// Per K block of KC the unit packs its A block into micro-panels of MR rows ([kc][MR], zero
// rows past M) and, unless B is packB's copy already, its B block into strips ([kc][NR]); then
// an MR x NR micro-kernel (12 / 24 accumulators) runs over every (strip, micro-panel) pair with
// both operands read sequentially from cache. Partial sums go through C between K blocks (exact
// float32 stores); bias and activation come with the last block.

constexpr int MC_MAX = 8 * MR;  // unit rows at most
constexpr int NCU = 8 * NR;  // unit columns (B packed per unit: its block stays in L2)
constexpr int NCU_PACKED = 32 * NR;  // unit columns when B is packB's copy (fewer repacks of the same A block)
constexpr int KC = NEMO_KC;  // K block

struct GemmCtx {
  const MatMulArgs* x;
  int64_t rowBlocks, colBlocks, ncu, mc;
};

// C tile (R rows, ncols) = (first ? 0 : C) + A panel (ap[k * MR + r]) x B panel (bp[k * NR + j])
// over kc; with `last`, + bias and the activation. Accumulators are locals (kept in registers).
template <int R>
void micro(const float* ap, const float* bp, int64_t kc, float* c, int64_t ldc, int ncols, bool first, bool last,
           const float* biasPadded, int act) {
  vf acc0[R], acc1[R];
  for (int r = 0; r < R; r++) acc0[r] = acc1[r] = vf{};
  for (int64_t k = 0; k < kc; k++) {
    vf b0 = load(bp + k * NR);
    vf b1 = load(bp + k * NR + VL);
    inRegister(b0);
    inRegister(b1);
    const float* ak = ap + k * MR;
    for (int r = 0; r < R; r++) {
      const vf av = bcastp(ak + r);
      acc0[r] += av * b0;
      acc1[r] += av * b1;
    }
  }
  // Leave the registers once, through a local tile: indexing acc in the epilogue below (with its
  // memcpy edges) made GCC keep the accumulators in memory inside the k loop.
  alignas(64) float tile[R][NR];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
    store(tile[r], acc0[r]);
    store(tile[r] + VL, acc1[r]);
  }
  const bool full = ncols == NR;
  for (int r = 0; r < R; r++) {
    vf y0 = load(tile[r]), y1 = load(tile[r] + VL);
    alignas(64) float row[NR];
    float* dst = c + r * ldc;
    if (!first) {
      if (full) {
        y0 += load(dst);
        y1 += load(dst + VL);
      } else {
        std::memset(row, 0, sizeof row);
        std::memcpy(row, dst, ncols * sizeof(float));
        y0 += load(row);
        y1 += load(row + VL);
      }
    }
    if (last) {
      if (biasPadded) {
        y0 += load(biasPadded);
        y1 += load(biasPadded + VL);
      }
      if (act != 0) {
        y0 = activate(y0, act);
        y1 = activate(y1, act);
      }
    }
    if (full) {
      store(dst, y0);
      store(dst + VL, y1);
    } else {
      store(row, y0);
      store(row + VL, y1);
      std::memcpy(dst, row, ncols * sizeof(float));
    }
  }
}

void microDispatch(int R, const float* ap, const float* bp, int64_t kc, float* c, int64_t ldc, int ncols, bool first,
                   bool last, const float* biasPadded, int act) {
  switch (R) {
#define NEMO_CASE(n) \
  case n: micro<n>(ap, bp, kc, c, ldc, ncols, first, last, biasPadded, act); break;
    NEMO_CASE(1) NEMO_CASE(2) NEMO_CASE(3) NEMO_CASE(4)
#if NEMO_MR > 4
    NEMO_CASE(5) NEMO_CASE(6)
#endif
#if NEMO_MR > 6
    NEMO_CASE(7) NEMO_CASE(8) NEMO_CASE(9) NEMO_CASE(10) NEMO_CASE(11) NEMO_CASE(12)
#endif
#undef NEMO_CASE
    default: break;
  }
}

// Packs rows [i0, i0 + rows) x [k0, k0 + kc) of A into micro-panels: ap[p * kc * MR + k * MR + r].
void packA(const MatMulArgs& x, const float* A, int64_t i0, int rows, int64_t k0, int64_t kc, float* ap) {
  for (int p = 0; p * MR < rows; p++) {
    float* dst = ap + p * kc * MR;
    const int r1 = std::min(MR, rows - p * MR);
    const int64_t i = i0 + p * MR;
    if (x.transA) {  // A(i, k) = A[k * M + i]: MR consecutive floats per k
      for (int64_t k = 0; k < kc; k++) {
        const float* src = A + (k0 + k) * x.M + i;
        float* d = dst + k * MR;
        for (int r = 0; r < r1; r++) d[r] = src[r];
        for (int r = r1; r < MR; r++) d[r] = 0.0f;
      }
    } else {
      for (int r = 0; r < r1; r++) {
        const float* src = A + (i + r) * x.K + k0;
        for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = src[k];
      }
      for (int r = r1; r < MR; r++)
        for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = 0.0f;
    }
  }
}

// Packs [k0, k0 + kc) x [j0, j0 + ncols) of an unpacked B into strips: bp[s * kc * NR + k * NR + j].
void packBBlock(const MatMulArgs& x, const float* B, int64_t k0, int64_t kc, int64_t j0, int ncols, float* bp) {
  const int strips = (ncols + NR - 1) / NR;
  for (int s = 0; s < strips; s++) {
    float* dst = bp + s * kc * NR;
    const int w = std::min(NR, ncols - s * NR);
    const int64_t j = j0 + s * NR;
    if (x.transB) {  // B(k, j) = B[j * K + k]
      if (w < NR) std::memset(dst, 0, sizeof(float) * kc * NR);
      for (int c = 0; c < w; c++) {
        const float* src = B + (j + c) * x.K + k0;
        for (int64_t k = 0; k < kc; k++) dst[k * NR + c] = src[k];
      }
    } else {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = B + (k0 + k) * x.N + j;
        float* d = dst + k * NR;
        if (w == NR) {
          store(d, load(src));
          store(d + VL, load(src + VL));
        } else {
          std::memset(d, 0, NR * sizeof(float));
          std::memcpy(d, src, w * sizeof(float));
        }
      }
    }
  }
}

void gemmUnit(const void* ctxp, int64_t unit) {
  const GemmCtx& c = *static_cast<const GemmCtx*>(ctxp);
  const MatMulArgs& x = *c.x;
  const int64_t perBatch = c.rowBlocks * c.colBlocks;
  const int64_t bi = unit / perBatch;
  // Row blocks of one column block are neighbours: the threads read that block of B together
  // (one of them from cache), not a second time later.
  const int64_t cb = (unit % perBatch) / c.rowBlocks;
  const int64_t rb = unit % c.rowBlocks;
  const int64_t M = x.M, K = x.K, N = x.N;
  const float* A = x.a + bi * x.strideA;
  const float* B = x.packedB ? x.b : x.b + bi * x.strideB;
  float* C = x.out + bi * M * N;
  const int64_t i0 = rb * c.mc;
  const int rows = static_cast<int>(std::min<int64_t>(c.mc, M - i0));
  const int64_t j0 = cb * c.ncu;
  const int cols = static_cast<int>(std::min<int64_t>(c.ncu, N - j0));
  const int strips = (cols + NR - 1) / NR;
  const int panels = (rows + MR - 1) / MR;
  thread_local std::vector<float> apBuf, bpBuf;
  apBuf.resize(static_cast<size_t>(MC_MAX) * KC);
  if (!x.packedB) bpBuf.resize(static_cast<size_t>(NCU) * KC);
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min<int64_t>(KC, K - k0);
    packA(x, A, i0, rows, k0, kc, apBuf.data());
    if (!x.packedB) packBBlock(x, B, k0, kc, j0, cols, bpBuf.data());
    const bool first = k0 == 0, last = k0 + kc >= K;
    for (int s = 0; s < strips; s++) {
      const int64_t j = j0 + s * NR;
      const int ncols = static_cast<int>(std::min<int64_t>(NR, N - j));
      const float* bp = x.packedB ? B + (j / NR) * K * NR + k0 * NR : bpBuf.data() + s * kc * NR;
      alignas(64) float biasPadded[NR];
      if (last && x.bias) {
        std::memset(biasPadded, 0, sizeof biasPadded);
        std::memcpy(biasPadded, x.bias + j, ncols * sizeof(float));
      }
      for (int p = 0; p < panels; p++) {
        const int R = std::min(MR, rows - p * MR);
        microDispatch(R, apBuf.data() + p * kc * MR, bp, kc, C + (i0 + p * MR) * N + j, N, ncols, first, last,
                      x.bias ? biasPadded : nullptr, x.act);
      }
    }
  }
}

void gemm(const MatMulArgs& x) {
  GemmCtx c;
  c.x = &x;
  // Row blocks of at most MC_MAX rows, of equal size (in whole micro-panels): each reads all of
  // B, so 104 rows are 2 x 52, not 96 + 8.
  const int64_t blocks = (x.M + MC_MAX - 1) / MC_MAX;
  c.mc = ((x.M + blocks - 1) / blocks + MR - 1) / MR * MR;
  c.rowBlocks = (x.M + c.mc - 1) / c.mc;
  // Wide units when B is packed, but at least ~8 of them (shapes only: the split must not depend
  // on the thread count) so that the threads stay balanced on narrow matrices, down to 2 strips.
  c.ncu = x.packedB ? NCU_PACKED : NCU;
  while (c.ncu > 2 * NR && x.batch * c.rowBlocks * ((x.N + c.ncu - 1) / c.ncu) < 8) c.ncu -= NR;
  c.colBlocks = (x.N + c.ncu - 1) / c.ncu;
  const bool small = x.batch * x.M * x.K * x.N < SMALL_MACS;
  parallelFor(x.batch * c.rowBlocks * c.colBlocks, gemmUnit, &c, small);
}

}  // namespace

void matmul(const MatMulArgs& x) {
  if (x.batch <= 0 || x.M <= 0 || x.N <= 0) return;
  if (x.K == 0) {
    for (int64_t bi = 0; bi < x.batch; bi++)
      for (int64_t i = 0; i < x.M; i++)
        for (int64_t j = 0; j < x.N; j++) {
          float y = x.bias ? x.bias[j] : 0.0f;
          if (x.act == 1 && !(y > 0)) y = 0.0f;
          if (x.act == 2) y = gelu(vf{} + y)[0];
          x.out[(bi * x.M + i) * x.N + j] = y;
        }
    return;
  }
  if (x.M <= GEMV_MAX_M) gemv(x);
  else gemm(x);
}

namespace {
struct PackCtx {
  const float* b;
  float* out;
  int64_t K, N;
  bool transB;
};

void packUnit(const void* ctxp, int64_t strip) {
  const PackCtx& c = *static_cast<const PackCtx*>(ctxp);
  const int64_t n0 = strip * PW;
  const int64_t w = std::min<int64_t>(PW, c.N - n0);
  float* dst = c.out + n0 * c.K;
  if (w < PW) std::memset(dst, 0, sizeof(float) * c.K * PW);
  if (c.transB) {
    for (int64_t j = 0; j < w; j++) {
      const float* src = c.b + (n0 + j) * c.K;
      for (int64_t k = 0; k < c.K; k++) dst[k * PW + j] = src[k];
    }
  } else {
    for (int64_t k = 0; k < c.K; k++) std::memcpy(dst + k * PW, c.b + k * c.N + n0, w * sizeof(float));
  }
}
}  // namespace

void packB(const float* b, float* out, int64_t K, int64_t N, bool transB) {
  PackCtx c{b, out, K, N, transB};
  parallelFor((N + PW - 1) / PW, packUnit, &c, K * N < 32768);
}

int64_t packedSize(int64_t K, int64_t N) { return K * ((N + PW - 1) / PW) * PW; }

int gemvMaxRows() { return GEMV_MAX_M; }

void setThreads(int n) {
  Pool* p = pool();
  std::lock_guard<std::mutex> lk(p->submit);
  if (n == p->size && (n <= 1 || !p->workers.empty())) return;
  stopWorkers(p);
  startWorkers(p, n);
}

int threads() { return pool()->size; }

const char* isa() { return ISA; }

}  // namespace nemo
