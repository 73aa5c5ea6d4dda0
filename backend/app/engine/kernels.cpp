// Kernels whose result for a row depends on nothing but that row: not on how many rows share the
// call, where the row sits among them, how many keys the batch was padded to, or how many
// threads ran. Vendor libraries do not promise that: MKL's float32 products round a row of a
// 3-row product differently from the same row among 384, FBGEMM's 1- and 2-row fp16 kernels
// split the sum over the inputs in four where its wider ones do not, and which kernel a row meets
// depends on the batch. Here every output element is one fixed sequence of float32 operations:
//
// - linear: y[m][n] = fma chain over k = 0..K-1 of x[m][k] * w[n][k], from zero, then + bias.
//   The weights are IEEE half, bfloat16 (converted exactly to float32) or float32. Every register
//   blocking below runs that same chain per element; only how many chains run side by side
//   changes.
// - linear on q8 weights (llama.cpp's Q8_0 layout: int8 codes, a float32 scale per 32 inputs):
//   y[m][n] = fma chain over the groups g of scale[n][g] * (fma chain over the group's 32 k of
//   x[m][k] * code[n][k], from zero), from zero, then + bias. Scaling once per group instead of
//   once per weight makes one row as fast as bfloat16 weights while reading half the bytes.
// - attention: for a query that sees keys 0..L-1, scores are fma chains over head_dim in lanes of
//   8 summed in one fixed order, the softmax reduces over exactly those L keys (lane j % 8, then
//   one fixed order), and the output is the fma chain over keys 0..L-1 of p_j * v_j, scaled by
//   1 / sum. Keys are read in place from the paged pool: nothing is gathered or padded.
//
// Built with AVX2, FMA and F16C only (native.py), so the same instructions, hence the same
// numbers, run on every x86-64 CPU class that has them, AVX-512 and AMX machines included.

#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/extension.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace {

constexpr int64_t COLS = 16;  // columns per packed block: two vectors of 8

// The sum of a vector's 8 lanes in one fixed order: ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
inline float hsum(__m256 v) {
  const __m256 t = _mm256_hadd_ps(v, v);
  const __m256 u = _mm256_hadd_ps(t, t);
  return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1)));
}

// Eight such sums at once, each in exactly hsum's order: lane i is hsum(a[i]).
inline __m256 hsum8(const __m256* a) {
  const __m256 q0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 q1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20), _mm256_permute2f128_ps(q0, q1, 0x31));
}

inline float hmax(__m256 v) {
  const __m128 lo = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pair = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
  return _mm_cvtss_f32(_mm_max_ss(pair, _mm_movehdup_ps(pair)));
}

// exp(x) for x <= 0 (Cephes' polynomial, as in the usual SIMD math libraries): one fixed
// sequence of operations per lane.
inline __m256 exp_ps(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365478515625f));
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// The weights' element types: IEEE half, bfloat16 (both converted exactly to float32), float32, or
// int8 codes scaled per group of Q8_GROUP inputs.
enum class Weights { fp16, bf16, fp32, q8 };
template <Weights W>
using Element = std::conditional_t<W == Weights::fp32, float, std::conditional_t<W == Weights::q8, int8_t, uint16_t>>;
constexpr int64_t Q8_GROUP = 32;

template <Weights W>
inline __m256 load8(const Element<W>* p) {
  if constexpr (W == Weights::fp32) {
    return _mm256_loadu_ps(p);
  } else if constexpr (W == Weights::q8) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  } else {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (W == Weights::bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
    return _mm256_cvtph_ps(bits);
  }
}

// ---- linear ----------------------------------------------------------------------------------

