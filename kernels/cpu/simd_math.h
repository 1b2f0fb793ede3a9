/*
 * simd_math.h - lets `omp simd` loops call glibc's vector math (libmvec).
 *
 * libmvec carries SIMD versions of exp, log, erf, tanh, log1p; declaring the
 * scalar functions "declare simd" lets the compiler call the vector variants
 * (4 floats per call with SSE) from vectorized loops. Include after <math.h>
 * or <tgmath.h>; the parentheses keep tgmath's macros from expanding.
 */
#ifndef MT_CPU_SIMD_MATH_H
#define MT_CPU_SIMD_MATH_H

#include <math.h>

#if defined(__GLIBC__) && defined(__x86_64__) && !defined(__clang__)
#define MT_HAVE_LIBMVEC 1
#pragma omp declare simd notinbranch
float (expf)(float);
#pragma omp declare simd notinbranch
float (logf)(float);
#pragma omp declare simd notinbranch
float (erff)(float);
#pragma omp declare simd notinbranch
float (tanhf)(float);
#pragma omp declare simd notinbranch
float (log1pf)(float);
#pragma omp declare simd notinbranch
double (exp)(double);
#pragma omp declare simd notinbranch
double (log)(double);
#pragma omp declare simd notinbranch
double (erf)(double);
#pragma omp declare simd notinbranch
double (tanh)(double);
#pragma omp declare simd notinbranch
double (log1p)(double);
#endif

#endif
