/* Stage 1's compiled losses and L-BFGS (float64): the C side of apftools/_fitkernel.py, which documents the
 * functions, the memory layouts and why every loop is written out in a fixed order.
 *
 * Built with the package (pyproject.toml: -O3 -ffp-contract=off, so no fused multiply-adds and the same bits
 * on every machine; no -ffast-math).  Loops over frequencies hold no sums, so the compiler may run them in SIMD
 * lanes (elementwise IEEE arithmetic: the same bits on any vector width); sums over frequencies run in the
 * fixed order of dot().  Called through ctypes, which releases the GIL for the length of a call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The kernels that evaluate losses compiled for SSE2, AVX2 and AVX-512, and the widest the CPU runs picked when
 * the library loads (GCC's function multiversioning; the loops they inline run in lanes that wide).  Elementwise
 * IEEE arithmetic gives the same bits on any vector width, and with -ffp-contract=off no version fuses a
 * multiply and an add (tests/test_reproducible.py builds it with APFTOOLS_SSE2_ONLY to check).  The versions are
 * picked through an ifunc, which glibc has (macOS and musl do not: one version there). */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute) && !defined(APFTOOLS_SSE2_ONLY)
#if __has_attribute(target_clones)
#define LANES __attribute__((target_clones("default", "avx2", "avx512f")))
#endif
#endif
#ifndef LANES
#define LANES
#endif
#define INLINE static inline __attribute__((always_inline))

/* Complex step of the parameter derivatives (Squire and Trapp, SIAM Review 40(1), 1998). */
#define STEP 1e-30

/* What every kernel needs of the cascades and the frequency grid (apftools._fitkernel.Geometry). */
typedef struct {
    const double *omega;     /* (F,) rad/sample */
    const double *e;         /* (2, 2, S, F): real and imaginary parts of e^{-j k M_s omega_f}, k = 1, 2 */
    const double *signs;     /* (S,) +1 causal, -1 anti-causal */
    const int64_t *kinds;    /* (S, 3): order, stretch, warped */
    const int64_t *columns;  /* (S, 3): theta index of R, fc, a (-1: none) */
    const double *table;     /* R_MAX, A_MAX, fc low, fc high (Hz), EDGE_MARGIN, FC_NYQUIST_FRACTION */
    const double *rho, *rho_low, *c_on, *c_off; /* (S,) each; NULL: no ring penalty */
    double n_poles, fs;
    int64_t n_sections, n_freqs;
} Geometry;

/* One stage-1 loss: 0 the phase loss against complex targets (T, F), 1 the group-delay loss (real parts). */
typedef struct {
    const double complex *targets;
    const int64_t *target_of_row; /* (B,) */
    const double *weights;        /* (F,) */
    double ring_weight, scale;
    int64_t mode;
} Loss;

/* Scratch of one evaluation, one block: a (S, 2), da (S, 2, 3), acc (S, 2), per section and frequency 1 / A_s
 * and q_s (4, S, F), per frequency (6, F). */
typedef struct {
    double *a, *da, *acc, *section, *per_freq;
} Work;

static int work_alloc(Work *w, int64_t n_sections, int64_t n_freqs)
{
    w->a = malloc(sizeof(double) * (10 * n_sections + 4 * n_sections * n_freqs + 6 * n_freqs + 1));
    if (!w->a)
        return -1;
    w->da = w->a + 2 * n_sections;
    w->acc = w->da + 6 * n_sections;
    w->section = w->acc + 2 * n_sections;
    w->per_freq = w->section + 4 * n_sections * n_freqs;
    return 0;
}

static void work_free(Work *w) { free(w->a); }

/* Complex arithmetic as CPython's cmath and numba do it (cmathmodule.c; numba/cpython/cmathimpl.py), for the
 * finite, moderate arguments met here: the derivatives' last bits, which L-BFGS amplifies into another optimum,
 * are those of the numba kernels these replaced, and do not depend on the compiler's complex division.  At a
 * complex step x + iy, each gives f(x) + i y f'(x) to double precision. */
static double complex cdiv(double complex a, double complex b) /* Smith's algorithm, CPython's _Py_c_quot */
{
    double ar = creal(a), ai = cimag(a), br = creal(b), bi = cimag(b);
    if (fabs(br) >= fabs(bi)) {
        double ratio = bi / br, denom = br + bi * ratio;
        return CMPLX((ar + ai * ratio) / denom, (ai - ar * ratio) / denom);
    }
    double ratio = br / bi, denom = br * ratio + bi;
    return CMPLX((ar * ratio + ai) / denom, (ai * ratio - ar) / denom);
}