// Rows [0, MR) of x times NB packed column blocks starting at `w`: C[m][n] = chain + bias. For q8,
// `s` holds the blocks' scales, [NB][K / Q8_GROUP][16].
template <int MR, int NB, Weights W>
void block(const float* x, int64_t ldx, const Element<W>* w, const float* s, int64_t K, const float* bias,
           float* y, int64_t ldy) {
  __m256 acc[MR][NB][2];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) acc[m][b][0] = acc[m][b][1] = _mm256_setzero_ps();
  if constexpr (W == Weights::q8) {
    for (int64_t g = 0; g < K; g += Q8_GROUP) {
      __m256 part[MR][NB][2];
#pragma GCC unroll 8
      for (int m = 0; m < MR; ++m)
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) part[m][b][0] = part[m][b][1] = _mm256_setzero_ps();
      for (int64_t k = g; k < g + Q8_GROUP; ++k) {
        __m256 wv[NB][2];
#pragma GCC unroll 8
        for (int b = 0; b < NB; ++b) {
          const Element<W>* p = w + (b * K + k) * COLS;
          wv[b][0] = load8<W>(p);
          wv[b][1] = load8<W>(p + 8);
        }
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
          const __m256 a = _mm256_broadcast_ss(x + m * ldx + k);
#pragma GCC unroll 8
          for (int b = 0; b < NB; ++b) {
            part[m][b][0] = _mm256_fmadd_ps(a, wv[b][0], part[m][b][0]);
            part[m][b][1] = _mm256_fmadd_ps(a, wv[b][1], part[m][b][1]);
          }
        }
      }
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const float* scale = s + (b * (K / Q8_GROUP) + g / Q8_GROUP) * COLS;
        const __m256 s0 = _mm256_loadu_ps(scale), s1 = _mm256_loadu_ps(scale + 8);
#pragma GCC unroll 8
        for (int m = 0; m < MR; ++m) {
          acc[m][b][0] = _mm256_fmadd_ps(s0, part[m][b][0], acc[m][b][0]);
          acc[m][b][1] = _mm256_fmadd_ps(s1, part[m][b][1], acc[m][b][1]);
        }
      }
    }
  }
  for (int64_t k = 0; W != Weights::q8 && k < K; ++k) {
    __m256 wv[NB][2];
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      const Element<W>* p = w + (b * K + k) * COLS;
      wv[b][0] = load8<W>(p);
      wv[b][1] = load8<W>(p + 8);
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m256 a = _mm256_broadcast_ss(x + m * ldx + k);
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        acc[m][b][0] = _mm256_fmadd_ps(a, wv[b][0], acc[m][b][0]);
        acc[m][b][1] = _mm256_fmadd_ps(a, wv[b][1], acc[m][b][1]);
      }
    }
  }
#pragma GCC unroll 8
  for (int b = 0; b < NB; ++b) {
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    if (bias != nullptr) {
      b0 = _mm256_loadu_ps(bias + b * COLS);
      b1 = _mm256_loadu_ps(bias + b * COLS + 8);
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      float* out = y + m * ldy + b * COLS;
      _mm256_storeu_ps(out, bias != nullptr ? _mm256_add_ps(acc[m][b][0], b0) : acc[m][b][0]);
      _mm256_storeu_ps(out + 8, bias != nullptr ? _mm256_add_ps(acc[m][b][1], b1) : acc[m][b][1]);
    }
  }
}

// Column blocks [nb0, nb1) for `rows` rows starting at x: the widest blocking that fits 12
// accumulators. The arithmetic of an element is the same in each.
template <Weights W>
void columns(const float* x, int64_t ldx, int64_t rows, const Element<W>* w, const float* s, int64_t K,
             const float* bias, float* y, int64_t ldy, int64_t nb0, int64_t nb1) {
  int64_t nb = nb0;
  auto at = [&](int64_t r, int64_t b) { return std::make_tuple(x + r * ldx, w + b * K * COLS,
                                                               s ? s + b * (K / Q8_GROUP) * COLS : nullptr,
                                                               bias ? bias + b * COLS : nullptr,
                                                               y + r * ldy + b * COLS); };
  if (rows == 1) {
    for (; nb + 6 <= nb1; nb += 6) {
      auto [xp, wp, sp, bp, yp] = at(0, nb);
      block<1, 6, W>(xp, ldx, wp, sp, K, bp, yp, ldy);
    }
  } else if (rows == 2) {
    for (; nb + 3 <= nb1; nb += 3) {
      auto [xp, wp, sp, bp, yp] = at(0, nb);
      block<2, 3, W>(xp, ldx, wp, sp, K, bp, yp, ldy);
    }
  } else if (rows == 3) {
    for (; nb + 2 <= nb1; nb += 2) {
      auto [xp, wp, sp, bp, yp] = at(0, nb);
      block<3, 2, W>(xp, ldx, wp, sp, K, bp, yp, ldy);
    }
  }
  for (; nb < nb1; ++nb) {
    int64_t r = 0;
    for (; r + 6 <= rows; r += 6) {
      auto [xp, wp, sp, bp, yp] = at(r, nb);
      block<6, 1, W>(xp, ldx, wp, sp, K, bp, yp, ldy);
    }
    auto [xp, wp, sp, bp, yp] = at(r, nb);
    switch (rows - r) {
      case 5: block<5, 1, W>(xp, ldx, wp, sp, K, bp, yp, ldy); break;
      case 4: block<4, 1, W>(xp, ldx, wp, sp, K, bp, yp, ldy); break;
      case 3: block<3, 1, W>(xp, ldx, wp, sp, K, bp, yp, ldy); break;
      case 2: block<2, 1, W>(xp, ldx, wp, sp, K, bp, yp, ldy); break;
      case 1: block<1, 1, W>(xp, ldx, wp, sp, K, bp, yp, ldy); break;
      default: break;
    }
  }
}

