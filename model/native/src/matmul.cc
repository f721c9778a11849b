// Float32 matmul for nemo's native addon: AVX-512 / AVX2+FMA (or plain vectors) through GCC's
// vector extensions, on a small persistent thread pool.
//
// Two kernels:
//  - GEMV-style streaming for M <= 8 rows (14 with AVX-512: decode, short prompts): B's columns
//    are cut into chunks (64, or 256
//    for wide B), each streamed once for all rows with every row's accumulators in registers
//    over the whole K. Memory-bound: threads split the chunks. A B used more than once can be
//    given in packB's layout (strips of 32 columns, each [K][32] contiguous): sequential reads.
//  - register- and cache-blocked GEMM for larger M (prefill, training): fixed units of 96 rows x 32
//    columns; per K block of 128 the unit packs its B panel (handling transposeB), then a 12x32
//    (AVX-512) micro-kernel accumulates in registers, reading A in place (either layout).
// Epilogue: bias, then relu or tanh-GELU (act 2, the engine's MLP). The fused inference ops
// (residual LayerNorm, decode attention) are in ops.cc and share the thread pool (parallelFor).
// Determinism: the work units, the K blocking and each element's FMA order depend only on the
// shapes; threads just pick whole units. So results are bit-identical for any thread count.
#include "matmul.h"

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

#if defined(__AVX512F__)
#define NEMO_VL 16
#define NEMO_MR 12
const char* const ISA = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
#define NEMO_VL 8
#define NEMO_MR 6
const char* const ISA = "avx2";
#else
#define NEMO_VL 4
#define NEMO_MR 4
const char* const ISA = "generic";
#endif
constexpr int VL = NEMO_VL;
constexpr int MR = NEMO_MR;

typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
inline vf bcast(float x) { return vf{} + x; }
inline vf relu(vf v) { return v > 0 ? v : vf{}; }
// tanh-GELU in its sigmoid form: x * sigmoid(2 * sqrt(2/pi) * (x + 0.044715 x^3)) (the engine's).
inline vf gelu(vf v) {
  for (int i = 0; i < VL; i++) v[i] = geluScalar(v[i]);
  return v;
}
inline vf activate(vf v, int act) { return act == 1 ? relu(v) : act == 2 ? gelu(v) : v; }

constexpr int NR = 2 * VL;     // GEMM micro-tile columns
constexpr int MC = 8 * MR;     // GEMM unit rows
#ifndef NEMO_KC
#define NEMO_KC 128
#endif
constexpr int KC = NEMO_KC;   // GEMM K block
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
// GEMV-style kernel (M <= GEMV_MAX_M). A is pre-packed row-major [M][K] per batch entry.
//
// Units of work are column chunks of GEMV_CW. Within a chunk, panels narrow enough that every
// row's accumulators stay in registers for the whole K; each panel streams its rows of B once.
// Every output element is one FMA chain in k order, whatever R, the panel width, the packing or
// the thread count. packB's layout: strips of PW columns, each [K][PW] contiguous (zero-padded
// to PW), strips in column order — so a panel reads NV*VL/PW sequential streams.

constexpr int GEMV_CW = 256;  // chunk width for wide B; narrow B (N < 8192) uses 64 for balance
constexpr int ACC_REGS = VL == 16 ? 16 : 8;
constexpr int PW = VL * (ACC_REGS / 8);  // packed strip width: the narrowest panel (8 rows)
constexpr int VPS = PW / VL;             // vectors per strip

struct GemvCtx {
  const MatMulArgs* x;
  const float* ap;   // packed A: batchA entries of [M][K]
  int64_t apStride;  // 0 when A is broadcast
  int64_t chunks;    // column chunks per batch entry
  int cw;            // chunk width (depends on N only)
};

// B(k, vector v) = b + (v / VPS) * stripStride + k * ldb + (v % VPS) * VL. Plain [K, N]:
// stripStride = PW, ldb = N. Packed: stripStride = K * PW, ldb = PW (and padded: full loads OK).
template <int R, int NV>
void gemvPanel(const float* a, int64_t K, const float* b, int64_t ldb, int64_t stripStride, bool padded, int ncols,
               float* out, int64_t ldo, const float* bias, int act) {
  constexpr int W = NV * VL;
  vf acc[R][NV];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = vf{};
  if (padded || ncols == W) {
    const float* bs[NV];
    for (int v = 0; v < NV; v++) bs[v] = b + (v / VPS) * stripStride + (v % VPS) * VL;
    for (int64_t k = 0; k < K; k++) {
      vf bv[NV];
      for (int v = 0; v < NV; v++) bv[v] = load(bs[v] + k * ldb);
      for (int r = 0; r < R; r++) {
        const vf av = bcast(a[r * K + k]);
        for (int v = 0; v < NV; v++) acc[r][v] += av * bv[v];
      }
    }
  } else {
    // Unpacked ragged edge (stripStride == PW: columns are contiguous in a row).
    alignas(64) float tmp[W];
    std::memset(tmp, 0, sizeof tmp);
    for (int64_t k = 0; k < K; k++) {
      std::memcpy(tmp, b + k * ldb, ncols * sizeof(float));
      vf bv[NV];
      for (int v = 0; v < NV; v++) bv[v] = load(tmp + v * VL);
      for (int r = 0; r < R; r++) {
        const vf av = bcast(a[r * K + k]);
        for (int v = 0; v < NV; v++) acc[r][v] += av * bv[v];
      }
    }
  }
  alignas(64) float bb[W];
  if (bias) {
    std::memset(bb, 0, sizeof bb);
    std::memcpy(bb, bias, ncols * sizeof(float));
  }
  for (int r = 0; r < R; r++) {
    alignas(64) float row[W];
    for (int v = 0; v < NV; v++) {
      vf y = acc[r][v];
      if (bias) y += load(bb + v * VL);
      y = activate(y, act);
      store(row + v * VL, y);
    }
    std::memcpy(out + r * ldo, row, ncols * sizeof(float));
  }
}