static double complex c_exp(double complex z)
{
    double r = exp(creal(z));
    return CMPLX(r * cos(cimag(z)), r * sin(cimag(z)));
}

static double complex c_log(double complex z)
{
    return CMPLX(log(hypot(creal(z), cimag(z))), atan2(cimag(z), creal(z)));
}

static double complex c_sqrt(double complex z) /* numpy's npy_csqrt (Algorithm 312, CACM 10, 1967) */
{
    double a = creal(z), b = cimag(z);
    if (a == 0.0 && b == 0.0)
        return CMPLX(fabs(b), b);
    double t = sqrt((fabs(a) + hypot(a, b)) * 0.5);
    return a >= 0 ? CMPLX(t, b / (2 * t)) : CMPLX(fabs(b) / (2 * t), copysign(t, b));
}

static double complex c_tanh(double complex z)
{
    double tx = tanh(creal(z)), ty = tan(cimag(z)), cx = 1.0 / cosh(creal(z));
    double txty = tx * ty, denom = 1.0 + txty * txty;
    return CMPLX(tx * (1.0 + ty * ty) / denom, ((ty / denom) * cx) * cx);
}

static double complex c_tan(double complex z) /* -j tanh(jz) */
{
    double complex r = c_tanh(CMPLX(-cimag(z), creal(z)));
    return CMPLX(cimag(r), -creal(r));
}

static double complex c_cos(double complex z) /* cosh(jz) */
{
    double x = -cimag(z), y = creal(z);
    return CMPLX(cos(y) * cosh(x), sin(y) * sinh(x));
}

static double complex c_atanh(double complex z) /* away from |z| = 1 and from overflow */
{
    int negate = creal(z) < 0.0;
    if (negate)
        z = CMPLX(-creal(z), -cimag(z));
    double ay = fabs(cimag(z)), sqay = ay * ay, zr1 = 1.0 - creal(z);
    double re = log1p(4.0 * creal(z) / (zr1 * zr1 + sqay)) * 0.25;
    double im = -atan2(-2.0 * cimag(z), zr1 * (1.0 + creal(z)) - sqay) * 0.5;
    return negate ? CMPLX(-re, -im) : CMPLX(re, im);
}

static double complex c_atan(double complex z) /* -j atanh(jz) */
{
    double complex r = c_atanh(CMPLX(-cimag(z), creal(z)));
    return CMPLX(cimag(r), -creal(r));
}

/* x^n by repeated squaring, n >= 0 (numba's and numpy's integer power: the same bits). */
static double int_power(double x, int64_t n)
{
    double result = 1.0;
    for (; n; n >>= 1, x *= x)
        if (n & 1)
            result *= x;
    return result;
}

static double complex cmax(double complex x, double complex y) { return creal(x) >= creal(y) ? x : y; }

static double complex cmin(double complex x, double complex y) { return creal(x) <= creal(y) ? x : y; }

/* apftools.structures.ParamRange.denormalise of a complex u. */
static double complex denormalise(double complex u, double complex low, double complex high, int log_scale,
                                  double margin)
{
    double complex t = 0.5 * (1.0 + (1.0 - margin) * u);
    if (log_scale)
        return low * c_exp(t * c_log(cdiv(high, low)));
    return low + t * (high - low);
}