// Rows a thread sweeps over one column range at a time: their inputs stay in its L2 cache
// while it streams the weights.
constexpr int64_t ROW_CHUNK = 48;

Weights kind_of(const std::string& kind) {
  if (kind == "fp16") return Weights::fp16;
  if (kind == "bf16") return Weights::bf16;
  if (kind == "q8") return Weights::q8;
  TORCH_CHECK(kind == "fp32", "linear: weight kind must be fp16, bf16, fp32 or q8, not ", kind);
  return Weights::fp32;
}

}  // namespace

// weight [N, K] (any float dtype) -> [ceil(N / 16), K, 16] blocks of `kind` (fp16 and bf16 as
// their int16 bits), zero-padded columns.
torch::Tensor pack(const torch::Tensor& weight, const std::string& kind) {
  TORCH_CHECK(weight.dim() == 2, "pack: weight must be 2-D");
  const Weights w_kind = kind_of(kind);
  const int64_t N = weight.size(0), K = weight.size(1);
  const int64_t blocks = (N + COLS - 1) / COLS;
  const auto dtype = w_kind == Weights::fp16 ? torch::kHalf : w_kind == Weights::bf16 ? torch::kBFloat16 : torch::kFloat32;
  auto w = weight.to(dtype).contiguous();
  auto padded = torch::zeros({blocks * COLS, K}, w.options());
  padded.narrow(0, 0, N).copy_(w);
  // [blocks, 16, K] -> [blocks, K, 16]
  auto out = padded.view({blocks, COLS, K}).transpose(1, 2).contiguous();
  return w_kind == Weights::fp32 ? out : out.view(torch::kInt16);
}

// codes [N, K] int8 and scales [N, K / 32] (any float dtype) -> the same blocks as pack's, int8,
// and [ceil(N / 16), K / 32, 16] float32 scales (zero-padded columns).
std::vector<torch::Tensor> pack_q8(const torch::Tensor& codes, const torch::Tensor& scales) {
  TORCH_CHECK(codes.dim() == 2 && codes.scalar_type() == torch::kInt8, "pack_q8: codes must be 2-D int8");
  const int64_t N = codes.size(0), K = codes.size(1), groups = K / Q8_GROUP;
  TORCH_CHECK(K % Q8_GROUP == 0 && scales.dim() == 2 && scales.size(0) == N && scales.size(1) == groups,
              "pack_q8: scales must be [N, K / 32] for codes [N, K] with K a multiple of 32");
  const int64_t blocks = (N + COLS - 1) / COLS;
  auto padded = torch::zeros({blocks * COLS, K}, codes.options());
  padded.narrow(0, 0, N).copy_(codes);
  auto padded_scales = torch::zeros({blocks * COLS, groups}, scales.options().dtype(torch::kFloat32));
  padded_scales.narrow(0, 0, N).copy_(scales);
  return {padded.view({blocks, COLS, K}).transpose(1, 2).contiguous(),
          padded_scales.view({blocks, COLS, groups}).transpose(1, 2).contiguous()};
}

