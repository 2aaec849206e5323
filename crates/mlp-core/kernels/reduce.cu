// Column reductions over row-major [rows, n] matrices.
//
// Block (32, 8): threadIdx.x picks one of 32 adjacent columns (coalesced row reads),
// threadIdx.y one of 8 row lanes; grid.x covers the columns. Each thread sums rows
// ty, ty + 8, ... in double, then the 8 lanes are added in lane order through shared memory,
// so the result is deterministic and independent of the grid.

#define RED_COLS 32
#define RED_LANES 8

// out[j] = Σ_r data[r, j]   (bias gradients: column sums of dz)
extern "C" __global__ void column_sums(const float* data, int rows, int n, float* out) {
    __shared__ double part[RED_LANES][RED_COLS];
    const int j = blockIdx.x * RED_COLS + threadIdx.x;
    double s = 0.0;
    if (j < n)
        for (int r = threadIdx.y; r < rows; r += RED_LANES) s += (double)data[(size_t)r * n + j];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < n) {
        double t = 0.0;
        for (int l = 0; l < RED_LANES; ++l) t += part[l][threadIdx.x];
        out[j] = (float)t;
    }
}

// sums[j] = Σ_r a[r, j], dots[j] = Σ_r a[r, j] · b[r, j]   (BatchNorm backward: Σdy, Σdy·x̂)
extern "C" __global__ void column_sums_and_dots(const float* a, const float* b, int rows, int n,
                                                float* sums, float* dots) {
    __shared__ double ps[RED_LANES][RED_COLS];
    __shared__ double pd[RED_LANES][RED_COLS];
    const int j = blockIdx.x * RED_COLS + threadIdx.x;
    double s = 0.0, d = 0.0;
    if (j < n)
        for (int r = threadIdx.y; r < rows; r += RED_LANES) {
            const float x = a[(size_t)r * n + j];
            s += (double)x;
            d += (double)x * (double)b[(size_t)r * n + j];
        }
    ps[threadIdx.y][threadIdx.x] = s;
    pd[threadIdx.y][threadIdx.x] = d;
    __syncthreads();
    if (threadIdx.y == 0 && j < n) {
        double ts = 0.0, td = 0.0;
        for (int l = 0; l < RED_LANES; ++l) { ts += ps[l][threadIdx.x]; td += pd[l][threadIdx.x]; }
        sums[j] = (float)ts;
        dots[j] = (float)td;
    }
}