/* Denominator (a1, a2) of one section from its (complex) unconstrained parameters. */
static void section(int64_t order, int64_t stretch, int64_t warped, double fs, double complex t_r,
                    double complex t_fc, double complex t_a, const double *table, double complex *a1,
                    double complex *a2)
{
    double r_max = table[0], a_max = table[1], fc_low = table[2], fc_high = table[3], margin = table[4];
    double nyquist = table[5];
    double complex a = warped ? denormalise(c_tanh(t_a), -a_max, a_max, 0, margin) : 0.0;
    double fs_proto = fs / (double)stretch;
    double r = int_power(r_max, stretch);
    double complex low = fc_low;
    double complex high = fmin(fc_high, nyquist * fs_proto / 2.0);
    if (order == 1) {
        double rho = (1.0 + r) / (1.0 - r);
        double complex beta = cdiv(1.0 - a, 1.0 + a);
        low = cmax(low, fs_proto / M_PI * c_atan(beta / rho));
        high = cmin(high, fs_proto / M_PI * c_atan(beta * rho));
        double complex fc = denormalise(c_tanh(t_fc), low, high, 1, margin);
        double complex t = c_tan(M_PI * fc / fs_proto);
        double complex k = cdiv(t - 1.0, t + 1.0);
        *a1 = cdiv(k + a, 1.0 + k * a);
        *a2 = 0.0;
        return;
    }
    double complex abs_a = c_sqrt(a * a + 1e-24);
    double complex radius = denormalise(c_tanh(t_r), 0.0, cdiv(r - abs_a, 1.0 - abs_a * r), 0, margin);
    double complex fc = denormalise(c_tanh(t_fc), low, high, 1, margin);
    double complex c = radius * radius;
    double complex d = -2.0 * radius * c_cos(2.0 * M_PI * fc / fs_proto);
    double complex n0 = c + a * d + a * a;
    double complex n1 = 2.0 * a * (1.0 + c) + d * (1.0 + a * a);
    double complex n2 = 1.0 + a * d + c * a * a;
    *a1 = cdiv(n1, n2);
    *a2 = cdiv(n0, n2);
}

/* Denominators a (S, 2) of every section and their derivatives da (S, 2, 3) in R, fc and a, by complex step. */
static void coefficients(const Geometry *g, const double *theta, double *a, double *da)
{
    for (int64_t s = 0; s < g->n_sections; s++) {
        const int64_t *kind = g->kinds + 3 * s, *column = g->columns + 3 * s;
        double complex values[3] = {0.0, 0.0, 0.0};
        for (int j = 0; j < 3; j++)
            if (column[j] >= 0)
                values[j] = theta[column[j]];
        for (int j = 0; j < 3; j++) {
            if (column[j] < 0) {
                da[6 * s + j] = da[6 * s + 3 + j] = 0.0;
                continue;
            }
            double complex stepped[3] = {values[0], values[1], values[2]};
            stepped[j] += STEP * I;
            double complex a1, a2;
            section(kind[0], kind[1], kind[2], g->fs, stepped[0], stepped[1], stepped[2], g->table, &a1, &a2);
            a[2 * s] = creal(a1);
            a[2 * s + 1] = creal(a2);
            da[6 * s + j] = cimag(a1) / STEP;
            da[6 * s + 3 + j] = cimag(a2) / STEP;
        }
    }
}

static double sign_of(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }

/* apftools.fit._excess of one section: the excess and its derivatives in a1 and a2. */
static void excess(double a1, double a2, double rho, double *value, double *d1, double *d2)
{
    double scale = 1.0 - rho;
    double c1 = fmax(a2 - rho * rho, 0.0) / scale;
    double c2 = fmax(fabs(a1) - rho - a2 / rho, 0.0) / scale;
    *value = c1 * c1 + c2 * c2;
    *d1 = 2.0 * c2 / scale * sign_of(a1);
    *d2 = 2.0 * c1 / scale - 2.0 * c2 / scale / rho;
}

/* apftools.fit.ring_penalty of one section: the penalty and its derivatives in a1 and a2. */
static void ring(double a1, double a2, double rho, double rho_low, double c_on, double c_off, double *penalty,
                 double *p1, double *p2)
{
    double high, e1, e2, low, l1, l2;
    excess(a1, a2, rho, &high, &e1, &e2);
    excess(a1, a2, rho_low, &low, &l1, &l2);
    int complex_poles = a1 * a1 < 4.0 * a2;
    double root = complex_poles ? sqrt(a2) : 1.0;
    double cosine = complex_poles ? -a1 / (2.0 * root) : -sign_of(a1);
    double x = fmin(fmax((c_off - cosine) / (c_off - c_on), 0.0), 1.0);
    double gate = x * x * (3.0 - 2.0 * x);
    double d_cos = complex_poles ? 6.0 * x * (1.0 - x) / (c_on - c_off) : 0.0;
    double g1 = d_cos * -1.0 / (2.0 * root), g2 = d_cos * a1 / (4.0 * (root * root * root));
    *penalty = gate * high + (1.0 - gate) * low;
    *p1 = gate * e1 + (1.0 - gate) * l1 + (high - low) * g1;
    *p2 = gate * e2 + (1.0 - gate) * l2 + (high - low) * g2;
}

