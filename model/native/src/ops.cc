// Fused inference ops for nemo's native addon (see matmul.h): the post-LN residual LayerNorm and
// the batched one-token decode attention. They replace ~80 small tfjs ops per layer of a decode
// step (each costing 2-3 us of dispatch) with two native calls. Every output is computed by one
// thread in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "matmul.h"

namespace nemo {
namespace {

struct LnCtx {
  const float *x, *y, *yBias, *gain, *beta;
  float* out;
  int64_t rows, C, rowsPerUnit;
  float eps;
};

void lnUnit(const void* ctxp, int64_t unit) {
  const LnCtx& c = *static_cast<const LnCtx*>(ctxp);
  const int64_t r0 = unit * c.rowsPerUnit, r1 = std::min(c.rows, r0 + c.rowsPerUnit);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = c.x + r * c.C;
    const float* y = c.y + r * c.C;
    float* o = c.out + r * c.C;
    // The sum is written to `out` first (out may alias x or y: each element is read before written).
    float sum = 0;
    for (int64_t j = 0; j < c.C; j++) {
      const float s = c.yBias ? x[j] + (y[j] + c.yBias[j]) : x[j] + y[j];
      o[j] = s;
      sum += s;
    }
    const float mean = sum / static_cast<float>(c.C);
    float ss = 0;
    for (int64_t j = 0; j < c.C; j++) {
      const float d = o[j] - mean;
      ss += d * d;
    }
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(c.C) + c.eps);
    for (int64_t j = 0; j < c.C; j++) o[j] = (o[j] - mean) * inv * c.gain[j] + c.beta[j];
  }
}

// Dot product in 16 interleaved partial sums (vectorised by the compiler; fixed order).
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t d = 0;
  for (; d + 16 <= n; d += 16)
    for (int j = 0; j < 16; j++) acc[j] += a[d + j] * b[d + j];
  for (; d < n; d++) acc[d & 15] += a[d] * b[d];
  for (int j = 0; j < 8; j++) acc[j] += acc[j + 8];  // pairwise, in vectors
  for (int j = 0; j < 4; j++) acc[j] += acc[j + 4];
  return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

struct AttnCtx {
  const float* qkv;
  float* out;
  float* const* kv;
  float* const* vv;
  const int64_t* lens;
  const int64_t* caps;
  int64_t C, H, D;
  float scale;
};

void attnUnit(const void* ctxp, int64_t unit) {
  const AttnCtx& c = *static_cast<const AttnCtx*>(ctxp);
  const int64_t i = unit / c.H, h = unit % c.H;
  const int64_t T = c.lens[i] + 1, C = c.C, D = c.D;
  const float* q = c.qkv + i * 3 * C + h * D;
  const float* K = c.kv[i] + h * c.caps[i] * D;  // head h's rows: [capacity][D], contiguous
  const float* V = c.vv[i] + h * c.caps[i] * D;
  thread_local std::vector<float> p;
  thread_local std::vector<float> acc;
  p.resize(static_cast<size_t>(T));
  acc.assign(static_cast<size_t>(D), 0.0f);
  float mx = -INFINITY;
  for (int64_t t = 0; t < T; t++) {
    const float s = dot(q, K + t * D, D) * c.scale;
    p[t] = s;
    mx = std::max(mx, s);
  }
  float sum = 0;
  for (int64_t t = 0; t < T; t++) {
    p[t] = std::exp(p[t] - mx);
    sum += p[t];
  }
  float* a = acc.data();
  for (int64_t t = 0; t < T; t++) {
    const float w = p[t];
    const float* v = V + t * D;
    for (int64_t d = 0; d < D; d++) a[d] += w * v[d];
  }
  const float inv = 1.0f / sum;
  float* o = c.out + i * C + h * D;
  for (int64_t d = 0; d < D; d++) o[d] = a[d] * inv;
}

}  // namespace

void addLayerNorm(const float* x, const float* y, const float* yBias, const float* gain, const float* beta, float* out,
                  int64_t rows, int64_t C, float eps) {
  if (rows <= 0 || C <= 0) return;
  LnCtx c{x, y, yBias, gain, beta, out, rows, C, std::max<int64_t>(1, 16384 / C), eps};
  const int64_t units = (rows + c.rowsPerUnit - 1) / c.rowsPerUnit;
  parallelFor(units, lnUnit, &c, rows * C < 65536);
}

void decodeAttention(const float* qkv, float* out, float* const* kv, float* const* vv, const int64_t* lens,
                     const int64_t* caps, int64_t B, int64_t C, int64_t H, float scale) {
  if (B <= 0 || C <= 0 || H <= 0) return;
  const int64_t D = C / H;
  // Append this step's keys and values (row lens[i] of each head's block).
  int64_t work = 0;
  for (int64_t i = 0; i < B; i++) {
    for (int64_t h = 0; h < H; h++) {
      std::memcpy(kv[i] + (h * caps[i] + lens[i]) * D, qkv + i * 3 * C + C + h * D, D * sizeof(float));
      std::memcpy(vv[i] + (h * caps[i] + lens[i]) * D, qkv + i * 3 * C + 2 * C + h * D, D * sizeof(float));
    }
    work += (lens[i] + 1) * C * 2;
  }
  AttnCtx c{qkv, out, kv, vv, lens, caps, C, H, D, scale};
  parallelFor(B * H, attnUnit, &c, work < (1 << 15));
}

}  // namespace nemo