torch::Tensor linear(const torch::Tensor& input, const torch::Tensor& packed, int64_t out_features,
                     const std::string& kind, const c10::optional<torch::Tensor>& bias,
                     const c10::optional<torch::Tensor>& scales) {
  const Weights w_kind = kind_of(kind);
  const auto element = w_kind == Weights::fp32 ? torch::kFloat32 : w_kind == Weights::q8 ? torch::kInt8 : torch::kInt16;
  TORCH_CHECK(packed.dim() == 3 && packed.size(2) == COLS && packed.scalar_type() == element,
              "linear: packed weight expected from pack(weight, kind) or pack_q8");
  const int64_t K = packed.size(1), blocks = packed.size(0);
  const bool scaled = scales.has_value() && scales->defined();
  TORCH_CHECK(scaled == (w_kind == Weights::q8), "linear: q8 weights, and only they, take scales");
  if (scaled) {
    TORCH_CHECK(scales->scalar_type() == torch::kFloat32 && scales->is_contiguous() &&
                    scales->numel() == blocks * (K / Q8_GROUP) * COLS,
                "linear: scales expected from pack_q8");
  }
  const float* sp = scaled ? scales->data_ptr<float>() : nullptr;
  TORCH_CHECK(input.size(-1) == K, "linear: input has ", input.size(-1), " features, weight ", K);
  auto x = input.reshape({-1, K}).to(torch::kFloat32).contiguous();
  const int64_t M = x.size(0);
  auto y = torch::empty({M, blocks * COLS}, x.options());
  torch::Tensor b;
  if (bias.has_value() && bias->defined()) {
    b = torch::zeros({blocks * COLS}, x.options());
    b.narrow(0, 0, out_features).copy_(bias->to(torch::kFloat32));
  }
  const float* xp = x.data_ptr<float>();
  const void* wp = packed.data_ptr();
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t ldy = blocks * COLS;
  for (int64_t r0 = 0; r0 < M; r0 += ROW_CHUNK) {
    const int64_t rows = std::min(ROW_CHUNK, M - r0);
    // Column ranges split in whole groups of 6 blocks, so a range's blocking is its own affair.
    at::parallel_for(0, (blocks + 5) / 6, 1, [&](int64_t g0, int64_t g1) {
      const int64_t nb0 = g0 * 6, nb1 = std::min(blocks, g1 * 6);
      const float* xr = xp + r0 * K;
      float* yr = yp + r0 * ldy;
      switch (w_kind) {
        case Weights::fp16:
          columns<Weights::fp16>(xr, K, rows, static_cast<const uint16_t*>(wp), sp, K, bp, yr, ldy, nb0, nb1);
          break;
        case Weights::bf16:
          columns<Weights::bf16>(xr, K, rows, static_cast<const uint16_t*>(wp), sp, K, bp, yr, ldy, nb0, nb1);
          break;
        case Weights::fp32:
          columns<Weights::fp32>(xr, K, rows, static_cast<const float*>(wp), sp, K, bp, yr, ldy, nb0, nb1);
          break;
        case Weights::q8:
          columns<Weights::q8>(xr, K, rows, static_cast<const int8_t*>(wp), sp, K, bp, yr, ldy, nb0, nb1);
          break;
      }
    });
  }
  auto out = ldy == out_features ? y : y.narrow(1, 0, out_features);
  auto shape = input.sizes().vec();
  shape.back() = out_features;
  return out.reshape(shape);
}