void apf_basis(const double *omega, int64_t n_freqs, const double *stretch, int64_t n_sections, double *e)
{
    for (int k = 0; k < 2; k++)
        for (int64_t s = 0; s < n_sections; s++)
            for (int64_t f = 0; f < n_freqs; f++) {
                double x = (k + 1) * stretch[s] * omega[f];
                e[((0 * 2 + k) * n_sections + s) * n_freqs + f] = cos(x);
                e[((1 * 2 + k) * n_sections + s) * n_freqs + f] = -sin(x);
            }
}

void apf_phasors(const double complex *h, int64_t n, double complex *out)
{
    for (int64_t f = 0; f < n; f++) {
        double m = hypot(creal(h[f]), cimag(h[f]));
        out[f] = m > 0 ? CMPLX(creal(h[f]) / m, cimag(h[f]) / m) : 1.0;
    }
}

/* Cody-Waite splitting of pi / 2 (fdlibm's e_rem_pio2.c: 33 + 33 + 53 bits, so k times the first two parts is
 * exact for the |k| < 2^20 the losses meet) and fdlibm's minimax coefficients of sin and cos on [-pi/4, pi/4]
 * (k_sin.c, k_cos.c): cos and sin within about an ulp of the C library's for |x| < 1e5, in plain arithmetic
 * that the compiler may vectorise (the C library's are one call per value). */
/* floor(v) for |v| < 2^31 through a truncating conversion, which SSE2 has in vector form (the C library's floor
 * is a call per value there, which keeps the loop below out of SIMD lanes). */
static inline double floor_small(double v)
{
    double t = (double)(int32_t)v;
    return t > v ? t - 1.0 : t;
}

INLINE void sincos_lanes(const double *x, double *c, double *s, int64_t n)
{
    const double p1 = 1.57079632673412561417e+00, p2 = 6.07710050630396597660e-11,
                 p3 = 2.02226624879595063154e-21;
    const double s1 = -1.66666666666666324348e-01, s2 = 8.33333333332248946124e-03,
                 s3 = -1.98412698298579493134e-04, s4 = 2.75573137070700676789e-06,
                 s5 = -2.50507602534068634195e-08, s6 = 1.58969099521155010221e-10;
    const double c1 = 4.16666666666666019037e-02, c2 = -1.38888888888741095749e-03,
                 c3 = 2.48015872894767294178e-05, c4 = -2.75573143513906633035e-07,
                 c5 = 2.08757232129817482790e-09, c6 = -1.13596475577881948265e-11;
    for (int64_t f = 0; f < n; f++) {
        double xf = x[f];
        double k = floor_small(xf * 0.63661977236758134308 + 0.5); /* the nearest multiple of pi / 2 */
        double r = ((xf - k * p1) - k * p2) - k * p3;
        double z = r * r;
        double sine = r + z * r * (s1 + z * (s2 + z * (s3 + z * (s4 + z * (s5 + z * s6)))));
        double half = 0.5 * z;
        double w = 1.0 - half;
        double cosine = w + (((1.0 - w) - half) + z * z * (c1 + z * (c2 + z * (c3 + z * (c4 + z * (c5 + z * c6))))));
        double q = k - 4.0 * floor_small(0.25 * k); /* the quadrant, 0 to 3 */
        int odd = q == 1.0 || q == 3.0;
        double cx = odd ? sine : cosine, sx = odd ? cosine : sine;
        c[f] = q == 1.0 || q == 2.0 ? -cx : cx;
        s[f] = q >= 2.0 ? -sx : sx;
    }
}

/* sum_f x_f y_f in four interleaved partial sums added in a fixed order. */
INLINE double dot(const double *x, const double *y, int64_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t top = n - n % 4;
    for (int64_t f = 0; f < top; f += 4) {
        s0 += x[f] * y[f];
        s1 += x[f + 1] * y[f + 1];
        s2 += x[f + 2] * y[f + 2];
        s3 += x[f + 3] * y[f + 3];
    }
    for (int64_t f = top; f < n; f++)
        s0 += x[f] * y[f];
    return (s0 + s1) + (s2 + s3);
}

/* One section of loss(): 1 / A_s at every frequency (ir, ii), then mode 0 multiplies (p_re, p_im) by
 * conj(1 / A_s) = A_s / |A_s|^2 (its argument; the magnitude drops out), mode 1 keeps
 * q_s = (a1 e1 + 2 a2 e2) / A_s (qr, qi) and adds sign M_s Re q_s to p_re.  The arrays are separate (restrict),
 * so the compiler runs these loops in SIMD lanes without checking their overlap at run time. */
