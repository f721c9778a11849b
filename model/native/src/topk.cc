// Top-k for sampling (sampling.ts's topIndices): one vectorised pass over the logits with the k
// best kept sorted; only lanes above the current k-th value leave the vector loop (a JS loop over
// GPT-1's 40k logits per sequence and step was a visible share of a decode step).
#include <cmath>

#include "matmul.h"
#include "simd.h"

namespace nemo {

int64_t topK(const float* v, int64_t n, int64_t k, int32_t* out) {
  using namespace simd;
  if (k > n) k = n;
  if (k <= 0) return 0;
  if (k > TOPK_MAX) return -1;
  float val[TOPK_MAX];
  int32_t* idx = out;
  int64_t size = 0;
  // Insert (x, i), i above every kept index: it goes after the kept values >= x; when full, the
  // last one drops.
  auto insert = [&](float x, int64_t i) {
    int64_t p = size < k ? size++ : k - 1;
    while (p > 0 && val[p - 1] < x) {
      val[p] = val[p - 1];
      idx[p] = idx[p - 1];
      p--;
    }
    val[p] = x;
    idx[p] = static_cast<int32_t>(i);
  };
  int64_t i = 0;
  for (; i < k; i++) {
    if (std::isnan(v[i])) return -1;
    insert(v[i], i);
  }
  // Later indices only enter above the k-th value (an equal value loses to the lower index).
  auto scalar = [&](int64_t j) {
    if (std::isnan(v[j])) return false;
    if (v[j] > val[k - 1]) insert(v[j], j);
    return true;
  };
  for (; i < n && i % VL != 0; i++)
    if (!scalar(i)) return -1;
  for (; i + VL <= n; i += VL) {
    const vf x = load(v + i);
    const vf t = vf{} + val[k - 1];
    // Any lane above the k-th value, or NaN (x != x).
    bool any;
#if NEMO_VL == 16
    const __m512 xv = reinterpret_cast<__m512>(x);
    any = (_mm512_cmp_ps_mask(xv, reinterpret_cast<__m512>(t), _CMP_GT_OQ) | _mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q)) != 0;
#elif NEMO_VL == 8
    const __m256 xv = reinterpret_cast<__m256>(x);
    any = _mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(xv, reinterpret_cast<__m256>(t), _CMP_GT_OQ), _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q))) != 0;
#else
    any = false;
    for (int j = 0; j < VL; j++) any = any || !(x[j] <= t[j]);
#endif
    if (!any) continue;
    for (int j = 0; j < VL; j++)
      if (!scalar(i + j)) return -1;
  }
  for (; i < n; i++)
    if (!scalar(i)) return -1;
  return k;
}

}  // namespace nemo