namespace {

// Keys per tile: a tile's keys and values (64 x head_dim floats each) stay in L1 while every query
// of a block reads them, instead of each query streaming the whole context from L3.
constexpr int64_t TILE = 64;
// Queries per block (consecutive rows of one sequence, with every query head of one kv head).
constexpr int64_t QROWS = 16;

// Scores of keys [j0, j1) for one query: eight at a time or one at a time, the same numbers.
inline void score_keys(const float* qv, const float* kp, const int64_t* slots, int64_t D, float sc, int64_t j0,
                       int64_t j1, float* s) {
  int64_t j = j0;
  for (; j + 8 <= j1; j += 8) {
    const float* k[8];
    for (int u = 0; u < 8; ++u) k[u] = kp + slots[j + u] * D;
    __m256 acc[8];
    for (int u = 0; u < 8; ++u) acc[u] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
      const __m256 qd = _mm256_loadu_ps(qv + d);
#pragma GCC unroll 8
      for (int u = 0; u < 8; ++u) acc[u] = _mm256_fmadd_ps(qd, _mm256_loadu_ps(k[u] + d), acc[u]);
    }
    _mm256_storeu_ps(s + j, _mm256_mul_ps(hsum8(acc), _mm256_set1_ps(sc)));
  }
  for (; j < j1; ++j) {
    const float* k0 = kp + slots[j] * D;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qv + d), _mm256_loadu_ps(k0 + d), a0);
    s[j] = hsum(a0) * sc;
  }
}

// Scores [0, L) in place to exp(s - max), zero from L to the next multiple of 8; returns 1 / sum.
inline float softmax_in_place(float* s, int64_t L) {
  const int64_t stride = (L + 7) / 8 * 8;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 mx = _mm256_set1_ps(-INFINITY);
  for (int64_t c = 0; c < stride; c += 8) {
    __m256 v = _mm256_loadu_ps(s + c);
    if (c + 8 > L) {
      const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(L - c), lane));
      v = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, keep);
    }
    mx = _mm256_max_ps(mx, v);
  }
  const __m256 m = _mm256_set1_ps(hmax(mx));
  __m256 total = _mm256_setzero_ps();
  for (int64_t c = 0; c < stride; c += 8) {
    __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(s + c), m));
    if (c + 8 > L) {
      const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(L - c), lane));
      e = _mm256_and_ps(e, keep);
    }
    _mm256_storeu_ps(s + c, e);
    total = _mm256_add_ps(total, e);
  }
  return 1.0f / hsum(total);
}

// acc[0, D) += p_j * v_j for keys [j0, j1), in key order (each element one fma chain over keys).
inline void weigh_values(const float* p, const float* vp, const int64_t* slots, int64_t D, int64_t j0, int64_t j1,
                         float* acc) {
  for (int64_t d0 = 0; d0 < D; d0 += 64) {
    const int64_t n = std::min<int64_t>(64, D - d0) / 8;
    __m256 a[8];
    for (int v = 0; v < n; ++v) a[v] = _mm256_loadu_ps(acc + d0 + 8 * v);
    for (int64_t j = j0; j < j1; ++j) {
      const __m256 w = _mm256_broadcast_ss(p + j);
      const float* vrow = vp + slots[j] * D + d0;
      for (int v = 0; v < n; ++v) a[v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(vrow + 8 * v), a[v]);
    }
    for (int v = 0; v < n; ++v) _mm256_storeu_ps(acc + d0 + 8 * v, a[v]);
  }
}

}  // namespace