INLINE void section_terms(int64_t n, int64_t mode, double a1, double a2, double sign, double stretch,
                          const double *restrict e1r, const double *restrict e2r, const double *restrict e1i,
                          const double *restrict e2i, double *restrict ir, double *restrict ii, double *restrict qr,
                          double *restrict qi, double *restrict p_re, double *restrict p_im)
{
    for (int64_t f = 0; f < n; f++) {
        double d_re = 1.0 + a1 * e1r[f] + a2 * e2r[f];
        double d_im = a1 * e1i[f] + a2 * e2i[f];
        double m = 1.0 / (d_re * d_re + d_im * d_im);
        ir[f] = d_re * m;
        ii[f] = -d_im * m;
    }
    if (mode == 0) {
        for (int64_t f = 0; f < n; f++) {
            double c_im = -sign * ii[f];
            double re = p_re[f] * ir[f] - p_im[f] * c_im;
            p_im[f] = p_re[f] * c_im + p_im[f] * ir[f];
            p_re[f] = re;
        }
        return;
    }
    for (int64_t f = 0; f < n; f++) {
        double n_re = a1 * e1r[f] + 2.0 * a2 * e2r[f], n_im = a1 * e1i[f] + 2.0 * a2 * e2i[f];
        qr[f] = n_re * ir[f] - n_im * ii[f];
        qi[f] = n_re * ii[f] + n_im * ir[f];
        p_re[f] += sign * stretch * qr[f];
    }
}

