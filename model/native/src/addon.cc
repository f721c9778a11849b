// N-API entry points of nemo's native matmul (see matmul.cc). Context-aware: Node worker threads
// may each load it; they share one process-wide thread pool.
#include <node_api.h>

#include <algorithm>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <cstdint>
#include <string>
#include <vector>

#include "matmul.h"

namespace {

napi_value Throw(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, msg.c_str());
  return nullptr;
}

// A typed array of the given type: its data (at its offset) and length in elements.
template <typename T>
bool GetTyped(napi_env env, napi_value v, napi_typedarray_type want, T** data, size_t* length) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  void* p = nullptr;
  if (napi_get_typedarray_info(env, v, &type, length, &p, &ab, &offset) != napi_ok) return false;
  if (type != want) return false;
  *data = static_cast<T*>(p);
  return true;
}

bool GetF32(napi_env env, napi_value v, float** data, size_t* length) { return GetTyped(env, v, napi_float32_array, data, length); }

bool GetInt(napi_env env, napi_value v, int64_t* out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

// act: 0 linear, 1 relu, 2 gelu.
// matmul(a, b, out, bias | null, batch, M, K, N, strideA, strideB, transA, transB, act, packedB)
napi_value MatMul(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 14) return Throw(env, "matmul: expected 14 arguments");
  float *a, *b, *out, *bias = nullptr;
  size_t la, lb, lo, lbias = 0;
  if (!GetF32(env, argv[0], &a, &la) || !GetF32(env, argv[1], &b, &lb) || !GetF32(env, argv[2], &out, &lo)) {
    return Throw(env, "matmul: a, b and out must be Float32Arrays");
  }
  napi_valuetype t;
  napi_typeof(env, argv[3], &t);
  if (t != napi_null && t != napi_undefined && !GetF32(env, argv[3], &bias, &lbias)) {
    return Throw(env, "matmul: bias must be a Float32Array or null");
  }
  int64_t n[10];
  for (int i = 0; i < 10; i++) {
    if (!GetInt(env, argv[4 + i], &n[i])) return Throw(env, "matmul: dimensions must be numbers");
  }
  nemo::MatMulArgs x;
  x.a = a;
  x.b = b;
  x.out = out;
  x.bias = bias;
  x.batch = n[0];
  x.M = n[1];
  x.K = n[2];
  x.N = n[3];
  x.strideA = n[4];
  x.strideB = n[5];
  x.transA = n[6] != 0;
  x.transB = n[7] != 0;
  x.act = static_cast<int>(n[8]);
  x.packedB = n[9] != 0;
  if (x.packedB && x.strideB != 0) return Throw(env, "matmul: packed B needs one B (strideB 0)");
  if (x.batch < 0 || x.M < 0 || x.K < 0 || x.N < 0 || x.strideA < 0 || x.strideB < 0 || x.act < 0 || x.act > 2) {
    return Throw(env, "matmul: bad dimensions");
  }
  // Bounds: every element read or written must lie inside the given arrays.
  const int64_t lastA = x.batch > 0 ? (x.batch - 1) * x.strideA : 0;
  const int64_t lastB = x.batch > 0 ? (x.batch - 1) * x.strideB : 0;
  if (x.batch > 0 && x.M > 0 && x.N > 0) {
    if (static_cast<int64_t>(la) < lastA + x.M * x.K) return Throw(env, "matmul: a is too short");
    const int64_t needB = x.packedB ? nemo::packedSize(x.K, x.N) : lastB + x.K * x.N;
    if (static_cast<int64_t>(lb) < needB) return Throw(env, "matmul: b is too short");
    if (static_cast<int64_t>(lo) < x.batch * x.M * x.N) return Throw(env, "matmul: out is too short");
    if (bias && static_cast<int64_t>(lbias) < x.N) return Throw(env, "matmul: bias is too short");
  }
  nemo::matmul(x);
  return nullptr;
}

// packB(b, out, K, N, transB): out = b in the streaming kernel's layout (packedSize(K, N) floats:
// K * N rounded up to whole strips of packWidth columns).
napi_value PackB(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  float *b, *out;
  size_t lb, lo;
  int64_t K, N, transB;
  if (argc != 5 || !GetF32(env, argv[0], &b, &lb) || !GetF32(env, argv[1], &out, &lo) || !GetInt(env, argv[2], &K) ||
      !GetInt(env, argv[3], &N) || !GetInt(env, argv[4], &transB) || K < 0 || N < 0) {
    return Throw(env, "packB: expected (Float32Array, Float32Array, K, N, transB)");
  }
  if (static_cast<int64_t>(lb) < K * N || static_cast<int64_t>(lo) < nemo::packedSize(K, N)) return Throw(env, "packB: arrays too short");
  nemo::packB(b, out, K, N, transB != 0);
  return nullptr;
}