// One chunk: b/out/bias at its first column.
template <int R>
void gemvChunk(const float* a, int64_t K, const float* b, int64_t ldb, int64_t stripStride, bool padded, int ncols,
               float* out, int64_t ldo, const float* bias, int act) {
  constexpr int NV0 = ACC_REGS / R >= 16 ? 16 : ACC_REGS / R >= 8 ? 8 : ACC_REGS / R >= 4 ? 4 : ACC_REGS / R >= 2 ? 2 : 1;
  constexpr int NV = NV0 < VPS ? VPS : NV0;  // more than 8 rows: one strip wide
  constexpr int W = NV * VL;
  static_assert(W % PW == 0 && 64 % PW == 0, "panels and chunks are whole strips");
  int p0 = 0;
  for (; p0 + W <= ncols; p0 += W) {
    gemvPanel<R, NV>(a, K, b + (p0 / PW) * stripStride, ldb, stripStride, padded, W, out + p0, ldo,
                     bias ? bias + p0 : nullptr, act);
  }
  for (; p0 < ncols; p0 += PW) {  // the rest strip by strip (a packed B has no strips beyond N)
    const int w = std::min(PW, ncols - p0);
    gemvPanel<R, VPS>(a, K, b + (p0 / PW) * stripStride, ldb, stripStride, padded, w, out + p0, ldo,
                      bias ? bias + p0 : nullptr, act);
  }
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
  switch (x.M) {
#define NEMO_CASE(n) \
  case n: gemvChunk<n>(a, x.K, b, ldb, stripStride, padded, ncols, o, x.N, bias, x.act); break;
    NEMO_CASE(1) NEMO_CASE(2) NEMO_CASE(3) NEMO_CASE(4) NEMO_CASE(5) NEMO_CASE(6) NEMO_CASE(7) NEMO_CASE(8)
#if NEMO_VL == 16
    NEMO_CASE(9) NEMO_CASE(10) NEMO_CASE(11) NEMO_CASE(12) NEMO_CASE(13) NEMO_CASE(14)
#endif
#undef NEMO_CASE
    default: break;
  }
}

void gemv(const MatMulArgs& x) {
  // Pack A row-major [M][K] (it is tiny): one layout for the kernels whatever transA is.
  const int64_t batchA = x.strideA ? x.batch : 1;
  thread_local std::vector<float> packed;
  const float* ap = x.a;
  int64_t apStride = x.strideA;
  if (x.transA) {
    packed.resize(static_cast<size_t>(batchA * x.M * x.K));
    for (int64_t bi = 0; bi < batchA; bi++) {
      const float* src = x.a + bi * x.strideA;
      float* dst = packed.data() + bi * x.M * x.K;
      for (int64_t k = 0; k < x.K; k++)
        for (int64_t r = 0; r < x.M; r++) dst[r * x.K + k] = src[k * x.M + r];
    }
    ap = packed.data();
    apStride = x.strideA ? x.M * x.K : 0;
  }
  GemvCtx c;
  c.x = &x;
  c.ap = ap;
  c.apStride = apStride;
  c.cw = x.N >= 8192 ? GEMV_CW : 64;
  c.chunks = (x.N + c.cw - 1) / c.cw;
  const bool small = x.batch * x.M * x.K * x.N < SMALL_MACS;
  parallelFor(x.batch * c.chunks, gemvUnit, &c, small);
}

// ---------------------------------------------------------------------------------------------
// GEMM (M > GEMV_MAX_M).

struct GemmCtx {
  const MatMulArgs* x;
  int64_t rowBlocks, panels;
};