/* The loss of one row (theta, tau) of length n against `target`; its gradient written into grad. */
INLINE double loss(const Geometry *g, const Loss *l, const double *row, int64_t n, const double complex *target,
                   double *grad, Work *w)
{
    int64_t n_sections = g->n_sections, n_freqs = g->n_freqs, mode = l->mode;
    const double *e = g->e, *omega = g->omega, *weights = l->weights;
    const double n_poles = g->n_poles, scale = l->scale; /* locals: the loops' stores cannot alias them */
    double *a = w->a, *da = w->da, *acc = w->acc;
    double *i_re = w->section, *i_im = i_re + n_sections * n_freqs;
    double *q_re = i_im + n_sections * n_freqs, *q_im = q_re + n_sections * n_freqs;
    double *restrict p_re = w->per_freq, *restrict p_im = p_re + n_freqs, *restrict slope = p_im + n_freqs;
    double *restrict scratch = slope + n_freqs, *restrict cosine = scratch + n_freqs, *restrict sine = cosine + n_freqs;
    memset(grad, 0, sizeof(double) * n);
    double tau = row[n - 1];
    coefficients(g, row, a, da);
    /* mode 0: prod_s A_s^(sign_s), whose argument is sum_s sign_s arg A_s; mode 1: the sum of the q's */
    for (int64_t f = 0; f < n_freqs; f++) {
        p_re[f] = 1.0 - (double)mode;
        p_im[f] = 0.0;
    }
    for (int64_t s = 0; s < n_sections; s++)
        section_terms(n_freqs, mode, a[2 * s], a[2 * s + 1], g->signs[s], (double)g->kinds[3 * s + 1],
                      e + s * n_freqs, e + (n_sections + s) * n_freqs, e + (2 * n_sections + s) * n_freqs,
                      e + (3 * n_sections + s) * n_freqs, i_re + s * n_freqs, i_im + s * n_freqs,
                      q_re + s * n_freqs, q_im + s * n_freqs, p_re, p_im);
    double value = 0.0, d_tau = 0.0;
    if (mode == 0) {
        for (int64_t f = 0; f < n_freqs; f++)
            cosine[f] = n_poles * omega[f] + omega[f] * tau;
        sincos_lanes(cosine, cosine, sine, n_freqs);
        for (int64_t f = 0; f < n_freqs; f++) {
            /* e^{j r} = target e^{-j phase} e^{j omega tau}, phase = -n_poles omega - 2 arg(product) */
            double m = 1.0 / (p_re[f] * p_re[f] + p_im[f] * p_im[f]);
            double u_re = (p_re[f] * p_re[f] - p_im[f] * p_im[f]) * m, u_im = 2.0 * p_re[f] * p_im[f] * m;
            double c = cosine[f], sn = sine[f];
            double v_re = u_re * c - u_im * sn, v_im = u_re * sn + u_im * c;
            double t_re = creal(target[f]), t_im = cimag(target[f]);
            double r_re = t_re * v_re - t_im * v_im, r_im = t_re * v_im + t_im * v_re;
            value += weights[f] * 0.5 * ((r_re - 1.0) * (r_re - 1.0) + r_im * r_im); /* 1 - cos r, exact near 0 */
            slope[f] = weights[f] * r_im;
        }
        d_tau = dot(slope, omega, n_freqs);
        for (int64_t s = 0; s < n_sections; s++) /* d phase / d a_k = -2 sign Im(e_k / A); gradient = -slope d phase */
            for (int k = 0; k < 2; k++) {
                const double *restrict er = e + (k * n_sections + s) * n_freqs;
                const double *restrict ei = e + ((2 + k) * n_sections + s) * n_freqs;
                const double *restrict ir = i_re + s * n_freqs, *restrict ii = i_im + s * n_freqs;
                for (int64_t f = 0; f < n_freqs; f++)
                    scratch[f] = er[f] * ii[f] + ei[f] * ir[f];
                acc[2 * s + k] = 2.0 * g->signs[s] * dot(slope, scratch, n_freqs);
            }
    } else {
        for (int64_t f = 0; f < n_freqs; f++) {
            double r = creal(target[f]) - (n_poles - 2.0 * p_re[f]) - tau;
            double x = r / scale;
            double root = sqrt(1.0 + x * x);
            value += weights[f] * scale * scale * (root - 1.0);
            slope[f] = -weights[f] * r / root;
            d_tau += slope[f];
        }
        for (int64_t s = 0; s < n_sections; s++) /* d tau / d a_k = -2 sign M Re(e_k (k - q) / A) */
            for (int k = 0; k < 2; k++) {
                const double *restrict er = e + (k * n_sections + s) * n_freqs;
                const double *restrict ei = e + ((2 + k) * n_sections + s) * n_freqs;
                const double *restrict ir = i_re + s * n_freqs, *restrict ii = i_im + s * n_freqs;
                const double *restrict qr = q_re + s * n_freqs, *restrict qi = q_im + s * n_freqs;
                for (int64_t f = 0; f < n_freqs; f++) {
                    double z_re = er[f] * ir[f] - ei[f] * ii[f];
                    double z_im = er[f] * ii[f] + ei[f] * ir[f];
                    scratch[f] = z_re * (k + 1.0 - qr[f]) + z_im * qi[f];
                }
                acc[2 * s + k] = -2.0 * g->signs[s] * (double)g->kinds[3 * s + 1] * dot(slope, scratch, n_freqs);
            }
    }
    grad[n - 1] = d_tau;
    for (int64_t s = 0; s < n_sections; s++) {
        double d1 = acc[2 * s], d2 = acc[2 * s + 1];
        if (g->rho) {
            double penalty, p1, p2;
            ring(a[2 * s], a[2 * s + 1], g->rho[s], g->rho_low[s], g->c_on[s], g->c_off[s], &penalty, &p1, &p2);
            value += l->ring_weight * penalty;
            d1 += l->ring_weight * p1;
            d2 += l->ring_weight * p2;
        }
        for (int j = 0; j < 3; j++) {
            int64_t column = g->columns[3 * s + j];
            if (column >= 0)
                grad[column] += d1 * da[6 * s + j] + d2 * da[6 * s + 3 + j];
        }
    }
    return value;
}

LANES int apf_objective(const Geometry *g, const Loss *l, const double *params, int64_t n_rows, int64_t n, double *values,
                  double *grads)
{
    Work w;
    if (work_alloc(&w, g->n_sections, g->n_freqs))
        return -1;
    for (int64_t b = 0; b < n_rows; b++)
        values[b] = loss(g, l, params + b * n, n, l->targets + l->target_of_row[b] * g->n_freqs, grads + b * n, &w);
    work_free(&w);
    return 0;
}