bool IsNull(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t == napi_null || t == napi_undefined;
}

// addLayerNorm(x, y, yBias | null, gain, beta, out, rows, C, eps): out = LN(x + y + yBias) rows.
napi_value AddLayerNorm(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 9) return Throw(env, "addLayerNorm: expected 9 arguments");
  float *x, *y, *yb = nullptr, *g, *b, *out;
  size_t lx, ly, lyb = 0, lg, lb, lo;
  int64_t rows, C;
  double eps;
  if (!GetF32(env, argv[0], &x, &lx) || !GetF32(env, argv[1], &y, &ly) || !GetF32(env, argv[3], &g, &lg) ||
      !GetF32(env, argv[4], &b, &lb) || !GetF32(env, argv[5], &out, &lo) || (!IsNull(env, argv[2]) && !GetF32(env, argv[2], &yb, &lyb)) ||
      !GetInt(env, argv[6], &rows) || !GetInt(env, argv[7], &C) || napi_get_value_double(env, argv[8], &eps) != napi_ok) {
    return Throw(env, "addLayerNorm: expected (Float32Array x, y, yBias | null, gain, beta, out, rows, C, eps)");
  }
  if (rows < 0 || C < 1) return Throw(env, "addLayerNorm: bad dimensions");
  const size_t n = static_cast<size_t>(rows * C);
  if (lx < n || ly < n || lo < n || lg < static_cast<size_t>(C) || lb < static_cast<size_t>(C) || (yb && lyb < static_cast<size_t>(C))) {
    return Throw(env, "addLayerNorm: arrays too short");
  }
  nemo::addLayerNorm(x, y, yb, g, b, out, rows, C, static_cast<float>(eps));
  return nullptr;
}

// decodeAttention(qkv, out, kBuffers[], vBuffers[], lengths[], C, H, scale[, counts[]]): nemo::attention
// (see matmul.h; buffers [H][capacity][D], capacity = length / C; counts absent, null or
// undefined: 1 row each).
napi_value DecodeAttention(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc != 8 && argc != 9) return Throw(env, "decodeAttention: expected 8 or 9 arguments");
  const bool haveCounts = argc == 9 && !IsNull(env, argv[8]);
  float *qkv, *out;
  size_t lq, lo;
  int64_t C, H;
  double scale;
  bool isArr[4] = {false, false, false, true};
  for (int j = 0; j < 3; j++) napi_is_array(env, argv[2 + j], &isArr[j]);
  if (haveCounts) napi_is_array(env, argv[8], &isArr[3]);
  if (!GetF32(env, argv[0], &qkv, &lq) || !GetF32(env, argv[1], &out, &lo) || !isArr[0] || !isArr[1] || !isArr[2] || !isArr[3] ||
      !GetInt(env, argv[5], &C) || !GetInt(env, argv[6], &H) || napi_get_value_double(env, argv[7], &scale) != napi_ok) {
    return Throw(env, "decodeAttention: expected (Float32Array qkv, out, Float32Array[] k, v, number[] lengths, C, H, scale[, number[] counts])");
  }
  uint32_t B = 0, Bv = 0, Bl = 0, Bc = 0;
  napi_get_array_length(env, argv[2], &B);
  napi_get_array_length(env, argv[3], &Bv);
  napi_get_array_length(env, argv[4], &Bl);
  if (haveCounts) napi_get_array_length(env, argv[8], &Bc);
  if (B != Bv || B != Bl || (haveCounts && B != Bc)) return Throw(env, "decodeAttention: one k buffer, v buffer, length (and count) per sequence");
  if (C < 1 || H < 1 || C % H != 0) return Throw(env, "decodeAttention: C must be a multiple of H");
  std::vector<float*> ks(B), vs(B);
  std::vector<int64_t> lens(B), caps(B), counts(B, 1);
  int64_t rows = 0;
  for (uint32_t i = 0; i < B; i++) {
    napi_value kv, vv, lv;
    napi_get_element(env, argv[2], i, &kv);
    napi_get_element(env, argv[3], i, &vv);
    napi_get_element(env, argv[4], i, &lv);
    size_t lk, lvv;
    if (!GetF32(env, kv, &ks[i], &lk) || !GetF32(env, vv, &vs[i], &lvv) || !GetInt(env, lv, &lens[i]) || lens[i] < 0) {
      return Throw(env, "decodeAttention: buffers must be Float32Arrays and lengths non-negative integers");
    }
    if (haveCounts) {
      napi_value cv;
      napi_get_element(env, argv[8], i, &cv);
      if (!GetInt(env, cv, &counts[i]) || counts[i] < 1) return Throw(env, "decodeAttention: counts must be positive integers");
    }
    rows += counts[i];
    // [H][capacity][D]: the capacity follows from the length.
    caps[i] = static_cast<int64_t>(lk) / C;
    if (lk != lvv || lk % C != 0) return Throw(env, "decodeAttention: k and v buffers must be equal multiples of C floats");
    if (caps[i] < lens[i] + counts[i]) return Throw(env, "decodeAttention: a k/v buffer has no room for the new rows");
  }
  if (lq < static_cast<size_t>(rows) * 3 * C || lo < static_cast<size_t>(rows) * C) return Throw(env, "decodeAttention: qkv or out too short");
  nemo::attention(qkv, out, ks.data(), vs.data(), lens.data(), counts.data(), caps.data(), B, C, H, static_cast<float>(scale));
  return nullptr;
}

