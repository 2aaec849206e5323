// CPU emulation of mlp-core's CUDA kernels, for tests on machines without a GPU.
//
// The .cu sources are compiled as C++ with a small shim for the CUDA built-ins. A launch runs
// every block of the grid; kernels that synchronise (__syncthreads) run one OS thread per
// CUDA thread of a block with a std::barrier, the others run their threads one after another.
// Blocks run one at a time, so `__shared__` (a function-local static here) is per block.
// Kernel arguments arrive as 8-byte slots, each parameter taken from the low bytes of its slot:
// exactly how the host code passes them to cuLaunchKernel.
//
// Build: g++ -std=c++20 -O2 -fPIC -shared -pthread -I<crate>/kernels cuda_emulator.cpp
#include <barrier>
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

#include "gemm.cu"
#include "elementwise.cu"
#include "reduce.cu"
#include "batchnorm.cu"
#include "loss.cu"
#include "adamw.cu"

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
#undef K
    return 2;
}