LANES int apf_response(const Geometry *g, const double *thetas, int64_t n_rows, int64_t n, double complex *out,
                 double *delay)
{
    int64_t n_sections = g->n_sections, n_freqs = g->n_freqs;
    const double *e = g->e;
    Work w;
    if (work_alloc(&w, n_sections, n_freqs))
        return -1;
    for (int64_t b = 0; b < n_rows; b++) {
        coefficients(g, thetas + b * n, w.a, w.da);
        for (int64_t f = 0; f < n_freqs; f++) {
            double complex product = 1.0;
            double q_sum = 0.0;
            for (int64_t s = 0; s < n_sections; s++) {
                double a1 = w.a[2 * s], a2 = w.a[2 * s + 1];
                double complex e1 = CMPLX(e[(0 * n_sections + s) * n_freqs + f], e[(2 * n_sections + s) * n_freqs + f]);
                double complex e2 = CMPLX(e[(1 * n_sections + s) * n_freqs + f], e[(3 * n_sections + s) * n_freqs + f]);
                double complex den = 1.0 + a1 * e1 + a2 * e2;
                product *= g->signs[s] > 0 ? den : conj(den); /* the anti-causal sections' conjugate */
                q_sum += g->signs[s] * (double)g->kinds[3 * s + 1] * creal(cdiv(a1 * e1 + 2.0 * a2 * e2, den));
            }
            double m = hypot(creal(product), cimag(product));
            double complex unit = CMPLX(creal(product) / m, cimag(product) / m);
            double x = -g->n_poles * g->omega[f];
            out[b * n_freqs + f] = conj(unit) * conj(unit) * CMPLX(cos(x), sin(x));
            delay[b * n_freqs + f] = g->n_poles - 2.0 * q_sum;
        }
    }
    work_free(&w);
    return 0;
}

/* q times the L-BFGS inverse-Hessian approximation, in place (Nocedal and Wright, Algorithm 7.4). */
static void two_loop(double *q, const double *s_hist, const double *y_hist, const double *rho_hist, int64_t history,
                     int64_t n, int64_t count, double gamma, double *alphas)
{
    int64_t kept = history < count ? history : count;
    for (int64_t age = 0; age < kept; age++) { /* newest pair first */
        int64_t slot = (count - 1 - age) % history;
        double d = 0.0;
        for (int64_t i = 0; i < n; i++)
            d += s_hist[slot * n + i] * q[i];
        alphas[age] = rho_hist[slot] * d;
        for (int64_t i = 0; i < n; i++)
            q[i] -= alphas[age] * y_hist[slot * n + i];
    }
    for (int64_t i = 0; i < n; i++)
        q[i] *= gamma;
    for (int64_t age = kept - 1; age >= 0; age--) {
        int64_t slot = (count - 1 - age) % history;
        double d = 0.0;
        for (int64_t i = 0; i < n; i++)
            d += y_hist[slot * n + i] * q[i];
        double beta = rho_hist[slot] * d;
        for (int64_t i = 0; i < n; i++)
            q[i] += (alphas[age] - beta) * s_hist[slot * n + i];
    }
}

/* apftools.lbfgs._cubic_step of one line. */
static double cubic_step(double t, double f0, double slope0, double ft, double slope_t)
{
    double d1 = slope0 + slope_t - 3.0 * (ft - f0) / t;
    double radicand = d1 * d1 - slope0 * slope_t;
    double d2 = sqrt(fmax(radicand, 0.0));
    double denominator = slope_t - slope0 + 2.0 * d2;
    int safe = radicand >= 0 && denominator != 0;
    double cubic = t - t * (slope_t + d2 - d1) / (safe ? denominator : 1.0);
    double chosen = safe && isfinite(cubic) ? cubic : 0.5 * t;
    return fmin(fmax(chosen, 0.1 * t), 0.5 * t);
}

