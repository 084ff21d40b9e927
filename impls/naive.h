// The fp64 reference: direct loops over the definition, products accumulated in double,
// every ConvProblem parameter supported. Tests prove these against finite differences of
// reference_forward, so agreement with them means the math is right.
#pragma once

#include "problem.h"

namespace convbp {

// y[n,k,p,q] = sum_{c in group, r, s} x[n,c,p*sh-pt+r*dh, q*sw-pl+s*dw] * w[k,c,r,s]
void reference_forward(const ConvProblem& problem, const double* x, const double* w, double* y);

// dx[n,c,h,w] = sum over every (k, p, q, r, s) with h = p*sh-pt+r*dh, w = q*sw-pl+s*dw
//               of dy[n,k,p,q] * w[k,c,r,s]
// Inputs in NCHW order (w as [k, c/g, r, s]); the double overloads take the logical copies of
// a bf16, f16 or NHWC problem's inputs (layout.h's load_logical).
void reference_backward_data(const ConvProblem& problem, const float* dy, const float* w,
                             double* dx);
void reference_backward_data(const ConvProblem& problem, const double* dy, const double* w,
                             double* dx);

// dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] * x[n,c,p*sh-pt+r*dh, q*sw-pl+s*dw];
// db[k] = sum_{n,p,q} dy[n,k,p,q]
void reference_backward_weights(const ConvProblem& problem, const float* x, const float* dy,
                                double* dw, double* db);
void reference_backward_weights(const ConvProblem& problem, const double* x, const double* dy,
                                double* dw, double* db);

}  // namespace convbp
