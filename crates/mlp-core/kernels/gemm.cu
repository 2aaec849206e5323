// Tiled single-precision GEMM with shared memory (no cuBLAS).
//
//   C[M,N] = op(A)[M,K] · op(B)[K,N] (+ bias[N] broadcast over rows when bias != 0)
//
// op(A) = A (row-major [M,K], lda) or Aᵀ (A stored row-major [K,M], lda);
// op(B) = B (row-major [K,N], ldb) or Bᵀ (B stored row-major [N,K], ldb).
// The MLP needs three forms:
//   sgemm_nt: forward        out[rows,n] = x[rows,k] · W[n,k]ᵀ + b
//   sgemm_nn: input grad     dx[rows,k]  = dz[rows,n] · W[n,k]
//   sgemm_tn: weight grad    dW[n,k]     = dz[rows,n]ᵀ · x[rows,k]
//
// Block tile BM×BN = 64×64, K-step BK = 16, 256 threads, each thread a 4×4 register tile.
// Every output is one in-order sum over k (fixed tiling), so results are deterministic.

#define BM 64
#define BN 64
#define BK 16
#define TM 4
#define TN 4

template <bool TA, bool TB>
__device__ __forceinline__ void sgemm_tile(int M, int N, int K,
                                           const float* __restrict__ A, int lda,
                                           const float* __restrict__ B, int ldb,
                                           const float* __restrict__ bias,
                                           float* __restrict__ C, int ldc) {
    __shared__ float As[BK][BM + 1];  // As[k][m] = op(A)(m0 + m, k0 + k)
    __shared__ float Bs[BK][BN + 1];  // Bs[k][n] = op(B)(k0 + k, n0 + n)

    const int tid = threadIdx.x;           // 0..255
    const int tx = tid % (BN / TN);        // 0..15: column group
    const int ty = tid / (BN / TN);        // 0..15: row group
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += BK) {
        // Each thread loads BM*BK/256 = 4 elements of A and 4 of B. The thread→element map
        // follows the operand's contiguous dimension so global reads coalesce.
#pragma unroll
        for (int l = 0; l < (BM * BK) / 256; ++l) {
            const int e = tid + l * 256;
            int m, k;
            if (TA) { k = e / BM; m = e % BM; } else { m = e / BK; k = e % BK; }
            const int gm = m0 + m, gk = k0 + k;
            float v = 0.0f;
            if (gm < M && gk < K) v = TA ? A[(size_t)gk * lda + gm] : A[(size_t)gm * lda + gk];
            As[k][m] = v;
        }
#pragma unroll
        for (int l = 0; l < (BN * BK) / 256; ++l) {
            const int e = tid + l * 256;
            int n, k;
            if (TB) { n = e / BK; k = e % BK; } else { k = e / BN; n = e % BN; }
            const int gn = n0 + n, gk = k0 + k;
            float v = 0.0f;
            if (gn < N && gk < K) v = TB ? B[(size_t)gn * ldb + gk] : B[(size_t)gk * ldb + gn];
            Bs[k][n] = v;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < BK; ++k) {
            float a[TM], b[TN];
#pragma unroll
            for (int i = 0; i < TM; ++i) a[i] = As[k][ty * TM + i];
#pragma unroll
            for (int j = 0; j < TN; ++j) b[j] = Bs[k][tx * TN + j];
#pragma unroll
            for (int i = 0; i < TM; ++i)
#pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int gm = m0 + ty * TM + i;
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int gn = n0 + tx * TN + j;
            if (gn >= N) continue;
            float v = acc[i][j];
            if (bias != 0) v += bias[gn];
            C[(size_t)gm * ldc + gn] = v;
        }
    }
}

extern "C" __global__ void sgemm_nn(int M, int N, int K, const float* A, int lda,
                                    const float* B, int ldb, const float* bias,
                                    float* C, int ldc) {
    sgemm_tile<false, false>(M, N, K, A, lda, B, ldb, bias, C, ldc);
}

extern "C" __global__ void sgemm_nt(int M, int N, int K, const float* A, int lda,
                                    const float* B, int ldb, const float* bias,
                                    float* C, int ldc) {
    sgemm_tile<false, true>(M, N, K, A, lda, B, ldb, bias, C, ldc);
}

extern "C" __global__ void sgemm_tn(int M, int N, int K, const float* A, int lda,
                                    const float* B, int ldb, const float* bias,
                                    float* C, int ldc) {
    sgemm_tile<true, false>(M, N, K, A, lda, B, ldb, bias, C, ldc);
}
