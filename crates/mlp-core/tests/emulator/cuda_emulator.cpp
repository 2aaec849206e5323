// CPU emulation of mlp-core's CUDA kernels, for tests on machines without a GPU.
//
// The .cu sources are compiled as C++ with a small shim for the CUDA built-ins. A launch runs
// every block of the grid; kernels that synchronise (__syncthreads) run one OS thread per
// CUDA thread of a block with a std::barrier, the others run their threads one after another.
// Blocks run one at a time, so `__shared__` (a function-local static here) is per block.
// Kernel arguments arrive as 8-byte slots, each parameter taken from the low bytes of its slot:
// exactly how the host code passes them to cuLaunchKernel.
//
// Warp-level tensor-core instructions (`mma_tf32` of fused.cu) are emulated by exchanging the
// 32 lanes' fragments through per-warp scratch memory between two per-warp barriers; the
// fused kernel's dynamic shared memory is one static arena (blocks run one at a time).
//
// Build: g++ -std=c++20 -O2 -fPIC -shared -pthread -I<crate>/kernels cuda_emulator.cpp
#include <barrier>
#include <memory>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct uint3 { unsigned x, y, z; };
struct dim3 { unsigned x, y, z; };
static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static dim3 blockDim;
static dim3 gridDim;
static std::barrier<>* g_barrier = nullptr;
static std::vector<std::unique_ptr<std::barrier<>>>* g_warp_barriers = nullptr;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

static inline void __syncthreads() { g_barrier->arrive_and_wait(); }
static inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}
static inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, sizeof f);
    return f;
}

static inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}
struct float2 { float x, y; };

// ---- fused.cu's device primitives ----
#define FLOWXAI_EMULATOR 1
static float g_dynamic_shared[64 * 1024];  // 256 KB, more than any device allows per block
#define FUSED_SHARED(name) float* name = g_dynamic_shared

// cvt.rna.tf32.f32: keep 10 mantissa bits, round to nearest with ties away from zero (adding
// half an ulp to the magnitude, then truncating); infinities and NaN keep their class.
static inline unsigned to_tf32(float f) {
    unsigned u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) u += 0x1000u;
    return u & 0xffffe000u;
}

// mma.sync.m16n8k8 .row.col f32.tf32.tf32.f32 with the PTX ISA's fragment layout:
// A[16×8]: a[r] of lane L at (L/4 + 8·(r%2), L%4 + 4·(r/2)); B[8×8]: b[r] at (k = L%4 + 4r,
// n = L/4); D[16×8]: d[r] at (L/4 + 8·(r/2), 2·(L%4) + r%2). Sums in fp32, k ascending.
struct WarpFragments {
    unsigned a[32][4];
    unsigned b[32][2];
};
static WarpFragments g_warp_fragments[32];
static inline void mma_tf32(float d[4], const unsigned a[4], const unsigned b[2]) {
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    WarpFragments& f = g_warp_fragments[warp];
    std::barrier<>& bar = *(*g_warp_barriers)[warp];
    for (int r = 0; r < 4; ++r) f.a[lane][r] = a[r];
    for (int r = 0; r < 2; ++r) f.b[lane][r] = b[r];
    bar.arrive_and_wait();
    for (int r = 0; r < 4; ++r) {
        const unsigned row = lane / 4 + 8 * (r / 2), col = 2 * (lane % 4) + r % 2;
        float acc = d[r];
        for (unsigned k = 0; k < 8; ++k) {
            const float av = __uint_as_float(f.a[(row % 8) * 4 + k % 4][row / 8 + 2 * (k / 4)]);
            const float bv = __uint_as_float(f.b[col * 4 + k % 4][k / 4]);
            acc += av * bv;
        }
        d[r] = acc;
    }
    bar.arrive_and_wait();  // the scratch is reused by the next mma
}

#include "gemm.cu"
#include "elementwise.cu"
#include "reduce.cu"
#include "batchnorm.cu"
#include "loss.cu"
#include "adamw.cu"
#include "fused.cu"

template <class T>
static T from_slot(uint64_t s) {
    T v;
    std::memcpy(&v, &s, sizeof(T));
    return v;
}

template <class... A, size_t... I>
static void call(void (*k)(A...), const uint64_t* s, std::index_sequence<I...>) {
    k(from_slot<A>(s[I])...);
}

template <class... A>
static int launch(void (*k)(A...), bool syncs, const uint64_t* slots, int nargs, dim3 grid,
                  dim3 block) {
    if (nargs != (int)sizeof...(A)) return 1;
    gridDim = grid;
    blockDim = block;
    const unsigned nthreads = block.x * block.y * block.z;
    auto set_thread = [&](unsigned t) {
        threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    };
    auto for_blocks = [&](auto&& body) {
        for (unsigned z = 0; z < grid.z; ++z)
            for (unsigned y = 0; y < grid.y; ++y)
                for (unsigned x = 0; x < grid.x; ++x) {
                    blockIdx = {x, y, z};
                    body();
                }
    };
    if (!syncs) {
        for_blocks([&] {
            for (unsigned t = 0; t < nthreads; ++t) {
                set_thread(t);
                call(k, slots, std::index_sequence_for<A...>{});
            }
        });
        return 0;
    }
    std::barrier<> bar((std::ptrdiff_t)nthreads);
    g_barrier = &bar;
    std::vector<std::unique_ptr<std::barrier<>>> warp_bars;
    for (unsigned w = 0; w * 32 < nthreads; ++w)
        warp_bars.push_back(std::make_unique<std::barrier<>>(
            (std::ptrdiff_t)(nthreads - w * 32 < 32 ? nthreads - w * 32 : 32)));
    g_warp_barriers = &warp_bars;
    std::vector<std::thread> pool;
    pool.reserve(nthreads);
    for (unsigned t = 0; t < nthreads; ++t)
        pool.emplace_back([&, t] {
            set_thread(t);
            for_blocks([&] {
                call(k, slots, std::index_sequence_for<A...>{});
                bar.arrive_and_wait();  // block boundary: shared memory is reused
            });
        });
    for (auto& th : pool) th.join();
    g_barrier = nullptr;
    g_warp_barriers = nullptr;
    return 0;
}

// 0 = ok, 1 = wrong argument count, 2 = unknown kernel.
extern "C" int emu_launch(const char* name, const uint64_t* slots, int nargs, unsigned gx,
                          unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz) {
    const std::string n(name);
    const dim3 g{gx, gy, gz}, b{bx, by, bz};
#define K(fn, syncs) \
    if (n == #fn) return launch(fn, syncs, slots, nargs, g, b);
    K(sgemm_nn, true)
    K(sgemm_nt, true)
    K(sgemm_tn, true)
    K(bias_act_forward, false)
    K(act_backward, false)
    K(mul_into, false)
    K(axpy, false)
    K(dropout_philox, false)
    K(gather_batch, false)
    K(column_sums, true)
    K(column_sums_and_dots, true)
    K(bn_stats, true)
    K(bn_normalize_act, false)
    K(bn_eval_act, false)
    K(bn_backward_input, false)
    K(weight_sum, true)
    K(softmax_ce, false)
    K(step_metrics, true)
    K(adamw_step, false)
    K(adam_sklearn_step, false)
    K(mlp_forward_tf32_m2n4, true)
    K(mlp_forward_tf32_m4n2, true)
    K(mlp_forward_tf32_m4n4, true)
    K(mlp_forward_3xtf32_m2n4, true)
    K(mlp_forward_3xtf32_m4n2, true)
    K(mlp_forward_3xtf32_m4n4, true)
#undef K
    return 2;
}
