// Fused inference ops for nemo's native addon (see matmul.h): the post-LN residual LayerNorm and
// the batched attention over KV-cache buffers (decode steps and prompts). They replace ~80 small
// tfjs ops per layer (each with its dispatch cost, and copies of the cache) with two native
// calls. Every output is computed by one
// thread in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "matmul.h"
#include "simd.h"

namespace nemo {
namespace {
using namespace simd;

struct LnCtx {
  const float *x, *y, *yBias, *gain, *beta;
  float* out;
  int64_t rows, C, rowsPerUnit;
  float eps;
};

// Sum of term(0..n) in 16 interleaved partial sums, then pairwise (vectorised by the compiler;
// a fixed order): one running float sum would be a chain of dependent adds.
template <typename Term>
inline float sum16(int64_t n, Term term) {
  float acc[16] = {};
  int64_t d = 0;
  for (; d + 16 <= n; d += 16)
    for (int j = 0; j < 16; j++) acc[j] += term(d + j);
  for (; d < n; d++) acc[d & 15] += term(d);
  for (int j = 0; j < 8; j++) acc[j] += acc[j + 8];  // pairwise, in vectors
  for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];
  return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

inline float sum16(const float* a, int64_t n) {
  return sum16(n, [a](int64_t d) { return a[d]; });
}

inline float dot(const float* a, const float* b, int64_t n) {
  return sum16(n, [a, b](int64_t d) { return a[d] * b[d]; });
}

void lnUnit(const void* ctxp, int64_t unit) {
  const LnCtx& c = *static_cast<const LnCtx*>(ctxp);
  const int64_t r0 = unit * c.rowsPerUnit, r1 = std::min(c.rows, r0 + c.rowsPerUnit);
  thread_local std::vector<float> sq;
  sq.resize(static_cast<size_t>(c.C));
  for (int64_t r = r0; r < r1; r++) {
    const float* x = c.x + r * c.C;
    const float* y = c.y + r * c.C;
    float* o = c.out + r * c.C;
    // The sum is written to `out` first (out may alias x or y: each element is read before written).
    if (c.yBias) {
      for (int64_t j = 0; j < c.C; j++) o[j] = x[j] + (y[j] + c.yBias[j]);
    } else {
      for (int64_t j = 0; j < c.C; j++) o[j] = x[j] + y[j];
    }
    const float mean = sum16(o, c.C) / static_cast<float>(c.C);
    for (int64_t j = 0; j < c.C; j++) {
      const float d = o[j] - mean;
      sq[j] = d * d;
    }
    const float inv = 1.0f / std::sqrt(sum16(sq.data(), c.C) / static_cast<float>(c.C) + c.eps);
    for (int64_t j = 0; j < c.C; j++) o[j] = (o[j] - mean) * inv * c.gain[j] + c.beta[j];
  }
}

struct AttnCtx {
  const float* qkv;
  float* out;
  float* const* kv;
  float* const* vv;
  const int64_t* lens;
  const int64_t* caps;
  const int64_t* rowOff;  // first qkv/out row of each sequence
  const int64_t* units;   // per unit: sequence, head, first row, row count (4 values)
  int64_t C, H, D;
  float scale;
};

// One query row q of one head against its T cached rows K, V ([T][D], D = NV * VL): the
// scores in registers (q held in NV vectors), the softmax's exponentials in vectors, the weighted
// sum in two sets of accumulators, rather than partial sums through memory and std::exp per
// score. `p` has room for T rounded up to VL.
template <int NV>
void attnRow(const float* q, const float* K, const float* V, int64_t T, float scale, float* p, float* o) {
  constexpr int D = NV * VL;
  vf qv[NV];
  for (int v = 0; v < NV; v++) qv[v] = load(q + v * VL);
  float mx = -INFINITY;
  for (int64_t t = 0; t < T; t++) {
    const float* k = K + t * D;
    vf s = qv[0] * load(k);
    for (int v = 1; v < NV; v++) s += qv[v] * load(k + v * VL);
    const float st = hsum(s) * scale;
    p[t] = st;
    mx = std::max(mx, st);
  }
  const int64_t Tv = T / VL * VL;
  vf sv = vf{};
  for (int64_t t = 0; t < Tv; t += VL) {
    const vf e = expVec(load(p + t) - mx);
    store(p + t, e);
    sv += e;
  }
  float sum = hsum(sv);
  for (int64_t t = Tv; t < T; t++) {
    p[t] = expVec(vf{} + (p[t] - mx))[0];
    sum += p[t];
  }
  vf a0[NV], a1[NV];
  for (int v = 0; v < NV; v++) a0[v] = a1[v] = vf{};
  int64_t t = 0;
  for (; t + 1 < T; t += 2) {
    const vf w0 = bcastp(p + t), w1 = bcastp(p + t + 1);
    for (int v = 0; v < NV; v++) {
      a0[v] += w0 * load(V + t * D + v * VL);
      a1[v] += w1 * load(V + (t + 1) * D + v * VL);
    }
  }
  if (t < T) {
    const vf w0 = bcastp(p + t);
    for (int v = 0; v < NV; v++) a0[v] += w0 * load(V + t * D + v * VL);
  }
  const float inv = 1.0f / sum;
  for (int v = 0; v < NV; v++) store(o + v * VL, (a0[v] + a1[v]) * inv);
}

// The same for any head size (D not a multiple of VL, or wider than 8 vectors).
void attnRowAny(const float* q, const float* K, const float* V, int64_t T, int64_t D, float scale, float* p, float* o) {
  float mx = -INFINITY;
  for (int64_t t = 0; t < T; t++) {
    const float s = dot(q, K + t * D, D) * scale;
    p[t] = s;
    mx = std::max(mx, s);
  }
  float sum = 0;
  for (int64_t t = 0; t < T; t++) {
    p[t] = std::exp(p[t] - mx);
    sum += p[t];
  }
  for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
  for (int64_t t = 0; t < T; t++) {
    const float w = p[t];
    const float* v = V + t * D;
    for (int64_t d = 0; d < D; d++) o[d] += w * v[d];
  }
  const float inv = 1.0f / sum;
  for (int64_t d = 0; d < D; d++) o[d] *= inv;
}

// Attention of rows [j0, j0 + n) of sequence i for head h: row j (position lens[i] + j) attends
// to the cached rows 0..lens[i] + j of that head.
void attnUnit(const void* ctxp, int64_t unit) {
  const AttnCtx& c = *static_cast<const AttnCtx*>(ctxp);
  const int64_t* u = c.units + unit * 4;
  const int64_t i = u[0], h = u[1], j0 = u[2], n = u[3];
  const int64_t C = c.C, D = c.D;
  const float* K = c.kv[i] + h * c.caps[i] * D;  // head h's rows: [capacity][D], contiguous
  const float* V = c.vv[i] + h * c.caps[i] * D;
  thread_local std::vector<float> p;
  p.resize(static_cast<size_t>((c.lens[i] + j0 + n + VL - 1) / VL * VL));
  // In a decode step the rows come from memory (the weights streamed through the caches since
  // the last step); asking for all of them at once keeps more reads in flight than the hardware
  // prefetcher does for a few KB.
  for (int64_t o = 0; o < (c.lens[i] + j0 + n) * D; o += 64 / sizeof(float)) {
    __builtin_prefetch(K + o);
    __builtin_prefetch(V + o);
  }
  for (int64_t j = j0; j < j0 + n; j++) {
    const int64_t row = c.rowOff[i] + j;
    const int64_t T = c.lens[i] + j + 1;
    const float* q = c.qkv + row * 3 * C + h * D;
    float* o = c.out + row * C + h * D;
    switch (D % VL == 0 ? D / VL : 0) {
#define NEMO_CASE(nv) \
  case nv: attnRow<nv>(q, K, V, T, c.scale, p.data(), o); break;
      NEMO_CASE(1) NEMO_CASE(2) NEMO_CASE(3) NEMO_CASE(4) NEMO_CASE(5) NEMO_CASE(6) NEMO_CASE(7) NEMO_CASE(8)
#undef NEMO_CASE
      default: attnRowAny(q, K, V, T, D, c.scale, p.data(), o); break;
    }
  }
}

}  // namespace

void addLayerNorm(const float* x, const float* y, const float* yBias, const float* gain, const float* beta, float* out,
                  int64_t rows, int64_t C, float eps) {
  if (rows <= 0 || C <= 0) return;
  LnCtx c{x, y, yBias, gain, beta, out, rows, C, std::max<int64_t>(1, 16384 / C), eps};
  const int64_t units = (rows + c.rowsPerUnit - 1) / c.rowsPerUnit;
  parallelFor(units, lnUnit, &c, rows * C < 65536);
}

void attention(const float* qkv, float* out, float* const* kv, float* const* vv, const int64_t* lens, const int64_t* counts,
               const int64_t* caps, int64_t B, int64_t C, int64_t H, float scale) {
  if (B <= 0 || C <= 0 || H <= 0) return;
  const int64_t D = C / H;
  // Append the new keys and values (rows lens[i].. of each head's block) before any unit reads them.
  std::vector<int64_t> rowOff(static_cast<size_t>(B));
  int64_t rows = 0, work = 0;
  for (int64_t i = 0; i < B; i++) {
    rowOff[i] = rows;
    for (int64_t j = 0; j < counts[i]; j++) {
      const float* src = qkv + (rows + j) * 3 * C;
      for (int64_t h = 0; h < H; h++) {
        std::memcpy(kv[i] + (h * caps[i] + lens[i] + j) * D, src + C + h * D, D * sizeof(float));
        std::memcpy(vv[i] + (h * caps[i] + lens[i] + j) * D, src + 2 * C + h * D, D * sizeof(float));
      }
      work += (lens[i] + j + 1) * C * 2;
    }
    rows += counts[i];
  }
  // Units of up to 16 rows of one (sequence, head): a long prompt splits over the threads.
  constexpr int64_t ROWS = 16;
  std::vector<int64_t> units;
  for (int64_t i = 0; i < B; i++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t j0 = 0; j0 < counts[i]; j0 += ROWS) units.insert(units.end(), {i, h, j0, std::min(ROWS, counts[i] - j0)});
  AttnCtx c{qkv, out, kv, vv, lens, caps, rowOff.data(), units.data(), C, H, D, scale};
  parallelFor(static_cast<int64_t>(units.size() / 4), attnUnit, &c, work < (1 << 15));
}

}  // namespace nemo
