// Vector helpers shared by matmul.cc and ops.cc: GCC vector extensions of the widest float
// vectors the build targets (AVX-512, AVX2+FMA, or 4 lanes), with a few intrinsics where GCC's
// own code for the extension is slow.
#pragma once
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define NEMO_VL 16
#elif defined(__AVX2__) && defined(__FMA__)
#define NEMO_VL 8
#else
#define NEMO_VL 4
#endif

namespace nemo {
namespace simd {

constexpr int VL = NEMO_VL;

typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
// Keeps a loaded B vector in a register: otherwise GCC may re-load it as a memory operand of every
// row's FMA (R x more loads than FMAs need; load-bound at 4 rows on Zen 3).
inline void inRegister(vf& v) {
#if defined(__x86_64__) && (NEMO_VL == 8 || NEMO_VL == 16)
  __asm__("" : "+v"(v));
#else
  (void)v;
#endif
}

// Broadcast of one float from memory (one vbroadcastss; `vf{} + x` costs an extra add: -0.0 + x).
inline vf bcastp(const float* p) {
#if NEMO_VL == 16
  return reinterpret_cast<vf>(_mm512_set1_ps(*p));
#elif NEMO_VL == 8
  return reinterpret_cast<vf>(_mm256_broadcast_ss(p));
#else
  vf v;
  for (int i = 0; i < VL; i++) v[i] = *p;
  return v;
#endif
}

typedef int32_t vi __attribute__((vector_size(VL * 4)));
// e^x for every lane (Cephes' expf: 2^n times a polynomial on |r| <= ln2/2; within 1 ulp): std::exp
// lane by lane would dominate the GELU epilogues and the softmax.
inline vf expVec(vf x) {
  x = x < -87.33654f ? vf{} - 87.33654f : x;  // 2^-126: the scale below stays a normal float
  x = x > 88.37626f ? vf{} + 88.37626f : x;
  const vf magic = vf{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const vf n = (x * 1.44269504088896341f + magic) - magic;
  const vf r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  vf p = vf{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  return p * reinterpret_cast<vf>(bits);
}

// Sum of the lanes.
inline float hsum(vf v) {
#if NEMO_VL == 16
  return _mm512_reduce_add_ps(reinterpret_cast<__m512>(v));
#elif NEMO_VL == 8
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(reinterpret_cast<__m256>(v)), _mm256_extractf128_ps(reinterpret_cast<__m256>(v), 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  return _mm_cvtss_f32(_mm_add_ss(lo, _mm_movehdup_ps(lo)));
#else
  float s = 0;
  for (int i = 0; i < VL; i++) s += v[i];
  return s;
#endif
}

}  // namespace simd
}  // namespace nemo
