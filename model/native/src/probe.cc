// Machine probes for `npm run bench:model`: the multiply-add peak and the memory read rate of the
// matmul's thread pool, so that a benchmark states the floors of the machine it ran on (on a
// shared host both move from hour to hour) instead of assumed figures.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "matmul.h"
#include "simd.h"

namespace nemo {
namespace {
using namespace simd;
using Clock = std::chrono::steady_clock;

// Per thread: 10 independent chains (more than an FMA's latency x 2 ports) of FMA_STEPS each.
constexpr int64_t FMA_STEPS = int64_t{1} << 21;
constexpr int FMA_CHAINS = 10;
std::atomic<float> sink{0};

void fmaUnit(const void*, int64_t) {
  const vf m = vf{} + 0.999999f, c = vf{} + 1e-7f;
  vf a0 = vf{} + 1.0f, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0;
  for (int64_t i = 0; i < FMA_STEPS; i++) {
    a0 = a0 * m + c, a1 = a1 * m + c, a2 = a2 * m + c, a3 = a3 * m + c, a4 = a4 * m + c;
    a5 = a5 * m + c, a6 = a6 * m + c, a7 = a7 * m + c, a8 = a8 * m + c, a9 = a9 * m + c;
  }
  const vf t = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9;
  sink.store(t[0], std::memory_order_relaxed);
}

struct ReadCtx {
  const float* p;
  int64_t unitFloats;
};

void readUnit(const void* ctxp, int64_t u) {
  const ReadCtx& c = *static_cast<const ReadCtx*>(ctxp);
  const float* p = c.p + u * c.unitFloats;
  vf s[8] = {};
  for (int64_t i = 0; i < c.unitFloats; i += 8 * VL)
    for (int j = 0; j < 8; j++) s[j] += load(p + i + j * VL);
  vf t = s[0];
  for (int j = 1; j < 8; j++) t += s[j];
  sink.store(t[0], std::memory_order_relaxed);
}

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

double probeFmaGflops() {
  const int n = threads();
  parallelFor(n, fmaUnit, nullptr, false);  // wakes the workers: the timed rounds run in parallel
  double best = 0;
  for (int round = 0; round < 3; round++) {
    const auto t0 = Clock::now();
    parallelFor(n, fmaUnit, nullptr, false);
    best = std::max(best, n * FMA_STEPS * FMA_CHAINS * VL * 2.0 / seconds(t0) / 1e9);
  }
  return best;
}

double probeReadGBs(int64_t bytes) {
  constexpr int64_t UNIT = int64_t{1} << 18;  // floats per unit (1 MB)
  const int64_t units = std::max<int64_t>(1, bytes / (UNIT * 4));
  auto* p = static_cast<float*>(std::aligned_alloc(64, units * UNIT * 4));
  if (!p) return 0;
  std::memset(p, 1, units * UNIT * 4);  // faulted in, and not the shared zero page
  const ReadCtx c{p, UNIT};
  double best = 0;
  for (int round = 0; round < 3; round++) {
    const auto t0 = Clock::now();
    parallelFor(units, readUnit, &c, false);
    best = std::max(best, units * UNIT * 4.0 / seconds(t0) / 1e9);
  }
  std::free(p);
  return best;
}

}  // namespace nemo
