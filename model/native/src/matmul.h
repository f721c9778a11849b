// Float32 matmul kernels for nemo's native addon (see matmul.cc).
#pragma once
#include <cstddef>
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
  int act;  // 0 linear, 1 relu
  bool packedB = false;  // b is packB's layout of one [K, N] matrix (M <= gemvMaxRows() only)
};

// Computes out = act(op(a) op(b) + bias) for every batch entry. Every output element is summed by
// one thread in an order that depends only on the shapes, never on the thread count.
void matmul(const MatMulArgs& args);

// Copies B (one [K, N] matrix, or [N, K] when transB) into the streaming kernel's layout
// (packedSize(K, N) floats); matmul with packedB then reads it sequentially. Same results as unpacked.
void packB(const float* b, float* out, int64_t K, int64_t N, bool transB);
int64_t packedSize(int64_t K, int64_t N);
// Row counts up to this use the streaming (GEMV) kernel.
int gemvMaxRows();

// Thread pool size (including the calling thread); set before the first matmul or any time.
void setThreads(int n);
int threads();
// Which instruction set the kernels were compiled for ("avx512", "avx2", "generic").
const char* isa();

}  // namespace nemo
