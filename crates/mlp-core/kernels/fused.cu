// Whole-network inference forward of a folded MLP in one kernel, on tensor cores.
//
// Each block takes FUSED_ROWS rows through every layer; activations stay in shared memory
// (two ping-pong buffers, row-major, leading dimensions ld0/ld1 ≡ 4 mod 32 so the A-fragment
// loads are free of bank conflicts) and only the logits go back to global memory. The
// products are `mma.sync.m16n8k8` with TF32 operands (10-bit mantissa, rounded to nearest,
// ties away: cvt.rna) and fp32 accumulation.
//
//   mlp_forward_tf32_*    one TF32 product per term: ≈ 1e-3 relative error.
//   mlp_forward_3xtf32_*  a = a_hi + a_lo, b = b_hi + b_lo, a·b ≈ a_hi·b_hi + a_hi·b_lo +
//                         a_lo·b_hi: three products, about fp32 accuracy.
// The suffix names the warp's output chunk in mma tiles: m2n4 = 32×32, m4n2 = 64×16,
// m4n4 = 64×32 (see mlp_forward_tile).
//
// Layout prepared by the host (`CudaServing` in src/backend/cuda.rs):
//   desc[FUSED_DESC * l ..]: k_pad (multiple of 8; the previous layer's n_pad), n_pad
//   (multiple of 32), n (real outputs), activation code, weight offset, bias offset (floats
//   into `params`).
//   Weights of layer l, zero-padded to [n_pad][k_pad], in fragment order: for output tile nt
//   (8 rows of W) and k-step ks (8 columns) a block of 64 floats at (nt * k_pad/8 + ks) * 64,
//   lane L holding (W[nt*8 + L/4][ks*8 + L%4], W[nt*8 + L/4][ks*8 + L%4 + 4]): one coalesced
//   8-byte load per lane. Bias zero-padded to n_pad. Padded outputs are act(0 + 0) = 0, so the
//   next layer's padded inputs are zero.
// Needs compute capability 8.0 (mma with TF32); compiled with --gpu-architecture=compute_80.

#define FUSED_ROWS 64
#define FUSED_THREADS 256
#define FUSED_DESC 6

#ifndef FLOWXAI_EMULATOR
// Round to TF32 (nearest, ties away from zero), as the bit pattern of an fp32 value.
__device__ __forceinline__ unsigned to_tf32(float f) {
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(f));
    return r;
}