// C[R x NR] (+)= A[R x kc] * Bp[kc x NR]. !TA: A(r, k) = a[r * lda + k]; TA: A(r, k) = a[k * lda + r].
template <int R, bool TA>
void micro(const float* a, int64_t lda, int64_t kc, const float* bp, float* c, int64_t ldc, int ncols, bool first,
           bool last, const float* biasPadded, int act) {
  vf acc0[R], acc1[R];
  for (int r = 0; r < R; r++) acc0[r] = acc1[r] = vf{};
  if (TA) {
    for (int64_t k = 0; k < kc; k++) {
      const vf b0 = load(bp + k * NR);
      const vf b1 = load(bp + k * NR + VL);
      const float* ak = a + k * lda;
      for (int r = 0; r < R; r++) {
        const vf av = bcast(ak[r]);
        acc0[r] += av * b0;
        acc1[r] += av * b1;
      }
    }
  } else {
    for (int64_t k = 0; k < kc; k++) {
      const vf b0 = load(bp + k * NR);
      const vf b1 = load(bp + k * NR + VL);
      for (int r = 0; r < R; r++) {
        const vf av = bcast(a[r * lda + k]);
        acc0[r] += av * b0;
        acc1[r] += av * b1;
      }
    }
  }
  for (int r = 0; r < R; r++) {
    alignas(64) float row[NR];
    float* dst = c + r * ldc;
    const bool full = ncols == NR;
    if (!first) {
      if (full) {
        acc0[r] += load(dst);
        acc1[r] += load(dst + VL);
      } else {
        std::memset(row, 0, sizeof row);
        std::memcpy(row, dst, ncols * sizeof(float));
        acc0[r] += load(row);
        acc1[r] += load(row + VL);
      }
    }
    if (last) {
      if (biasPadded) {
        acc0[r] += load(biasPadded);
        acc1[r] += load(biasPadded + VL);
      }
      if (act != 0) {
        acc0[r] = activate(acc0[r], act);
        acc1[r] = activate(acc1[r], act);
      }
    }
    if (full) {
      store(dst, acc0[r]);
      store(dst + VL, acc1[r]);
    } else {
      store(row, acc0[r]);
      store(row + VL, acc1[r]);
      std::memcpy(dst, row, ncols * sizeof(float));
    }
  }
}

template <bool TA>
void microDispatch(int R, const float* a, int64_t lda, int64_t kc, const float* bp, float* c, int64_t ldc, int ncols,
                   bool first, bool last, const float* bias, int act) {
  switch (R) {
#define NEMO_CASE(n) \
  case n: micro<n, TA>(a, lda, kc, bp, c, ldc, ncols, first, last, bias, act); break;
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

void gemmUnit(const void* ctxp, int64_t unit) {
  const GemmCtx& c = *static_cast<const GemmCtx*>(ctxp);
  const MatMulArgs& x = *c.x;
  const int64_t perBatch = c.rowBlocks * c.panels;
  const int64_t bi = unit / perBatch;
  const int64_t rb = (unit % perBatch) / c.panels;
  const int64_t jp = unit % c.panels;
  const int64_t M = x.M, K = x.K, N = x.N;
  const float* A = x.a + bi * x.strideA;
  const float* B = x.b + bi * x.strideB;
  float* C = x.out + bi * M * N;
  const int64_t i0 = rb * MC, i1 = std::min<int64_t>(M, i0 + MC);
  const int64_t j0 = jp * NR;
  const int ncols = static_cast<int>(std::min<int64_t>(NR, N - j0));
  thread_local std::vector<float> bpBuf;
  bpBuf.resize(KC * NR);
  float* bp = bpBuf.data();
  alignas(64) float biasPadded[NR];
  if (x.bias) {
    std::memset(biasPadded, 0, sizeof biasPadded);
    std::memcpy(biasPadded, x.bias + j0, ncols * sizeof(float));
  }
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min<int64_t>(KC, K - k0);
    // Pack B[k0:k0+kc, j0:j0+NR] as [kc][NR], zero-padded.
    if (x.transB) {
      if (ncols < NR) std::memset(bp, 0, sizeof(float) * kc * NR);
      for (int j = 0; j < ncols; j++) {
        const float* src = B + (j0 + j) * K + k0;
        for (int64_t k = 0; k < kc; k++) bp[k * NR + j] = src[k];
      }
    } else {
      for (int64_t k = 0; k < kc; k++) {
        float* dst = bp + k * NR;
        const float* src = B + (k0 + k) * N + j0;
        if (ncols == NR) {
          store(dst, load(src));
          store(dst + VL, load(src + VL));
        } else {
          std::memset(dst, 0, NR * sizeof(float));
          std::memcpy(dst, src, ncols * sizeof(float));
        }
      }
    }
    const bool first = k0 == 0, last = k0 + kc >= K;
    for (int64_t i = i0; i < i1; i += MR) {
      const int R = static_cast<int>(std::min<int64_t>(MR, i1 - i));
      float* ct = C + i * N + j0;
      if (x.transA) {
        microDispatch<true>(R, A + k0 * M + i, M, kc, bp, ct, N, ncols, first, last, x.bias ? biasPadded : nullptr, x.act);
      } else {
        microDispatch<false>(R, A + i * K + k0, K, kc, bp, ct, N, ncols, first, last, x.bias ? biasPadded : nullptr, x.act);
      }
    }
  }
}

void gemm(const MatMulArgs& x) {
  GemmCtx c;
  c.x = &x;
  c.rowBlocks = (x.M + MC - 1) / MC;
  c.panels = (x.N + NR - 1) / NR;
  const bool small = x.batch * x.M * x.K * x.N < SMALL_MACS;
  parallelFor(x.batch * c.rowBlocks * c.panels, gemmUnit, &c, small);
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
          if (x.act == 2) y = geluScalar(y);
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
