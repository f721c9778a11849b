// Benchmark of the native streaming/GEMM matmul on GPT-1's decode shapes, built and run by
// `npm run bench:native` (model/bench/native.ts). That script copies matmul.cc into namespace
// nemo_cur and, for an A/B run, another revision's into nemo_base (NEMO_BASE defined): both are
// linked into this one process and alternate rep by rep, so that both see the same moments of a
// shared machine's memory traffic (separate runs of one binary varied by up to 2x there).
//
// Prints one JSON object per row count on stdout.
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cur/matmul.h"
#ifdef NEMO_BASE
#include "base/matmul.h"
#endif

namespace {

using Clock = std::chrono::steady_clock;

// A buffer on a 2 MB boundary, advised to use huge pages, as the addon places packed weights.
float* hugeAlloc(size_t floats) {
  const size_t huge = size_t{2} << 20;
  const size_t bytes = (floats * sizeof(float) + huge - 1) / huge * huge;
  auto* p = static_cast<float*>(std::aligned_alloc(huge, bytes));
  if (!p) {
    std::fprintf(stderr, "out of memory\n");
    std::exit(1);
  }
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  std::memset(p, 0, bytes);
  return p;
}

struct Weight {
  int64_t K, N;
  float* cur;
  float* base;
};

template <typename Args>
Args argsFor(const float* a, const float* b, float* out, int64_t M, int64_t K, int64_t N) {
  Args x{};
  x.a = a;
  x.b = b;
  x.out = out;
  x.bias = nullptr;
  x.batch = 1;
  x.M = M;
  x.K = K;
  x.N = N;
  x.act = 0;
  x.packedB = true;
  return x;
}

double pass(bool base, const std::vector<Weight>& ws, int repeat, const float* a, float* out, int64_t M) {
  const auto t0 = Clock::now();
  for (int r = 0; r < repeat; r++)
    for (const Weight& w : ws) {
#ifdef NEMO_BASE
      if (base) {
        nemo_base::matmul(argsFor<nemo_base::MatMulArgs>(a, w.base, out, M, w.K, w.N));
        continue;
      }
#else
      (void)base;
#endif
      nemo_cur::matmul(argsFor<nemo_cur::MatMulArgs>(a, w.cur, out, M, w.K, w.N));
    }
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * (v.size() - 1) + 0.5)];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> rows{1, 8};
  std::string weights = "memory";
  int reps = 15, threads = 2;
  bool quick = false;
  for (int i = 1; i < argc; i++) {
    const std::string s = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (s == "--rows") {
      rows.clear();
      for (const char* p = v; *p;) {
        rows.push_back(std::atoi(p));
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
      }
      i++;
    } else if (s == "--weights") {
      weights = v;
      i++;
    } else if (s == "--reps") {
      reps = std::max(3, std::atoi(v));
      i++;
    } else if (s == "--threads") {
      threads = std::max(1, std::atoi(v));
      i++;
    } else if (s == "--quick") {
      quick = true;
    }
  }
  nemo_cur::setThreads(threads);
#ifdef NEMO_BASE
  nemo_base::setThreads(threads);
  const bool ab = true;
#else
  const bool ab = false;
#endif

  // GPT-1's decode matmuls: 12 x (qkv, attention output, MLP in, MLP out) and the LM head, all
  // distinct (465 MB: from memory on any machine); "cache": one layer's qkv and output weights
  // (9.4 MB) 48 times over. --quick: small shapes, for the smoke test.
  std::vector<std::pair<int64_t, int64_t>> shapes;
  int repeat = 1;
  if (quick) {
    shapes = {{64, 96}, {96, 64}, {64, 333}};
  } else if (weights == "cache") {
    shapes = {{768, 2304}, {768, 768}};
    repeat = 48;
  } else {
    for (int l = 0; l < 12; l++) shapes.insert(shapes.end(), {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}});
    shapes.push_back({768, 40478});
  }
  std::vector<Weight> ws;
  int64_t maxK = 0, maxN = 0;
  double bytes = 0, macs = 0;
  unsigned seed = 1;
  auto rnd = [&seed]() {
    seed = seed * 1103515245u + 12345u;
    return static_cast<float>((seed >> 16) % 2001) * 1e-4f - 0.1f;
  };
  for (const auto& [K, N] : shapes) {
    std::vector<float> b(static_cast<size_t>(K * N));
    for (float& x : b) x = rnd();
    Weight w{K, N, hugeAlloc(static_cast<size_t>(nemo_cur::packedSize(K, N))), nullptr};
    nemo_cur::packB(b.data(), w.cur, K, N, false);
#ifdef NEMO_BASE
    w.base = hugeAlloc(static_cast<size_t>(nemo_base::packedSize(K, N)));
    nemo_base::packB(b.data(), w.base, K, N, false);
#endif
    ws.push_back(w);
    maxK = std::max(maxK, K);
    maxN = std::max(maxN, N);
    bytes += 4.0 * K * N * repeat;
    macs += 1.0 * K * N * repeat;
  }
  const int maxM = *std::max_element(rows.begin(), rows.end());
  std::vector<float> a(static_cast<size_t>(maxM * maxK)), o1(static_cast<size_t>(maxM * maxN)), o2(o1.size());
  for (float& x : a) x = rnd();

  for (int M : rows) {
    // Same results? (Not required across revisions: a change of K blocking changes the sums.)
    bool identical = true;
    if (ab) {
      for (const Weight& w : ws) {
        nemo_cur::matmul(argsFor<nemo_cur::MatMulArgs>(a.data(), w.cur, o1.data(), M, w.K, w.N));
#ifdef NEMO_BASE
        nemo_base::matmul(argsFor<nemo_base::MatMulArgs>(a.data(), w.base, o2.data(), M, w.K, w.N));
#endif
        if (std::memcmp(o1.data(), o2.data(), sizeof(float) * M * w.N) != 0) identical = false;
      }
    }
    std::vector<double> tc, tb, ratio;
    pass(false, ws, repeat, a.data(), o1.data(), M);  // warm-up
    for (int r = 0; r < reps; r++) {
      // Each goes first in every other rep (the second may find the other's lines in cache).
      double b = 0;
      if (ab && r % 2) b = pass(true, ws, repeat, a.data(), o2.data(), M);
      const double c = pass(false, ws, repeat, a.data(), o1.data(), M);
      if (ab && !(r % 2)) b = pass(true, ws, repeat, a.data(), o2.data(), M);
      tc.push_back(c);
      if (ab) {
        tb.push_back(b);
        ratio.push_back(c / b);
      }
    }
    const double med = quantile(tc, 0.5);
    std::printf("{\"rows\":%d,\"weights\":\"%s\",\"ms\":%.3f,\"msMin\":%.3f,\"GBs\":%.1f,\"GFLOPs\":%.1f", M,
                quick ? "quick" : weights.c_str(), med, quantile(tc, 0), bytes / med / 1e6, 2.0 * M * macs / med / 1e6);
    if (ab)
      std::printf(",\"baseMs\":%.3f,\"ratio\":%.3f,\"ratioQ1\":%.3f,\"ratioQ3\":%.3f,\"identical\":%s", quantile(tb, 0.5),
                  quantile(ratio, 0.5), quantile(ratio, 0.25), quantile(ratio, 0.75), identical ? "true" : "false");
    std::printf("}\n");
    std::fflush(stdout);
  }
  return 0;
}