// d += A·B for one 16×8×8 tile (fragments as in the PTX ISA, "mma.m16n8k8" for .tf32).
__device__ __forceinline__ void mma_tf32(float d[4], const unsigned a[4], const unsigned b[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#define FUSED_SHARED(name) extern __shared__ float name[]
#endif

__device__ __forceinline__ float fused_act(float v, int act) {
    if (act == 1) return v > 0.0f ? v : 0.0f;
    if (act == 2) return v > 0.0f ? v : expm1f(v);
    return v;
}

// One warp computes a (16·MT)-row × (8·NT)-column chunk of a layer's output at a time:
// MT·NT accumulator tiles, MT A fragments (shared memory) and NT B fragments (global, L2) per
// k-step. The B fragments of the next k-step are loaded before the current step's products, so
// their L2 latency overlaps the tensor-core work.
template <bool SPLIT, int MT, int NT>
__device__ __forceinline__ void mlp_forward_tile(int rows, int nf, const float* __restrict__ x,
                                                 int n_layers, const int* __restrict__ desc,
                                                 const float* __restrict__ params,
                                                 float* __restrict__ out, int ld0, int ld1) {
    constexpr int ROW_CHUNKS = FUSED_ROWS / (16 * MT);
    FUSED_SHARED(smem);
    const int tid = threadIdx.x;
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, t = lane & 3;
    const int r0 = blockIdx.x * FUSED_ROWS;
    const int valid = rows - r0 < FUSED_ROWS ? rows - r0 : FUSED_ROWS;
    float* buf0 = smem;
    float* buf1 = smem + FUSED_ROWS * ld0;

    // Input tile, zero-padded to the first layer's k_pad columns and to FUSED_ROWS rows.
    // Consecutive threads read consecutive floats of the contiguous row block: coalesced.
    const int kp0 = desc[0];
    for (int e = tid; e < FUSED_ROWS * kp0; e += FUSED_THREADS) {
        const int r = e / kp0, c = e - r * kp0;
        float v = 0.0f;
        if (r < valid && c < nf) v = x[(size_t)(r0 + r) * nf + c];
        buf0[r * ld0 + c] = v;
    }
    __syncthreads();

    for (int l = 0; l < n_layers; ++l) {
        const int* d = desc + FUSED_DESC * l;
        const int kp = d[0], np = d[1], n_real = d[2], act = d[3];
        const float2* __restrict__ w = reinterpret_cast<const float2*>(params + d[4]) + lane;
        const float* __restrict__ bias = params + d[5];
        const bool last = l == n_layers - 1;
        const float* in = (l & 1) ? buf1 : buf0;
        float* o = (l & 1) ? buf0 : buf1;
        const int ldi = (l & 1) ? ld1 : ld0, ldo = (l & 1) ? ld0 : ld1;
        const int ksteps = kp / 8;
        const int chunks = ROW_CHUNKS * (np / (8 * NT));
        for (int ch = warp; ch < chunks; ch += FUSED_THREADS / 32) {
            const int rc = ch % ROW_CHUNKS, cc = ch / ROW_CHUNKS;
            float acc[MT][NT][4];
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;
            // Fragment block (nt, ks) starts at float2 (nt * ksteps + ks) * 32.
            float2 b_next[NT];
#pragma unroll
            for (int j = 0; j < NT; ++j) b_next[j] = w[(size_t)(cc * NT + j) * ksteps * 32];
            for (int ks = 0; ks < ksteps; ++ks) {
                float2 b_cur[NT];
#pragma unroll
                for (int j = 0; j < NT; ++j) b_cur[j] = b_next[j];
                if (ks + 1 < ksteps) {
#pragma unroll
                    for (int j = 0; j < NT; ++j)
                        b_next[j] = w[((size_t)(cc * NT + j) * ksteps + ks + 1) * 32];
                }
                unsigned ah[MT][4], al[MT][4];
#pragma unroll
                for (int i = 0; i < MT; ++i) {
                    const float* a = in + (rc * 16 * MT + i * 16 + g) * ldi + ks * 8 + t;
                    const float av[4] = {a[0], a[8 * ldi], a[4], a[8 * ldi + 4]};
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        ah[i][q] = to_tf32(av[q]);
                        al[i][q] = SPLIT ? to_tf32(av[q] - __uint_as_float(ah[i][q])) : 0u;
                    }
                }
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const unsigned bh[2] = {to_tf32(b_cur[j].x), to_tf32(b_cur[j].y)};
#pragma unroll
                    for (int i = 0; i < MT; ++i) mma_tf32(acc[i][j], ah[i], bh);
                    if (SPLIT) {
                        const unsigned bl[2] = {to_tf32(b_cur[j].x - __uint_as_float(bh[0])),
                                                to_tf32(b_cur[j].y - __uint_as_float(bh[1]))};
#pragma unroll
                        for (int i = 0; i < MT; ++i) {
                            mma_tf32(acc[i][j], ah[i], bl);
                            mma_tf32(acc[i][j], al[i], bh);
                        }
                    }
                }
            }
            // Epilogue: bias + activation; d[q] sits at row g + 8·(q/2), column 2t + q%2.
#pragma unroll
            for (int i = 0; i < MT; ++i)
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int q = 0; q < 4; ++q) {
                        const int r = rc * 16 * MT + i * 16 + g + 8 * (q >> 1);
                        const int c = (cc * NT + j) * 8 + 2 * t + (q & 1);
                        const float v = fused_act(acc[i][j][q] + bias[c], act);
                        if (!last) {
                            o[r * ldo + c] = v;
                        } else if (r < valid && c < n_real) {
                            out[(size_t)(r0 + r) * n_real + c] = v;
                        }
                    }
        }
        // The next layer reads what every warp wrote and overwrites this layer's input.
        __syncthreads();
    }
}

// Entry points: precision × warp chunk (m2n4 = 32×32, m4n2 = 64×16, m4n4 = 64×32 outputs).
extern "C" __global__ void mlp_forward_tf32_m2n4(int rows, int nf, const float* x, int n_layers,
    const int* desc, const float* params, float* out, int ld0, int ld1) {
    mlp_forward_tile<false, 2, 4>(rows, nf, x, n_layers, desc, params, out, ld0, ld1);
}

extern "C" __global__ void mlp_forward_tf32_m4n2(int rows, int nf, const float* x, int n_layers,
    const int* desc, const float* params, float* out, int ld0, int ld1) {
    mlp_forward_tile<false, 4, 2>(rows, nf, x, n_layers, desc, params, out, ld0, ld1);
}

extern "C" __global__ void mlp_forward_tf32_m4n4(int rows, int nf, const float* x, int n_layers,
    const int* desc, const float* params, float* out, int ld0, int ld1) {
    mlp_forward_tile<false, 4, 4>(rows, nf, x, n_layers, desc, params, out, ld0, ld1);
}

extern "C" __global__ void mlp_forward_3xtf32_m2n4(int rows, int nf, const float* x, int n_layers,
    const int* desc, const float* params, float* out, int ld0, int ld1) {
    mlp_forward_tile<true, 2, 4>(rows, nf, x, n_layers, desc, params, out, ld0, ld1);
}

extern "C" __global__ void mlp_forward_3xtf32_m4n2(int rows, int nf, const float* x, int n_layers,
    const int* desc, const float* params, float* out, int ld0, int ld1) {
    mlp_forward_tile<true, 4, 2>(rows, nf, x, n_layers, desc, params, out, ld0, ld1);
}

extern "C" __global__ void mlp_forward_3xtf32_m4n4(int rows, int nf, const float* x, int n_layers,
    const int* desc, const float* params, float* out, int ld0, int ld1) {
    mlp_forward_tile<true, 4, 4>(rows, nf, x, n_layers, desc, params, out, ld0, ld1);
}