// topK(values: Float32Array, k, out: Int32Array): nemo::topK; the count, or -1 (NaN, or k too large).
napi_value TopK(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  float* v;
  int32_t* o;
  size_t n, lo;
  int64_t k;
  if (argc != 3 || !GetF32(env, argv[0], &v, &n) || !GetInt(env, argv[1], &k) || k < 0 || !GetTyped(env, argv[2], napi_int32_array, &o, &lo)) {
    return Throw(env, "topK: expected (Float32Array values, k >= 0, Int32Array out)");
  }
  if (static_cast<int64_t>(lo) < std::min<int64_t>(k, static_cast<int64_t>(n))) return Throw(env, "topK: out is shorter than k");
  napi_value r;
  napi_create_int64(env, nemo::topK(v, static_cast<int64_t>(n), k, o), &r);
  return r;
}

// hugePages(array): the index of the array's first element on a 2 MB boundary (0 when not on
// Linux); from there on the array is advised to be backed by transparent huge pages (THP in its
// "madvise" or "always" mode). For the packed weights, allocated 2 MB larger and used from that
// index before anything is written: the streaming kernels then cross a page boundary every 2 MB
// instead of every 4 KB, where the hardware prefetchers stop.
napi_value HugePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  float* p;
  size_t n;
  if (argc != 1 || !GetF32(env, argv[0], &p, &n)) return Throw(env, "hugePages: expected a Float32Array");
  int64_t first = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t HUGE = uintptr_t(2) << 20;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + HUGE - 1) & ~(HUGE - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p + n);
  if (end > begin) {
    first = static_cast<int64_t>((begin - reinterpret_cast<uintptr_t>(p)) / sizeof(float));
    madvise(reinterpret_cast<void*>(begin), (end - begin) & ~(HUGE - 1), MADV_HUGEPAGE);  // advice only: failure is harmless
  }
#endif
  napi_value r;
  napi_create_int64(env, first, &r);
  return r;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t n = 0;
  if (argc != 1 || !GetInt(env, argv[0], &n) || n < 1 || n > 256) return Throw(env, "setThreads: expected 1..256");
  nemo::setThreads(static_cast<int>(n));
  return nullptr;
}

// probe(readBytes): { fmaGflops, readGBs } (probe.cc). Takes ~0.1-1 s.
napi_value Probe(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t bytes = 0;
  if (argc != 1 || !GetInt(env, argv[0], &bytes) || bytes < (int64_t{1} << 20) || bytes > (int64_t{16} << 30))
    return Throw(env, "probe: expected a read size of 1 MB to 16 GB");
  const double fma = nemo::probeFmaGflops();
  const double read = nemo::probeReadGBs(bytes);
  if (read <= 0) return Throw(env, "probe: could not allocate the read buffer");
  napi_value o, f, r;
  napi_create_object(env, &o);
  napi_create_double(env, fma, &f);
  napi_create_double(env, read, &r);
  napi_set_named_property(env, o, "fmaGflops", f);
  napi_set_named_property(env, o, "readGBs", r);
  return o;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value o, th, isa, rows, pw;
  napi_create_object(env, &o);
  napi_create_int64(env, nemo::packedSize(1, 1), &pw);
  napi_set_named_property(env, o, "packWidth", pw);
  napi_create_int32(env, nemo::gemvMaxRows(), &rows);
  napi_set_named_property(env, o, "gemvMaxRows", rows);
  napi_create_int32(env, nemo::threads(), &th);
  napi_create_string_utf8(env, nemo::isa(), NAPI_AUTO_LENGTH, &isa);
  napi_set_named_property(env, o, "threads", th);
  napi_set_named_property(env, o, "isa", isa);
  return o;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"matmul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"addLayerNorm", nullptr, AddLayerNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"decodeAttention", nullptr, DecodeAttention, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"packB", nullptr, PackB, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"topK", nullptr, TopK, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"hugePages", nullptr, HugePages, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"probe", nullptr, Probe, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
