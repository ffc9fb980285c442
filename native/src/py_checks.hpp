// Argument checks shared by the pybind11 bindings (module.cpp, render_py.cpp): a failed check is a
// std::invalid_argument, which pybind11 raises as ValueError with the message.
#pragma once
#include <pybind11/numpy.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace emo3d::pycheck {

namespace py = pybind11;

inline void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

// The data of `a` as const T*, after checking ndim, the exact dtype (no silent conversion) and C order.
template <class T>
const T* array_data(const py::array& a, const char* what, int ndim) {
    require(a.ndim() == ndim, std::string(what) + " must have " + std::to_string(ndim) + " dimensions, got " +
                                  std::to_string(a.ndim()));
    require(py::isinstance<py::array_t<T, 0>>(a) && a.dtype().is(py::dtype::of<T>()),
            std::string(what) + " has the wrong dtype (expected " + std::string(py::str(py::dtype::of<T>())) + ")");
    require(a.flags() & py::array::c_style, std::string(what) + " must be C-contiguous");
    return static_cast<const T*>(a.data());
}

// Per-target CSR deltas: offsets [T+1] int64, indices [K] int32 in [0, V), values [K, 3] float32.
struct Csr {
    const std::int64_t* offsets;
    const std::int32_t* indices;
    const float* values;
    py::ssize_t n_targets, n_entries;
};

inline Csr checked_csr(const py::array& offsets, const py::array& indices, const py::array& values,
                       py::ssize_t n_vertices) {
    Csr c;
    c.offsets = array_data<std::int64_t>(offsets, "offsets", 1);
    c.indices = array_data<std::int32_t>(indices, "indices", 1);
    c.values = array_data<float>(values, "values", 2);
    c.n_targets = offsets.shape(0) - 1;
    c.n_entries = indices.shape(0);
    const py::ssize_t T = c.n_targets, K = c.n_entries;
    require(T >= 0, "offsets must have T+1 entries");
    require(values.shape(0) == K && values.shape(1) == 3, "values must be [K, 3] with K = len(indices)");
    require(c.offsets[0] == 0 && c.offsets[T] == K, "offsets must start at 0 and end at len(indices)");
    for (py::ssize_t t = 0; t < T; ++t) require(c.offsets[t] <= c.offsets[t + 1], "offsets must be non-decreasing");
    bool ok = true;
    for (py::ssize_t k = 0; k < K; ++k) ok &= c.indices[k] >= 0 && c.indices[k] < n_vertices;
    require(ok, "indices must lie in [0, V)");
    return c;
}

}  // namespace emo3d::pycheck
