/**
 * The error function, in one place for the `erf` and `gelu` ops: W. J. Cody's rational
 * Chebyshev approximations ("Rational Chebyshev approximation for the error function",
 * Math. Comp. 23, 1969; the CALERF routine of SPECFUN), accurate to about 1e-16.
 */

// erf(x) = x · A(x²) / B(x²) for |x| <= 0.5.
const A = [
  3.16112374387056560e00,
  1.13864154151050156e02,
  3.77485237685302021e02,
  3.20937758913846947e03,
  1.85777706184603153e-1,
];
const B = [2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03];

// erfc(y) = exp(-y²) · C(y) / D(y) for 0.5 < y <= 4.
const C = [
  5.64188496988670089e-1,
  8.88314979438837594e00,
  6.61191906371416295e01,
  2.98635138197400131e02,
  8.81952221241769090e02,
  1.71204761263407058e03,
  2.05107837782607147e03,
  1.23033935479799725e03,
  2.15311535474403846e-8,
];
const D = [
  1.57449261107098347e01,
  1.17693950891312499e02,
  5.37181101862009858e02,
  1.62138957456669019e03,
  3.29079923573345963e03,
  4.36261909014324716e03,
  3.43936767414372164e03,
  1.23033935480374942e03,
];

// erfc(y) = exp(-y²) / y · (1/√π - z · P(z) / Q(z)), z = 1/y², for y > 4.
const P = [
  3.05326634961232344e-1,
  3.60344899949804439e-1,
  1.25781726111229246e-1,
  1.60837851487422766e-2,
  6.58749161529837803e-4,
  1.63153871373020978e-2,
];
const Q = [
  2.56852019228982242e00,
  1.87295284992346725e00,
  5.27905102951428412e-1,
  6.05183413124413191e-2,
  2.33520497626869185e-3,
];

const INV_SQRT_PI = 5.6418958354775628695e-1;
/** Above this, erfc(y) underflows to 0 in double precision. */
const Y_BIG = 26.543;

/**
 * Cody's nested evaluation of a rational function of t. With n = den.length, the numerator
 * is `num[n]·tⁿ + num[0]·tⁿ⁻¹ + ... + num[n-1]`, the denominator `tⁿ + den[0]·tⁿ⁻¹ + ... + den[n-1]`.
 */
function ratio(num: readonly number[], den: readonly number[], t: number): number {
  const n = den.length;
  let xnum = num[n] * t;
  let xden = t;
  for (let i = 0; i < n - 1; i++) {
    xnum = (xnum + num[i]) * t;
    xden = (xden + den[i]) * t;
  }
  return (xnum + num[n - 1]) / (xden + den[n - 1]);
}

/** exp(-y²) computed as exp(-a²)·exp(-(y-a)(y+a)) with a = y rounded down to 1/16, to keep precision. */
function expMinusSquare(y: number): number {
  const a = Math.trunc(y * 16) / 16;
  return Math.exp(-a * a) * Math.exp(-(y - a) * (y + a));
}

/** erfc(y) for y > 0.5. */
function erfcLarge(y: number): number {
  if (y >= Y_BIG) return 0;
  if (y <= 4) return expMinusSquare(y) * ratio(C, D, y);
  const z = 1 / (y * y);
  return expMinusSquare(y) * (INV_SQRT_PI - z * ratio(P, Q, z)) / y;
}

/** The error function erf(x) = 2/√π ∫₀ˣ e^(-t²) dt; NaN for NaN. */
export function erfFn(x: number): number {
  const y = Math.abs(x);
  if (y <= 0.5) return x * ratio(A, B, x * x);
  const e = 1 - erfcLarge(y);
  return x < 0 ? -e : e;
}