LANES int apf_minimize(const Geometry *g, const Loss *l, double *xs, int64_t n_rows, int64_t n, int64_t max_iter,
                 double lower, int64_t history, double ftol, double gtol, double armijo, int64_t max_backtracks,
                 double *values, int64_t *iterations, int64_t *evaluations)
{
    Work w;
    double *memory = malloc(sizeof(double) * ((2 * n + 2) * history + 6 * n));
    if (!memory || work_alloc(&w, g->n_sections, g->n_freqs)) {
        free(memory);
        return -1;
    }
    double *s_hist = memory, *y_hist = s_hist + history * n, *rho_hist = y_hist + history * n;
    double *alphas = rho_hist + history, *gr = alphas + history, *gt = gr + n, *trial = gt + n, *d = trial + n;
    double *q = d + n, *free_ = q + n; /* free_: 1 where a variable is not held at its bound */
    for (int64_t b = 0; b < n_rows; b++) {
        double *x = xs + b * n;
        const double complex *target = l->targets + l->target_of_row[b] * g->n_freqs;
        memcpy(trial, x, sizeof(double) * n);
        double f = 0.0, gamma = 1.0, step = 0.0, slope = 0.0;
        int64_t n_eval = 0, nit = 0, count = 0, backtracks = 0;
        for (;;) { /* one evaluation a pass, of the start or a trial point */
            double ft = loss(g, l, trial, n, target, gt, &w);
            n_eval++;
            if (n_eval == 1) {
                f = ft;
                memcpy(gr, gt, sizeof(double) * n);
                if (max_iter <= 0)
                    break;
            } else if (!(ft <= f + armijo * step * slope)) { /* backtrack */
                backtracks++;
                double slope_t = 0.0;
                for (int64_t i = 0; i < n; i++)
                    slope_t += gt[i] * d[i];
                step = cubic_step(step, f, slope, ft, slope_t);
                if (backtracks >= max_backtracks) /* no step decreases it */
                    break;
            } else { /* accepted: a new iterate */
                double sy = 0.0, yy = 0.0;
                for (int64_t i = 0; i < n; i++) {
                    sy += (trial[i] - x[i]) * (gt[i] - gr[i]);
                    yy += (gt[i] - gr[i]) * (gt[i] - gr[i]);
                }
                if (sy > 1e-10 * yy && yy > 0) {
                    int64_t slot = count % history;
                    for (int64_t i = 0; i < n; i++) {
                        s_hist[slot * n + i] = trial[i] - x[i];
                        y_hist[slot * n + i] = gt[i] - gr[i];
                    }
                    rho_hist[slot] = 1.0 / sy;
                    gamma = sy / yy;
                    count++;
                }
                double decrease = (f - ft) / fmax(fmax(fabs(f), fabs(ft)), 1.0);
                memcpy(x, trial, sizeof(double) * n);
                memcpy(gr, gt, sizeof(double) * n);
                f = ft;
                nit++;
                double projected = 0.0;
                for (int64_t i = 0; i < n; i++)
                    if (i < n - 1 || !(x[n - 1] <= lower && gr[n - 1] > 0))
                        projected = fmax(projected, fabs(gr[i]));
                if (decrease <= ftol || projected <= gtol || nit >= max_iter)
                    break;
                backtracks = 0;
            }
            if (backtracks == 0) { /* at the start or a new iterate: a new line, its direction and first step */
                for (int64_t i = 0; i < n; i++) {
                    free_[i] = i < n - 1 || !(x[n - 1] <= lower && gr[n - 1] > 0); /* else held at the bound */
                    q[i] = free_[i] ? gr[i] : 0.0;
                }
                two_loop(q, s_hist, y_hist, rho_hist, history, n, count, gamma, alphas);
                double along = 0.0;
                for (int64_t i = 0; i < n; i++) {
                    d[i] = free_[i] ? -q[i] : 0.0;
                    along += gr[i] * d[i];
                }
                int uphill = along >= 0; /* cannot happen with a positive definite approximation, but rounding */
                if (uphill) {
                    along = 0.0;
                    for (int64_t i = 0; i < n; i++) {
                        d[i] = free_[i] ? -gr[i] : 0.0;
                        along += gr[i] * d[i];
                    }
                }
                if (count == 0 || uphill) {
                    double norm = 0.0;
                    for (int64_t i = 0; i < n; i++)
                        norm += d[i] * d[i];
                    step = 1.0 / fmax(sqrt(norm), 1e-300);
                } else {
                    step = 1.0;
                }
                slope = along;
                if (along >= 0) /* a zero gradient: nothing to do */
                    break;
            }
            for (int64_t i = 0; i < n; i++)
                trial[i] = x[i] + step * d[i];
            trial[n - 1] = fmax(trial[n - 1], lower);
        }
        values[b] = f;
        iterations[b] = nit;
        evaluations[b] = n_eval;
    }
    work_free(&w);
    free(memory);
    return 0;
}

/* An importable module of its own, so that apftools._fitkernel finds this library where the package is. */
static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_fitkernel_c",
    .m_doc = "The compiled kernels of apftools._fitkernel (called through ctypes)."};

PyMODINIT_FUNC PyInit__fitkernel_c(void) { return PyModuleDef_Init(&module); }