// q [B, T, H, D] float32; k_pool, v_pool [KVH, S, D] float32; slots [B, KV] int64 (the pool slot
// of each of a row's key positions); lengths [B, T] int64 (query t of row b sees keys 0..len-1).
// Returns [B, T, H, D] float32. Tiles and blocks only change which work is done when: every
// element's operations are the ones above, in the same order.
torch::Tensor attention(const torch::Tensor& query, const torch::Tensor& k_pool, const torch::Tensor& v_pool,
                        const torch::Tensor& slots, const torch::Tensor& lengths, double scale) {
  TORCH_CHECK(query.dim() == 4 && k_pool.dim() == 3 && v_pool.dim() == 3, "attention: bad ranks");
  TORCH_CHECK(k_pool.scalar_type() == torch::kFloat32 && v_pool.scalar_type() == torch::kFloat32,
              "attention: the pool must be float32");
  TORCH_CHECK(k_pool.is_contiguous() && v_pool.is_contiguous(), "attention: the pool must be contiguous");
  auto q = query.to(torch::kFloat32).contiguous();
  auto sl = slots.to(torch::kInt64).contiguous();
  auto len = lengths.to(torch::kInt64).contiguous();
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t KVH = k_pool.size(0), S = k_pool.size(1), KV = sl.size(1);
  TORCH_CHECK(D % 8 == 0 && D <= 256, "attention: head_dim must be a multiple of 8, at most 256");
  TORCH_CHECK(H % KVH == 0 && k_pool.size(2) == D, "attention: heads do not match the pool");
  TORCH_CHECK(sl.size(0) == B && len.size(0) == B && len.size(1) == T, "attention: bad slots or lengths");
  const int64_t G = H / KVH, blocks = (T + QROWS - 1) / QROWS;
  auto out = torch::empty({B, T, H, D}, q.options());
  const float* qp = q.data_ptr<float>();
  const int64_t* sp = sl.data_ptr<int64_t>();
  const int64_t* lp = len.data_ptr<int64_t>();
  float* op = out.data_ptr<float>();
  const float sc = static_cast<float>(scale);
  at::parallel_for(0, B * blocks * KVH, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores, acc, inv;
    int64_t L[QROWS];
    for (int64_t item = begin; item < end; ++item) {
      // Early and late blocks alternate, so each thread's share of a causal prompt costs alike.
      const int64_t g = item % KVH, pair = item / KVH;
      const int64_t flat = pair % 2 == 0 ? pair / 2 : B * blocks - 1 - pair / 2;
      const int64_t b = flat / blocks, t0 = (flat % blocks) * QROWS, rows = std::min(QROWS, T - t0);
      const int64_t* row_slots = sp + b * KV;
      const float* kp = k_pool.data_ptr<float>() + g * S * D;
      const float* vp = v_pool.data_ptr<float>() + g * S * D;
      int64_t longest = 0;
      for (int64_t r = 0; r < rows; ++r) longest = std::max(longest, L[r] = std::clamp<int64_t>(lp[b * T + t0 + r], 0, KV));
      const int64_t stride = (longest + 7) / 8 * 8;
      scores.assign(rows * G * stride, 0.0f);
      acc.assign(rows * G * D, 0.0f);
      inv.assign(rows * G, 0.0f);
      auto query_of = [&](int64_t r, int64_t h) { return qp + ((b * T + t0 + r) * H + g * G + h) * D; };
      for (int64_t j0 = 0; j0 < longest; j0 += TILE) {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t h = 0; h < G; ++h)
            score_keys(query_of(r, h), kp, row_slots, D, sc, j0, std::min(j0 + TILE, L[r]),
                       scores.data() + (r * G + h) * stride);
      }
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t h = 0; h < G; ++h)
          if (L[r] > 0) inv[r * G + h] = softmax_in_place(scores.data() + (r * G + h) * stride, L[r]);
      for (int64_t j0 = 0; j0 < longest; j0 += TILE) {
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t h = 0; h < G; ++h)
            weigh_values(scores.data() + (r * G + h) * stride, vp, row_slots, D, j0, std::min(j0 + TILE, L[r]),
                         acc.data() + (r * G + h) * D);
      }
      // A query that sees no key (padding) attends to nothing: its sums stay zero.
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t h = 0; h < G; ++h) {
          float* o = op + ((b * T + t0 + r) * H + g * G + h) * D;
          const __m256 scale_v = _mm256_set1_ps(inv[r * G + h]);
          for (int64_t d = 0; d < D; d += 8)
            _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(acc.data() + (r * G + h) * D + d), scale_v));
        }
    }
  });
  return out;
}

// Every function lets go of Python's lock while it computes (its arguments are converted before):
// the event loop then streams tokens and the model loader runs while the engine multiplies, and
// packing a big model's weights no longer stalls the server (measured: 100-650 ms per matrix).
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def("pack", &pack, "weight blocks for linear: fp16, bf16 or fp32", release());
  m.def("pack_q8", &pack_q8, "weight blocks for linear: int8 codes, a scale per 32 inputs", release());
  m.def("linear", &linear, "x @ w.T (+ bias) in float32, each row on its own", py::arg("input"),
        py::arg("packed"), py::arg("out_features"), py::arg("kind"), py::arg("bias"),
        py::arg("scales") = py::none(), release());
  m.def("attention", &attention, "attention over the paged pool, each query on its own", release());
}
