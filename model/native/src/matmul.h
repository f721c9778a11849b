// Float32 matmul kernels for nemo's native addon (see matmul.cc).
#pragma once
#include <cstddef>
#include <cmath>
#include <cstdint>

namespace nemo {

struct MatMulArgs {
  const float* a;     // batchA x [M, K] (or [K, M] when transA)
  const float* b;     // batchB x [K, N] (or [N, K] when transB)
  float* out;         // batch x [M, N]
  const float* bias;  // [N] or null
  int64_t batch, M, K, N;
  int64_t strideA, strideB;  // elements between batch entries (0: broadcast)
  bool transA, transB;
  int act;  // 0 linear, 1 relu, 2 gelu (geluScalar)
  bool packedB = false;  // b is packB's layout of one [K, N] matrix (strideB 0)
};

// Computes out = act(op(a) op(b) + bias) for every batch entry. Every output element is summed by
// one thread in an order that depends only on the shapes, never on the thread count.
void matmul(const MatMulArgs& args);

// Copies B (one [K, N] matrix, or [N, K] when transB) into the kernels' strip layout
// (packedSize(K, N) floats); matmul with packedB then reads it sequentially. Same results as unpacked.
void packB(const float* b, float* out, int64_t K, int64_t N, bool transB);
int64_t packedSize(int64_t K, int64_t N);
// Row counts up to this use the streaming (GEMV) kernel.
int gemvMaxRows();

// Runs fn(ctx, u) for u in [0, units) on the pool (on the calling thread only when `small`, when
// the pool has one thread, or when another isolate is using it). One job at a time.
typedef void (*UnitFn)(const void* ctx, int64_t unit);
void parallelFor(int64_t units, UnitFn fn, const void* ctx, bool small);

// Post-LN residual: out[r] = LayerNorm(x[r] + y[r] + yBias) * gain + beta, rows of C floats
// (yBias may be null). Mean and variance in two passes per row; rows split over the pool.
void addLayerNorm(const float* x, const float* y, const float* yBias, const float* gain, const float* beta, float* out,
                  int64_t rows, int64_t C, float eps);

// Attention for B sequences over head-major KV buffers: qkv holds counts[i] consecutive rows
// [3C] (q | k | v, each C = H * D wide) per sequence. kv[i] / vv[i] are sequence i's keys /
// values [H][caps[i]][D] (each head's rows contiguous). Sequence i's new k and v rows are written
// at rows lens[i].. of every head; then its row j (position lens[i] + j) gets, per head h,
// softmax(scale * q_h K_h^T) V_h over rows 0..lens[i] + j. A decode step is counts all 1. Units
// of (sequence, head, up to 16 rows), each summed in a fixed order whatever the thread count.
void attention(const float* qkv, float* out, float* const* kv, float* const* vv, const int64_t* lens, const int64_t* counts,
               const int64_t* caps, int64_t B, int64_t C, int64_t H, float scale);

// Indices of the k largest values of v[0..n) into out, largest first, equal values by lower
// index; returns min(k, n), or -1 when v holds a NaN or k > TOPK_MAX (the caller's own loop then).
constexpr int64_t TOPK_MAX = 256;
int64_t topK(const float* v, int64_t n, int64_t k, int32_t* out);

// Thread pool size (including the calling thread); set before the first matmul or any time.
void setThreads(int n);
int threads();
// Which instruction set the kernels were compiled for ("avx512", "avx2", "generic").
const char* isa();

// Machine probes on the thread pool (probe.cc; benchmarks only): the best of three rounds of
// independent vector FMAs, in GFLOP/s; and of reading a buffer of `bytes` (allocated, touched), in GB/s.
double probeFmaGflops();
double probeReadGBs(int64_t bytes);

}  // namespace nemo
